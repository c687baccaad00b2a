"""Event handlers: each applies its effect and claims the event in the inbox in one transaction."""

from __future__ import annotations

from petportal_runtime import inbox
from petportal_runtime.broker import PermanentEventError
from petportal_runtime.logging import get_logger
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import Envelope, PatientUpserted

from ..service_layer import services

CONSUMER = "pets"
log = get_logger(__name__)


async def record_patient(runtime: ServiceRuntime, envelope: Envelope, event: PatientUpserted) -> None:
    if envelope.client_id is None:
        raise PermanentEventError("PatientUpserted without client_id")
    async with runtime.transaction() as session:
        if not await inbox.claim(session, CONSUMER, envelope.event_id, envelope.event_type):
            return
        if not await services.record_patient(session, envelope, event):
            log.info("stale patient record ignored", event_id=str(envelope.event_id))
