"""Use cases: record a pet's signalment from the PIMS; list and show a parent's pets."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_schemas import Envelope, PatientUpserted

from ..adapters.repository import PetRepository
from ..domain import Pet


class PetNotFound(LookupError):
    """No such pet among the parent's pets (whether it does not exist or is someone else's)."""


async def record_patient(session: AsyncSession, envelope: Envelope, event: PatientUpserted) -> bool:
    """Upsert the pet; an event older than the stored signalment changes nothing. True if written."""
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
    return await PetRepository(session).upsert(pet)


async def parent_pets(session: AsyncSession, clinic_id: str, client_id: str) -> list[Pet]:
    return await PetRepository(session).for_client(clinic_id, client_id)


async def parent_pet(session: AsyncSession, clinic_id: str, client_id: str, patient_id: str) -> Pet:
    pet = await PetRepository(session).get(clinic_id, client_id, patient_id)
    if pet is None:
        raise PetNotFound(patient_id)
    return pet
