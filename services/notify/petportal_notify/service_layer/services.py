"""notify's use cases: record clinics and contacts from the PIMS, apply carrier keywords and the
parent's preferences, answer staff, and send a text only to a client who consents. Each takes a unit
of work (one transaction) and never a session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from petportal_runtime import telemetry
from petportal_runtime.erasure import erase
from petportal_runtime.logging import get_logger
from petportal_runtime.phone import InvalidPhoneNumber, normalise_phone
from petportal_schemas import (
    ClientErasureRequested,
    ClientUpserted,
    ClinicRegistered,
    ClinicSettingsChanged,
    Envelope,
    PatientUpserted,
    SmsOptedIn,
    SmsOptedOut,
    SmsReceived,
)

from ..domain.clinics import Clinic
from ..domain.consent import Consent, ConsentSource
from ..domain.keywords import KeywordAction, classify
from ..domain.replies import reply_text
from ..domain.sms import InboundText
from ..domain.stops import PhoneDigests, first_consent, stop_to_keep
from .unit_of_work import NotifyUnitOfWork

CONSUMER = "notify"
PRODUCER = "notify"
log = get_logger(__name__)


class UnknownClinicNumber(LookupError):
    def __init__(self) -> None:
        super().__init__("unknown clinic number")


class UnknownClient(LookupError):
    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client {client_id} at this clinic")


# --- events consumed ----------------------------------------------------------------------------


async def register_clinic(uow: NotifyUnitOfWork, envelope: Envelope, event: ClinicRegistered) -> bool:
    """Remember the clinic's texting number, once per event; `SmsNumberTaken` (nothing kept, not even
    the claim) if another clinic holds it. True if applied."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.notify.upsert_clinic(
            Clinic(envelope.clinic_id, event.name, event.sms_number, event.timezone)
        )
    return True


async def record_contact(
    uow: NotifyUnitOfWork, envelope: Envelope, event: ClientUpserted, *, phones: PhoneDigests
) -> bool:
    """Keep the client's phone and email (only those) and give a new client a consent record, once per
    event: opted in to texts, unless their number is kept as stopped at the clinic (it had opted out
    when its client was erased); then opted out, and that is published."""
    if envelope.client_id is None:
        raise ValueError("ClientUpserted without client_id")
    clinic_id, client_id = envelope.clinic_id, envelope.client_id
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        store = uow.repositories.notify
        await store.upsert_contact(clinic_id, client_id, event.phone, event.email)
        stopped = event.phone is not None and await store.sms_stopped(clinic_id, phones.digest(event.phone))
        consent = first_consent(clinic_id, client_id, number_stopped=stopped)
        if await store.ensure_consent(consent) and not consent.sms_opted_in:
            await _publish_sms_change(uow, consent, None)
    return True


async def erase_client(
    uow: NotifyUnitOfWork, envelope: Envelope, event: ClientErasureRequested, *, phones: PhoneDigests
) -> bool:
    """Erase everything notify holds about the client and confirm (ClientDataErased), in one
    transaction; older events about them are refused from then on. If they had opted out of texts, their
    number is kept as stopped at the clinic, as a keyed hash only. False if applied before."""

    async def delete_data(clinic_id: str, client_id: str) -> int:
        store = uow.repositories.notify
        # Locked: a keyword being applied to this consent now commits first and is seen here.
        consent = await store.consent(clinic_id, client_id, lock=True)
        stop = stop_to_keep(consent, await store.contact_phone(clinic_id, client_id), phones)
        if stop is not None:
            await store.keep_sms_stop(stop)
        return await store.erase_client(clinic_id, client_id)

    return await erase(uow, CONSUMER, envelope, event, delete_data)


# --- consent changes ----------------------------------------------------------------------------


async def _set_sms(
    uow: NotifyUnitOfWork, consent: Consent, opted_in: bool, source: ConsentSource, keyword: str | None
) -> bool:
    """Apply and publish an SMS consent change, in the open unit of work; nothing at all when it is
    already so."""
    if not consent.set_sms(opted_in, source):
        return False
    await uow.repositories.notify.save_consent(consent)
    await _publish_sms_change(uow, consent, keyword)
    return True


async def _publish_sms_change(uow: NotifyUnitOfWork, consent: Consent, keyword: str | None) -> None:
    """Publish the consent's SMS state (just changed) as SmsOptedIn or SmsOptedOut."""
    source = consent.source
    assert source != "default"
    event = (
        SmsOptedIn(source=source, keyword=keyword)
        if consent.sms_opted_in
        else SmsOptedOut(source=source, keyword=keyword)
    )
    await uow.publish(
        Envelope.wrap(event, clinic_id=consent.clinic_id, client_id=consent.client_id, producer=PRODUCER)
    )
    _consent_changes.add(1, {"change": "opt_in" if consent.sms_opted_in else "opt_out", "source": source})


_meter = telemetry.meter("notify")
_consent_changes = _meter.create_counter(
    "petportal_sms_consent_changes", description="SMS opt-outs and opt-ins applied, by change and source"
)
_inbound = _meter.create_counter(
    "petportal_sms_inbound", description="texts to clinic numbers: keyword, from a client, or unmatched"
)


def count_from_zero() -> None:
    """Export the SMS series at 0 once the runtime's metrics are set up (bootstrap calls it), so the
    first opt-out is an increase rather than a series that appears at 1."""
    for change in ("opt_out", "opt_in"):
        for source in ("sms_keyword", "portal", "staff"):
            _consent_changes.add(0, {"change": change, "source": source})
    for kind in ("keyword", "client", "unmatched"):
        _inbound.add(0, {"kind": kind})


async def record_patient(uow: NotifyUnitOfWork, envelope: Envelope, event: PatientUpserted) -> bool:
    """Keep the pet's name (only that), for reminders."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.notify.upsert_patient(
            envelope.clinic_id, event.patient_id, event.name, client_id=envelope.client_id
        )
    return True


async def clinic_settings(uow: NotifyUnitOfWork, envelope: Envelope, event: ClinicSettingsChanged) -> bool:
    """The clinic's help text and phone, for the footer of what it sends."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.notify.update_clinic_profile(
            envelope.clinic_id, help_text=event.help_text, phone=event.phone
        )
    return True


@dataclass(frozen=True)
class InboundResult:
    reply: str | None  # text to answer with; None for an ordinary message
    changed_clients: int


async def receive_sms(
    uow: NotifyUnitOfWork,
    *,
    to_number: str,
    from_number: str,
    body: str,
    phones: PhoneDigests,
    default_region: str = "US",
) -> InboundResult:
    """A text to a clinic number. Keywords change the consent of every client of the clinic with the
    sender's phone, and an opt-in keyword also ends the number's stop kept after an erasure; the reply
    depends only on the text, so it reveals nothing about who is a client."""
    try:
        clinic_number: str | None = normalise_phone(to_number, default_region)
    except InvalidPhoneNumber:
        clinic_number = None
    try:
        sender: str | None = normalise_phone(from_number, default_region)
    except InvalidPhoneNumber:
        sender = None  # short codes and garbage match no contact
    keyword = classify(body)
    changed = 0
    async with uow:
        store = uow.repositories.notify
        clinic = await store.clinic_by_number(clinic_number) if clinic_number else None
        if clinic is None:
            raise UnknownClinicNumber()
        client_ids = await store.clients_with_phone(clinic.clinic_id, sender) if sender else []
        if keyword is not None and keyword.action is KeywordAction.OPT_IN and sender:
            await store.forget_sms_stop(clinic.clinic_id, phones.digest(sender))
        if keyword is not None and keyword.action is not KeywordAction.HELP and client_ids:
            opted_in = keyword.action is KeywordAction.OPT_IN
            for consent in await store.consents_for_update(clinic.clinic_id, client_ids):
                changed += await _set_sms(uow, consent, opted_in, "sms_keyword", keyword.word)
        if keyword is None and body.strip():
            # An ordinary text from a client: it goes to their conversation (messaging appends it).
            received = SmsReceived(text_id=uuid.uuid4(), body=body[:1600], received_at=datetime.now(UTC))
            await uow.publish_all(
                [
                    Envelope.wrap(
                        received, clinic_id=clinic.clinic_id, client_id=client_id, producer=PRODUCER
                    )
                    for client_id in client_ids
                ]
            )
        await store.log_inbound(
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
    _inbound.add(1, {"kind": "keyword" if keyword else "client" if client_ids else "unmatched"})
    reply = reply_text(keyword.action, clinic.name) if keyword else None
    return InboundResult(reply=reply, changed_clients=changed)


async def inbound_texts(
    uow: NotifyUnitOfWork, clinic_id: str, *, unmatched_only: bool, limit: int
) -> list[InboundText]:
    """Texts to the clinic's numbers for staff: those from unknown numbers reach no conversation, so
    this is where staff read them."""
    async with uow:
        return await uow.repositories.notify.inbound_texts(
            clinic_id, unmatched_only=unmatched_only, limit=limit
        )


async def preferences(uow: NotifyUnitOfWork, clinic_id: str, client_id: str) -> Consent:
    """The parent's consent; the defaults when none is recorded yet."""
    async with uow:
        consent = await uow.repositories.notify.consent(clinic_id, client_id)
    return consent or Consent(clinic_id=clinic_id, client_id=client_id)


async def update_preferences(
    uow: NotifyUnitOfWork, clinic_id: str, client_id: str, *, sms_opted_in: bool, email_opted_in: bool
) -> Consent:
    """The parent's choices from the portal; an SMS change is published, an unchanged one is not."""
    async with uow:
        store = uow.repositories.notify
        (consent,) = await store.consents_for_update(clinic_id, [client_id])
        await _set_sms(uow, consent, sms_opted_in, "portal", None)
        if consent.set_email(email_opted_in, "portal"):
            await store.save_consent(consent)
    return consent


async def sms_status(uow: NotifyUnitOfWork, clinic_id: str, client_id: str) -> Consent:
    """The client's consent, for staff; `UnknownClient` if the clinic has no such contact."""
    async with uow:
        store = uow.repositories.notify
        if not await store.contact_exists(clinic_id, client_id):
            raise UnknownClient(client_id)
        consent = await store.consent(clinic_id, client_id)
    return consent or Consent(clinic_id=clinic_id, client_id=client_id)
