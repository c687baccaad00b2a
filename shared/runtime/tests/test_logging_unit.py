import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from aiokafka.errors import RequestTimedOutError
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import exc as sa_exc

from petportal_runtime.logging import configure_logging, get_logger

pytestmark = pytest.mark.unit


def test_logs_are_json_and_never_carry_personal_data(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit", "INFO")
    structlog.reset_defaults()
    configure_logging("unit", "INFO")
    get_logger("t").info("contact updated", email="alex@example.com", phone="+15005550100", client="C-1")
    logging.getLogger("stdlib").info("plain stdlib line")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    first = next(line for line in lines if line["event"] == "contact updated")
    assert first["email"] == "[redacted]"
    assert first["phone"] == "[redacted]"
    assert first["client"] == "C-1"
    assert first["service"] == "unit"
    assert any(line["event"] == "plain stdlib line" for line in lines)


EMAIL, PHONE, TEXT = "casey@example.com", "+15005550199", "Biscuit's biopsy results"


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _raise(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


def test_logged_exceptions_carry_types_frames_and_codes_but_no_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("unit", "INFO")
    log = get_logger("t")
    unique = asyncpg.exceptions.PostgresError.new(
        {
            "C": "23505",
            "M": 'duplicate key value violates unique constraint "ux_contacts_email"',
            "D": f"Key (email)=({EMAIL}) already exists.",
            "n": "ux_contacts_email",
            "t": "contacts",
        }
    )
    db_error = sa_exc.IntegrityError("INSERT INTO contacts VALUES ($1, $2)", (EMAIL, PHONE), unique)
    try:
        TypeAdapter(EmailStr).validate_python(f"not an email {PHONE}")
    except ValidationError as exc:
        invalid = exc
    request = httpx.Request("GET", f"http://identity/clients/C-7?email={EMAIL}")
    http_error = httpx.HTTPStatusError(
        f"for url {request.url}", request=request, response=httpx.Response(404)
    )
    kafka_error = RequestTimedOutError(f"payload {TEXT}")

    for exc in (_raise(db_error, unique), invalid, http_error, kafka_error, _raise(KeyError(EMAIL))):
        log.error("failed", exc_info=exc)
    try:
        raise RuntimeError(f"message {TEXT}")
    except RuntimeError:
        log.exception("failed inside except")
    out = capsys.readouterr().out

    for value in (EMAIL, PHONE, TEXT, "C-7"):
        assert value not in out
    lines = [line for line in _json_lines(out) if line["event"].startswith("failed")]
    assert len(lines) == 6
    db_chain = lines[0]["exception"]
    assert [e["type"] for e in db_chain] == [
        "sqlalchemy.exc.IntegrityError",
        "asyncpg.exceptions.UniqueViolationError",
    ]
    assert db_chain[1] | {"frames": []} == {
        "type": "asyncpg.exceptions.UniqueViolationError",
        "sqlstate": "23505",
        "constraint_name": "ux_contacts_email",
        "table_name": "contacts",
        "frames": [],
    }
    assert db_chain[0]["frames"][-1].endswith(" _raise")
    assert lines[1]["exception"][0]["errors"] == [{"loc": [], "type": "value_error"}]
    assert lines[2]["exception"][0]["type"] == "httpx.HTTPStatusError"
    assert lines[3]["exception"][0]["errno"] == RequestTimedOutError.errno
    assert lines[5]["exception"][0]["type"] == "RuntimeError"


def test_library_messages_lose_the_exception_text_they_quote(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit", "INFO")
    error = _raise(ValueError(f"duplicate key {EMAIL}"))
    # FastStream's subscriber logs "<type>: <message>" with exc_info; aiokafka passes errors as arguments.
    logging.getLogger("faststream.test").error(f"ValueError: {error}", exc_info=error)
    logging.getLogger("aiokafka.test").warning("send failed: %s", error)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=error)
    out = capsys.readouterr().out
    assert EMAIL not in out
    events = [line["event"] for line in _json_lines(out)]
    assert events == [
        "ValueError: [redacted]",
        "send failed: ValueError",
        "Exception in ASGI application\n",
    ]


def test_libraries_that_print_data_at_debug_stay_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit", "DEBUG")
    logging.getLogger("sqlalchemy.engine.Engine").debug("Row (%r,)", EMAIL)
    logging.getLogger("pymongo.command").debug("reply %s", EMAIL)
    logging.getLogger("petportal.debug").debug("still logged")
    out = capsys.readouterr().out
    assert EMAIL not in out
    assert "still logged" in out
    configure_logging("unit", "INFO")
