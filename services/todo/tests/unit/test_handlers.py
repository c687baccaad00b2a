"""todo's batch consumer on the in-memory broker, through the real projection on an in-memory read model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters, written
from petportal_schemas import (
    ClientMessageSent,
    Envelope,
    Event,
    MessageRead,
    MessageReceived,
    ProgramOffered,
    topics,
)
from petportal_todo.bootstrap import bootstrap
from petportal_todo.service_layer.projection import parent_todo_list
from petportal_todo.settings import TodoSettings

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
CONVERSATION = uuid.uuid4()


@dataclass
class Todo:
    broker: Any
    read_model: FakeReadModel
    dead_letters: list[DeadLetter]

    async def titles(self, client_id: str = "C-1") -> list[str]:
        await written(self.broker)
        return [item.title for item in (await parent_todo_list(self.read_model, "clinic-1", client_id)).items]


@pytest.fixture
async def todo() -> AsyncIterator[Todo]:
    read_model = FakeReadModel()
    service = bootstrap(TodoSettings(environment="test"), read_model=read_model)
    under_test = Todo(service.runtime.broker, read_model, record_dead_letters(service.runtime.broker))
    async with TestKafkaBroker(service.runtime.broker):
        yield under_test


def envelope(event: Event, client_id: str | None = "C-1") -> Envelope:
    return Envelope.wrap(event, clinic_id="clinic-1", client_id=client_id, producer="test", occurred_at=AT)


def received() -> MessageReceived:
    return MessageReceived(conversation_id=CONVERSATION, message_id=uuid.uuid4(), sent_at=AT)


async def test_events_build_the_list_and_a_redelivered_batch_counts_once(todo: Todo) -> None:
    first, second = received(), received()
    batch = [envelope(first), envelope(second), envelope(received())]
    await todo.broker.publish_batch(*(e.to_bytes() for e in batch), topic=topics.MESSAGING)
    await todo.broker.publish_batch(*(e.to_bytes() for e in batch), topic=topics.MESSAGING)
    offer = ProgramOffered(program_code="care", name="Care", call_to_action="Add a Care Member")
    await publish_envelope(todo.broker, envelope(offer, client_id=None))
    assert await todo.titles() == ["You have 3 unread messages", "Add a Care Member"]

    read = MessageRead(
        conversation_id=CONVERSATION, message_ids=[first.message_id, second.message_id], read_at=AT
    )
    await publish_envelope(todo.broker, envelope(read))
    assert await todo.titles() == ["You have 1 unread message", "Add a Care Member"]


async def test_the_parents_own_messages_are_never_unread_for_them(todo: Todo) -> None:
    own = ClientMessageSent(conversation_id=CONVERSATION, message_id=uuid.uuid4(), sent_at=AT)
    await todo.broker.publish_batch(
        envelope(own).to_bytes(), envelope(received()).to_bytes(), topic=topics.MESSAGING
    )
    assert await todo.titles() == ["You have 1 unread message"]
    assert todo.dead_letters == []


async def test_only_the_bad_events_of_a_batch_are_dead_lettered_and_the_consumer_carries_on(
    todo: Todo,
) -> None:
    wrong_payload = Envelope(
        event_type="MessageReceived",
        event_version=1,
        clinic_id="clinic-1",
        client_id="C-1",
        producer="test",
        payload={"conversation_id": "not-a-uuid"},
    )
    await todo.broker.publish_batch(
        envelope(received()).to_bytes(),
        b'{"event_type": "MessageReceived"',
        envelope(received()).to_bytes(),
        wrong_payload.to_bytes(),
        envelope(received()).to_bytes(),
        topic=topics.MESSAGING,
    )
    assert await todo.titles() == ["You have 3 unread messages"]

    malformed, invalid = todo.dead_letters
    assert (malformed.reason.split(":")[0], malformed.value) == (
        "invalid envelope",
        b'{"event_type": "MessageReceived"',
    )
    assert invalid.reason.startswith("invalid MessageReceived v1: conversation_id")
    assert invalid.value == wrong_payload.to_bytes()
    assert {(d.consumer, d.source_topic) for d in todo.dead_letters} == {("todo", topics.MESSAGING)}

    await publish_envelope(todo.broker, envelope(received()))
    assert await todo.titles() == ["You have 4 unread messages"]
    assert len(todo.dead_letters) == 2
