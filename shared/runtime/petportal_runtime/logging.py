"""structlog JSON logs with trace/span ids and personal data redacted.

Our own events are rendered by structlog and written as one line straight to stdout, without going
through the standard library's logging (a LogRecord, the handler chain, and structlog's
ProcessorFormatter copying the record again: two thirds of what a request log line cost). Other
libraries' standard-library records (uvicorn, aiokafka...) go through a handler that renders them
with the same processors, so every line has the same shape.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

# Keys whose values are personal data or secrets. They never reach a log line.
REDACTED_KEYS = frozenset(
    {
        "email",
        "phone",
        "phone_number",
        "from_number",
        "first_name",
        "last_name",
        "name",
        "body",
        "password",
        "token",
        "access_token",
        "api_key",
        "authorization",
        "microchip",
    }
)


def redact_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


class _Output:
    """Where lines go: the stdout of the last configure_logging (tests capture it)."""

    stream: TextIO = sys.stdout


class LineLogger:
    """structlog's final logger: writes each rendered event as one line (one write, so lines from
    several threads never interleave) and flushes, as the standard library's StreamHandler does."""

    __slots__ = ()

    def msg(self, message: str) -> None:
        stream = _Output.stream
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _line_logger(*_args: Any) -> LineLogger:
    return LineLogger()


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout for structlog and the standard library (uvicorn, aiokafka...)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        redact_personal_data,
    ]
    _Output.stream = sys.stdout
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        logger_factory=_line_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log puts client addresses and full paths in messages; ours logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request's full URL at INFO, and our paths carry client ids.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
