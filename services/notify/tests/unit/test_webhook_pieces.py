from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from twilio.request_validator import RequestValidator

from petportal_notify.domain.keywords import KeywordAction
from petportal_notify.domain.replies import reply_text, response_document
from petportal_notify.domain.stops import PhoneDigests
from petportal_notify.domain.twilio import signature_valid, twilio_signature
from petportal_notify.settings import DEV_PHONE_HASH_KEY, NotifySettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _internal_api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production settings also need the services' shared credential: given here, so each test
    checks only its own setting."""
    monkeypatch.setenv("INTERNAL_API_TOKEN", "a-secret-of-its-own")


URL = "https://portal.example.com/webhooks/sms/inbound"
FORM = {
    "MessageSid": "SM0123",
    "From": "+14155550100",
    "To": "+14155550199",
    "Body": "Stop please",
    "NumMedia": "0",
}


def test_the_signature_is_twilios_own() -> None:
    twilio = RequestValidator("s3cret-token")
    header = twilio.compute_signature(URL, FORM)
    assert twilio_signature("s3cret-token", URL, FORM.items()) == header
    assert signature_valid("s3cret-token", URL, FORM.items(), header)
    assert not signature_valid("other-token", URL, FORM.items(), header)
    assert not signature_valid(
        "s3cret-token", URL.replace("https://portal", "http://notify"), FORM.items(), header
    )
    assert not signature_valid("s3cret-token", URL, [*FORM.items(), ("Body2", "x")], header)
    assert not signature_valid("s3cret-token", URL, FORM.items(), None)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=8),
    st.text(alphabet="abc/?=&", max_size=20),
)
def test_any_form_signs_like_twilios_validator(form: dict[str, str], path: str) -> None:
    url = "https://portal.example.com/webhooks/sms/" + path
    assert twilio_signature("tok", url, form.items()) == RequestValidator("tok").compute_signature(url, form)


def test_reply_documents() -> None:
    stop = response_document(reply_text(KeywordAction.OPT_OUT, "Paws & Claws"))
    assert stop.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "Paws &amp; Claws" in stop
    assert "unsubscribed" in stop
    assert "START" in reply_text(KeywordAction.OPT_OUT, "x")
    assert "STOP" in reply_text(KeywordAction.HELP, "x")
    assert response_document(None).endswith("<Response></Response>")


def test_production_requires_twilio_smtp_and_an_https_public_address() -> None:
    with pytest.raises(
        ValidationError, match="TWILIO_AUTH_TOKEN, TWILIO_ACCOUNT_SID, SMTP_HOST, PHONE_HASH_KEY"
    ):
        NotifySettings(environment="production", database_url="postgresql+asyncpg://x/y")
    given = {
        "twilio_auth_token": SecretStr("s"),
        "twilio_account_sid": "AC" + "1" * 32,
        "smtp_host": "smtp.example.com",
        "phone_hash_key": SecretStr("k" * 32),
    }
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
        NotifySettings(environment="production", **given)
    https = "https://portal.example.com"
    with pytest.raises(ValidationError, match="SMTP_SECURITY=none"):
        NotifySettings(environment="production", public_base_url=https, smtp_security="none", **given)
    production = NotifySettings(environment="production", public_base_url=https, **given)
    assert (production.smtp().port, production.smtp().security) == (587, "starttls")
    assert production.twilio_api() == ("https://api.twilio.com", "AC" + "1" * 32)
    # Outside production, the local sinks `make run` starts.
    development = NotifySettings(environment="development")
    assert development.twilio_auth_token is None
    assert (development.smtp().host, development.smtp().port, development.smtp().security) == (
        "127.0.0.1",
        1025,
        "none",
    )
    assert development.twilio_api()[0] == "http://127.0.0.1:8026"


def test_production_refuses_the_development_phone_hash_key_and_a_short_one() -> None:
    given = {
        "twilio_auth_token": SecretStr("s"),
        "twilio_account_sid": "AC" + "1" * 32,
        "smtp_host": "smtp.example.com",
        "public_base_url": "https://portal.example.com",
    }
    with pytest.raises(ValidationError, match="PHONE_HASH_KEY required when"):
        NotifySettings(environment="production", phone_hash_key=SecretStr(DEV_PHONE_HASH_KEY), **given)
    with pytest.raises(ValidationError, match="PHONE_HASH_KEY must be 32\\+ random characters"):
        NotifySettings(environment="production", phone_hash_key=SecretStr("k" * 31), **given)
    with pytest.raises(ValidationError, match="phone_hash_key"):
        NotifySettings(environment="development", phone_hash_key=SecretStr(""))
    key = "k" * 32
    production = NotifySettings(environment="production", phone_hash_key=SecretStr(key), **given)
    assert production.phone_digests() == PhoneDigests(key.encode())
    # Outside production the development key serves.
    development = NotifySettings(environment="development")
    assert development.phone_digests() == PhoneDigests(DEV_PHONE_HASH_KEY.encode())
