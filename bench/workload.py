"""Deterministic event workloads: valid envelopes as the producing services would publish them,
and the read-model state they must lead to (to check that every consumer applied all of them)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from petportal_schemas import Envelope, Event, MessageRead, MessageReceived, SmsOptedOut, topics

# What the todo service subscribes to (petportal_todo.bootstrap.SOURCE_TOPICS); the baseline consumers
# subscribe to the same topics so their fetches cover the same partitions.
TODO_SOURCE_TOPICS = (topics.MESSAGING, topics.NOTIFY, topics.SYNC)
PRODUCER_OF_TOPIC = {MessageReceived.TOPIC: "messaging", SmsOptedOut.TOPIC: "notify"}
BENCH_CLINICS = tuple(f"bench-clinic-{i}" for i in range(5))


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def to_record(envelope: Envelope) -> KafkaRecord:
    """The record a service's outbox relay would publish for `envelope`."""
    return KafkaRecord(
        topic=envelope.topic,
        key=envelope.key.encode(),
        value=envelope.to_bytes(),
        headers=(("event_type", envelope.event_type.encode()),),
    )


def wrap(event: Event, clinic_id: str, client_id: str, occurred_at: datetime | None = None) -> Envelope:
    return Envelope.wrap(
        event,
        clinic_id=clinic_id,
        client_id=client_id,
        producer=PRODUCER_OF_TOPIC.get(event.TOPIC, "bench"),
        occurred_at=occurred_at,
    )


def parent_id(clinic_id: str, client_id: str) -> str:
    return f"{clinic_id}:{client_id}"


def clients(count: int) -> list[tuple[str, str]]:
    """`count` (clinic_id, client_id) pairs spread over a few clinics."""
    return [(BENCH_CLINICS[i % len(BENCH_CLINICS)], f"C-{i:05d}") for i in range(count)]


@dataclass
class ExpectedState:
    """What a correct projection holds once it has applied the whole workload."""

    unread: dict[str, int] = field(default_factory=dict)  # parent id -> unread messages
    opted_out: set[str] = field(default_factory=set)  # parent ids with an SMS opt-out

    @property
    def total_unread(self) -> int:
        return sum(self.unread.values())


@dataclass
class Workload:
    records: list[KafkaRecord]
    expected: ExpectedState
    counts: dict[str, int]

    @property
    def topics(self) -> list[str]:
        return sorted({r.topic for r in self.records})


def mixed_workload(events: int, n_clients: int, *, seed: int = 7) -> Workload:
    """About 70% MessageReceived, 20% MessageRead (of messages received before, same client) and 10%
    SmsOptedOut, over `n_clients` clients; per-client order is what a real producer would publish."""
    rng = random.Random(seed)
    population = clients(n_clients)
    conversations = {c: uuid.UUID(int=rng.getrandbits(128), version=4) for c in population}
    pending: dict[tuple[str, str], list[uuid.UUID]] = {c: [] for c in population}
    expected = ExpectedState()
    counts = {"MessageReceived": 0, "MessageRead": 0, "SmsOptedOut": 0}
    start = datetime.now(UTC) - timedelta(hours=1)
    records: list[KafkaRecord] = []
    for i in range(events):
        clinic_id, client_id = client = rng.choice(population)
        pid = parent_id(clinic_id, client_id)
        at = start + timedelta(milliseconds=i)
        roll = rng.random()
        event: Event
        if roll < 0.10:
            event = SmsOptedOut(source="sms_keyword", keyword="STOP")
            expected.opted_out.add(pid)
        elif roll < 0.30 and pending[client]:
            k = rng.randint(1, len(pending[client]))
            read, pending[client] = pending[client][:k], pending[client][k:]
            event = MessageRead(conversation_id=conversations[client], message_ids=read, read_at=at)
            expected.unread[pid] = expected.unread.get(pid, 0) - len(read)
        else:
            message_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            pending[client].append(message_id)
            event = MessageReceived(conversation_id=conversations[client], message_id=message_id, sent_at=at)
            expected.unread[pid] = expected.unread.get(pid, 0) + 1
        counts[event.EVENT_TYPE] += 1
        envelope = wrap(event, clinic_id, client_id, occurred_at=at).model_copy(
            update={"event_id": uuid.UUID(int=rng.getrandbits(128), version=4)}
        )
        records.append(to_record(envelope))
    return Workload(records, expected, counts)


def message_received(clinic_id: str, client_id: str) -> Envelope:
    now = datetime.now(UTC)
    return wrap(
        MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=now),
        clinic_id,
        client_id,
    )


def producer(bootstrap: str, *, linger_ms: int) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        max_batch_size=512 * 1024,
        client_id="petportal-bench",
    )


@dataclass(frozen=True)
class ProduceStats:
    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def produce_all(bootstrap: str, records: Sequence[KafkaRecord], *, linger_ms: int = 20) -> ProduceStats:
    """Publish every record (acks=all, batched by linger) and wait for every acknowledgement."""
    kafka = producer(bootstrap, linger_ms=linger_ms)
    await kafka.start()
    try:
        started = time.perf_counter()
        acks = [await kafka.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in records]
        for ack in acks:
            await ack
        return ProduceStats(len(records), time.perf_counter() - started)
    finally:
        await kafka.stop()
