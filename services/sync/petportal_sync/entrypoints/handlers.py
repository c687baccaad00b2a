"""Event handlers: each calls its use case on a new unit of work (the claim is in its transaction)."""

from __future__ import annotations

from collections.abc import Callable

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import (
    AppointmentRequested,
    ClientErasureRequested,
    Envelope,
    FormSubmitted,
    RefillRequested,
)

from ..service_layer import booking, services
from ..service_layer.services import CONSUMER
from ..service_layer.unit_of_work import SyncUnitOfWork

__all__ = ["CONSUMER", "erase_client", "queue_for_pims"]

UnitsOfWork = Callable[[], SyncUnitOfWork]


def _client_scoped(envelope: Envelope) -> None:
    if envelope.client_id is None:
        # Never applicable: dead-lettered rather than retried.
        raise PermanentEventError(f"{envelope.event_type} without a client_id")


async def erase_client(unit_of_work: UnitsOfWork, envelope: Envelope, event: ClientErasureRequested) -> None:
    _client_scoped(envelope)
    await services.erase_client(unit_of_work(), envelope, event)


async def queue_for_pims(
    unit_of_work: UnitsOfWork,
    envelope: Envelope,
    event: AppointmentRequested | RefillRequested | FormSubmitted,
) -> None:
    """A parent's appointment or refill request or completed form goes to the clinic's PIMS (the
    outbound queue)."""
    _client_scoped(envelope)
    await booking.queue_for_pims(unit_of_work(), envelope, event)
