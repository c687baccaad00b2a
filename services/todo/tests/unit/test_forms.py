"""The clinic's forms (pets topic): one item per form assigned until the parent has submitted it,
whatever the order, batching or number of deliveries of the events."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import (
    ClientErasureRequested,
    ClientRemoved,
    Envelope,
    Event,
    FormAssigned,
    FormSubmitted,
    PatientDeceased,
)
from petportal_todo.domain import CONSUMED_EVENTS, ParentView, parent_id, project
from petportal_todo.service_layer.projection import apply_batch, parent_todo_list

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
PARENT = parent_id("clinic-1", "client-1")
FORM = uuid.UUID("8a3f1b3b-5e0d-4f4b-8c6d-0e9b8a7f6e5d")
Pair = tuple[Envelope, Event]


def env(event: Event, at: datetime = T0) -> Pair:
    return Envelope.wrap(
        event, clinic_id="clinic-1", client_id="client-1", producer="pets", occurred_at=at
    ), event


def assigned(assignment: uuid.UUID, title: str = "Surgery consent", at: datetime = T0) -> Pair:
    return env(
        FormAssigned(
            assignment_id=assignment, form_id=FORM, version=1, title=title, patient_id="p1", assigned_at=at
        ),
        at,
    )


def submitted(assignment: uuid.UUID, at: datetime = T0 + timedelta(hours=1)) -> Pair:
    return env(
        FormSubmitted(
            assignment_id=assignment, submission_id=uuid.uuid4(), form_id=FORM, version=1, submitted_at=at
        ),
        at,
    )


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


def test_todo_consumes_the_form_events() -> None:
    assert FormAssigned in CONSUMED_EVENTS
    assert FormSubmitted in CONSUMED_EVENTS


async def test_a_form_is_on_the_list_until_submitted() -> None:
    model = FakeReadModel()
    assignment = uuid.uuid4()
    await apply_batch(model, [assigned(assignment)])
    assert await items(model) == [("form_pending", "Please fill in: Surgery consent", f"/forms/{assignment}")]
    await apply_batch(model, [submitted(assignment)])
    assert await items(model) == []


async def test_a_submission_before_its_assignment_keeps_the_form_off_the_list() -> None:
    model = FakeReadModel()
    assignment = uuid.uuid4()
    await apply_batch(model, [submitted(assignment)])
    await apply_batch(model, [assigned(assignment)])
    assert await items(model) == []


@pytest.mark.parametrize("submitted_first", [False, True])
def test_a_form_submitted_in_the_same_batch_is_only_written_as_completed(submitted_first: bool) -> None:
    assignment = uuid.uuid4()
    batch = [submitted(assignment), assigned(assignment)]
    change = project(batch if submitted_first else batch[::-1]).parents[PARENT]
    assert change.forms == {}
    assert set(change.forms_completed) == {str(assignment)}
    assert change.applied_to(None).pending_forms == ()


async def test_redelivery_and_a_republished_assignment_change_nothing() -> None:
    model = FakeReadModel()
    assignment = uuid.uuid4()
    event = assigned(assignment)
    await apply_batch(model, [event, event])
    assert (await apply_batch(model, [event])).events == []  # the inbox: already applied
    await apply_batch(model, [assigned(assignment)])  # the same assignment under a new event id
    assert len(await items(model)) == 1
    await apply_batch(model, [submitted(assignment)])
    await apply_batch(model, [submitted(assignment, T0 + timedelta(days=1))])
    await apply_batch(model, [assigned(assignment)])  # a replay after the submission
    assert await items(model) == []


def test_applying_the_same_change_twice_changes_nothing() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    change = project([assigned(a), assigned(b), submitted(uuid.uuid4())]).parents[PARENT]
    once = change.applied_to(None)
    assert len(once.pending_forms) == 2
    assert change.applied_to(once) == once


def test_the_same_events_in_any_order_and_batching_give_the_same_list() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [assigned(a), submitted(a), assigned(b, "Intake"), submitted(c), assigned(c)]
    expected = None
    for order in itertools.permutations(events):
        for cut in range(len(order) + 1):
            view = view_of(list(order[:cut]), list(order[cut:]))
            assert view is not None
            result = (view.pending_forms, view.completed_form_ids)
            expected = expected or result
            assert result == expected
    assert expected is not None
    assert [f.assignment_id for f in expected[0]] == [str(b)]


async def test_forms_come_after_the_answers_oldest_first_and_stay_when_a_pet_leaves() -> None:
    model = FakeReadModel()
    first, second = uuid.uuid4(), uuid.uuid4()
    await apply_batch(
        model, [assigned(second, "Intake", T0 + timedelta(minutes=5)), assigned(first, "Surgery consent")]
    )
    await apply_batch(model, [env(PatientDeceased(patient_id="p1"))])
    assert [title for _, title, _ in await items(model)] == [
        "Please fill in: Surgery consent",
        "Please fill in: Intake",
    ]


async def test_forms_leave_with_the_client_and_the_erased_parent() -> None:
    model = FakeReadModel()
    await apply_batch(model, [assigned(uuid.uuid4())])
    later = uuid.uuid4()
    await apply_batch(model, [env(ClientRemoved(reason="deleted_in_pims")), assigned(later, "After")])
    assert await items(model) == [("form_pending", "Please fill in: After", f"/forms/{later}")]

    late = assigned(uuid.uuid4(), at=T0)
    await apply_batch(model, [env(ClientErasureRequested(erasure_id=uuid.uuid4()), T0 + timedelta(hours=1))])
    assert PARENT not in model.parents
    assert (await apply_batch(model, [late])).events[0].ignored_reason == "client erased"
    assert await items(model) == []
