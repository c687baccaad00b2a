"""A parent's erasure in the To-Do read model: the fold drops their document and ignores their older
events (in the batch, in later ones, in a rebuild), and every request is confirmed after the write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from petportal_devkit.consumers import publish_envelope, written
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    Envelope,
    Event,
    MessageReceived,
    ProgramOffered,
    SmsOptedOut,
    topics,
)
from petportal_todo.bootstrap import bootstrap
from petportal_todo.domain import ERASED, ParentView, parent_id, project
from petportal_todo.service_layer.projection import apply_batch, parent_todo_list, rebuild
from petportal_todo.settings import TodoSettings

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
T1, T2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
CLINIC, CLIENT, OTHER = "clinic-1", "client-1", "client-2"
PARENT = parent_id(CLINIC, CLIENT)
CONV = uuid.uuid4()


def env(event: Event, at: datetime = T0, client_id: str | None = CLIENT) -> tuple[Envelope, Event]:
    return Envelope.wrap(event, clinic_id=CLINIC, client_id=client_id, producer="test", occurred_at=at), event


def received(at: datetime = T0, client_id: str = CLIENT) -> tuple[Envelope, Event]:
    message = MessageReceived(conversation_id=CONV, message_id=uuid.uuid4(), sent_at=at)
    return env(message, at, client_id)


def erasure(at: datetime = T1, client_id: str = CLIENT) -> tuple[Envelope, Event]:
    return env(ClientErasureRequested(erasure_id=uuid.uuid4()), at, client_id)


def message_ids(*events: tuple[Envelope, Event]) -> set[str]:
    return {str(e.message_id) for _, e in events if isinstance(e, MessageReceived)}


class Published:
    """A publisher that records what it was given, or fails."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.fail = False

    async def __call__(self, envelopes: Sequence[Envelope]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.envelopes.extend(envelopes)


# --- the fold ----------------------------------------------------------------------------------


def test_an_erasure_mid_batch_drops_what_came_before_and_what_follows_makes_a_fresh_document() -> None:
    before, after = received(T0), received(T2)
    other = received(T0, OTHER)
    batch = [before, env(SmsOptedOut(source="portal"), T0), other, erasure(T1), after]
    changes = project(batch)

    change = changes.parents[PARENT]
    assert change.erased_at == T1
    assert change.received == message_ids(after)
    assert change.sms_opted_out_at is None
    assert not change.deletes_document
    assert [e.ignored_reason for e in changes.events] == [ERASED, ERASED, None, None, None]
    # The fresh document does not start from the stored one.
    stored = ParentView(CLINIC, CLIENT, unread_message_ids=frozenset({"old"}), sms_opted_out_at=T0)
    assert change.applied_to(stored) == ParentView(
        CLINIC, CLIENT, unread_message_ids=frozenset(message_ids(after))
    )
    # Another parent's events are untouched.
    assert changes.parents[parent_id(CLINIC, OTHER)].received == message_ids(other)


def test_events_at_or_before_the_tombstone_are_ignored_and_later_ones_apply() -> None:
    old, same_time, newer = received(T0), received(T1), received(T2)
    offer = env(ProgramOffered(program_code="care", name="Care", call_to_action="Join"), T0, client_id=None)
    changes = project([old, same_time, offer, newer, received(T0, OTHER)], erased={PARENT: T1})

    change = changes.parents[PARENT]
    assert change.received == message_ids(newer)
    assert change.erased_at is None  # no new erasure: the document is updated, not replaced
    assert [e.ignored_reason for e in changes.events] == [ERASED, ERASED, None, None, None]
    assert set(changes.clinics) == {CLINIC}


def test_an_event_after_the_request_in_the_batch_but_older_than_it_is_ignored() -> None:
    # Topics are not ordered with each other: a message from before the erasure may come after it.
    changes = project([erasure(T1), received(T0)])
    assert changes.parents[PARENT].deletes_document
    assert [e.ignored_reason for e in changes.events] == [None, ERASED]


def test_an_erasure_older_than_the_tombstone_changes_nothing_and_a_newer_one_moves_it() -> None:
    stale = project([erasure(T0)], erased={PARENT: T1})
    assert stale.parents == {}
    assert [e.ignored_reason for e in stale.events] == [ERASED]
    again = project([erasure(T2)], erased={PARENT: T1})
    assert again.parents[PARENT].erased_at == T2


def test_an_erasure_request_without_a_client_changes_nothing() -> None:
    wrapped = Envelope(
        event_type="ClientErasureRequested",
        event_version=1,
        clinic_id=CLINIC,
        producer="identity",
        payload={"erasure_id": str(uuid.uuid4())},
    )
    changes = project([(wrapped, wrapped.event())])
    assert changes.parents == {}
    assert changes.events[0].ignored_reason == "ClientErasureRequested without client_id"


# --- applying batches ----------------------------------------------------------------------------


async def test_an_erasure_deletes_the_parent_keeps_the_tombstone_and_is_confirmed_after_the_write() -> None:
    model, published = FakeReadModel(), Published()
    await apply_batch(model, [received(T0), received(T0, OTHER)], publish=published)
    assert set(model.parents) == {PARENT, parent_id(CLINIC, OTHER)}
    assert published.envelopes == []

    request = erasure(T1)
    await apply_batch(model, [request], publish=published)
    assert set(model.parents) == {parent_id(CLINIC, OTHER)}
    assert model.erased == {PARENT: T1}
    [confirmation] = published.envelopes
    event = confirmation.event()
    assert isinstance(event, ClientDataErased)
    assert isinstance(request[1], ClientErasureRequested)
    assert (event.service, event.erasure_id) == ("todo", request[1].erasure_id)
    assert (confirmation.producer, confirmation.topic, confirmation.key) == (
        "todo",
        topics.ERASURE,
        f"{CLINIC}:{CLIENT}",
    )
    assert confirmation.trace == request[0].trace

    # Redelivered (its confirmation was lost, say): nothing applied again, confirmed again.
    again = await apply_batch(model, [request, request], publish=published)
    assert again.events == []
    assert [(e.key, e.payload) for e in published.envelopes] == [(confirmation.key, confirmation.payload)] * 2
    # The parent's older events, delivered late or replayed, are recorded and ignored.
    late = await apply_batch(model, [received(T0)], publish=published)
    assert [e.ignored_reason for e in late.events] == [ERASED]
    assert PARENT not in model.parents
    # A newer event makes a fresh document.
    await apply_batch(model, [received(T2)], publish=published)
    assert model.parents[PARENT].unread == 1


async def test_a_batch_folded_while_an_erasure_is_written_sees_its_tombstone() -> None:
    """Written behind the consumer: the next batch is folded before the erasure ahead of it is
    written, so its tombstones are read only once that write is done (`after`)."""
    model = FakeReadModel()
    await apply_batch(model, [received(T0)])
    erasing = asyncio.ensure_future(apply_batch(model, [erasure(T1)]))
    stale, fresh = received(T0 + timedelta(minutes=30)), received(T2)  # before / after the request

    changes = await apply_batch(model, [stale, fresh], after=erasing)

    assert [e.ignored_reason for e in changes.events] == [ERASED, None]
    assert model.parents[PARENT].unread == 1


async def test_a_failed_confirmation_fails_the_batch_and_its_redelivery_confirms() -> None:
    model, published = FakeReadModel(), Published()
    await apply_batch(model, [received(T0)])
    published.fail = True
    batch = [erasure(T1), received(T2, OTHER)]
    with pytest.raises(ConnectionError):
        await apply_batch(model, batch, publish=published)
    assert PARENT not in model.parents  # the write committed before the publish failed
    published.fail = False
    await apply_batch(model, batch, publish=published)
    assert [e.event_type for e in published.envelopes] == ["ClientDataErased"]
    assert model.parents[parent_id(CLINIC, OTHER)].unread == 1  # applied once


class Source:
    def __init__(self, *batches: list[tuple[Envelope, Event]]) -> None:
        self._batches = batches
        self.committed = False

    async def batches(self) -> AsyncIterator[list[tuple[Envelope, Event]]]:
        for batch in self._batches:
            yield batch

    async def commit_group_offsets(self) -> None:
        self.committed = True


async def test_a_rebuild_keeps_the_tombstones_so_an_erased_parent_does_not_come_back() -> None:
    model = FakeReadModel()
    old = [received(T0), env(SmsOptedOut(source="portal"), T0)]
    request, newer = erasure(T1), received(T2)
    await apply_batch(model, old)
    await apply_batch(model, [request])
    assert PARENT not in model.parents

    # A replay of everything, the erasure included, in other batches than the first time.
    applied = await rebuild(model, Source([*old, received(T0, OTHER)], [request]))
    assert applied == 4
    assert PARENT not in model.parents
    assert model.erased == {PARENT: T1}
    assert set(model.parents) == {parent_id(CLINIC, OTHER)}
    # Events after the erasure still make a new document, in a rebuild as live.
    await rebuild(model, Source(old, [request, newer]))
    assert model.parents[PARENT].unread == 1
    assert model.parents[PARENT].sms_opted_out_at is None


# --- the consumer --------------------------------------------------------------------------------


async def test_the_consumer_erases_and_publishes_the_confirmation_on_the_erasure_topic() -> None:
    model = FakeReadModel()
    service = bootstrap(TodoSettings(environment="test"), read_model=model)
    broker = service.runtime.broker
    confirmations: list[tuple[bytes | None, str, Envelope]] = []

    @broker.subscriber(topics.ERASURE, title="erasure confirmations (test recorder)")
    async def record(message: KafkaMessage) -> None:
        record = message.raw_message
        assert isinstance(record, ConsumerRecord)
        confirmations.append((record.key, message.headers["event_type"], Envelope.from_bytes(message.body)))

    async with TestKafkaBroker(broker):
        await publish_envelope(broker, received(T0)[0])
        await written(broker)
        assert [i.kind for i in (await parent_todo_list(model, CLINIC, CLIENT)).items] == ["unread_messages"]
        request = erasure(datetime.now(UTC))[0]
        await publish_envelope(broker, request)
        await written(broker)
        assert (await parent_todo_list(model, CLINIC, CLIENT)).items == ()
        assert PARENT not in model.parents

    [(key, event_type, confirmation)] = confirmations
    assert (key, event_type) == (f"{CLINIC}:{CLIENT}".encode(), "ClientDataErased")
    assert (confirmation.producer, confirmation.client_id) == ("todo", CLIENT)
    assert request.topic == topics.IDENTITY
