from __future__ import annotations

import pytest
from pydantic import ValidationError

from petportal_notify.domain.keywords import KeywordAction
from petportal_notify.domain.replies import reply_text, response_document
from petportal_notify.entrypoints.webhooks import sign, signature_valid
from petportal_notify.settings import NotifySettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _internal_api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production settings also need the services' shared credential: given here, so each test
    checks only its own setting."""
    monkeypatch.setenv("INTERNAL_API_TOKEN", "a-secret-of-its-own")


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    raw = b"From=%2B15550100001&To=%2B15550199999&Body=STOP"
    header = sign("s3cret", raw)
    assert header.startswith("sha256=")
    assert signature_valid("s3cret", raw, header)
    assert not signature_valid("other", raw, header)
    assert not signature_valid("s3cret", raw + b"x", header)
    assert not signature_valid("s3cret", raw, None)
    assert not signature_valid("s3cret", raw, header.removeprefix("sha256="))


def test_reply_documents() -> None:
    stop = response_document(reply_text(KeywordAction.OPT_OUT, "Paws & Claws"))
    assert stop.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "Paws &amp; Claws" in stop
    assert "unsubscribed" in stop
    assert "START" in reply_text(KeywordAction.OPT_OUT, "x")
    assert "STOP" in reply_text(KeywordAction.HELP, "x")
    assert response_document(None).endswith("<Response></Response>")


def test_production_requires_the_webhook_secret() -> None:
    with pytest.raises(ValidationError, match="SMS_WEBHOOK_SECRET"):
        NotifySettings(environment="production", database_url="postgresql+asyncpg://x/y")
    assert NotifySettings(environment="production", sms_webhook_secret="s").production
    assert NotifySettings(environment="development").sms_webhook_secret is None
