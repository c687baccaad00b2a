"""Online booking and the outbound queue over HTTP.

- Parents (token): free slots of a clinic that takes direct bookings, a short hold on one, the booking
  itself, their bookings; their answer (confirm or cancel) to an upcoming appointment.
- Connectors (the clinic's API key): pull the outbound queue with a cursor, acknowledge or refuse.
- Staff (token): the clinic's outbound items (e.g. those flagged because the PIMS could not match the
  client), retried or dismissed.

A refused request is answered `{"detail": <message>, "field": <the field at fault>}`: 404 for a slot,
pet, hold or appointment that is not there for the caller (alike for someone else's and none), 409
when the state forbids it (the slot was just taken, the clinic does not take online bookings).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.errors import ErrorStatuses
from petportal_runtime.text import Text
from petportal_schemas.booking import AppointmentAnswer, NackReason
from petportal_schemas.envelope import ID_PATTERN

from ..domain.booking import (
    MAX_NOTE,
    Booking,
    BookingConflict,
    BookingNotFound,
    BookingNotOffered,
    BookingStatus,
    InvalidBooking,
    Slot,
)
from ..domain.outbound import (
    MAX_REASON_TEXT,
    OutboundConflict,
    OutboundItem,
    OutboundKind,
    OutboundNotFound,
    OutboundStatus,
)
from ..service_layer import booking as use_cases
from .dependencies import CurrentClinic, SyncDep, UnitOfWork

ClinicId = Annotated[str, Field(pattern=ID_PATTERN, description="the clinic you act at")]
ItemId = Annotated[uuid.UUID, Path(description="an outbound item (a booking's id for a booking)")]


class SlotPublic(BaseModel):
    slot_id: str
    starts_at: datetime
    duration_minutes: int
    appointment_type: str | None
    provider: str | None

    @classmethod
    def of(cls, slot: Slot) -> SlotPublic:
        return cls(
            slot_id=slot.slot_id,
            starts_at=slot.starts_at,
            duration_minutes=slot.duration_minutes,
            appointment_type=slot.appointment_type,
            provider=slot.provider,
        )


class SlotsPublic(BaseModel):
    clinic_id: str
    timezone: str = Field(description="the clinic's IANA timezone, to show the times in")
    slots: list[SlotPublic]


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinic_id: ClinicId
    slot_id: str = Field(pattern=ID_PATTERN)


class HoldPublic(BaseModel):
    hold_id: uuid.UUID
    clinic_id: str
    slot_id: str
    expires_at: datetime = Field(description="after this the slot is free for others again")


class BookingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinic_id: ClinicId
    slot_id: str = Field(pattern=ID_PATTERN, description="a free slot, or the one you hold")
    patient_id: str = Field(pattern=ID_PATTERN, description="one of your pets at the clinic")
    note: Text | None = Field(default=None, max_length=MAX_NOTE, description="for the clinic")


class BookingPublic(BaseModel):
    booking_id: uuid.UUID
    clinic_id: str
    patient_id: str
    slot: SlotPublic
    note: str | None
    status: BookingStatus = Field(
        description="pending (sent to the clinic's system), confirmed, rejected, or needs_staff (the "
        "clinic will contact you)"
    )
    reason: str | None = Field(description="why the clinic's system refused it")
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, b: Booking) -> BookingPublic:
        return cls(
            booking_id=b.id,
            clinic_id=b.clinic_id,
            patient_id=b.patient_id,
            slot=SlotPublic.of(b.slot),
            note=b.note,
            status=b.status,
            reason=b.reason,
            created_at=b.created_at,
            decided_at=b.decided_at,
        )


class BookingList(BaseModel):
    bookings: list[BookingPublic]


class AppointmentAnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinic_id: ClinicId
    answer: AppointmentAnswer
    note: Text | None = Field(default=None, max_length=MAX_NOTE, description="for the clinic")


class AppointmentAnswerPublic(BaseModel):
    appointment_id: str
    answer: AppointmentAnswer
    status: OutboundStatus = Field(description="pending until the clinic's system took the answer")


class OutboundItemPublic(BaseModel):
    item_id: uuid.UUID = Field(description="idempotency key: a booking's id for a booking")
    cursor: int
    kind: OutboundKind
    client_id: str
    status: OutboundStatus
    payload: dict[str, Any]
    created_at: datetime
    answered_at: datetime | None
    reason: str | None
    reason_text: str | None
    pims_reference: str | None

    @classmethod
    def of(cls, item: OutboundItem) -> OutboundItemPublic:
        return cls(
            item_id=item.id,
            cursor=item.seq,
            kind=item.kind,
            client_id=item.client_id,
            status=item.status,
            payload=item.payload,
            created_at=item.created_at,
            answered_at=item.answered_at,
            reason=item.reason,
            reason_text=item.reason_text,
            pims_reference=item.pims_reference,
        )


class OutboundPage(BaseModel):
    items: list[OutboundItemPublic]
    next_cursor: int = Field(description="pass as `after` to pull the next page")


class OutboundList(BaseModel):
    items: list[OutboundItemPublic]


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pims_reference: str | None = Field(
        default=None, pattern=ID_PATTERN, description="the PIMS's id of what it created (an appointment)"
    )


class Nack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: NackReason = Field(description="client_not_matched and patient_not_matched flag it for staff")
    text: Text | None = Field(default=None, max_length=MAX_REASON_TEXT, description="for staff")


class AnswerPublic(BaseModel):
    item: OutboundItemPublic
    already: bool = Field(description="the same answer had been given before: nothing changed")


class BookingProblem(BaseModel):
    detail: str
    field: str = Field(description="the request's field at fault")


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "model": BookingProblem}


parent = APIRouter(prefix="/api/v1/booking", tags=["booking"])
appointments = APIRouter(prefix="/api/v1/appointments", tags=["booking"])
connector = APIRouter(prefix="/pims/v1/outbound", tags=["pims"])
clinic = APIRouter(prefix="/clinic/v1/outbound", tags=["clinic"])


def _now() -> datetime:
    return datetime.now(UTC)


@parent.get(
    "/slots",
    responses={
        404: _answer("not a clinic of yours (field: clinic_id)"),
        409: _answer("the clinic does not take online bookings (field: clinic_id)"),
    },
)
async def free_slots(
    me: CurrentParent,
    uow: UnitOfWork,
    clinic_id: Annotated[str, Query(pattern=ID_PATTERN)],
    start: Annotated[AwareDatetime | None, Query(alias="from", description="default: now")] = None,
    days: Annotated[int, Query(ge=1, le=use_cases.MAX_DAYS)] = 14,
) -> SlotsPublic:
    """The clinic's free times for the coming `days`, soonest first (a slot you hold is included)."""
    now = _now()
    found = await use_cases.free_slots(uow, me.memberships, clinic_id, start or now, days, now)
    return SlotsPublic(
        clinic_id=found.clinic_id, timezone=found.timezone, slots=[SlotPublic.of(s) for s in found.slots]
    )


@parent.post(
    "/holds",
    status_code=201,
    responses={
        404: _answer("no such free slot, or not a clinic of yours (field: slot_id or clinic_id)"),
        409: _answer("someone else has the slot, or the clinic does not take online bookings"),
    },
)
async def hold_slot(body: HoldCreate, me: CurrentParent, sync: SyncDep, uow: UnitOfWork) -> HoldPublic:
    """Hold a free slot for a few minutes while you finish booking; your other hold at the clinic goes."""
    ttl = sync.settings.booking_hold_timedelta
    hold = await use_cases.hold_slot(uow, me.memberships, body.clinic_id, body.slot_id, ttl, _now())
    return HoldPublic(
        hold_id=hold.id, clinic_id=hold.clinic_id, slot_id=hold.slot_id, expires_at=hold.expires_at
    )


@parent.delete("/holds/{hold_id}", status_code=204, responses={404: _answer("no such hold of yours")})
async def release_hold(
    hold_id: uuid.UUID,
    me: CurrentParent,
    uow: UnitOfWork,
    clinic_id: Annotated[str, Query(pattern=ID_PATTERN)],
) -> None:
    """Let go of a slot you hold."""
    await use_cases.release_hold(uow, me.memberships, clinic_id, hold_id)


@parent.post(
    "/bookings",
    status_code=201,
    responses={
        404: _answer("no such free slot or pet of yours (field: slot_id or patient_id)"),
        409: _answer("someone else has just taken the slot, or the clinic does not take online bookings"),
    },
)
async def book(body: BookingCreate, me: CurrentParent, uow: UnitOfWork) -> BookingPublic:
    """Book a free slot (or the one you hold) for one of your pets. It is sent to the clinic's system
    at once and is `pending` until that system takes it (`confirmed`) or refuses it (`rejected`, the
    slot is free again, and you are told)."""
    booking = await use_cases.book(
        uow, me.memberships, body.clinic_id, body.slot_id, body.patient_id, body.note, _now()
    )
    return BookingPublic.of(booking)


@parent.get("/bookings")
async def my_bookings(me: CurrentParent, uow: UnitOfWork) -> BookingList:
    """Your online bookings at all your clinics, newest first."""
    return BookingList(
        bookings=[BookingPublic.of(b) for b in await use_cases.parent_bookings(uow, me.memberships)]
    )


@appointments.post(
    "/{appointment_id}/answer",
    responses={
        404: _answer("no such appointment of yours (field: appointment_id)"),
        409: _answer("the appointment is past, cancelled or done"),
    },
)
async def answer_appointment(
    appointment_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: AppointmentAnswerBody,
    me: CurrentParent,
    uow: UnitOfWork,
    response: Response,
) -> AppointmentAnswerPublic:
    """Confirm an upcoming appointment, or ask to cancel it: sent to the clinic's system (201); the same
    answer again changes nothing (200). The appointment changes when the clinic's system says so."""
    result = await use_cases.answer_appointment(
        uow, me.memberships, body.clinic_id, appointment_id, body.answer, body.note, _now()
    )
    response.status_code = 201 if result.created else 200
    return AppointmentAnswerPublic(
        appointment_id=appointment_id, answer=body.answer, status=result.item.status
    )


@connector.get("", responses={401: {"description": "bad API key"}})
async def pull(
    clinic: CurrentClinic,
    uow: UnitOfWork,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="the last cursor you processed")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OutboundPage:
    """What the portal asks of the clinic's PIMS, after the cursor, oldest first. Items stay until
    acknowledged or refused: a connector that starts over from 0 gets every unanswered one again."""
    items = await use_cases.pull(uow, clinic.clinic_id, after, limit)
    return OutboundPage(
        items=[OutboundItemPublic.of(i) for i in items], next_cursor=items[-1].seq if items else after
    )


@connector.post(
    "/{item_id}/ack",
    responses={401: {"description": "bad API key"}, 404: {}, 409: {"description": "already refused"}},
)
async def ack(item_id: ItemId, body: Ack, clinic: CurrentClinic, uow: UnitOfWork) -> AnswerPublic:
    """The PIMS took the item (a booking is confirmed to the parent). Again: the same answer, no effect."""
    item, changed = await use_cases.ack(uow, clinic.clinic_id, item_id, body.pims_reference, _now())
    return AnswerPublic(item=OutboundItemPublic.of(item), already=not changed)


@connector.post(
    "/{item_id}/nack",
    responses={401: {"description": "bad API key"}, 404: {}, 409: {"description": "already acknowledged"}},
)
async def nack(item_id: ItemId, body: Nack, clinic: CurrentClinic, uow: UnitOfWork) -> AnswerPublic:
    """The PIMS refused the item, saying why. A refused booking frees its slot and the parent is told;
    `client_not_matched` / `patient_not_matched` flag it for staff instead. Again: no effect."""
    item, changed = await use_cases.nack(uow, clinic.clinic_id, item_id, body.reason, body.text, _now())
    return AnswerPublic(item=OutboundItemPublic.of(item), already=not changed)


@clinic.get("")
async def clinic_items(
    staff: CurrentStaff, uow: UnitOfWork, status: Annotated[OutboundStatus | None, Query()] = None
) -> OutboundList:
    """The clinic's outbound items, newest first (?status=flagged: those staff must sort out)."""
    items = await use_cases.clinic_items(uow, staff.clinic_id, status)
    return OutboundList(items=[OutboundItemPublic.of(i) for i in items])


@clinic.post("/{item_id}/retry", responses={404: {}, 409: {"description": "not flagged"}})
async def retry(item_id: ItemId, staff: CurrentStaff, uow: UnitOfWork) -> OutboundItemPublic:
    """After fixing the client's or pet's match in the PIMS: the flagged item is sent again."""
    return OutboundItemPublic.of(await use_cases.retry(uow, staff.clinic_id, item_id))


@clinic.post("/{item_id}/dismiss", responses={404: {}, 409: {"description": "not flagged"}})
async def dismiss(item_id: ItemId, staff: CurrentStaff, uow: UnitOfWork) -> OutboundItemPublic:
    """Give up on a flagged item: it counts as refused (a booking's slot is free again)."""
    return OutboundItemPublic.of(await use_cases.dismiss(uow, staff.clinic_id, item_id, _now()))


ROUTERS = (parent, appointments, connector, clinic)

# Refusals answer {"detail", "field"}; an invalid value is a validation error on its field.
ERRORS: ErrorStatuses = {
    BookingNotFound: 404,
    BookingConflict: 409,
    BookingNotOffered: 409,
    InvalidBooking: 422,
    OutboundNotFound: 404,
    OutboundConflict: 409,
}
