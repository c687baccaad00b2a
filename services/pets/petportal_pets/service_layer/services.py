"""Use cases: record what the PIMS publishes (signalment, clinics, clinical records, removals) and
show a parent their pets and each pet's records, across every clinic where they are a client; what
parents ask the clinic (appointment and refill requests) and the clinic's answers, each answer and
each "seen" published on the pets topic with the change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial
from typing import Literal, TypeVar

from petportal_runtime.auth import ClientRef
from petportal_runtime.erasure import erase
from petportal_runtime.logging import get_logger
from petportal_runtime.photos import Photo, process_photo
from petportal_schemas import (
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentRequested,
    AppointmentUpserted,
    ClientErasureRequested,
    ClientRemoved,
    ClinicRegistered,
    ClinicSettingsChanged,
    Envelope,
    Event,
    MedicationPrescribed,
    PatientDeceased,
    PatientRemoved,
    PatientUpserted,
    RefillRequestDecided,
    RefillRequested,
    RequestAnswerSeen,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    VaccinationRecorded,
    VaccinationRemoved,
)
from petportal_schemas.pims import Capability

from ..domain import (
    Appointment,
    Clinic,
    Pet,
    PetRecord,
    Reminder,
    current_medications,
    current_vaccinations,
    due_reminders,
    upcoming_appointments,
)
from ..domain.records import RecordKind
from ..domain.refills import (
    RefillConflict,
    RefillDecision,
    RefillNotFound,
    RefillRequest,
    RefillStatus,
)
from ..domain.requests import AppointmentRequest, Decision, RequestNotFound, RequestStatus
from .overview import shown_appointments
from .unit_of_work import PetsUnitOfWork

CONSUMER = "pets"  # also the producer of what pets publishes
log = get_logger(__name__)

# A parent's request of either kind (appointment or refill), as `_owned` finds it.
Owned = TypeVar("Owned", AppointmentRequest, RefillRequest)

ClinicalEvent = (
    AppointmentUpserted
    | AppointmentCancelled
    | ServiceReminderUpserted
    | ServiceReminderCompleted
    | VaccinationRecorded
    | VaccinationRemoved
    | MedicationPrescribed
)


class PetNotFound(LookupError):
    """No such pet among the parent's pets (whether it does not exist or is someone else's)."""

    def __init__(self, patient_id: str) -> None:
        super().__init__(f"no pet {patient_id}")


class PhotoNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("this pet has no photo")


class AmbiguousPet(LookupError):
    """The parent has a pet with this id at more than one clinic: the request must name the clinic."""

    def __init__(self, patient_id: str) -> None:
        super().__init__(
            f"pet {patient_id} is at more than one of your clinics: add ?clinic_id= to say which"
        )


@dataclass(frozen=True)
class PetCard:
    """A pet with its clinic and what its ID card shows."""

    pet: Pet
    clinic: Clinic
    vaccinations: list[VaccinationRecorded]


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


async def record_pet_gone(
    uow: PetsUnitOfWork, envelope: Envelope, event: PatientRemoved | PatientDeceased | ClientRemoved
) -> None:
    """A removed or deceased pet (or every pet of a removed client) leaves the parent's lists."""
    if envelope.client_id is None:
        raise ValueError(f"{event.EVENT_TYPE} without client_id")
    patient_id = None if isinstance(event, ClientRemoved) else event.patient_id
    deceased_on = event.deceased_on if isinstance(event, PatientDeceased) else None
    async with uow:
        if await uow.claim(CONSUMER, envelope):
            await uow.repositories.pets.mark_gone(
                envelope.clinic_id, envelope.client_id, patient_id, envelope.occurred_at, deceased_on
            )


async def erase_client(uow: PetsUnitOfWork, envelope: Envelope, event: ClientErasureRequested) -> bool:
    """Erase everything pets holds about the client and confirm with ClientDataErased, in one
    transaction; older events about the client are refused from then on. False if already applied."""
    return await erase(
        uow,
        CONSUMER,
        envelope,
        event,
        lambda clinic_id, client_id: uow.repositories.erase_client(clinic_id, client_id),
    )


async def record_clinic(
    uow: PetsUnitOfWork, envelope: Envelope, event: ClinicRegistered | ClinicSettingsChanged
) -> None:
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return
        if isinstance(event, ClinicRegistered):
            await uow.repositories.clinics.register(
                envelope.clinic_id, event.name, event.pims, event.timezone, envelope.occurred_at
            )
        else:
            await uow.repositories.clinics.set_settings(envelope.clinic_id, event, envelope.occurred_at)


def pet_record(event: ClinicalEvent) -> tuple[PetRecord, bool]:
    """The stored record an event makes, and whether it only ends a record (keeping its payload)."""
    kind: RecordKind
    match event:
        case AppointmentUpserted() | AppointmentCancelled():
            kind, record_id = "appointment", event.appointment_id
        case ServiceReminderUpserted() | ServiceReminderCompleted():
            kind, record_id = "reminder", event.reminder_id
        case VaccinationRecorded() | VaccinationRemoved():
            kind, record_id = "vaccination", event.vaccination_id
        case MedicationPrescribed():
            kind, record_id = "medication", event.prescription_id
    ending = isinstance(event, AppointmentCancelled | ServiceReminderCompleted | VaccinationRemoved)
    payload = event.model_dump(mode="json")
    return PetRecord(kind, record_id, event.patient_id, payload, active=not ending), ending


async def record_clinical(uow: PetsUnitOfWork, envelope: Envelope, event: ClinicalEvent) -> None:
    """An appointment, reminder, vaccination or medication as the PIMS holds it now, once per event;
    an older event than the stored one changes nothing."""
    if envelope.client_id is None:
        raise ValueError(f"{event.EVENT_TYPE} without client_id")
    record, ending = pet_record(event)
    async with uow:
        if await uow.claim(CONSUMER, envelope):
            await uow.repositories.records.upsert(
                envelope.clinic_id, envelope.client_id, record, envelope.occurred_at, keep_payload=ending
            )


# --- what the parent sees --------------------------------------------------------------------


async def parent_pets(uow: PetsUnitOfWork, memberships: Collection[ClientRef]) -> list[Pet]:
    """The parent's pets at every clinic where they are a client, each with its clinic's name."""
    async with uow:
        pets = await uow.repositories.pets.for_clients(memberships)
        clinics = await uow.repositories.clinics.get_many({p.clinic_id for p in pets})
        photos = await uow.repositories.photos.which(pets)
    return [
        replace(_with_clinic(p, clinics[p.clinic_id]), has_photo=(p.clinic_id, p.patient_id) in photos)
        for p in pets
    ]


# --- photos (kept by the portal; never published, never sent to the PIMS) -------------------


async def set_photo(uow: PetsUnitOfWork, pet: Pet, data: bytes, now: datetime) -> Photo:
    """Upload or replace the pet's photo; `PhotoRejected` with the reason, nothing stored."""
    photo = await asyncio.to_thread(process_photo, data)  # CPU: off the event loop
    async with uow:
        await uow.repositories.photos.put(pet.clinic_id, pet.patient_id, photo, now)
    return photo


async def pet_photo(uow: PetsUnitOfWork, pet: Pet, *, thumbnail: bool) -> tuple[bytes, str]:
    async with uow:
        found = await uow.repositories.photos.get(pet.clinic_id, pet.patient_id, thumbnail=thumbnail)
    if found is None:
        raise PhotoNotFound()
    return found


async def remove_photo(uow: PetsUnitOfWork, pet: Pet) -> None:
    async with uow:
        if not await uow.repositories.photos.delete(pet.clinic_id, pet.patient_id):
            raise PhotoNotFound()


async def parent_pet(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], patient_id: str, clinic_id: str | None = None
) -> tuple[Pet, Clinic]:
    """One of the parent's pets and its clinic; `PetNotFound` alike for a missing pet and another
    parent's; `AmbiguousPet` when the id is at two of their clinics and none was named."""
    if clinic_id is not None:
        memberships = [m for m in memberships if m.clinic_id == clinic_id]
    async with uow:
        found = await uow.repositories.pets.find(memberships, patient_id) if memberships else []
        if len(found) > 1:
            raise AmbiguousPet(patient_id)
        if not found:
            raise PetNotFound(patient_id)
        [pet] = found
        clinic = (await uow.repositories.clinics.get_many([pet.clinic_id]))[pet.clinic_id]
        photos = await uow.repositories.photos.which([pet])
    has_photo = (pet.clinic_id, pet.patient_id) in photos
    return replace(_with_clinic(pet, clinic), has_photo=has_photo), clinic


async def _records(uow: PetsUnitOfWork, pet: Pet, kind: RecordKind) -> list[PetRecord]:
    async with uow:
        found = await uow.repositories.records.for_pets([pet], [kind])
    return found.get((pet.clinic_id, pet.patient_id), [])


async def pet_appointments(uow: PetsUnitOfWork, pet: Pet, clinic: Clinic, now: datetime) -> list[Appointment]:
    return upcoming_appointments(await _records(uow, pet, "appointment"), clinic, now)


async def pet_reminders(uow: PetsUnitOfWork, pet: Pet, clinic: Clinic, today: date) -> list[Reminder]:
    """`CapabilityMissing` where the clinic's PIMS sends no reminders: never an empty list that looks
    like "nothing due"."""
    clinic.require(Capability.REMINDERS)
    return due_reminders(await _records(uow, pet, "reminder"), today)


async def pet_vaccinations(uow: PetsUnitOfWork, pet: Pet, today: date) -> list[VaccinationRecorded]:
    return current_vaccinations(await _records(uow, pet, "vaccination"), today)


async def pet_medications(uow: PetsUnitOfWork, pet: Pet, today: date) -> list[MedicationPrescribed]:
    return current_medications(await _records(uow, pet, "medication"), today)


async def id_card(uow: PetsUnitOfWork, pet: Pet, clinic: Clinic, today: date) -> PetCard:
    """`CapabilityMissing` where the clinic's PIMS does not support ID cards."""
    clinic.require(Capability.ID_CARD)
    return PetCard(pet, clinic, await pet_vaccinations(uow, pet, today))


async def parent_appointments(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], now: datetime
) -> list[tuple[Appointment, Pet | None, Clinic]]:
    """Upcoming appointments of all the parent's pets at all their clinics, soonest first (those
    for no pet in particular too), each clinic's visibility rules applied."""
    async with uow:
        pets = await uow.repositories.pets.for_clients(memberships)
        # A client with no listed pet may still have an appointment for no pet in particular.
        anchors = pets or []
        records = await uow.repositories.records.for_pets(anchors, ["appointment"], include_unassigned=True)
        clinics = await uow.repositories.clinics.get_many({m.clinic_id for m in memberships})
    return shown_appointments(pets, records, clinics, now)


def _with_clinic(pet: Pet, clinic: Clinic) -> Pet:
    return replace(pet, clinic_name=clinic.name)


# --- appointment requests -------------------------------------------------------------------------


async def request_appointment(
    uow: PetsUnitOfWork,
    memberships: Collection[ClientRef],
    *,
    patient_id: str,
    clinic_id: str | None,
    reason: str,
    preferred: list[datetime],
    at: datetime,
) -> AppointmentRequest:
    """The parent asks for a visit for one of their pets; `PetNotFound` for a pet that is not theirs,
    `InvalidRequest` for a reason or times that break the rules."""
    pet, _ = await parent_pet(uow, memberships, patient_id, clinic_id)
    client = next(m.client_id for m in memberships if m.clinic_id == pet.clinic_id)
    request = AppointmentRequest.new(pet.clinic_id, client, pet.patient_id, reason, preferred, at)
    async with uow:
        await uow.repositories.requests.add(request)
        # The PIMS hears of it through sync's outbound queue (its connector may match the client or
        # flag the request for staff); the reason stays here.
        event = AppointmentRequested(
            request_id=request.id,
            patient_id=request.patient_id,
            preferred_times=request.preferred_times,
            requested_at=at,
        )
        await stage_event(uow, request.clinic_id, client, event, at)
    return request


async def parent_requests(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef]
) -> list[AppointmentRequest]:
    async with uow:
        return await uow.repositories.requests.for_clients(memberships, limit=100)


async def cancel_request(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], request_id: uuid.UUID
) -> AppointmentRequest:
    """The parent withdraws a pending request; `RequestNotFound` alike for another's and none."""
    async with uow:
        request = await _parent_request(uow, memberships, request_id)
        request.cancel()
        await uow.repositories.requests.save(request)
    return request


async def see_request(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], request_id: uuid.UUID, at: datetime
) -> AppointmentRequest:
    """The parent has seen the clinic's answer: recorded and published (RequestAnswerSeen) the first
    time only. `RequestNotFound` alike for another's and none; `InvalidRequest` before an answer."""
    async with uow:
        request = await _parent_request(uow, memberships, request_id)
        if request.see(at):
            await uow.repositories.requests.save(request)
            await stage_event(
                uow,
                request.clinic_id,
                request.client_id,
                RequestAnswerSeen(request_id=request.id, kind="appointment", seen_at=at),
                at,
            )
    return request


async def _parent_request(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], request_id: uuid.UUID
) -> AppointmentRequest:
    """One of the parent's appointment requests, locked for the unit of work."""
    found = await _owned(partial(uow.repositories.requests.get, lock=True), memberships, request_id)
    if found is None:
        raise RequestNotFound()
    return found


async def _owned(
    get: Callable[[str, uuid.UUID], Awaitable[Owned | None]],
    memberships: Collection[ClientRef],
    request_id: uuid.UUID,
) -> Owned | None:
    """The request `get` finds at one of the parent's clinics and that is theirs there; None alike
    for another parent's and for none."""
    for clinic_id in sorted({m.clinic_id for m in memberships}):
        found = await get(clinic_id, request_id)
        if found is not None and ClientRef(clinic_id=clinic_id, client_id=found.client_id) in memberships:
            return found
    return None


async def clinic_requests(
    uow: PetsUnitOfWork, clinic_id: str, status: RequestStatus | None
) -> list[AppointmentRequest]:
    async with uow:
        return await uow.repositories.requests.for_clinic(clinic_id, status, limit=200)


async def answer_request(
    uow: PetsUnitOfWork,
    clinic_id: str,
    request_id: uuid.UUID,
    *,
    decision: Decision,
    time: datetime | None,
    note: str | None,
    at: datetime,
) -> AppointmentRequest:
    """The clinic accepts (with a time), declines or proposes another time, once; the answer is
    published (AppointmentRequestAnswered, without the note) in the same transaction."""
    async with uow:
        request = await uow.repositories.requests.get(clinic_id, request_id, lock=True)
        if request is None:
            raise RequestNotFound()
        request.answer(decision, time, note, at)
        await uow.repositories.requests.save(request)
        await stage_event(
            uow,
            request.clinic_id,
            request.client_id,
            AppointmentRequestAnswered(
                request_id=request.id,
                patient_id=request.patient_id,
                outcome=_OUTCOMES[request.status],
                appointment_at=request.answer_time,
                answered_at=at,
            ),
            at,
        )
    return request


_OUTCOMES: dict[RequestStatus, Literal["accepted", "declined", "proposed"]] = {
    RequestStatus.ACCEPTED: "accepted",
    RequestStatus.DECLINED: "declined",
    RequestStatus.PROPOSED: "proposed",
}


async def stage_event(
    uow: PetsUnitOfWork, clinic_id: str, client_id: str, event: Event, at: datetime
) -> None:
    """Stage one of pets' own events about the client in the unit of work's outbox."""
    await uow.publish(
        Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=CONSUMER, occurred_at=at)
    )


# --- prescription refill requests -----------------------------------------------------------------


async def request_refill(
    uow: PetsUnitOfWork,
    acting: ClientRef,
    *,
    patient_id: str,
    prescription_id: str,
    note: str | None,
    at: datetime,
) -> RefillRequest:
    """The parent asks for a refill of a current prescription (with refills left) of one of their
    pets at the clinic they act at; published (RefillRequested) with it. `RefillNotFound` for a pet or
    prescription that is not theirs, `RefillConflict` when it cannot be refilled or one is pending."""
    async with uow:
        found = await uow.repositories.pets.find([acting], patient_id)
        if not found:
            raise RefillNotFound("patient_id", f"no pet {patient_id}")
        pet = found[0]
        records = await uow.repositories.records.for_pets([pet], ["medication"])
        medication = next(
            (
                MedicationPrescribed.model_validate(r.payload)
                for r in records.get((pet.clinic_id, pet.patient_id), [])
                if r.record_id == prescription_id
            ),
            None,
        )
        request = RefillRequest.new(
            pet.clinic_id, pet.client_id, pet.patient_id, prescription_id, medication, note, at
        )
        if not await uow.repositories.refills.add(request):
            raise RefillConflict("prescription_id", "a refill of this prescription is already pending")
        await stage_event(
            uow,
            request.clinic_id,
            request.client_id,
            RefillRequested(
                request_id=request.id,
                patient_id=request.patient_id,
                prescription_id=request.prescription_id,
                requested_at=at,
            ),
            at,
        )
    return request


async def parent_refills(uow: PetsUnitOfWork, memberships: Collection[ClientRef]) -> list[RefillRequest]:
    """The parent's refill requests at all their clinics, newest first."""
    async with uow:
        return await uow.repositories.refills.for_clients(memberships, limit=100)


async def see_refill(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], request_id: uuid.UUID, at: datetime
) -> RefillRequest:
    """The parent has seen the clinic's decision: recorded and published (RequestAnswerSeen) the
    first time only. `RefillNotFound` alike for another's and none; `RefillConflict` while pending."""
    async with uow:
        request = await _owned(partial(uow.repositories.refills.get, lock=True), memberships, request_id)
        if request is None:
            raise RefillNotFound("request_id", "no such refill request")
        if request.see(at):
            await uow.repositories.refills.save(request)
            await stage_event(
                uow,
                request.clinic_id,
                request.client_id,
                RequestAnswerSeen(request_id=request.id, kind="refill", seen_at=at),
                at,
            )
    return request


async def clinic_refills(
    uow: PetsUnitOfWork, clinic_id: str, status: RefillStatus | None
) -> list[RefillRequest]:
    async with uow:
        return await uow.repositories.refills.for_clinic(clinic_id, status, limit=200)


async def decide_refill(
    uow: PetsUnitOfWork,
    clinic_id: str,
    request_id: uuid.UUID,
    *,
    decision: RefillDecision,
    note: str | None,
    at: datetime,
) -> RefillRequest:
    """The clinic approves or denies (with a note) a pending request, once; the decision is published
    (RefillRequestDecided, without the note) in the same transaction."""
    async with uow:
        request = await uow.repositories.refills.get(clinic_id, request_id, lock=True)
        if request is None:
            raise RefillNotFound("request_id", "no such refill request")
        request.decide(decision, note, at)
        await uow.repositories.refills.save(request)
        await stage_event(
            uow,
            request.clinic_id,
            request.client_id,
            RefillRequestDecided(
                request_id=request.id,
                patient_id=request.patient_id,
                prescription_id=request.prescription_id,
                outcome="approved" if request.status is RefillStatus.APPROVED else "denied",
                decided_at=at,
            ),
            at,
        )
    return request
