"""Use cases: record a pet's signalment from the PIMS; list and show a parent's pets."""

from __future__ import annotations

from petportal_runtime.logging import get_logger
from petportal_schemas import Envelope, PatientUpserted

from ..domain import Pet
from .unit_of_work import PetsUnitOfWork

CONSUMER = "pets"
log = get_logger(__name__)


class PetNotFound(LookupError):
    """No such pet among the parent's pets (whether it does not exist or is someone else's)."""

    def __init__(self, patient_id: str) -> None:
        super().__init__(f"no pet {patient_id}")


async def record_patient(uow: PetsUnitOfWork, envelope: Envelope, event: PatientUpserted) -> bool:
    """Upsert the pet, once per event; an event older than the stored signalment changes nothing.
    True if written."""
    if envelope.client_id is None:
        raise ValueError("PatientUpserted without client_id")
    pet = Pet(
        clinic_id=envelope.clinic_id,
        client_id=envelope.client_id,
        patient_id=event.patient_id,
        name=event.name,
        species=event.species,
        breed=event.breed,
        sex=event.sex,
        date_of_birth=event.date_of_birth,
        colour=event.colour,
        weight_kg=event.weight_kg,
        microchip=event.microchip,
        updated_at=envelope.occurred_at,
    )
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        written = await uow.repositories.pets.upsert(pet)
    if not written:
        log.info("stale patient record ignored", event_id=str(envelope.event_id))
    return written


async def parent_pets(uow: PetsUnitOfWork, clinic_id: str, client_id: str) -> list[Pet]:
    async with uow:
        return await uow.repositories.pets.for_client(clinic_id, client_id)


async def parent_pet(uow: PetsUnitOfWork, clinic_id: str, client_id: str, patient_id: str) -> Pet:
    async with uow:
        pet = await uow.repositories.pets.get(clinic_id, client_id, patient_id)
    if pet is None:
        raise PetNotFound(patient_id)
    return pet
