"""A client's erasure on the in-memory broker: messaging deletes their conversations, messages,
photos, feedback and client row, drops their unsent events, confirms once, and refuses their events
from before the erasure (a replayed text opens no conversation)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters
from petportal_devkit.fakes import FakeUnitOfWork
from petportal_messaging.bootstrap import bootstrap
from petportal_messaging.domain.model import Feedback
from petportal_messaging.service_layer import services
from petportal_messaging.settings import MessagingSettings
from petportal_runtime.photos import Photo
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientUpserted,
    Envelope,
    Event,
    SmsReceived,
    topics,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ERASED_AT = AT + timedelta(hours=1)
CLINIC, ERASED, KEPT = "clinic-1", "C-1", "C-2"


@dataclass
class Messaging:
    broker: Any
    uow: FakeUnitOfWork[Any]
    store: Any
    dead_letters: list[DeadLetter]

    async def send(self, event: Event, client_id: str, at: datetime) -> Envelope:
        envelope = Envelope.wrap(
            event, clinic_id=CLINIC, client_id=client_id, producer="sync", occurred_at=at
        )
        await publish_envelope(self.broker, envelope)
        return envelope

    def published_for(self, client_id: str) -> list[str]:
        """The types of the events in the outbox about this client."""
        return [e.event_type for e in self.uow.published if e.key == f"{CLINIC}:{client_id}"]


@pytest.fixture
async def messaging(uow: FakeUnitOfWork[Any], repositories: Any) -> AsyncIterator[Messaging]:
    settings = MessagingSettings(
        environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit"
    )
    runtime = bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Messaging(runtime.broker, uow, repositories.messaging, record_dead_letters(runtime.broker))
    async with TestKafkaBroker(runtime.broker):
        yield under_test


def text(body: str) -> SmsReceived:
    return SmsReceived(text_id=uuid.uuid4(), body=body, received_at=AT)


async def test_an_erasure_deletes_the_clients_data_confirms_once_and_refuses_their_older_events(
    messaging: Messaging,
) -> None:
    m = messaging
    photo = Photo(b"jpeg", b"thumb", 10, 10)
    for client_id in (ERASED, KEPT):
        await m.send(ClientUpserted(first_name="Ada", last_name="Lovelace"), client_id, AT)
        await m.send(text(f"Hello from {client_id}"), client_id, AT)
        await services.send_staff_message(
            m.uow,
            clinic_id=CLINIC,
            client_id=client_id,
            staff_user_id="s-1",
            body="Rex is ready",
            photo=photo,
        )
        await services.send_client_message(m.uow, clinic_id=CLINIC, client_id=client_id, body="Thanks!")
        await m.store.add_feedback(Feedback(CLINIC, client_id, 5, f"Great, says {client_id}"))
    assert len(m.store.stored_messages) == 6
    assert len(m.store.photos) == 2
    kept_events = m.published_for(KEPT)
    assert kept_events == ["ClientMessageSent", "MessageReceived", "ClientMessageSent"]
    assert m.published_for(ERASED) == kept_events

    erasure_id = uuid.uuid4()
    request = Envelope.wrap(
        ClientErasureRequested(erasure_id=erasure_id),
        clinic_id=CLINIC,
        client_id=ERASED,
        producer="identity",
        occurred_at=ERASED_AT,
    )
    await publish_envelope(m.broker, request)

    # Nothing of the erased client is left; the other client's data is.
    assert m.store.clients == [(CLINIC, KEPT)]
    assert {c.client_id for c in m.store.conversations} == {KEPT}
    [kept_conversation] = m.store.conversations
    assert {msg.conversation_id for msg in m.store.stored_messages} == {kept_conversation.id}
    assert len(m.store.stored_messages) == 3
    assert set(m.store.photos) <= {msg.id for msg in m.store.stored_messages}
    assert len(m.store.photos) == 1
    assert [f.client_id for f in m.store.stored_feedback] == [KEPT]
    assert m.uow.erased == {(CLINIC, ERASED): ERASED_AT}
    # The client's events are gone from the outbox but for the one confirmation; the other's stay.
    assert m.published_for(ERASED) == ["ClientDataErased"]
    assert m.published_for(KEPT) == kept_events
    [confirmation] = [e for e in m.uow.published if e.event_type == "ClientDataErased"]
    event = confirmation.event()
    assert isinstance(event, ClientDataErased)
    assert (event.service, event.erasure_id) == ("messaging", erasure_id)
    assert (confirmation.producer, confirmation.topic, confirmation.client_id) == (
        "messaging",
        topics.ERASURE,
        ERASED,
    )

    # The same request delivered again: nothing more deleted, nothing more published.
    published = list(m.uow.published)
    await publish_envelope(m.broker, request)
    assert m.uow.published == published

    # Replayed older events about the client (new ids) are refused: no client, no conversation...
    older = [
        await m.send(ClientUpserted(first_name="Ada", last_name="Lovelace"), ERASED, AT),
        await m.send(text("Hello again"), ERASED, ERASED_AT - timedelta(seconds=1)),
        await m.send(text("At the same time"), ERASED, ERASED_AT),
    ]
    assert m.store.clients == [(CLINIC, KEPT)]
    assert {c.client_id for c in m.store.conversations} == {KEPT}
    assert not {("messaging", e.event_id) for e in older} & m.uow.claimed
    assert m.uow.published == published
    # ...the other client's are not, and the client's events after the erasure are applied.
    await m.send(text("Still here"), KEPT, AT)
    newer = await m.send(
        ClientUpserted(first_name="Ada", last_name="Lovelace"), ERASED, ERASED_AT + timedelta(hours=1)
    )
    assert m.store.clients == [(CLINIC, KEPT), (CLINIC, ERASED)]
    assert ("messaging", newer.event_id) in m.uow.claimed
    assert [msg.body for msg in m.store.stored_messages][-1] == "Still here"
    assert m.dead_letters == []


async def test_an_erasure_request_without_a_client_is_dead_lettered(messaging: Messaging) -> None:
    no_client = Envelope(
        event_type="ClientErasureRequested",
        event_version=1,
        clinic_id=CLINIC,
        producer="identity",
        payload={"erasure_id": str(uuid.uuid4())},
    )
    await publish_envelope(messaging.broker, no_client)

    [parked] = messaging.dead_letters
    assert (parked.reason, parked.consumer, parked.source_topic) == (
        "ClientErasureRequested without client_id",
        "messaging",
        topics.IDENTITY,
    )
    assert messaging.uow.published == []
    assert messaging.uow.erased == {}
