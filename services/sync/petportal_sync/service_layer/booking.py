"""sync's use cases for what goes to the PIMS: a parent's hold and booking of a free slot, their answer
to an appointment, and the outbound queue connectors pull, acknowledge and refuse (domain.outbound).

Each takes a unit of work: a booking and its outbound item are written in one transaction, and so
are an acknowledgement and the event it publishes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from petportal_runtime import telemetry
from petportal_runtime.auth import ClientRef
from petportal_runtime.logging import get_logger
from petportal_schemas import (
    AppointmentAnswered,
    AppointmentBooked,
    AppointmentBookingRejected,
    AppointmentRequested,
    Envelope,
    FormSubmitted,
    RefillRequested,
)
from petportal_schemas.booking import AppointmentAnswer

from ..domain.booking import (
    NOT_OFFERED,
    TAKEN,
    Booking,
    BookingConflict,
    BookingError,
    BookingNotFound,
    BookingNotOffered,
    BookingStatus,
    Hold,
    InvalidBooking,
    Slot,
    check_bookable,
    clean_note,
)
from ..domain.outbound import OutboundConflict, OutboundItem, OutboundKind, OutboundNotFound, OutboundStatus
from .unit_of_work import SyncUnitOfWork

PRODUCER = "sync"
CONSUMER = "sync"
MAX_DAYS = 62
# Item ids of the parent's answers to an appointment: one item per (clinic, appointment, answer).
_ANSWERS = uuid.UUID("5b0f3c52-4d8e-4a35-9d0a-3b9f1f0e7a11")

log = get_logger(__name__)
_meter = telemetry.meter("sync")
_bookings = _meter.create_counter(
    "petportal_sync_bookings",
    description="online bookings by outcome (requested, confirmed, rejected, flagged)",
)
_outbound = _meter.create_counter(
    "petportal_sync_outbound_answers", description="connector answers to outbound items, by kind and status"
)


def client_at(memberships: Collection[ClientRef], clinic_id: str) -> str:
    """The parent's client id at the clinic; BookingNotFound (as for any clinic not theirs) otherwise."""
    for membership in memberships:
        if membership.clinic_id == clinic_id:
            return membership.client_id
    raise BookingNotFound("clinic_id", f"you are not a client of clinic {clinic_id}")


async def _bookable_clinic(uow: SyncUnitOfWork, clinic_id: str) -> str:
    """The clinic's timezone if it takes direct bookings."""
    found = await uow.repositories.bookings.booking_settings(clinic_id)
    if found is None:
        raise BookingNotFound("clinic_id", f"no clinic {clinic_id}")
    mode, timezone = found
    check_bookable(mode)
    return timezone


@dataclass(frozen=True)
class FreeSlots:
    clinic_id: str
    timezone: str
    slots: list[Slot]


async def free_slots(
    uow: SyncUnitOfWork,
    memberships: Collection[ClientRef],
    clinic_id: str,
    start: datetime,
    days: int,
    now: datetime,
) -> FreeSlots:
    client_id = client_at(memberships, clinic_id)
    if not 1 <= days <= MAX_DAYS:
        raise InvalidBooking("days", f"from 1 to {MAX_DAYS} days")
    async with uow:
        timezone = await _bookable_clinic(uow, clinic_id)
        found = await uow.repositories.bookings.free_slots(
            clinic_id, client_id, max(start, now), start + timedelta(days=days), now, limit=500
        )
    return FreeSlots(clinic_id, timezone, found)


_REFUSALS: dict[str, Callable[[str, str, str], BookingError]] = {
    "clinic": lambda clinic, _slot, _pet: BookingNotFound("clinic_id", f"no clinic {clinic}"),
    "mode": lambda *_: BookingNotOffered("clinic_id", NOT_OFFERED),
    "patient": lambda _clinic, _slot, pet: BookingNotFound(
        "patient_id", f"no pet {pet} of yours at this clinic"
    ),
    "slot": lambda _clinic, slot, _pet: BookingNotFound("slot_id", f"no free slot {slot}: pick another time"),
    "taken": lambda *_: BookingConflict("slot_id", TAKEN),
}


async def _refused(uow: SyncUnitOfWork, clinic_id: str, slot_id: str, now: datetime) -> Exception:
    if await uow.repositories.bookings.slot_state(clinic_id, slot_id, now) == "missing":
        return BookingNotFound("slot_id", f"no free slot {slot_id}: pick another time")
    return BookingConflict("slot_id", TAKEN)


async def hold_slot(
    uow: SyncUnitOfWork,
    memberships: Collection[ClientRef],
    clinic_id: str,
    slot_id: str,
    ttl: timedelta,
    now: datetime,
) -> Hold:
    """Hold a free slot while the parent finishes booking (their other hold at the clinic goes)."""
    client_id = client_at(memberships, clinic_id)
    hold_id = uuid.uuid4()
    async with uow:
        await _bookable_clinic(uow, clinic_id)
        slot = await uow.repositories.bookings.hold(clinic_id, client_id, slot_id, hold_id, now + ttl, now)
        if slot is None:
            raise await _refused(uow, clinic_id, slot_id, now)
    return Hold(hold_id, clinic_id, slot_id, now + ttl)


async def release_hold(
    uow: SyncUnitOfWork, memberships: Collection[ClientRef], clinic_id: str, hold_id: uuid.UUID
) -> None:
    client_id = client_at(memberships, clinic_id)
    async with uow:
        if not await uow.repositories.bookings.release_hold(clinic_id, client_id, hold_id):
            raise BookingNotFound("hold_id", "no such hold of yours (it may have expired)")


async def book(
    uow: SyncUnitOfWork,
    memberships: Collection[ClientRef],
    clinic_id: str,
    slot_id: str,
    patient_id: str,
    note: str | None,
    now: datetime,
) -> Booking:
    """Book a slot that is free (or held by the parent) for one of their pets: the slot is taken and
    the booking queued for the PIMS in one transaction; it is confirmed when the PIMS takes it."""
    client_id = client_at(memberships, clinic_id)
    note = clean_note(note)
    booking_id = uuid.uuid4()
    async with uow:
        store = uow.repositories.bookings
        slot = await store.take_for(clinic_id, client_id, slot_id, patient_id, booking_id, now)
        if slot is None:
            raise _REFUSALS[await store.why_not(clinic_id, client_id, slot_id, patient_id, now)](
                clinic_id, slot_id, patient_id
            )
        booking = Booking(clinic_id, client_id, patient_id, slot, note, id=booking_id, created_at=now)
        await store.add(booking)
        item = OutboundItem(
            clinic_id,
            client_id,
            OutboundKind.BOOKING,
            booking.outbound_payload(),
            id=booking.id,
            created_at=now,
        )
        await uow.repositories.outbound.add(item)
    _bookings.add(1, {"outcome": "requested"})
    return booking


async def parent_bookings(uow: SyncUnitOfWork, memberships: Collection[ClientRef]) -> list[Booking]:
    async with uow:
        return await uow.repositories.bookings.for_clients(memberships, limit=100)


@dataclass(frozen=True)
class AnswerResult:
    item: OutboundItem
    created: bool


async def answer_appointment(
    uow: SyncUnitOfWork,
    memberships: Collection[ClientRef],
    clinic_id: str,
    appointment_id: str,
    answer: AppointmentAnswer,
    note: str | None,
    now: datetime,
) -> AnswerResult:
    """The parent confirms an upcoming appointment or asks to cancel it: queued for the PIMS and
    published (AppointmentAnswered) once; the same answer again changes nothing."""
    client_id = client_at(memberships, clinic_id)
    note = clean_note(note)
    async with uow:
        found = await uow.repositories.bookings.appointment(clinic_id, appointment_id)
        if found is None or found[0] != client_id:
            raise BookingNotFound("appointment_id", f"no appointment {appointment_id} of yours")
        state = found[1]
        starts_at = datetime.fromisoformat(state["starts_at"])
        if state.get("status") not in ("scheduled", "confirmed") or starts_at <= now:
            raise BookingConflict(
                "appointment_id", "this appointment can no longer be confirmed or cancelled"
            )
        item_id = uuid.uuid5(_ANSWERS, f"{clinic_id}:{appointment_id}:{answer}")
        payload: dict[str, Any] = {
            "appointment_id": appointment_id,
            "patient_id": state.get("patient_id"),
            "answer": answer,
            "starts_at": state["starts_at"],
            "note": note,
        }
        item = OutboundItem(
            clinic_id, client_id, OutboundKind.APPOINTMENT_ANSWER, payload, id=item_id, created_at=now
        )
        created = await uow.repositories.outbound.add(item)
        if created:
            event = AppointmentAnswered(
                appointment_id=appointment_id,
                patient_id=state.get("patient_id"),
                answer=answer,
                answered_at=now,
            )
            await uow.publish(
                Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER)
            )
        stored = await uow.repositories.outbound.get(clinic_id, item_id)
    assert stored is not None
    return AnswerResult(stored, created)


# --- the outbound queue --------------------------------------------------------------------------


async def pull(uow: SyncUnitOfWork, clinic_id: str, after: int, limit: int) -> list[OutboundItem]:
    async with uow:
        return await uow.repositories.outbound.pending(clinic_id, after, limit)


async def clinic_items(
    uow: SyncUnitOfWork, clinic_id: str, status: OutboundStatus | None, limit: int = 200
) -> list[OutboundItem]:
    async with uow:
        return await uow.repositories.outbound.for_clinic(clinic_id, status, limit)


async def _item(uow: SyncUnitOfWork, clinic_id: str, item_id: uuid.UUID) -> OutboundItem:
    item = await uow.repositories.outbound.get(clinic_id, item_id, lock=True)
    if item is None:
        raise OutboundNotFound()
    return item


async def ack(
    uow: SyncUnitOfWork, clinic_id: str, item_id: uuid.UUID, pims_reference: str | None, now: datetime
) -> tuple[OutboundItem, bool]:
    """The PIMS took the item; (item, False) when it had already been acknowledged."""
    async with uow:
        item = await _item(uow, clinic_id, item_id)
        changed = item.ack(pims_reference, now)
        if changed:
            await uow.repositories.outbound.save(item)
            if item.kind is OutboundKind.BOOKING:
                await _booking_answered(uow, item, now)
    if changed:
        _outbound.add(1, {"kind": item.kind.value, "status": item.status.value})
    return item, changed


async def nack(
    uow: SyncUnitOfWork, clinic_id: str, item_id: uuid.UUID, reason: str, text: str | None, now: datetime
) -> tuple[OutboundItem, bool]:
    """The PIMS refused the item (flagged for staff when it could not match the client or pet);
    (item, False) when it had already been refused."""
    async with uow:
        item = await _item(uow, clinic_id, item_id)
        changed = item.nack(reason, text, now)
        if changed:
            await uow.repositories.outbound.save(item)
            if item.kind is OutboundKind.BOOKING:
                await _booking_answered(uow, item, now)
    if changed:
        _outbound.add(1, {"kind": item.kind.value, "status": item.status.value})
    return item, changed


async def retry(uow: SyncUnitOfWork, clinic_id: str, item_id: uuid.UUID) -> OutboundItem:
    """Staff fixed the match in the PIMS: the flagged item goes back to the queue."""
    async with uow:
        item = await _item(uow, clinic_id, item_id)
        item.retry()
        await uow.repositories.outbound.save(item, requeue=True)
        if item.kind is OutboundKind.BOOKING:
            booking = await uow.repositories.bookings.get(clinic_id, item.id, lock=True)
            if booking is not None and booking.status is BookingStatus.NEEDS_STAFF:
                booking.status, booking.reason, booking.decided_at = BookingStatus.PENDING, None, None
                await uow.repositories.bookings.save(booking)
        return item


async def dismiss(uow: SyncUnitOfWork, clinic_id: str, item_id: uuid.UUID, now: datetime) -> OutboundItem:
    """Staff give up on a flagged item: it counts as refused (a booking's slot is free again)."""
    async with uow:
        item = await _item(uow, clinic_id, item_id)
        item.dismiss(now)
        await uow.repositories.outbound.save(item)
        if item.kind is OutboundKind.BOOKING:
            await _booking_answered(uow, item, now)
        return item


async def _booking_answered(uow: SyncUnitOfWork, item: OutboundItem, now: datetime) -> None:
    """The booking follows its outbound item: confirmed, refused (slot freed, parent told) or flagged."""
    store = uow.repositories.bookings
    booking = await store.get(item.clinic_id, item.id, lock=True)
    if booking is None:  # erased meanwhile
        return
    booking.reason, booking.decided_at = item.reason, now
    event: AppointmentBooked | AppointmentBookingRejected | None = None
    if item.status is OutboundStatus.ACKED:
        booking.status = BookingStatus.CONFIRMED
        timezone = (await store.booking_settings(item.clinic_id) or (None, "UTC"))[1]
        event = AppointmentBooked(
            booking_id=booking.id,
            slot_id=booking.slot.slot_id,
            patient_id=booking.patient_id,
            starts_at=booking.slot.starts_at,
            duration_minutes=booking.slot.duration_minutes,
            timezone=timezone,
            appointment_type=booking.slot.appointment_type,
            booked_at=now,
        )
    elif item.status is OutboundStatus.FLAGGED:
        booking.status = BookingStatus.NEEDS_STAFF
    else:
        booking.status = BookingStatus.REJECTED
        await store.free(item.clinic_id, booking.id, still_open=item.reason != "slot_unavailable")
        timezone = (await store.booking_settings(item.clinic_id) or (None, "UTC"))[1]
        event = AppointmentBookingRejected(
            booking_id=booking.id,
            patient_id=booking.patient_id,
            starts_at=booking.slot.starts_at,
            timezone=timezone,
            reason=item.reason or "other",
            rejected_at=now,
        )
    await store.save(booking)
    if event is not None:
        await uow.publish(
            Envelope.wrap(event, clinic_id=item.clinic_id, client_id=item.client_id, producer=PRODUCER)
        )
    _bookings.add(1, {"outcome": booking.status.value})


# --- the queue's gauges --------------------------------------------------------------------------


@dataclass
class Backlog:
    """The outbound queue as last measured (None until then), for the gauges."""

    counts: dict[str, int] | None = None
    oldest_pending: datetime | None = None


BACKLOG = Backlog()


def _observe_items(_options: CallbackOptions) -> Iterable[Observation]:
    for status, count in (BACKLOG.counts or {}).items():
        yield Observation(count, {"status": status})


def _observe_age(_options: CallbackOptions) -> Iterable[Observation]:
    if BACKLOG.counts is not None:
        oldest = BACKLOG.oldest_pending
        yield Observation(0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds()))


_meter.create_observable_gauge(
    "petportal_sync_outbound_items",
    callbacks=[_observe_items],
    description="outbound items not answered by the connectors, by status (pending, flagged for staff)",
)
_meter.create_observable_gauge(
    "petportal_sync_outbound_oldest_pending_age_seconds",
    callbacks=[_observe_age],
    unit="s",
    description="age of the oldest outbound item no connector has answered (0 when there is none)",
)


async def watch_backlog(
    unit_of_work: Callable[[], SyncUnitOfWork], every: timedelta, stop: asyncio.Event
) -> None:
    """Keep the queue's gauges current (a background task of every replica; a read only)."""
    while not stop.is_set():
        try:
            uow = unit_of_work()
            async with uow:
                BACKLOG.counts, BACKLOG.oldest_pending = await uow.repositories.outbound.backlog()
        except Exception as exc:  # measured again at the next round
            log.warning("outbound backlog not measured", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every.total_seconds())


# --- from other services' events -------------------------------------------------------------


async def queue_for_pims(
    uow: SyncUnitOfWork, envelope: Envelope, event: AppointmentRequested | RefillRequested | FormSubmitted
) -> None:
    """A parent's appointment or refill request (the clinic still answers in the portal) or completed
    form goes to the PIMS too: ids (and the preferred times) only, the connector reads the rest from
    the clinic API. A client the PIMS cannot match is flagged for staff. Once per event."""
    assert envelope.client_id is not None
    payload: dict[str, Any]
    if isinstance(event, AppointmentRequested):
        kind, item_id = OutboundKind.APPOINTMENT_REQUEST, event.request_id
        payload = {
            "request_id": str(event.request_id),
            "patient_id": event.patient_id,
            "preferred_times": [t.isoformat() for t in event.preferred_times],
            "requested_at": event.requested_at.isoformat(),
        }
    elif isinstance(event, RefillRequested):
        kind, item_id = OutboundKind.REFILL_REQUEST, event.request_id
        payload = {
            "request_id": str(event.request_id),
            "patient_id": event.patient_id,
            "prescription_id": event.prescription_id,
            "requested_at": event.requested_at.isoformat(),
        }
    else:
        kind, item_id = OutboundKind.FORM_SUBMISSION, event.submission_id
        payload = {
            "submission_id": str(event.submission_id),
            "form_id": str(event.form_id),
            "version": event.version,
            "patient_id": event.patient_id,
            "appointment_id": event.appointment_id,
            "submitted_at": event.submitted_at.isoformat(),
            "answers": f"/clinic/v1/form-submissions/{event.submission_id}",
            "pdf": f"/clinic/v1/form-submissions/{event.submission_id}/pdf",
        }
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return
        item = OutboundItem(
            envelope.clinic_id, envelope.client_id, kind, payload, id=item_id, created_at=envelope.occurred_at
        )
        await uow.repositories.outbound.add(item)


__all__: Sequence[str] = [
    "OutboundConflict",
    "OutboundNotFound",
    "ack",
    "answer_appointment",
    "book",
    "clinic_items",
    "dismiss",
    "free_slots",
    "hold_slot",
    "nack",
    "parent_bookings",
    "pull",
    "queue_for_pims",
    "release_hold",
    "retry",
    "watch_backlog",
]
