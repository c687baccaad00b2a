"""Pieces for consumer unit tests on FastStream's in-memory `TestKafkaBroker`.

The service is wired by its own bootstrap; the test publishes envelopes on its broker and looks at
what the handlers did. `InMemoryTransactions` stands in for the database side of a handler (the
unit of work and the inbox), `record_dead_letters` for whoever reads the dead-letter topic.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from petportal_runtime import inbox
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import Envelope, topics


async def publish_envelope(broker: KafkaBroker, envelope: Envelope) -> None:
    """Publish as the outbox relay does: on the event's topic, with its key and type header."""
    await broker.publish(
        envelope.to_bytes(),
        envelope.topic,
        key=envelope.key.encode(),
        headers={"event_type": envelope.event_type},
    )


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    consumer: str
    source_topic: str
    value: bytes
    key: bytes | None


def record_dead_letters(broker: KafkaBroker) -> list[DeadLetter]:
    """The dead letters `broker` publishes, in order. Call before `TestKafkaBroker(broker)` starts."""
    parked: list[DeadLetter] = []

    async def park(message: KafkaMessage) -> None:
        headers, record = message.headers, message.raw_message
        assert isinstance(record, ConsumerRecord)
        parked.append(
            DeadLetter(
                reason=headers["reason"],
                consumer=headers["consumer"],
                source_topic=headers["source_topic"],
                value=message.body,
                key=record.key,
            )
        )

    broker.subscriber(topics.DEADLETTER, title="dead letters (test recorder)")(park)
    return parked


@dataclass
class _Session:
    claims: set[tuple[str, uuid.UUID]] = field(default_factory=set)


@dataclass
class InMemoryTransactions:
    """`ServiceRuntime.transaction()` and `petportal_runtime.inbox.claim` in memory: a claim is kept
    only when its transaction's body succeeds, as the real inbox rolls back with the effect."""

    claimed: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    commits: int = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        session = _Session()
        yield session
        self.claimed |= session.claims
        self.commits += 1

    async def claim(self, session: Any, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
        key = (consumer, event_id)
        if key in self.claimed or key in session.claims:
            return False
        session.claims.add(key)
        return True

    def install(self, monkeypatch: pytest.MonkeyPatch, runtime: ServiceRuntime) -> InMemoryTransactions:
        monkeypatch.setattr(runtime, "transaction", self.transaction)
        monkeypatch.setattr(inbox, "claim", self.claim)
        return self
