"""Event handlers: each applies its effect and claims the event in one transaction."""

from __future__ import annotations

from petportal_runtime import inbox
from petportal_runtime.broker import PermanentEventError
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, ReminderSent

from ..domain.model import Contact
from ..service_layer import services

CONSUMER = "identity"


def _client_id(envelope: Envelope) -> str:
    if envelope.client_id is None:
        raise PermanentEventError(f"{envelope.event_type} without a client_id")
    return envelope.client_id


async def record_contact(runtime: ServiceRuntime, envelope: Envelope, event: ClientUpserted) -> None:
    contact = Contact(
        clinic_id=envelope.clinic_id,
        client_id=_client_id(envelope),
        first_name=event.first_name,
        last_name=event.last_name,
        email=event.email,
        phone=event.phone,
    )
    async with runtime.transaction() as session:
        if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
            await services.record_contact(session, contact, envelope.occurred_at)


async def open_account_after_reminder(
    runtime: ServiceRuntime, envelope: Envelope, event: ReminderSent
) -> None:
    client_id = _client_id(envelope)
    async with runtime.transaction() as session:
        if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
            await services.open_account(session, envelope.clinic_id, client_id, "reminder")


async def record_clinic(runtime: ServiceRuntime, envelope: Envelope, event: ClinicRegistered) -> None:
    async with runtime.transaction() as session:
        if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
            await services.record_clinic(session, envelope.clinic_id, event.name, envelope.occurred_at)
