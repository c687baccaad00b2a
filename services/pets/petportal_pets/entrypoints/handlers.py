"""Event handlers: each calls its use case on a new unit of work."""

from __future__ import annotations

from collections.abc import Callable

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import (
    ClientErasureRequested,
    ClientRemoved,
    ClinicRegistered,
    ClinicSettingsChanged,
    Envelope,
    PatientDeceased,
    PatientRemoved,
    PatientUpserted,
)

from ..service_layer import services
from ..service_layer.services import CONSUMER, ClinicalEvent
from ..service_layer.unit_of_work import PetsUnitOfWork

__all__ = [
    "CONSUMER",
    "erase_client",
    "record_clinic",
    "record_clinical",
    "record_patient",
    "record_pet_gone",
]

UnitOfWorkFactory = Callable[[], PetsUnitOfWork]


def _client_scoped(envelope: Envelope, event_type: str) -> None:
    if envelope.client_id is None:
        raise PermanentEventError(f"{event_type} without client_id")


async def record_patient(unit_of_work: UnitOfWorkFactory, envelope: Envelope, event: PatientUpserted) -> None:
    _client_scoped(envelope, event.EVENT_TYPE)
    await services.record_patient(unit_of_work(), envelope, event)


async def record_pet_gone(
    unit_of_work: UnitOfWorkFactory,
    envelope: Envelope,
    event: PatientRemoved | PatientDeceased | ClientRemoved,
) -> None:
    _client_scoped(envelope, event.EVENT_TYPE)
    await services.record_pet_gone(unit_of_work(), envelope, event)


async def erase_client(
    unit_of_work: UnitOfWorkFactory, envelope: Envelope, event: ClientErasureRequested
) -> None:
    _client_scoped(envelope, event.EVENT_TYPE)
    await services.erase_client(unit_of_work(), envelope, event)


async def record_clinic(
    unit_of_work: UnitOfWorkFactory, envelope: Envelope, event: ClinicRegistered | ClinicSettingsChanged
) -> None:
    await services.record_clinic(unit_of_work(), envelope, event)


async def record_clinical(unit_of_work: UnitOfWorkFactory, envelope: Envelope, event: ClinicalEvent) -> None:
    _client_scoped(envelope, event.EVENT_TYPE)
    await services.record_clinical(unit_of_work(), envelope, event)
