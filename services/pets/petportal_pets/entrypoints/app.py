"""HTTP API: the signed-in parent's pets (read-only; the PIMS is the source of truth)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request, status
from pydantic import BaseModel, Field

from petportal_runtime.auth import CurrentParent
from petportal_runtime.container import container_of
from petportal_runtime.errors import ErrorStatuses
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import PetsService, bootstrap
from ..domain import Pet
from ..service_layer import services
from ..service_layer.unit_of_work import PetsUnitOfWork


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


def _unit_of_work(request: Request) -> PetsUnitOfWork:
    service: PetsService = container_of(request)
    return service.unit_of_work()


UnitOfWork = Annotated[PetsUnitOfWork, Depends(_unit_of_work)]


def today() -> date:
    return datetime.now(UTC).date()


router = APIRouter(prefix="/api/v1", tags=["pets"])


@router.get("/pets", response_model=PetListPublic)
async def list_pets(parent: CurrentParent, uow: UnitOfWork) -> PetListPublic:
    """The parent's pets, by name, with signalment and age."""
    pets = await services.parent_pets(uow, parent.clinic_id, parent.client_id)
    now = today()
    return PetListPublic(pets=[PetPublic.of(p, now) for p in pets])


@router.get("/pets/{patient_id}", response_model=PetPublic)
async def get_pet(
    parent: CurrentParent,
    uow: UnitOfWork,
    patient_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> PetPublic:
    """One of the parent's pets; 404 alike for another parent's pet and a missing one."""
    pet = await services.parent_pet(uow, parent.clinic_id, parent.client_id, patient_id)
    return PetPublic.of(pet, today())


# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {services.PetNotFound: status.HTTP_404_NOT_FOUND}


def create_app(container: PetsService | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(title="Pet Portal pets", routers=[router], errors=ERRORS)
    app.state.container = container
    return app
