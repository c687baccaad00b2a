"""Event handlers: each applies its effect and claims the event in one transaction."""

from __future__ import annotations

from petportal_runtime import inbox
from petportal_runtime.broker import EventHandler
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, Envelope, Event

from ..service_layer import services

CONSUMER = "messaging"


def record_client(runtime: ServiceRuntime) -> EventHandler:
    """ClientUpserted: the client can now be messaged. Only the ids are kept."""

    async def handle(envelope: Envelope, event: Event) -> None:
        assert isinstance(event, ClientUpserted)
        if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
            return
        async with runtime.transaction() as session:
            if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
                await services.record_client(session, envelope.clinic_id, envelope.client_id)

    return handle
