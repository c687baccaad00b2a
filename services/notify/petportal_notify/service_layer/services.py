"""Notify use cases. Each runs inside the caller's unit of work (one transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime import outbox, telemetry
from petportal_runtime.logging import get_logger
from petportal_runtime.phone import InvalidPhoneNumber, normalise_phone
from petportal_schemas import Envelope, SmsOptedIn, SmsOptedOut

from ..adapters.repository import Clinic, NotifyRepository
from ..domain.consent import Consent, ConsentSource, can_send_sms
from ..domain.keywords import KeywordAction, classify
from ..domain.replies import reply_text
from ..domain.sms import RecipientDirectory, SmsProvider

PRODUCER = "notify"
log = get_logger(__name__)


class UnknownClinicNumber(LookupError):
    def __init__(self) -> None:
        super().__init__("unknown clinic number")


class UnknownClient(LookupError):
    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client {client_id} at this clinic")


# --- events consumed ----------------------------------------------------------------------------


async def register_clinic(session: AsyncSession, clinic_id: str, name: str, sms_number: str | None) -> None:
    await NotifyRepository(session).upsert_clinic(Clinic(clinic_id, name, sms_number))


async def record_contact(session: AsyncSession, clinic_id: str, client_id: str, phone: str | None) -> None:
    repo = NotifyRepository(session)
    await repo.upsert_contact(clinic_id, client_id, phone)
    await repo.ensure_consent(Consent(clinic_id=clinic_id, client_id=client_id))


# --- consent changes ----------------------------------------------------------------------------


async def _set_sms(
    session: AsyncSession, consent: Consent, opted_in: bool, source: ConsentSource, keyword: str | None
) -> bool:
    """Apply and publish an SMS consent change; nothing at all when it is already so."""
    if not consent.set_sms(opted_in, source):
        return False
    await NotifyRepository(session).save_consent(consent)
    assert source != "default"
    event = (
        SmsOptedIn(source=source, keyword=keyword)
        if opted_in
        else SmsOptedOut(source=source, keyword=keyword)
    )
    await outbox.add_event(
        session,
        Envelope.wrap(event, clinic_id=consent.clinic_id, client_id=consent.client_id, producer=PRODUCER),
    )
    return True


_sends = telemetry.meter("notify").create_counter(
    "petportal_notify_sends", description="messages handed to a provider, by channel"
)


@dataclass(frozen=True)
class InboundResult:
    reply: str | None  # text to answer with; None for an ordinary message
    changed_clients: int


async def receive_sms(
    session: AsyncSession, *, to_number: str, from_number: str, body: str, default_region: str = "US"
) -> InboundResult:
    """A text to a clinic number. Keywords change the consent of every client of the clinic with the
    sender's phone; the reply depends only on the text, so it reveals nothing about who is a client."""
    repo = NotifyRepository(session)
    try:
        clinic = await repo.clinic_by_number(normalise_phone(to_number, default_region))
    except InvalidPhoneNumber:
        clinic = None
    if clinic is None:
        raise UnknownClinicNumber()
    try:
        sender: str | None = normalise_phone(from_number, default_region)
    except InvalidPhoneNumber:
        sender = None  # short codes and garbage match no contact
    client_ids = await repo.clients_with_phone(clinic.clinic_id, sender) if sender else []
    keyword = classify(body)

    changed = 0
    if keyword is not None and keyword.action is not KeywordAction.HELP and client_ids:
        opted_in = keyword.action is KeywordAction.OPT_IN
        for consent in await repo.consents_for_update(clinic.clinic_id, client_ids):
            changed += await _set_sms(session, consent, opted_in, "sms_keyword", keyword.word)
    await repo.log_inbound(
        clinic_id=clinic.clinic_id,
        from_number=sender or from_number[:32],
        body=body,
        keyword=keyword.word if keyword else None,
        matched_clients=len(client_ids),
    )
    log.info(
        "inbound sms",
        clinic_id=clinic.clinic_id,
        keyword=keyword.word if keyword else None,
        matched_clients=len(client_ids),
        changed_clients=changed,
    )
    reply = reply_text(keyword.action, clinic.name) if keyword else None
    return InboundResult(reply=reply, changed_clients=changed)


async def preferences(session: AsyncSession, clinic_id: str, client_id: str) -> Consent:
    consent = await NotifyRepository(session).consent(clinic_id, client_id)
    return consent or Consent(clinic_id=clinic_id, client_id=client_id)


async def update_preferences(
    session: AsyncSession, clinic_id: str, client_id: str, *, sms_opted_in: bool, email_opted_in: bool
) -> Consent:
    repo = NotifyRepository(session)
    (consent,) = await repo.consents_for_update(clinic_id, [client_id])
    await _set_sms(session, consent, sms_opted_in, "portal", None)
    if consent.set_email(email_opted_in, "portal"):
        await repo.save_consent(consent)
    return consent


async def sms_status(session: AsyncSession, clinic_id: str, client_id: str) -> Consent:
    repo = NotifyRepository(session)
    if not await repo.contact_exists(clinic_id, client_id):
        raise UnknownClient(client_id)
    consent = await repo.consent(clinic_id, client_id)
    return consent or Consent(clinic_id=clinic_id, client_id=client_id)


# --- sending ------------------------------------------------------------------------------------


class SendOutcome(StrEnum):
    SENT = "sent"
    UNKNOWN_CLIENT = "unknown_client"
    NO_NUMBER = "no_number"
    NOT_CONSENTED = "not_consented"


async def send_sms(
    directory: RecipientDirectory, provider: SmsProvider, *, clinic_id: str, client_id: str, body: str
) -> SendOutcome:
    """Text a client through the provider; never to a client who has not consented (opted out)."""
    recipient = await directory.recipient(clinic_id, client_id)
    if recipient is None:
        return SendOutcome.UNKNOWN_CLIENT
    if not can_send_sms(recipient.consent):
        return SendOutcome.NOT_CONSENTED
    if not recipient.to_number or not recipient.from_number:
        return SendOutcome.NO_NUMBER
    await provider.send(from_number=recipient.from_number, to_number=recipient.to_number, body=body)
    _sends.add(1, {"channel": "sms"})
    return SendOutcome.SENT
