"""Event handlers: each calls its use case on a new unit of work."""

from __future__ import annotations

from collections.abc import Callable

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import Envelope, PatientUpserted

from ..service_layer import services
from ..service_layer.services import CONSUMER
from ..service_layer.unit_of_work import PetsUnitOfWork

__all__ = ["CONSUMER", "record_patient"]


async def record_patient(
    unit_of_work: Callable[[], PetsUnitOfWork], envelope: Envelope, event: PatientUpserted
) -> None:
    if envelope.client_id is None:
        raise PermanentEventError("PatientUpserted without client_id")
    await services.record_patient(unit_of_work(), envelope, event)
