"""The clinic's answers to a parent's requests (pets topic): one item per answered request until the
parent has seen it, whatever the order, batching or number of deliveries of the events."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import (
    AppointmentRequestAnswered,
    ClientErasureRequested,
    ClientRemoved,
    Envelope,
    Event,
    PatientDeceased,
    RefillRequestDecided,
    RefillRequested,
    RequestAnswerSeen,
    topics,
)
from petportal_todo.bootstrap import SOURCE_TOPICS
from petportal_todo.domain import CONSUMED_EVENTS, ParentView, parent_id, project
from petportal_todo.service_layer.projection import apply_batch, parent_todo_list

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
PARENT = parent_id("clinic-1", "client-1")
Pair = tuple[Envelope, Event]


def env(event: Event, at: datetime = T0, client_id: str | None = "client-1") -> Pair:
    return Envelope.wrap(
        event, clinic_id="clinic-1", client_id=client_id, producer="pets", occurred_at=at
    ), event


def appointment(
    request_id: uuid.UUID, outcome: str = "accepted", patient_id: str = "p1", at: datetime = T0
) -> Pair:
    event = AppointmentRequestAnswered(
        request_id=request_id,
        patient_id=patient_id,
        outcome=outcome,
        appointment_at=None if outcome == "declined" else at + timedelta(days=3),
        answered_at=at,
    )
    return env(event, at)


def refill(
    request_id: uuid.UUID, outcome: str = "approved", patient_id: str = "p1", at: datetime = T0
) -> Pair:
    event = RefillRequestDecided(
        request_id=request_id,
        patient_id=patient_id,
        prescription_id="rx-1",
        outcome=outcome,
        decided_at=at,
    )
    return env(event, at)


def seen(request_id: uuid.UUID, kind: str = "appointment", at: datetime = T0 + timedelta(hours=1)) -> Pair:
    return env(RequestAnswerSeen(request_id=request_id, kind=kind, seen_at=at), at)


async def items(model: FakeReadModel) -> list[tuple[str, str, str]]:
    todo = await parent_todo_list(model, "clinic-1", "client-1")
    assert todo.badge == len(todo.items)
    return [(i.kind, i.title, i.href) for i in todo.items]


def view_of(*batches: list[Pair]) -> ParentView | None:
    current = None
    for batch in batches:
        if change := project(batch).parents.get(PARENT):
            current = change.applied_to(current)
    return current


ACCEPTED = ("request_answered", "Your appointment request was accepted", "/pets/p1")


def test_todo_reads_the_pets_topic_for_the_answers_and_their_seen_marks() -> None:
    assert topics.PETS in SOURCE_TOPICS
    for event in (AppointmentRequestAnswered, RefillRequestDecided, RequestAnswerSeen):
        assert event in CONSUMED_EVENTS
    assert RefillRequested not in CONSUMED_EVENTS  # the parent's own request is nothing for them to do


async def test_an_answer_is_on_the_list_until_seen() -> None:
    model = FakeReadModel()
    request = uuid.uuid4()
    await apply_batch(model, [appointment(request)])
    assert await items(model) == [ACCEPTED]
    await apply_batch(model, [seen(request)])
    assert await items(model) == []


async def test_a_seen_mark_before_its_answer_keeps_the_answer_off_the_list() -> None:
    model = FakeReadModel()
    request = uuid.uuid4()
    await apply_batch(model, [seen(request)])
    await apply_batch(model, [appointment(request)])
    assert await items(model) == []


@pytest.mark.parametrize("seen_first", [False, True])
def test_an_answer_seen_in_the_same_batch_is_only_written_as_seen(seen_first: bool) -> None:
    request = uuid.uuid4()
    batch = [seen(request), refill(request)] if seen_first else [refill(request), seen(request)]
    change = project(batch).parents[PARENT]
    assert change.answers == {}
    assert set(change.seen) == {str(request)}
    view = change.applied_to(None)
    assert view.unseen_answers == ()
    assert len(project(batch).events) == 2


async def test_redelivery_and_a_republished_answer_change_nothing() -> None:
    model = FakeReadModel()
    request = uuid.uuid4()
    answer = appointment(request, "declined")
    await apply_batch(model, [answer, answer])
    assert (await apply_batch(model, [answer])).events == []  # the inbox: already applied
    # The same answer under a new event id (the producer sent it again): one item still.
    await apply_batch(model, [appointment(request, "declined")])
    assert await items(model) == [("request_answered", "Your appointment request was declined", "/pets/p1")]
    mark = seen(request)
    await apply_batch(model, [mark])
    await apply_batch(model, [seen(request, at=T0 + timedelta(days=1))])  # seen again, later
    await apply_batch(model, [appointment(request, "declined")])  # and answered again, later still
    assert await items(model) == []


def test_applying_the_same_change_twice_changes_nothing() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    change = project([appointment(a), refill(b, "denied"), seen(c)]).parents[PARENT]
    once = change.applied_to(None)
    assert len(once.unseen_answers) == 2
    assert change.applied_to(once) == once
    seen_a = project([seen(a)]).parents[PARENT]
    assert seen_a.applied_to(seen_a.applied_to(once)) == seen_a.applied_to(once)


def test_the_same_events_in_any_order_and_batching_give_the_same_list() -> None:
    """What a replay after a rebuild (or events reordered between partitions) relies on."""
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [appointment(a, "proposed"), seen(a), refill(b, "approved", "p2"), seen(c, "refill"), refill(c)]
    expected = None
    for order in itertools.permutations(events):
        for cut in range(len(order) + 1):
            view = view_of(list(order[:cut]), list(order[cut:]))
            assert view is not None
            result = (view.unseen_answers, view.seen_request_ids)
            expected = expected or result
            assert result == expected
    assert expected is not None
    assert [a.request_id for a in expected[0]] == [str(b)]


async def test_both_kinds_each_answer_its_own_item_and_the_badge_counts_them() -> None:
    model = FakeReadModel()
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await apply_batch(
        model,
        [
            refill(third, "denied", "p2", T0 + timedelta(minutes=2)),
            appointment(second, "proposed", "p2", T0 + timedelta(minutes=1)),
            appointment(first, "accepted", "p1", T0),
        ],
    )
    assert await items(model) == [
        ACCEPTED,
        (
            "request_answered",
            "Your clinic proposed another time for your appointment request",
            "/pets/p2",
        ),
        ("refill_decided", "Your refill request was denied", "/pets/p2"),
    ]
    await apply_batch(model, [refill(uuid.uuid4(), "approved", at=T0 + timedelta(hours=1))])
    todo = await parent_todo_list(model, "clinic-1", "client-1")
    assert todo.badge == 4
    assert todo.items[-1].title == "Your refill request was approved"
    await apply_batch(model, [seen(second), seen(third, "refill")])
    assert (await parent_todo_list(model, "clinic-1", "client-1")).badge == 2


async def test_answers_leave_with_their_pet_or_client_and_the_erased_parent() -> None:
    model = FakeReadModel()
    await apply_batch(
        model, [appointment(uuid.uuid4(), patient_id="p1"), refill(uuid.uuid4(), patient_id="p2")]
    )
    await apply_batch(model, [env(PatientDeceased(patient_id="p1"))])
    assert [href for _, _, href in await items(model)] == ["/pets/p2"]
    # Gone and back in one batch: only the answer that came after stays.
    await apply_batch(
        model, [env(ClientRemoved(reason="deleted_in_pims")), appointment(uuid.uuid4(), patient_id="p3")]
    )
    assert [href for _, _, href in await items(model)] == ["/pets/p3"]

    late = appointment(uuid.uuid4(), at=T0)
    await apply_batch(model, [env(ClientErasureRequested(erasure_id=uuid.uuid4()), T0 + timedelta(hours=1))])
    assert PARENT not in model.parents
    assert (await apply_batch(model, [late])).events[0].ignored_reason == "client erased"
    assert await items(model) == []


def test_an_answer_without_client_is_recorded_and_ignored() -> None:
    event = AppointmentRequestAnswered(
        request_id=uuid.uuid4(), patient_id="p1", outcome="declined", answered_at=T0
    )
    envelope = Envelope(
        event_type=event.EVENT_TYPE,
        event_version=1,
        clinic_id="clinic-1",
        producer="pets",
        payload=event.model_dump(mode="json"),
    )
    changes = project([(envelope, envelope.event())])
    assert changes.parents == {}
    assert changes.events[0].ignored_reason == "AppointmentRequestAnswered without client_id"
