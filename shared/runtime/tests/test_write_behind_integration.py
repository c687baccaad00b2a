"""Batches written behind the consumer, on a real broker: a write that fails is fetched again with
the batch behind it, every event is applied once and in order, and the group's committed offset
reaches the last record (a dead-lettered one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from petportal_runtime.broker import consumer_group, retry_policy, subscribe_batches_written_behind
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import Envelope, Event, MessageReceived, topics

pytestmark = pytest.mark.integration


async def _committed(
    bootstrap: str, group_id: str, tp: TopicPartition, at_least: int, timeout: float = 30.0
) -> int | None:
    """The group's committed offset of `tp`, polled until it reaches `at_least` (or time is up)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await reader.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            committed: int | None = await reader.committed(tp)
            if (committed or 0) >= at_least or asyncio.get_running_loop().time() > deadline:
                return committed
            await asyncio.sleep(0.2)
    finally:
        await reader.stop()


async def test_a_failed_write_is_fetched_again_and_offsets_are_committed_to_the_end(
    kafka_bootstrap: str,
) -> None:
    settings = ServiceSettings(
        service_name=f"wb{uuid.uuid4().hex[:6]}",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
    )
    runtime = ServiceRuntime(settings, database=False)
    consumer = settings.service_name
    mine = f"wb-{consumer}"  # the topic also holds other tests' events
    applied: list[uuid.UUID] = []
    failures = 1

    async def handle(batch: list[tuple[Envelope, Event]], after: Awaitable[None]) -> None:
        nonlocal failures
        await after
        ours = [envelope.event_id for envelope, _ in batch if envelope.client_id == mine]
        if ours and failures:
            failures -= 1
            raise ConnectionError("store down")  # one attempt: the batch is rewound and fetched again
        applied.extend(ours)

    subscribe_batches_written_behind(
        runtime.broker,
        settings,
        [topics.MESSAGING],
        consumer=consumer,
        event_types=[MessageReceived],
        handler=handle,
        max_records=5,
        retrying=retry_policy(1),
    )
    good = [
        Envelope.wrap(
            MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC)),
            clinic_id="rt-clinic",
            client_id=mine,
            producer="runtime-test",
        )
        for _ in range(23)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in good:
            await producer.send_and_wait(topics.MESSAGING, envelope.to_bytes(), key=envelope.key.encode())
        # Last on the same partition (same key): a record that does not parse, dead-lettered.
        last = await producer.send_and_wait(topics.MESSAGING, b"{not json", key=good[0].key.encode())
    finally:
        await producer.stop()

    await runtime.start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(applied) < len(good) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert failures == 0
        # One key, one partition: in order, and the failed batch (and the one behind it) once.
        assert applied == [e.event_id for e in good]
        # Committed through the last record, the dead-lettered one: its offset is committed in its turn.
        partition = TopicPartition(topics.MESSAGING, last.partition)
        assert (
            await _committed(kafka_bootstrap, consumer_group(consumer), partition, last.offset + 1)
            == last.offset + 1
        )
    finally:
        await runtime.stop()
