"""Event handlers: each applies its effect and claims the event in one transaction."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from petportal_runtime import inbox
from petportal_runtime.broker import PermanentEventError
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope

from ..service_layer import services

CONSUMER = "notify"


async def register_clinic(runtime: ServiceRuntime, envelope: Envelope, event: ClinicRegistered) -> None:
    """Remember the clinic's texting number, which identifies it on inbound SMS."""
    try:
        async with runtime.transaction() as session:
            if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
                await services.register_clinic(session, envelope.clinic_id, event.name, event.sms_number)
    except IntegrityError as exc:
        raise PermanentEventError("the SMS number already belongs to another clinic") from exc


async def record_contact(runtime: ServiceRuntime, envelope: Envelope, event: ClientUpserted) -> None:
    """Keep the client's phone (only that) and give them a consent record."""
    if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
        return
    async with runtime.transaction() as session:
        if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
            await services.record_contact(session, envelope.clinic_id, envelope.client_id, event.phone)
