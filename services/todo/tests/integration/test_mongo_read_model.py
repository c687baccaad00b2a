"""The MongoDB adapter on the real server: batches are atomic, the inbox claim is the guard."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import PyMongoError

from petportal_schemas import (
    ClientEnrolledInProgram,
    ClinicSettingsChanged,
    Envelope,
    Event,
    MessageRead,
    MessageReceived,
    ProgramOffered,
    SmsOptedIn,
    SmsOptedOut,
)
from petportal_todo.adapters.mongo import EPOCH, MongoReadModel, make_client
from petportal_todo.domain import project
from petportal_todo.service_layer.projection import apply_batch

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
async def read_model(mongo_url: str) -> AsyncIterator[MongoReadModel]:
    model = MongoReadModel(make_client(mongo_url), f"todo_rm_{uuid.uuid4().hex[:10]}")
    await model.ensure_indexes()
    yield model
    await model.client.drop_database(model.db.name)
    await model.close()


def env(event: Event, at: datetime = T0) -> tuple[Envelope, Event]:
    return Envelope.wrap(event, clinic_id="c1", client_id="p1", producer="test", occurred_at=at), event


def received() -> tuple[Envelope, Event]:
    return env(MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=T0))


async def test_a_batch_whose_claim_fails_changes_nothing(read_model: MongoReadModel) -> None:
    batch = [received(), received(), env(ClientEnrolledInProgram(program_code="care"))]
    # Someone else applied the last event meanwhile (after our inbox check).
    await read_model.db["inbox"].insert_one({"_id": str(batch[-1][0].event_id)})
    async with read_model.unit_of_work() as uow:
        assert await uow.already_applied([str(e.event_id) for e, _ in batch]) == {str(batch[-1][0].event_id)}
        with pytest.raises(PyMongoError):
            await uow.write(project(batch), T0)  # claims all three: the third is taken
    assert await read_model.db["parents"].find_one({"_id": "c1:p1"}) is None
    assert await read_model.db["inbox"].count_documents({}) == 1

    # The retry skips the applied event and applies the rest.
    await apply_batch(read_model, batch)
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.unread == 2
    assert parent.enrolled_programs == frozenset()


async def test_messages_read_are_pulled_in_the_parents_update_and_count_after_a_first_read(
    read_model: MongoReadModel,
) -> None:
    def message(client_id: str) -> tuple[Envelope, MessageReceived]:
        event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=T0)
        return Envelope.wrap(event, clinic_id="c1", client_id=client_id, producer="t", occurred_at=T0), event

    def read(client_id: str, *messages: tuple[Envelope, MessageReceived]) -> tuple[Envelope, MessageRead]:
        ids = [m.message_id for _, m in messages]
        event = MessageRead(conversation_id=uuid.uuid4(), message_ids=ids, read_at=T0)
        return Envelope.wrap(event, clinic_id="c1", client_id=client_id, producer="t", occurred_at=T0), event

    first, second = message("p1"), message("p1")
    await apply_batch(read_model, [first, second])
    await apply_batch(read_model, [read("p1", first), env(SmsOptedOut(source="portal"))])
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert (parent.unread, parent.sms_opted_out) == (1, True)

    # A parent whose first event is a read (e.g. after an erasure): a message received later counts.
    await apply_batch(read_model, [read("p2", message("p2"))])
    await apply_batch(read_model, [message("p2")])
    parent, _ = await read_model.views("c1", "p2")
    assert parent is not None
    assert parent.unread == 1


async def test_updates_round_trip_and_consent_keeps_the_latest_instant(read_model: MongoReadModel) -> None:
    await apply_batch(read_model, [received(), env(SmsOptedOut(source="portal"), T0)])
    await apply_batch(read_model, [env(ClientEnrolledInProgram(program_code="care"))])
    await apply_batch(read_model, [env(SmsOptedIn(source="portal"), T0 - timedelta(microseconds=1))])
    parent, clinic = await read_model.views("c1", "p1")
    assert clinic is None
    assert parent is not None
    assert parent.sms_opted_out_at == T0
    assert parent.sms_opted_out
    assert parent.enrolled_programs == frozenset({"care"})
    await apply_batch(read_model, [env(SmsOptedIn(source="portal"), T0 + timedelta(microseconds=1))])
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert not parent.sms_opted_out


async def test_the_parent_and_the_clinic_are_read_together_each_may_be_missing(
    read_model: MongoReadModel,
) -> None:
    assert await read_model.views("c1", "p1") == (None, None)
    offered = ProgramOffered(program_code="care-plan", name="Care Plan", call_to_action="Add a Care Member")
    program = Envelope.wrap(offered, clinic_id="c1", client_id=None, producer="test", occurred_at=T0)
    await apply_batch(read_model, [(program, offered)])
    parent, clinic = await read_model.views("c1", "p1")
    assert parent is None
    assert clinic is not None
    assert [p.code for p in clinic.offered_programs] == ["care-plan"]

    await apply_batch(read_model, [received()])
    parent, clinic = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.unread == 1
    assert clinic is not None
    # another clinic's parent with the same client id, and another clinic: neither leaks in
    assert await read_model.views("c2", "p1") == (None, None)


async def test_the_clinics_settings_round_trip_beside_its_programs(read_model: MongoReadModel) -> None:
    def clinic_wide(event: Event, at: datetime) -> tuple[Envelope, Event]:
        return Envelope.wrap(event, clinic_id="c1", client_id=None, producer="test", occurred_at=at), event

    offered = ProgramOffered(program_code="care-plan", name="Care Plan", call_to_action="Add a Care Member")
    await apply_batch(read_model, [clinic_wide(offered, T0)])
    _, clinic = await read_model.views("c1", "p1")
    assert clinic is not None
    assert (clinic.booking_mode, clinic.live_chat) == (None, False)  # never said
    settings = ClinicSettingsChanged(booking_mode="direct", live_chat=True)
    await apply_batch(read_model, [clinic_wide(settings, T0 + timedelta(seconds=1))])
    _, clinic = await read_model.views("c1", "p1")
    assert clinic is not None
    assert (clinic.booking_mode, clinic.live_chat) == ("direct", True)
    assert [p.code for p in clinic.offered_programs] == ["care-plan"]
    # A later program change keeps the settings; later settings replace them.
    withdrawn = ClinicSettingsChanged(booking_mode="none", live_chat=False)
    await apply_batch(read_model, [clinic_wide(offered, T0 + timedelta(seconds=2))])
    await apply_batch(read_model, [clinic_wide(withdrawn, T0 + timedelta(seconds=3))])
    _, clinic = await read_model.views("c1", "p1")
    assert clinic is not None
    assert (clinic.booking_mode, clinic.live_chat) == ("none", False)


async def test_open_reminders_round_trip_and_leave_with_their_pet_or_client(
    read_model: MongoReadModel,
) -> None:
    from datetime import date

    from petportal_schemas import (
        ClientRemoved,
        PatientRemoved,
        ServiceReminderCompleted,
        ServiceReminderUpserted,
    )

    def due(reminder: str, patient: str) -> tuple[Envelope, Event]:
        return env(
            ServiceReminderUpserted(
                reminder_id=reminder, patient_id=patient, service="x", due_on=date(2026, 1, 5)
            )
        )

    # Ids with dots (allowed by the PIMS id pattern) are field names here: they must not split paths.
    await apply_batch(read_model, [due("r.1", "p.1"), due("r2", "p.1"), due("r3", "p2")])
    await apply_batch(
        read_model, [env(ServiceReminderCompleted(reminder_id="r2", patient_id="p.1", reason="completed"))]
    )
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.due_reminders == {("p.1", "r.1", date(2026, 1, 5)), ("p2", "r3", date(2026, 1, 5))}
    # The pet leaves and comes back with a new reminder in the same batch: only the new one is open.
    await apply_batch(read_model, [env(PatientRemoved(patient_id="p.1", reason="merged")), due("r4", "p.1")])
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert {r for _, r, _ in parent.due_reminders} == {"r3", "r4"}
    await apply_batch(read_model, [env(ClientRemoved(reason="missing_from_snapshot"))])
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.due_reminders == frozenset()


async def test_answers_and_seen_marks_round_trip_in_any_order_and_twice(read_model: MongoReadModel) -> None:
    from petportal_schemas import (
        AppointmentRequestAnswered,
        PatientRemoved,
        RefillRequestDecided,
        RequestAnswerSeen,
    )
    from petportal_todo.adapters.mongo import parent_updates
    from petportal_todo.domain import todo_list

    def answered(request_id: uuid.UUID, patient: str = "p.1") -> tuple[Envelope, Event]:
        return env(
            AppointmentRequestAnswered(
                request_id=request_id,
                patient_id=patient,
                outcome="proposed",
                appointment_at=T0 + timedelta(days=2),
                answered_at=T0,
            )
        )

    def decided(request_id: uuid.UUID, patient: str = "p2") -> tuple[Envelope, Event]:
        return env(
            RefillRequestDecided(
                request_id=request_id,
                patient_id=patient,
                prescription_id="rx.1",
                outcome="denied",
                decided_at=T0,
            )
        )

    def seen(request_id: uuid.UUID) -> tuple[Envelope, Event]:
        return env(
            RequestAnswerSeen(request_id=request_id, kind="appointment", seen_at=T0 + timedelta(hours=1))
        )

    async def listed() -> list[tuple[str, str]]:
        parent, clinic = await read_model.views("c1", "p1")
        return [(i.kind, i.href) for i in todo_list(parent, clinic).items]

    seen_first, answered_first, refill, other = (uuid.uuid4() for _ in range(4))
    # The first write of the document is a seen mark (an upsert that inserts), as is possible when the
    # parent saw the answer before todo got it: the mark must land as a nested field.
    await apply_batch(read_model, [seen(seen_first)])
    doc = await read_model.db["parents"].find_one({"_id": "c1:p1"})
    assert doc is not None
    assert doc["seen_requests"] == {
        str(seen_first): (T0 + timedelta(hours=1) - EPOCH) // timedelta(microseconds=1)
    }
    await apply_batch(read_model, [answered(seen_first), answered(answered_first), decided(refill)])
    assert await listed() == [("request_answered", "/pets/p.1"), ("refill_decided", "/pets/p2")]
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert {a.request_id for a in parent.request_answers} == {
        str(seen_first),
        str(answered_first),
        str(refill),
    }
    assert {a.answered_at for a in parent.request_answers} == {T0}

    # A document written before answers existed (no answers, no seen_requests) takes them too.
    await read_model.db["parents"].insert_one({"_id": "c1:p9", "clinic_id": "c1", "client_id": "p9"})
    old_doc = Envelope.wrap(
        AppointmentRequestAnswered(request_id=other, patient_id="p1", outcome="accepted", answered_at=T0),
        clinic_id="c1",
        client_id="p9",
        producer="test",
        occurred_at=T0,
    )
    await apply_batch(read_model, [(old_doc, old_doc.event())])
    parent, clinic = await read_model.views("c1", "p9")
    assert [i.title for i in todo_list(parent, clinic).items] == ["Your appointment request was accepted"]

    # The writes themselves are idempotent: effects re-applied without their inbox records (as a
    # half-committed batch on nx-27017 is, when redelivered) leave the same document.
    change = project([seen(answered_first), decided(refill), answered(other, "p3")]).parents["c1:p1"]
    await read_model.db["parents"].bulk_write(parent_updates(change, T0))
    once = await read_model.db["parents"].find_one({"_id": "c1:p1"})
    assert await listed() == [("request_answered", "/pets/p3"), ("refill_decided", "/pets/p2")]
    await read_model.db["parents"].bulk_write(parent_updates(change, T0))
    assert await read_model.db["parents"].find_one({"_id": "c1:p1"}) == once

    # A pet that leaves takes its answers (dotted ids included); the seen marks stay.
    await apply_batch(read_model, [env(PatientRemoved(patient_id="p2", reason="merged"))])
    assert await listed() == [("request_answered", "/pets/p3")]
    await apply_batch(read_model, [env(PatientRemoved(patient_id="p3", reason="merged")), seen(refill)])
    assert await listed() == []
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.seen_request_ids == {str(seen_first), str(answered_first), str(refill)}
    assert {a.request_id for a in parent.request_answers} == {str(seen_first), str(answered_first)}
