"""structlog JSON logs with trace/span ids and personal data redacted.

Exceptions are logged without their messages: drivers and libraries put the data they were given in
them (a unique violation's `Key (email)=(…)`, the SQL parameters, pydantic's `input_value`, URLs with
ids). A logged exception is its chain of types, the frames where it was raised (file, line, function;
never local values) and a few attributes that only ever hold codes and schema names.

Our own events are rendered by structlog and written as one line straight to stdout, without going
through the standard library's logging (a LogRecord, the handler chain, and structlog's
ProcessorFormatter copying the record again: two thirds of what a request log line cost). Other
libraries' standard-library records (uvicorn, aiokafka...) go through a handler that renders them
with the same processors, so every line has the same shape.
"""

from __future__ import annotations

import errno as errno_names
import logging
import re
import sys
import sysconfig
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from pydantic import ValidationError

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


# Attributes kept from an exception, each only when its value has the expected shape (a number, a
# SQLSTATE, an SQL identifier): schema names and codes, never values.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]{0,127}")
_SAFE_ATTRIBUTES: dict[str, Any] = {
    "sqlstate": re.compile(r"[0-9A-Z]{5}"),  # asyncpg and SQLAlchemy's asyncpg adapter
    "constraint_name": _IDENTIFIER,
    "table_name": _IDENTIFIER,
    "column_name": _IDENTIFIER,
    "schema_name": _IDENTIFIER,
    "data_type_name": _IDENTIFIER,
    "connection_invalidated": bool,  # SQLAlchemy DBAPIError
    "code": int,  # pymongo OperationFailure
    "timeout": bool,  # pymongo PyMongoError
    "status_code": int,
}
MAX_CHAIN = 8
MAX_FRAMES = 25
INNERMOST_FRAMES = 3


def describe_exception(exc: BaseException) -> list[dict[str, Any]]:
    """The exception and its causes, outermost first, as data-free dictionaries."""
    chain: list[dict[str, Any]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        seen.add(id(current))
        chain.append(_describe_one(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def exception_type(exc: BaseException) -> str:
    """The exception's class, qualified by its module (`builtins` left out): a name, never data."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}".removeprefix("builtins.")


def _describe_one(exc: BaseException) -> dict[str, Any]:
    described: dict[str, Any] = {"type": exception_type(exc)}
    for name, shape in _SAFE_ATTRIBUTES.items():
        value = getattr(exc, name, None)
        if isinstance(shape, type):
            # bool is an int: a code must not be a flag and the other way round
            if type(value) is shape:
                described[name] = value
        elif isinstance(value, str) and shape.fullmatch(value):
            described[name] = value
    code = getattr(exc, "errno", None)  # OSError's, and a class attribute of aiokafka's broker errors
    if type(code) is int:
        described["errno"] = errno_names.errorcode.get(code, code) if isinstance(exc, OSError) else code
    if isinstance(exc, ValidationError):
        described["errors"] = [
            {"loc": [p if isinstance(p, int) else str(p) for p in e["loc"]], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)[:10]
        ]
    if isinstance(exc, BaseExceptionGroup):
        described["exceptions"] = [_describe_one(e) for e in exc.exceptions[:5]]
    described["frames"] = _frames(exc.__traceback__)
    return described


def _frames(tb: TracebackType | None) -> list[str]:
    """Our own frames and the innermost few (where a library raised); library frames in between are
    left out, they are most of a traceback through FastAPI or SQLAlchemy and say little."""
    frames = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
    last = len(frames) - INNERMOST_FRAMES
    kept = [f for i, f in enumerate(frames) if i >= last or _library_path(f.filename) is None]
    return [f"{_library_path(f.filename) or f.filename}:{f.lineno} {f.name}" for f in kept[-MAX_FRAMES:]]


_LIBRARY_ROOTS = tuple(
    sorted(
        {sysconfig.get_paths()[name].rstrip("/") + "/" for name in ("stdlib", "purelib", "platlib")}, key=len
    )
)[::-1]


def _library_path(path: str) -> str | None:
    """The path of a standard library or installed module, relative to its root; None for ours."""
    for root in _LIBRARY_ROOTS:
        if path.startswith(root):
            return path[len(root) :]
    _, marker, rest = path.rpartition("site-packages/")
    return rest if marker else None


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) == 3 else None
    if exc_info is True:
        return sys.exc_info()[1]
    return None


def render_exception(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replaces `exc_info` (structlog's and the standard library's) by `describe_exception`.

    Other libraries' messages often quote the exception they log (FastStream logs "Type: message",
    asyncio a task's repr): those quotes are cut out of the message too.
    """
    exc = _exception_of(event_dict.pop("exc_info", None))
    event_dict.pop("exception", None)  # one passed by hand could hold anything
    if exc is None:
        return event_dict
    chain = describe_exception(exc)
    event_dict["exception"] = chain
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = _without_exception_text(event, exc)
    return event_dict


def _without_exception_text(message: str, exc: BaseException) -> str:
    current: BaseException | None = exc
    for _ in range(MAX_CHAIN):
        if current is None:
            break
        for text in (repr(current), str(current)):
            # a very short text ("", "1") would cut ordinary words out of the message
            if len(text) >= 3:
                message = message.replace(text, "[redacted]")
        current = current.__cause__ or current.__context__
    return message


class ExceptionArgumentsFilter(logging.Filter):
    """`log.warning("send failed: %s", exc)` from any library: the exception becomes its type name."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
            record.args = tuple(_type_name(a) if isinstance(a, BaseException) else a for a in args)
        elif isinstance(args, dict) and any(isinstance(a, BaseException) for a in args.values()):
            record.args = {k: _type_name(a) if isinstance(a, BaseException) else a for k, a in args.items()}
        return True


def _type_name(exc: BaseException) -> str:
    return type(exc).__name__


# Loggers whose messages quote what a client sent: OpenTelemetry's baggage propagator quotes a
# malformed entry of a request's `baggage` header (or the whole header), which may hold anything.
QUOTING_LOGGERS = ("opentelemetry.baggage",)


class QuotedInputFilter(logging.Filter):
    """The arguments of QUOTING_LOGGERS' messages become `[redacted]`; the message itself stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and record.name.startswith(QUOTING_LOGGERS):
            args = record.args
            record.args = (
                dict.fromkeys(args, "[redacted]") if isinstance(args, dict) else ("[redacted]",) * len(args)
            )
            # %d placeholders need a number: the message is rendered with %s for each argument
            record.msg = str(record.msg).replace("%d", "%s")
        return True


# Loggers that print data at DEBUG (SQLAlchemy result rows, PyMongo command documents): never below
# WARNING, whatever LOG_LEVEL says.
DATA_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "pymongo.command", "pymongo.connection")


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
        try:
            stream.write(message + "\n")
            stream.flush()
        except (OSError, ValueError):
            # A closed or broken stdout must not fail the code that logs (the standard library's
            # handlers swallow this too); a test's captured stdout that was closed is the common case.
            if stream is not sys.stdout:
                _Output.stream = sys.stdout

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
        render_exception,
        redact_personal_data,
    ]
    _Output.stream = sys.stdout
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],  # render_exception took exc_info
        logger_factory=_line_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(ExceptionArgumentsFilter())
    handler.addFilter(QuotedInputFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that print through handlers of their own (FastStream's colourised stderr one) would
    # bypass the redaction: every logger goes through the root's handler instead.
    for existing in list(logging.root.manager.loggerDict.values()):
        if isinstance(existing, logging.Logger):
            existing.handlers.clear()
            existing.propagate = True
    # uvicorn's access log puts client addresses and full paths in messages; ours logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request's full URL at INFO, and our paths carry client ids.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in DATA_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
