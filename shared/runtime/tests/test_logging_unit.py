import json
import logging

import pytest
import structlog

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
