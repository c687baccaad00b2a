"""HTTP API: the signed-in parent's pets (read-only; the PIMS is the source of truth)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, status
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.auth import CurrentParent
from petportal_runtime.service import ServiceRuntime
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import PetsService, bootstrap
from ..domain import Pet
from ..service_layer import services


class AgePublic(BaseModel):
    years: int = Field(ge=0)
    months: int = Field(ge=0, le=11)
    text: str


class PetPublic(BaseModel):
    patient_id: str
    name: str
    species: str
    breed: str | None
    sex: str | None
    date_of_birth: date | None
    colour: str | None
    weight_kg: float | None
    microchip: str | None
    age: AgePublic | None = Field(description="null when the date of birth is unknown")

    @classmethod
    def of(cls, pet: Pet, today: date) -> PetPublic:
        age = pet.age(today)
        return cls(
            patient_id=pet.patient_id,
            name=pet.name,
            species=pet.species,
            breed=pet.breed,
            sex=pet.sex,
            date_of_birth=pet.date_of_birth,
            colour=pet.colour,
            weight_kg=pet.weight_kg,
            microchip=pet.microchip,
            age=AgePublic(years=age.years, months=age.months, text=age.text) if age else None,
        )


class PetListPublic(BaseModel):
    pets: list[PetPublic]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.transaction() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def today() -> date:
    return datetime.now(UTC).date()


router = APIRouter(prefix="/api/v1", tags=["pets"])


@router.get("/pets", response_model=PetListPublic)
async def list_pets(parent: CurrentParent, session: Session) -> PetListPublic:
    """The parent's pets, by name, with signalment and age."""
    pets = await services.parent_pets(session, parent.clinic_id, parent.client_id)
    now = today()
    return PetListPublic(pets=[PetPublic.of(p, now) for p in pets])


@router.get("/pets/{patient_id}", response_model=PetPublic)
async def get_pet(
    parent: CurrentParent,
    session: Session,
    patient_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> PetPublic:
    """One of the parent's pets; 404 alike for another parent's pet and a missing one."""
    try:
        pet = await services.parent_pet(session, parent.clinic_id, parent.client_id, patient_id)
    except services.PetNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no pet {patient_id}") from None
    return PetPublic.of(pet, today())


def create_app(service: PetsService | None = None) -> FastAPI:
    service = service or bootstrap()
    return service.runtime.create_app(title="Pet Portal pets", routers=[router])
