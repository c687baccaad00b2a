from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from petportal_notify.domain.consent import Consent, can_send_sms
from petportal_notify.domain.sms import SmsRecipient
from petportal_notify.service_layer.services import SendOutcome, send_sms

pytestmark = pytest.mark.unit


def test_opt_out_then_repeat_changes_once() -> None:
    consent = Consent(clinic_id="c", client_id="k")
    assert not consent.sms_opt_out_indicator
    assert consent.set_sms(False, "sms_keyword") is True
    assert consent.sms_opt_out_indicator
    assert consent.source == "sms_keyword"
    assert consent.set_sms(False, "portal") is False  # already out: nothing to publish
    assert consent.source == "sms_keyword"
    assert consent.set_sms(True, "portal") is True
    assert not consent.sms_opt_out_indicator


def test_email_consent_is_independent_of_sms() -> None:
    consent = Consent(clinic_id="c", client_id="k")
    assert consent.set_email(False, "portal") is True
    assert consent.sms_opted_in
    assert consent.set_email(False, "portal") is False


def test_can_send_sms_only_when_opted_in() -> None:
    consent = Consent(clinic_id="c", client_id="k")
    assert can_send_sms(consent)
    consent.set_sms(False, "sms_keyword")
    assert not can_send_sms(consent)
    assert not can_send_sms(None)


@dataclass
class FakeProvider:
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, *, from_number: str, to_number: str, body: str) -> None:
        self.sent.append((from_number, to_number, body))


@dataclass
class FakeDirectory:
    recipients: dict[tuple[str, str], SmsRecipient]

    async def recipient(self, clinic_id: str, client_id: str) -> SmsRecipient | None:
        return self.recipients.get((clinic_id, client_id))


def recipient(consent: Consent | None, to: str | None = "+15550100001") -> SmsRecipient:
    return SmsRecipient("c", "k", from_number="+15550199999", to_number=to, consent=consent)


async def test_send_sms_goes_out_to_an_opted_in_client() -> None:
    provider = FakeProvider()
    directory = FakeDirectory({("c", "k"): recipient(Consent(clinic_id="c", client_id="k"))})
    outcome = await send_sms(directory, provider, clinic_id="c", client_id="k", body="Rex is due")
    assert outcome is SendOutcome.SENT
    assert provider.sent == [("+15550199999", "+15550100001", "Rex is due")]


async def test_send_sms_never_texts_an_opted_out_client() -> None:
    consent = Consent(clinic_id="c", client_id="k")
    consent.set_sms(False, "sms_keyword")
    provider = FakeProvider()
    directory = FakeDirectory({("c", "k"): recipient(consent)})
    outcome = await send_sms(directory, provider, clinic_id="c", client_id="k", body="Rex is due")
    assert outcome is SendOutcome.NOT_CONSENTED
    assert provider.sent == []


@pytest.mark.parametrize(
    ("recipients", "expected"),
    [
        ({}, SendOutcome.UNKNOWN_CLIENT),
        ({("c", "k"): recipient(None)}, SendOutcome.NOT_CONSENTED),
        ({("c", "k"): recipient(Consent(clinic_id="c", client_id="k"), to=None)}, SendOutcome.NO_NUMBER),
    ],
)
async def test_send_sms_skips_without_recipient_consent_or_number(
    recipients: dict[tuple[str, str], SmsRecipient], expected: SendOutcome
) -> None:
    provider = FakeProvider()
    outcome = await send_sms(FakeDirectory(recipients), provider, clinic_id="c", client_id="k", body="x")
    assert outcome is expected
    assert provider.sent == []
