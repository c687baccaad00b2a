"""A parent's erasure on the real read model (nx-27017): their document goes, the tombstone stays
through a rebuild so the replayed events do not bring them back, and the running service confirms the
request on the erasure topic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.testing import read_events
from petportal_schemas import (
    ClientDataErased,
    ClientEnrolledInProgram,
    ClientErasureRequested,
    Envelope,
    Event,
    MessageReceived,
    ProgramOffered,
    ServiceReminderUpserted,
    SmsOptedOut,
    topics,
)
from petportal_todo.adapters.mongo import MongoReadModel, make_client, micros
from petportal_todo.domain import ERASED
from petportal_todo.service_layer.projection import apply_batch, rebuild
from petportal_todo.settings import TodoSettings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T1, T2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
CLINIC, CLIENT, OTHER = "c1", "erased-1", "kept-1"
PARENT = f"{CLINIC}:{CLIENT}"

Batch = list[tuple[Envelope, Event]]


@pytest.fixture
async def read_model(mongo_url: str) -> AsyncIterator[MongoReadModel]:
    model = MongoReadModel(make_client(mongo_url), f"todo_er_{uuid.uuid4().hex[:10]}")
    await model.ensure_indexes()
    yield model
    await model.client.drop_database(model.db.name)
    await model.close()


def env(event: Event, at: datetime = T0, client_id: str | None = CLIENT) -> tuple[Envelope, Event]:
    return Envelope.wrap(event, clinic_id=CLINIC, client_id=client_id, producer="test", occurred_at=at), event


def received(at: datetime = T0, client_id: str = CLIENT) -> tuple[Envelope, Event]:
    return env(
        MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=at), at, client_id
    )


def history(client_id: str) -> Batch:
    """Everything a parent's document can hold."""
    return [
        received(T0, client_id),
        received(T0, client_id),
        env(SmsOptedOut(source="portal"), T0, client_id),
        env(ClientEnrolledInProgram(program_code="care"), T0, client_id),
        env(
            ServiceReminderUpserted(
                reminder_id="r1", patient_id="p1", service="Rabies", due_on=date(2026, 1, 5)
            ),
            T0,
            client_id,
        ),
    ]


OFFER = env(ProgramOffered(program_code="care", name="Care", call_to_action="Join"), T0, client_id=None)


class Source:
    """The source topics as `rebuild` reads them: every event from the beginning, in batches."""

    def __init__(self, *batches: Batch) -> None:
        self._batches = batches

    async def batches(self) -> AsyncIterator[Batch]:
        for batch in self._batches:
            yield batch

    async def commit_group_offsets(self) -> None:
        pass


async def documents(model: MongoReadModel, collection: str, **query: Any) -> list[dict[str, Any]]:
    return [doc async for doc in model.db[collection].find(query)]


async def test_an_erased_parent_is_gone_and_a_rebuild_does_not_bring_them_back(
    read_model: MongoReadModel,
) -> None:
    old = [OFFER, *history(CLIENT), *history(OTHER)]
    await apply_batch(read_model, old)
    kept_before = await read_model.views(CLINIC, OTHER)
    assert sorted(d["_id"] for d in await documents(read_model, "parents")) == [PARENT, f"{CLINIC}:{OTHER}"]

    request = env(ClientErasureRequested(erasure_id=uuid.uuid4()), T1)
    await apply_batch(read_model, [request])

    assert await documents(read_model, "parents", _id=PARENT) == []
    assert await documents(read_model, "parents", client_id=CLIENT) == []
    assert await documents(read_model, "erased") == [{"_id": PARENT, "erased_us": micros(T1)}]
    assert await read_model.views(CLINIC, OTHER) == kept_before
    parent, clinic = await read_model.views(CLINIC, CLIENT)
    assert parent is None
    assert clinic is not None  # the clinic's own document stays

    # A rebuild over the same events, the erasure included, in other batches than the first time.
    applied = await rebuild(read_model, Source(old[:4], [*old[4:], request]))
    assert applied == len(old) + 1
    assert await documents(read_model, "parents", client_id=CLIENT) == []
    assert await documents(read_model, "erased") == [{"_id": PARENT, "erased_us": micros(T1)}]
    assert await read_model.views(CLINIC, OTHER) == kept_before
    # The erased parent's events are in the inbox as ignored, nothing more.
    ignored = {d["_id"] for d in await documents(read_model, "inbox", ignored=ERASED)}
    assert ignored == {str(e.event_id) for e, _ in [*history_of(old, CLIENT), request]}

    # A newer event makes a fresh document: none of the old data in it.
    fresh = received(T2)
    await apply_batch(read_model, [fresh])
    parent, _ = await read_model.views(CLINIC, CLIENT)
    assert parent is not None
    assert parent.unread_message_ids == {message_id(fresh)}
    assert (parent.sms_opted_out, parent.enrolled_programs, parent.due_reminders) == (
        False,
        frozenset(),
        frozenset(),
    )


def history_of(batch: Batch, client_id: str) -> Batch:
    return [(e, ev) for e, ev in batch if e.client_id == client_id]


def message_id(event: tuple[Envelope, Event]) -> str:
    assert isinstance(event[1], MessageReceived)
    return str(event[1].message_id)


async def test_an_erasure_mid_batch_replaces_the_document_with_what_came_after(
    read_model: MongoReadModel,
) -> None:
    await apply_batch(read_model, history(CLIENT))
    after = received(T2)
    await apply_batch(
        read_model,
        [received(T0), env(ClientErasureRequested(erasure_id=uuid.uuid4()), T1), after, received(T0)],
    )
    [doc] = await documents(read_model, "parents", _id=PARENT)
    assert doc["unread_message_ids"] == [message_id(after)]
    assert doc["enrolled_programs"] == []
    assert "sms_opted_out_us" not in doc
    assert not doc.get("reminders")
    assert await documents(read_model, "erased") == [{"_id": PARENT, "erased_us": micros(T1)}]

    # A later erasure moves the tombstone forward; a delayed older one changes nothing.
    await apply_batch(
        read_model, [env(ClientErasureRequested(erasure_id=uuid.uuid4()), T2 + timedelta(hours=1))]
    )
    await apply_batch(read_model, [env(ClientErasureRequested(erasure_id=uuid.uuid4()), T0)])
    assert await documents(read_model, "parents", _id=PARENT) == []
    assert await documents(read_model, "erased") == [
        {"_id": PARENT, "erased_us": micros(T2 + timedelta(hours=1))}
    ]


async def test_the_running_service_confirms_the_erasure_on_the_erasure_topic(
    start_todo: Any,
    publish: Any,
    keys: Any,
    todo_settings: TodoSettings,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:8]}", f"client-{uuid.uuid4().hex[:8]}"

    async def todo_items(todo: Any) -> list[str]:
        response = await todo.http.get("/api/v1/todo", headers=keys.parent_headers(clinic_id, client_id))
        assert response.status_code == 200, response.text
        return [item["kind"] for item in response.json()["items"]]

    async with start_todo() as todo:
        await publish(
            MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=T0),
            clinic_id,
            client_id,
        )
        await wait_for(
            lambda: todo_items(todo), lambda kinds: kinds == ["unread_messages"], what="the message"
        )
        request = await publish(ClientErasureRequested(erasure_id=uuid.uuid4()), clinic_id, client_id)
        await wait_for(lambda: todo_items(todo), lambda kinds: kinds == [], what="the erasure")
        parents = todo.service.read_model.db["parents"]
        assert await parents.find_one({"_id": f"{clinic_id}:{client_id}"}) is None

    [(envelope, event, record)] = await read_events(
        todo_settings.kafka_bootstrap_servers, topics.ERASURE, clinic_id=clinic_id, count=1
    )
    asked = request.event()
    assert isinstance(event, ClientDataErased)
    assert isinstance(asked, ClientErasureRequested)
    assert (envelope.producer, event.service, event.erasure_id) == ("todo", "todo", asked.erasure_id)
    assert record.key == f"{clinic_id}:{client_id}".encode()
    assert dict(record.headers)["event_type"] == b"ClientDataErased"
