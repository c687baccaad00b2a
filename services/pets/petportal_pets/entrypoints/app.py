"""HTTP API: the signed-in parent's pets and their records, read-only (the PIMS is the source of truth),
at every clinic where the parent is a client."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal, NoReturn

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from petportal_runtime.auth import CurrentParent
from petportal_runtime.container import container_of
from petportal_runtime.errors import ErrorStatuses
from petportal_runtime.photo_http import (
    JPEG_ANSWER,
    PHOTO_ERRORS,
    UPLOAD_BODY,
    UPLOAD_ERRORS,
    jpeg_response,
    photo_body,
)
from petportal_runtime.routes import ParentRoute
from petportal_schemas import MedicationPrescribed, VaccinationRecorded
from petportal_schemas.envelope import ID_PATTERN
from petportal_schemas.pims import CapabilityMissing

from ..adapters.idcard_pdf import render_id_card
from ..bootstrap import PetsService, bootstrap
from ..domain import Appointment, Clinic, Pet, Reminder
from ..domain.requests import InvalidRequest, RequestNotFound
from ..service_layer import services
from ..service_layer.overview import OverviewReader, parent_overview
from . import forms_api, refills_api, requests_api
from .dependencies import UnitOfWork


class AgePublic(BaseModel):
    years: int = Field(ge=0)
    months: int = Field(ge=0, le=11)
    text: str


class PetPublic(BaseModel):
    patient_id: str
    clinic_id: str
    clinic_name: str | None
    name: str
    species: str
    breed: str | None
    sex: str | None
    date_of_birth: date | None
    colour: str | None
    weight_kg: float | None
    microchip: str | None
    age: AgePublic | None = Field(description="null when the date of birth is unknown")
    photo_url: str | None = Field(
        default=None, description="the pet's photo (add ?size=thumbnail for lists); null when none is set"
    )

    @classmethod
    def of(cls, pet: Pet, today: date) -> PetPublic:
        age = pet.age(today)
        return cls(
            photo_url=f"/api/v1/pets/{pet.patient_id}/photo?clinic_id={pet.clinic_id}"
            if pet.has_photo
            else None,
            patient_id=pet.patient_id,
            clinic_id=pet.clinic_id,
            clinic_name=pet.clinic_name,
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


class AppointmentPublic(BaseModel):
    appointment_id: str
    patient_id: str | None
    pet_name: str | None = None
    clinic_id: str
    starts_at: datetime = Field(description="UTC")
    local_start: datetime = Field(description="in the clinic's timezone, with its offset")
    timezone: str
    duration_minutes: int
    appointment_type: str | None
    reason: str | None
    provider: str | None
    status: str

    @classmethod
    def of(cls, shown: Appointment, clinic: Clinic, pet: Pet | None = None) -> AppointmentPublic:
        a = shown.appointment
        return cls(
            appointment_id=a.appointment_id,
            patient_id=a.patient_id,
            pet_name=pet.name if pet else None,
            clinic_id=clinic.clinic_id,
            starts_at=a.starts_at,
            local_start=shown.local_start,
            timezone=clinic.timezone,
            duration_minutes=a.duration_minutes,
            appointment_type=a.appointment_type,
            reason=a.reason,
            provider=a.provider,
            status=a.status,
        )


class AppointmentsPublic(BaseModel):
    appointments: list[AppointmentPublic]


class PetsOverviewPublic(BaseModel):
    """`GET /api/v1/pets` and `GET /api/v1/appointments` in one answer."""

    pets: list[PetPublic]
    appointments: list[AppointmentPublic]


class ReminderPublic(BaseModel):
    reminder_id: str
    service: str
    due_on: date
    overdue: bool

    @classmethod
    def of(cls, shown: Reminder) -> ReminderPublic:
        r = shown.reminder
        return cls(reminder_id=r.reminder_id, service=r.service, due_on=r.due_on, overdue=shown.overdue)


class RemindersPublic(BaseModel):
    reminders: list[ReminderPublic] = Field(
        description="services due: not yet done or booked, due within six months, overdue ones included"
    )


class VaccinationPublic(BaseModel):
    vaccination_id: str
    name: str
    given_on: date
    expires_on: date | None
    lot: str | None
    manufacturer: str | None
    rabies_tag: str | None
    certificate_number: str | None

    @classmethod
    def of(cls, v: VaccinationRecorded) -> VaccinationPublic:
        return cls(**v.model_dump(exclude={"patient_id"}))


class VaccinationsPublic(BaseModel):
    vaccinations: list[VaccinationPublic]


class MedicationPublic(BaseModel):
    prescription_id: str
    name: str
    dose: str | None
    quantity: str | None
    refills_remaining: int
    prescribed_on: date
    expires_on: date | None

    @classmethod
    def of(cls, m: MedicationPrescribed) -> MedicationPublic:
        return cls(**m.model_dump(exclude={"patient_id", "active"}))


class MedicationsPublic(BaseModel):
    medications: list[MedicationPublic]


class ClinicContactPublic(BaseModel):
    clinic_id: str
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    website: str | None


class IdCardPublic(BaseModel):
    pet: PetPublic
    clinic: ClinicContactPublic
    vaccinations: list[VaccinationPublic]


PatientId = Annotated[str, Path(pattern=ID_PATTERN)]
ClinicChoice = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="which clinic's pet, when the parent has this id at two clinics"),
]


def today() -> date:
    return datetime.now(UTC).date()


async def _pet(
    parent: CurrentParent, uow: UnitOfWork, patient_id: PatientId, clinic_id: ClinicChoice = None
) -> tuple[Pet, Clinic]:
    return await services.parent_pet(uow, parent.memberships, patient_id, clinic_id)


ParentPet = Annotated[tuple[Pet, Clinic], Depends(_pet)]

# The home screen's part, asked for on every visit: answered without FastAPI's per-request
# dependency resolution (see ParentRoute), with one read of the store, and the documented model
# serialised here once.
overview_router = APIRouter(prefix="/api/v1", tags=["pets"], route_class=ParentRoute)


@overview_router.get("/pets-overview", response_model=PetsOverviewPublic)
async def pets_overview(request: Request, parent: CurrentParent) -> Response:
    """The parent's pets (as `GET /api/v1/pets`) and their upcoming appointments (as `GET
    /api/v1/appointments`) in one answer: the home screen's part."""
    read: OverviewReader = container_of(request).read_overview
    now = datetime.now(UTC)
    overview = await parent_overview(read, parent.memberships, now)
    today = now.date()
    answer = PetsOverviewPublic(
        pets=[PetPublic.of(p, today) for p in overview.pets],
        appointments=[AppointmentPublic.of(a, clinic, pet) for a, pet, clinic in overview.appointments],
    )
    return Response(answer.model_dump_json(), media_type="application/json")


router = APIRouter(prefix="/api/v1", tags=["pets"])


@router.get("/pets", response_model=PetListPublic)
async def list_pets(parent: CurrentParent, uow: UnitOfWork) -> PetListPublic:
    """The parent's pets at every clinic where they are a client, by name, with signalment and age.
    Deceased pets and pets the PIMS removed are not listed."""
    pets = await services.parent_pets(uow, parent.memberships)
    now = today()
    return PetListPublic(pets=[PetPublic.of(p, now) for p in pets])


@router.get("/pets/{patient_id}", response_model=PetPublic, responses={404: {}, 409: {}})
async def get_pet(found: ParentPet) -> PetPublic:
    """One of the parent's pets; 404 alike for another parent's pet and a missing one."""
    return PetPublic.of(found[0], today())


def _read_only() -> NoReturn:
    raise HTTPException(
        status.HTTP_405_METHOD_NOT_ALLOWED,
        "a pet's details come from the clinic's practice-management system and can only be changed there: "
        "ask the clinic",
        headers={"Allow": "GET"},
    )


@router.put(
    "/pets/{patient_id}", status_code=405, responses={405: {"description": "signalment is read-only"}}
)
@router.patch(
    "/pets/{patient_id}", status_code=405, responses={405: {"description": "signalment is read-only"}}
)
@router.delete(
    "/pets/{patient_id}", status_code=405, responses={405: {"description": "signalment is read-only"}}
)
async def change_pet(patient_id: PatientId) -> None:
    """Signalment is read-only: it is changed in the clinic's PIMS only."""
    _read_only()


@router.get("/pets/{patient_id}/appointments", responses={404: {}})
async def pet_appointments(found: ParentPet, uow: UnitOfWork) -> AppointmentsPublic:
    """The pet's upcoming appointments that the clinic lets clients see, soonest first, with the time
    in the clinic's timezone."""
    pet, clinic = found
    shown = await services.pet_appointments(uow, pet, clinic, datetime.now(UTC))
    return AppointmentsPublic(appointments=[AppointmentPublic.of(a, clinic, pet) for a in shown])


@router.get(
    "/pets/{patient_id}/reminders", responses={404: {}, 409: {"description": "the PIMS sends no reminders"}}
)
async def pet_reminders(found: ParentPet, uow: UnitOfWork) -> RemindersPublic:
    """Services due for the pet; 409 where the clinic's PIMS provides no reminders."""
    pet, clinic = found
    shown = await services.pet_reminders(uow, pet, clinic, today())
    return RemindersPublic(reminders=[ReminderPublic.of(r) for r in shown])


@router.get("/pets/{patient_id}/vaccinations", responses={404: {}})
async def pet_vaccinations(found: ParentPet, uow: UnitOfWork) -> VaccinationsPublic:
    """Vaccines in force, the latest of each."""
    shown = await services.pet_vaccinations(uow, found[0], today())
    return VaccinationsPublic(vaccinations=[VaccinationPublic.of(v) for v in shown])


@router.get("/pets/{patient_id}/medications", responses={404: {}})
async def pet_medications(found: ParentPet, uow: UnitOfWork) -> MedicationsPublic:
    """Current prescriptions with the refills left, newest first."""
    shown = await services.pet_medications(uow, found[0], today())
    return MedicationsPublic(medications=[MedicationPublic.of(m) for m in shown])


@router.get(
    "/pets/{patient_id}/id-card", responses={404: {}, 409: {"description": "the PIMS has no ID cards"}}
)
async def pet_id_card(found: ParentPet, uow: UnitOfWork) -> IdCardPublic:
    """The pet's ID card: signalment, current vaccines and the clinic's contact details."""
    card = await services.id_card(uow, *found, today())
    clinic = card.clinic
    return IdCardPublic(
        pet=PetPublic.of(card.pet, today()),
        clinic=ClinicContactPublic(
            clinic_id=clinic.clinic_id,
            name=clinic.name,
            phone=clinic.settings.phone,
            email=clinic.settings.email,
            address=clinic.settings.address,
            website=clinic.settings.website,
        ),
        vaccinations=[VaccinationPublic.of(v) for v in card.vaccinations],
    )


@router.get(
    "/pets/{patient_id}/id-card.pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}},
        404: {},
        409: {"description": "the PIMS has no ID cards"},
    },
)
async def pet_id_card_pdf(found: ParentPet, uow: UnitOfWork) -> Response:
    """The ID card as a PDF to download or print."""
    now = today()
    card = await services.id_card(uow, *found, now)
    return Response(
        render_id_card(card, now),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="id-card-{card.pet.patient_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@router.put(
    "/pets/{patient_id}/photo",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=UPLOAD_BODY,
    responses={404: {}, **UPLOAD_ERRORS},
)
async def put_photo(request: Request, found: ParentPet, uow: UnitOfWork) -> Response:
    """Upload or replace the pet's photo (the image as the body: JPEG, PNG, WebP or HEIC). The portal
    keeps it re-encoded, without its EXIF data (so without its GPS position); it never goes to the PIMS."""
    photo = await services.set_photo(uow, found[0], await photo_body(request), datetime.now(UTC))
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"ETag": f'"{photo.etag}"'})


@router.get("/pets/{patient_id}/photo", response_class=Response, responses={**JPEG_ANSWER, 404: {}})
async def get_photo(
    request: Request,
    found: ParentPet,
    uow: UnitOfWork,
    size: Annotated[Literal["full", "thumbnail"], Query()] = "full",
) -> Response:
    """The pet's photo as a JPEG (a 320 px thumbnail with ?size=thumbnail)."""
    data, etag = await services.pet_photo(uow, found[0], thumbnail=size == "thumbnail")
    return jpeg_response(request, data, etag)


@router.delete("/pets/{patient_id}/photo", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_photo(found: ParentPet, uow: UnitOfWork) -> None:
    """Remove the pet's photo."""
    await services.remove_photo(uow, found[0])


@router.get("/appointments")
async def parent_appointments(parent: CurrentParent, uow: UnitOfWork) -> AppointmentsPublic:
    """Upcoming appointments of all the parent's pets at all their clinics, soonest first."""
    shown = await services.parent_appointments(uow, parent.memberships, datetime.now(UTC))
    return AppointmentsPublic(appointments=[AppointmentPublic.of(a, clinic, pet) for a, pet, clinic in shown])


# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    services.PetNotFound: status.HTTP_404_NOT_FOUND,
    services.AmbiguousPet: status.HTTP_409_CONFLICT,
    CapabilityMissing: status.HTTP_409_CONFLICT,
    services.PhotoNotFound: status.HTTP_404_NOT_FOUND,
    **PHOTO_ERRORS,
    RequestNotFound: status.HTTP_404_NOT_FOUND,
    InvalidRequest: status.HTTP_409_CONFLICT,
    **refills_api.ERRORS,
    **forms_api.ERRORS,
}


def create_app(container: PetsService | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(
        title="Pet Portal pets",
        routers=[
            overview_router,
            router,
            requests_api.parent,
            requests_api.clinic,
            refills_api.parent,
            refills_api.clinic,
            forms_api.parent,
            forms_api.clinic,
            forms_api.submissions,
        ],
        errors=ERRORS,
    )
    forms_api.install_error_handlers(app)
    app.state.container = container
    return app
