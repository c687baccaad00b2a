"""Event handlers: each applies its effect and claims the event in one transaction."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from petportal_runtime import inbox
from petportal_runtime.broker import EventHandler, PermanentEventError
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, Event

from ..service_layer import services

CONSUMER = "notify"


def register_clinic(runtime: ServiceRuntime) -> EventHandler:
    """ClinicRegistered: remember the clinic's texting number, which identifies it on inbound SMS."""

    async def handle(envelope: Envelope, event: Event) -> None:
        assert isinstance(event, ClinicRegistered)
        try:
            async with runtime.transaction() as session:
                if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
                    await services.register_clinic(session, envelope.clinic_id, event.name, event.sms_number)
        except IntegrityError as exc:
            raise PermanentEventError("the SMS number already belongs to another clinic") from exc

    return handle


def record_contact(runtime: ServiceRuntime) -> EventHandler:
    """ClientUpserted: keep the client's phone (only that) and give them a consent record."""

    async def handle(envelope: Envelope, event: Event) -> None:
        assert isinstance(event, ClientUpserted)
        if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
            return
        async with runtime.transaction() as session:
            if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
                await services.record_contact(session, envelope.clinic_id, envelope.client_id, event.phone)

    return handle
