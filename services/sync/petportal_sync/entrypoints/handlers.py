"""Event handlers: each calls its use case on a new unit of work (the claim is in its transaction)."""

from __future__ import annotations

from collections.abc import Callable

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import ClientErasureRequested, Envelope

from ..service_layer import services
from ..service_layer.services import CONSUMER
from ..service_layer.unit_of_work import SyncUnitOfWork

__all__ = ["CONSUMER", "erase_client"]

UnitsOfWork = Callable[[], SyncUnitOfWork]


async def erase_client(unit_of_work: UnitsOfWork, envelope: Envelope, event: ClientErasureRequested) -> None:
    if envelope.client_id is None:
        # Never applicable: dead-lettered rather than retried.
        raise PermanentEventError(f"{envelope.event_type} without a client_id")
    await services.erase_client(unit_of_work(), envelope, event)
