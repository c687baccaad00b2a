from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import (
    ClientEnrolledInProgram,
    Envelope,
    Event,
    MessageRead,
    MessageReceived,
    ProgramOffered,
    ProgramWithdrawn,
    SmsOptedIn,
    SmsOptedOut,
)
from petportal_todo.domain import parent_id, project, todo_list
from petportal_todo.service_layer.projection import apply_batch, parent_todo_list

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
CONV = uuid.uuid4()


def env(event: Event, client_id: str | None = "client-1", at: datetime = T0) -> tuple[Envelope, Event]:
    return (
        Envelope.wrap(event, clinic_id="clinic-1", client_id=client_id, producer="test", occurred_at=at),
        event,
    )


def received(message_id: uuid.UUID | None = None) -> tuple[Envelope, Event]:
    return env(MessageReceived(conversation_id=CONV, message_id=message_id or uuid.uuid4(), sent_at=T0))


def read(*message_ids: uuid.UUID) -> tuple[Envelope, Event]:
    return env(MessageRead(conversation_id=CONV, message_ids=list(message_ids), read_at=T0))


def offered(code: str, cta: str = "Join") -> tuple[Envelope, Event]:
    return env(ProgramOffered(program_code=code, name=code.title(), call_to_action=cta), client_id=None)


async def titles(model: FakeReadModel) -> list[str]:
    return [i.title for i in (await parent_todo_list(model, "clinic-1", "client-1")).items]


# --- tests -------------------------------------------------------------------------------------


def test_project_coalesces_one_change_per_parent() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    changes = project(
        [received(a), received(b), received(c), read(a, b), env(SmsOptedOut(source="sms_keyword"))]
    )
    (change,) = changes.parents.values()
    assert change.received == {str(c)}  # received and read in the same batch: in neither set
    assert change.read == set()
    assert change.sms_opted_out_at == T0
    assert len(changes.events) == 5


def test_a_read_of_messages_from_earlier_batches_is_kept_to_pull_them() -> None:
    mid = uuid.uuid4()
    change = project([read(mid, mid)]).parents[parent_id("clinic-1", "client-1")]
    assert change.read == {str(mid)}


def test_applying_the_same_change_twice_changes_nothing() -> None:
    # What makes counts exact even when a store keeps an effect but loses its inbox record.
    a, b = uuid.uuid4(), uuid.uuid4()
    change = project([received(a), received(b), env(SmsOptedOut(source="sms_keyword"))]).parents[
        parent_id("clinic-1", "client-1")
    ]
    once = change.applied_to(None)
    assert once.unread == 2
    assert change.applied_to(once) == once
    read_a = project([read(a)]).parents[parent_id("clinic-1", "client-1")]
    assert read_a.applied_to(read_a.applied_to(once)).unread == 1


def test_withdrawal_after_offer_in_one_batch_wins_and_vice_versa() -> None:
    withdrawn = env(ProgramWithdrawn(program_code="care"), client_id=None)
    gone = project([offered("care"), withdrawn]).clinics["clinic-1"]
    assert (gone.offered, gone.withdrawn) == ({}, {"care"})
    back = project([withdrawn, offered("care")]).clinics["clinic-1"]
    assert (set(back.offered), back.withdrawn) == ({"care"}, set())


def test_client_event_without_client_id_is_recorded_but_changes_nothing() -> None:
    envelope = Envelope(
        event_type="MessageReceived",
        event_version=1,
        clinic_id="clinic-1",
        producer="test",
        payload=MessageReceived(conversation_id=CONV, message_id=uuid.uuid4(), sent_at=T0).model_dump(
            mode="json"
        ),
    )
    changes = project([(envelope, envelope.event())])
    assert changes.parents == {}
    assert changes.events[0].ignored_reason == "MessageReceived without client_id"


async def test_apply_batch_counts_and_redelivery_is_a_noop() -> None:
    model = FakeReadModel()
    batch = [received(), received(), received()]
    await apply_batch(model, batch)
    assert await titles(model) == ["You have 3 unread messages"]
    again = await apply_batch(model, [*batch, batch[0]])
    assert again.events == []
    assert await titles(model) == ["You have 3 unread messages"]


async def test_duplicate_inside_one_batch_is_applied_once() -> None:
    model = FakeReadModel()
    one = received()
    await apply_batch(model, [one, one])
    assert await titles(model) == ["You have 1 unread message"]


async def test_failed_write_applies_nothing_and_the_retry_applies_everything_once() -> None:
    model = FakeReadModel(fail_next_write=True)
    batch = [received(), received()]
    with pytest.raises(ConnectionError):
        await apply_batch(model, batch)
    assert model.inbox == set()
    await apply_batch(model, batch)
    assert await titles(model) == ["You have 2 unread messages"]


async def test_reading_all_messages_removes_the_item() -> None:
    model = FakeReadModel()
    a, b = uuid.uuid4(), uuid.uuid4()
    await apply_batch(model, [received(a), received(b)])
    await apply_batch(model, [read(a, b)])
    assert await titles(model) == []


async def test_stale_opt_out_arriving_after_newer_opt_in_is_ignored() -> None:
    model = FakeReadModel()
    newer_in = env(SmsOptedIn(source="portal"), at=T0 + timedelta(minutes=5))
    older_out = env(SmsOptedOut(source="sms_keyword"), at=T0)
    await apply_batch(model, [newer_in])
    await apply_batch(model, [older_out])
    assert await titles(model) == []
    await apply_batch(model, [env(SmsOptedOut(source="sms_keyword"), at=T0 + timedelta(minutes=6))])
    assert await titles(model) == ["Opt into receiving texts"]


async def test_clinic_program_shows_for_every_parent_until_enrolled_or_withdrawn() -> None:
    model = FakeReadModel()
    await apply_batch(model, [offered("care", "Add a Care Member"), offered("dental", "Join Dental")])
    assert await titles(model) == ["Add a Care Member", "Join Dental"]
    await apply_batch(model, [env(ClientEnrolledInProgram(program_code="care"))])
    assert await titles(model) == ["Join Dental"]
    await apply_batch(model, [env(ProgramWithdrawn(program_code="dental"), client_id=None)])
    assert await titles(model) == []
    other = todo_list(*(await model.views("clinic-1", "client-2")))
    assert other.badge == 1  # care is still offered to a parent who did not enrol


async def test_empty_batch_writes_nothing() -> None:
    model = FakeReadModel(fail_next_write=True)
    assert (await apply_batch(model, [])).events == []


def test_a_reminder_leaves_the_list_when_done_booked_or_its_pet_or_client_is_gone() -> None:
    from datetime import date

    from petportal_schemas import (
        ClientRemoved,
        PatientDeceased,
        ServiceReminderCompleted,
        ServiceReminderUpserted,
    )
    from petportal_todo.domain import ParentView, project

    def wrap(event: Event) -> tuple[Envelope, Event]:
        return Envelope.wrap(event, clinic_id="c1", client_id="k1", producer="sync"), event

    def due(reminder: str, patient: str = "p1") -> tuple[Envelope, Event]:
        return wrap(
            ServiceReminderUpserted(
                reminder_id=reminder, patient_id=patient, service="x", due_on=date(2026, 1, 1)
            )
        )

    def view(*batches: list[tuple[Envelope, Event]]) -> ParentView | None:
        current = None
        for batch in batches:
            current = project(batch).parents["c1:k1"].applied_to(current)
        return current

    booked = wrap(ServiceReminderCompleted(reminder_id="r1", patient_id="p1", reason="booked"))
    after = view([due("r1"), due("r2"), due("r3", "p2")], [booked])
    assert after is not None
    assert {r for _, r, _ in after.due_reminders} == {"r2", "r3"}
    same_batch = view([due("r1"), booked, due("r2")])
    assert same_batch is not None
    assert {r for _, r, _ in same_batch.due_reminders} == {"r2"}
    deceased = view([due("r1"), due("r3", "p2")], [wrap(PatientDeceased(patient_id="p1"))])
    assert deceased is not None
    assert {r for _, r, _ in deceased.due_reminders} == {"r3"}
    removed = view([due("r1")], [wrap(ClientRemoved(reason="deleted_in_pims")), due("r9", "p4")])
    assert removed is not None
    assert {r for _, r, _ in removed.due_reminders} == {"r9"}
