"""Booking and the outbound queue: the use cases on a fake unit of work, and the items' rules."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from petportal_runtime.auth import ClientRef
from petportal_schemas import AppointmentRequested, RefillRequested
from petportal_schemas.envelope import Envelope
from petportal_sync.domain.batch import StoredRecord
from petportal_sync.domain.booking import BookingConflict, BookingNotFound, BookingNotOffered, InvalidBooking
from petportal_sync.domain.outbound import OutboundConflict, OutboundItem, OutboundKind, OutboundStatus
from petportal_sync.service_layer import booking

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
ME = (ClientRef(clinic_id="k1", client_id="c1"),)
OTHER = (ClientRef(clinic_id="k1", client_id="c2"),)


@pytest.fixture
def clinic(repositories: Any) -> Any:
    repositories.bookings.settings["k1"] = ("direct", "America/Chicago")
    for client, patient in (("c1", "p1"), ("c2", "p2")):
        repositories.sync.patients[("k1", patient)] = {"client_id": client, "deceased": False}
    repositories.bookings.add_slot("k1", "s1", NOW + timedelta(days=1))
    repositories.bookings.add_slot("k1", "s2", NOW + timedelta(days=2))
    return repositories


async def test_slots_need_a_clinic_of_the_parent_taking_direct_bookings(uow: Any, clinic: Any) -> None:
    found = await booking.free_slots(uow, ME, "k1", NOW, 14, NOW)
    assert [s.slot_id for s in found.slots] == ["s1", "s2"]
    assert found.timezone == "America/Chicago"
    with pytest.raises(BookingNotFound) as elsewhere:
        await booking.free_slots(uow, ME, "k2", NOW, 14, NOW)
    assert elsewhere.value.field == "clinic_id"
    with pytest.raises(InvalidBooking):
        await booking.free_slots(uow, ME, "k1", NOW, 0, NOW)
    clinic.bookings.settings["k1"] = ("request", "UTC")
    with pytest.raises(BookingNotOffered):
        await booking.free_slots(uow, ME, "k1", NOW, 14, NOW)


async def test_a_hold_keeps_others_out_until_it_expires(uow: Any, clinic: Any) -> None:
    await booking.hold_slot(uow, ME, "k1", "s1", TTL, NOW)
    assert [s.slot_id for s in (await booking.free_slots(uow, OTHER, "k1", NOW, 14, NOW)).slots] == ["s2"]
    with pytest.raises(BookingConflict):
        await booking.hold_slot(uow, OTHER, "k1", "s1", TTL, NOW)
    with pytest.raises(BookingConflict):
        await booking.book(uow, OTHER, "k1", "s1", "p2", None, NOW + TTL - timedelta(seconds=1))
    later = NOW + TTL + timedelta(seconds=1)
    made = await booking.book(uow, OTHER, "k1", "s1", "p2", None, later)
    assert made.slot.slot_id == "s1"


async def test_a_new_hold_lets_go_of_the_parents_previous_one(uow: Any, clinic: Any) -> None:
    await booking.hold_slot(uow, ME, "k1", "s1", TTL, NOW)
    await booking.hold_slot(uow, ME, "k1", "s2", TTL, NOW)
    assert [s.slot_id for s in (await booking.free_slots(uow, OTHER, "k1", NOW, 14, NOW)).slots] == ["s1"]


async def test_a_booking_is_queued_for_the_pims_with_the_slot_taken(uow: Any, clinic: Any) -> None:
    made = await booking.book(uow, ME, "k1", "s1", "p1", "  limping  ", NOW)
    assert made.note == "limping"
    [item] = await booking.pull(uow, "k1", 0, 10)
    assert item.id == made.id
    assert item.kind is OutboundKind.BOOKING
    assert item.payload["slot_id"] == "s1"
    assert item.payload["patient_id"] == "p1"
    with pytest.raises(BookingConflict):
        await booking.book(uow, OTHER, "k1", "s1", "p2", None, NOW)


async def test_a_pet_that_is_not_the_parents_or_a_missing_slot_is_refused(uow: Any, clinic: Any) -> None:
    with pytest.raises(BookingNotFound) as pet:
        await booking.book(uow, ME, "k1", "s1", "p2", None, NOW)
    assert pet.value.field == "patient_id"
    with pytest.raises(BookingNotFound) as slot:
        await booking.book(uow, ME, "k1", "gone", "p1", None, NOW)
    assert slot.value.field == "slot_id"
    assert await booking.pull(uow, "k1", 0, 10) == []


async def test_ack_confirms_and_publishes_once(uow: Any, clinic: Any) -> None:
    made = await booking.book(uow, ME, "k1", "s1", "p1", None, NOW)
    item, changed = await booking.ack(uow, "k1", made.id, "APT-1", NOW)
    assert changed
    assert item.status is OutboundStatus.ACKED
    _, again = await booking.ack(uow, "k1", made.id, "APT-2", NOW)
    assert not again
    assert uow.published_types() == ["AppointmentBooked"]
    assert uow.published[0].payload["timezone"] == "America/Chicago"
    [mine] = await booking.parent_bookings(uow, ME)
    assert mine.status.value == "confirmed"


async def test_a_refusal_frees_the_slot_unless_the_time_is_gone(uow: Any, clinic: Any) -> None:
    first = await booking.book(uow, ME, "k1", "s1", "p1", None, NOW)
    await booking.nack(uow, "k1", first.id, "pims_error", None, NOW)
    assert "s1" in [s.slot_id for s in (await booking.free_slots(uow, OTHER, "k1", NOW, 14, NOW)).slots]
    second = await booking.book(uow, OTHER, "k1", "s1", "p2", None, NOW)
    await booking.nack(uow, "k1", second.id, "slot_unavailable", None, NOW)
    assert "s1" not in [s.slot_id for s in (await booking.free_slots(uow, OTHER, "k1", NOW, 14, NOW)).slots]
    assert uow.published_types() == ["AppointmentBookingRejected"] * 2
    with pytest.raises(OutboundConflict):
        await booking.ack(uow, "k1", second.id, None, NOW)


async def test_an_unmatched_client_is_flagged_for_staff_who_retry_or_dismiss(uow: Any, clinic: Any) -> None:
    made = await booking.book(uow, ME, "k1", "s1", "p1", None, NOW)
    item, _ = await booking.nack(uow, "k1", made.id, "client_not_matched", "two of them", NOW)
    assert item.status is OutboundStatus.FLAGGED
    assert (await booking.parent_bookings(uow, ME))[0].status.value == "needs_staff"
    assert uow.published == []  # nothing to tell yet; the slot stays taken
    assert "s1" not in [s.slot_id for s in (await booking.free_slots(uow, OTHER, "k1", NOW, 14, NOW)).slots]

    retried = await booking.retry(uow, "k1", made.id)
    assert retried.status is OutboundStatus.PENDING
    assert [i.id for i in await booking.pull(uow, "k1", item.seq, 10)] == [made.id]
    assert (await booking.parent_bookings(uow, ME))[0].status.value == "pending"

    await booking.nack(uow, "k1", made.id, "patient_not_matched", None, NOW)
    await booking.dismiss(uow, "k1", made.id, NOW)
    assert (await booking.parent_bookings(uow, ME))[0].status.value == "rejected"
    assert "s1" in [s.slot_id for s in (await booking.free_slots(uow, OTHER, "k1", NOW, 14, NOW)).slots]
    with pytest.raises(OutboundConflict):
        await booking.retry(uow, "k1", made.id)


async def test_a_parent_answers_their_upcoming_appointment_once(uow: Any, clinic: Any) -> None:
    clinic.sync.records[("k1", "appointment", "A1")] = StoredRecord(
        "c1", {"status": "scheduled", "starts_at": (NOW + timedelta(days=1)).isoformat(), "patient_id": "p1"}
    )
    first = await booking.answer_appointment(uow, ME, "k1", "A1", "confirm", None, NOW)
    second = await booking.answer_appointment(uow, ME, "k1", "A1", "confirm", None, NOW)
    assert first.created
    assert not second.created
    assert first.item.id == second.item.id
    assert uow.published_types() == ["AppointmentAnswered"]
    with pytest.raises(BookingNotFound):
        await booking.answer_appointment(uow, OTHER, "k1", "A1", "cancel", None, NOW)
    with pytest.raises(BookingConflict):
        await booking.answer_appointment(uow, ME, "k1", "A1", "cancel", None, NOW + timedelta(days=2))


async def test_an_appointment_request_reaches_the_queue_and_an_unmatched_client_is_flagged(
    uow: Any, clinic: Any
) -> None:
    times = [NOW + timedelta(days=3)]
    event = AppointmentRequested(
        request_id=uuid.uuid4(), patient_id="p1", preferred_times=times, requested_at=NOW
    )
    envelope = Envelope.wrap(event, clinic_id="k1", client_id="c1", producer="pets")
    await booking.queue_for_pims(uow, envelope, event)
    [item] = await booking.pull(uow, "k1", 0, 10)
    assert (item.kind, item.id, item.payload["preferred_times"]) == (
        OutboundKind.APPOINTMENT_REQUEST,
        event.request_id,
        [times[0].isoformat()],
    )
    flagged, _ = await booking.nack(uow, "k1", item.id, "client_not_matched", None, NOW)
    assert flagged.status is OutboundStatus.FLAGGED
    assert [i.id for i in await booking.clinic_items(uow, "k1", OutboundStatus.FLAGGED)] == [item.id]


async def test_refill_requests_reach_the_queue_once(uow: Any, clinic: Any) -> None:
    event = RefillRequested(request_id=uuid.uuid4(), patient_id="p1", prescription_id="rx1", requested_at=NOW)
    envelope = Envelope.wrap(event, clinic_id="k1", client_id="c1", producer="pets")
    await booking.queue_for_pims(uow, envelope, event)
    await booking.queue_for_pims(uow, envelope, event)
    [item] = await booking.pull(uow, "k1", 0, 10)
    assert item.kind is OutboundKind.REFILL_REQUEST
    assert item.id == event.request_id


def test_an_item_is_answered_once_either_way() -> None:
    item = OutboundItem("k1", "c1", OutboundKind.BOOKING, {})
    assert item.ack("R1", NOW)
    assert not item.ack("R2", NOW)
    assert item.pims_reference == "R1"
    with pytest.raises(OutboundConflict):
        item.nack("other", None, NOW)
    refused = OutboundItem("k1", "c1", OutboundKind.BOOKING, {})
    assert refused.nack("invalid", None, NOW)
    assert not refused.nack("other", None, NOW)
    assert refused.reason == "invalid"
    with pytest.raises(OutboundConflict):
        refused.ack(None, NOW)
    with pytest.raises(OutboundConflict):
        refused.retry()


async def test_the_backlog_gauges_follow_the_queue(uow: Any, clinic: Any, repositories: Any) -> None:
    made = await booking.book(uow, ME, "k1", "s1", "p1", None, NOW)
    other = await booking.book(uow, OTHER, "k1", "s2", "p2", None, NOW + timedelta(minutes=1))
    await booking.nack(uow, "k1", other.id, "client_not_matched", None, NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(booking.watch_backlog(lambda: uow, timedelta(seconds=60), stop))
    await asyncio.sleep(0)
    stop.set()
    await task
    assert booking.BACKLOG.counts == {"pending": 1, "flagged": 1}
    assert booking.BACKLOG.oldest_pending == made.created_at
