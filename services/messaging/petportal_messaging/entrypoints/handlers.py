"""Event handlers: each applies its effect and claims the event in one transaction."""

from __future__ import annotations

from petportal_runtime import inbox
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, Envelope

from ..service_layer import services

CONSUMER = "messaging"


async def record_client(runtime: ServiceRuntime, envelope: Envelope, event: ClientUpserted) -> None:
    """The client can now be messaged. Only the ids are kept."""
    if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
        return
    async with runtime.transaction() as session:
        if await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
            await services.record_client(session, envelope.clinic_id, envelope.client_id)
