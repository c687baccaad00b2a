"""Batches written behind the consumer: overlap, order, offsets committed only once written, and a
failed write fetched again with the batch behind it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from petportal_runtime.broker import retry_policy
from petportal_runtime.write_behind import BatchRedelivered, WriteBehind
from petportal_schemas import Envelope, Event, MessageReceived

pytestmark = pytest.mark.unit

TOPIC = "t"


class RecordingConsumer:
    """What the write behind asks of aiokafka's consumer: explicit commits and seeks."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


def records(*offsets: tuple[int, int]) -> tuple[ConsumerRecord[Any, Any], ...]:
    return tuple(
        ConsumerRecord(TOPIC, partition, offset, 0, 0, None, b"", None, 0, 0, [])
        for partition, offset in offsets
    )


def batch(name: str) -> list[tuple[Envelope, Event]]:
    event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC))
    return [(Envelope.wrap(event, clinic_id="c", client_id=name, producer="unit"), event)]


def name_of(b: list[tuple[Envelope, Event]]) -> str:
    return b[0][0].client_id or ""


class Store:
    """A handler that logs what happens when; each write waits for its `release` (or fails)."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.failures: dict[str, int] = {}

    async def handle(self, b: list[tuple[Envelope, Event]], after: Awaitable[None]) -> None:
        name = name_of(b)
        self.log.append(f"fold {name}")
        await after
        self.log.append(f"write {name}")
        await self.release.setdefault(name, asyncio.Event()).wait()
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            raise ConnectionError("store down")
        self.log.append(f"written {name}")


def tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_next_batch_is_folded_while_one_is_written_and_writes_run_in_order() -> None:
    store, kafka = Store(), RecordingConsumer()
    behind = WriteBehind(store.handle, "unit", retry_policy(1))
    await behind.submit(batch("a"), records((0, 10), (1, 5)), kafka)  # returns at once: nothing before it
    second = asyncio.ensure_future(behind.submit(batch("b"), records((0, 11)), kafka))
    await settle()
    # b is folded while a is being written, but not written, and its submit waits for a's write.
    assert store.log == ["fold a", "write a", "fold b"]
    assert not second.done()
    assert kafka.commits == []
    store.release["a"].set()
    await second
    await settle()
    assert store.log == ["fold a", "write a", "fold b", "written a", "write b"]
    assert kafka.commits == [{tp(0): 11, tp(1): 6}]  # a's own offsets, not b's
    store.release["b"].set()
    await behind.drain(5)
    assert kafka.commits == [{tp(0): 11, tp(1): 6}, {tp(0): 12}]
    assert kafka.seeks == []


async def test_a_transient_failure_is_retried_before_anything_is_committed() -> None:
    store, kafka = Store(), RecordingConsumer()
    store.failures["a"] = 2
    store.release["a"] = asyncio.Event()
    store.release["a"].set()
    behind = WriteBehind(store.handle, "unit", retry_policy(3, max_wait=0))
    await behind.submit(batch("a"), records((0, 3)), kafka)
    await behind.drain(5)
    assert store.log.count("written a") == 1
    assert kafka.commits == [{tp(0): 4}]


async def test_a_write_that_keeps_failing_rewinds_it_and_the_batch_behind_it() -> None:
    store, kafka = Store(), RecordingConsumer()
    store.failures["a"] = 1
    behind = WriteBehind(store.handle, "unit", retry_policy(1))
    await behind.submit(batch("a"), records((0, 10), (0, 11), (1, 7)), kafka)
    second = asyncio.ensure_future(behind.submit(batch("b"), records((0, 12), (2, 4)), kafka))
    await settle()
    store.release["a"].set()
    with pytest.raises(BatchRedelivered):
        await second
    await settle()
    # Neither b nor anything after a's failure is written or committed; both batches are fetched
    # again from their first records.
    assert "write b" not in store.log
    assert kafka.commits == []
    assert set(kafka.seeks) == {(tp(0), 10), (tp(1), 7), (tp(2), 4)}
    # The consumer goes on from there: the next batch is written and committed.
    store.release["a2"] = asyncio.Event()
    store.release["a2"].set()
    await behind.submit(batch("a2"), records((0, 10)), kafka)
    await behind.drain(5)
    assert kafka.commits == [{tp(0): 11}]


async def test_a_last_batch_that_fails_with_none_behind_it_rewinds_itself() -> None:
    store, kafka = Store(), RecordingConsumer()
    store.failures["a"] = 1
    store.release["a"] = asyncio.Event()
    store.release["a"].set()
    behind = WriteBehind(store.handle, "unit", retry_policy(1))
    await behind.submit(batch("a"), records((3, 40), (3, 41)), kafka)
    await behind.drain(5)
    assert kafka.seeks == [(tp(3), 40)]
    assert kafka.commits == []


async def test_skipped_records_are_committed_in_their_turn() -> None:
    store, kafka = Store(), RecordingConsumer()
    behind = WriteBehind(store.handle, "unit", retry_policy(1))
    await behind.submit(batch("a"), records((0, 1)), kafka)
    skipped = asyncio.ensure_future(behind.skip(records((0, 2)), kafka))  # e.g. dead-lettered
    await settle()
    assert kafka.commits == []  # not before the write in front of it
    store.release["a"].set()
    await skipped
    await behind.drain(5)
    assert kafka.commits == [{tp(0): 2}, {tp(0): 3}]
