"""Outbox relay, inbox and dead-lettering against a real PostgreSQL and a real Kafka broker."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry import trace
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from petportal_runtime import inbox, outbox, tables
from petportal_runtime.broker import PermanentEventError, on, subscribe_event_batches, subscribe_events
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_runtime.tables import metadata
from petportal_schemas import Envelope, Event, MessageReceived, topics, validate_message

pytestmark = pytest.mark.integration


def _message(client: str) -> Envelope:
    event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC))
    return Envelope.wrap(event, clinic_id="rt-clinic", client_id=client, producer="runtime-test")


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def runtime(make_database, kafka_bootstrap: str) -> AsyncIterator[ServiceRuntime]:  # type: ignore[no-untyped-def]
    url = make_database()
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    settings = ServiceSettings(
        service_name=f"rt{uuid.uuid4().hex[:6]}",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
    )
    runtime = ServiceRuntime(settings)
    yield runtime
    if runtime.engine is not None:
        await runtime.engine.dispose()


async def test_events_are_relayed_applied_once_and_bad_ones_dead_lettered(
    runtime: ServiceRuntime, kafka_bootstrap: str
) -> None:
    applied: list[uuid.UUID] = []
    consumer = runtime.settings.service_name
    poisoned = f"poison-{consumer}"

    async def apply(envelope: Envelope, event: Event) -> None:
        if envelope.client_id == poisoned:
            raise PermanentEventError(f"client {poisoned} is not known here")
        async with runtime.transaction() as session:
            claimed = await inbox.claim(session, consumer, envelope.event_id, envelope.event_type)
            # The topic also holds other tests' events: count only this test's own.
            if (
                claimed
                and envelope.producer == "runtime-test"
                and (envelope.client_id or "").startswith(consumer)
            ):
                applied.append(envelope.event_id)

    subscribe_events(
        runtime.broker,
        runtime.settings,
        [topics.MESSAGING],
        consumer=consumer,
        handlers=[on(MessageReceived, apply)],
    )
    dead = AIOKafkaConsumer(topics.DEADLETTER, bootstrap_servers=kafka_bootstrap, auto_offset_reset="latest")
    await dead.start()
    await dead.seek_to_end()
    await runtime.start()
    try:
        good = [_message(f"{consumer}-c{i}") for i in range(20)]
        async with runtime.transaction() as session:
            await outbox.add_events(session, [*good[:10], _message(poisoned), *good[10:]])
        await runtime.broker.publish(
            b'{"event_type": 1}', topics.MESSAGING, key=f"rt-clinic:{consumer}-bad".encode()
        )

        await _until(lambda: len(applied) == 20)
        assert set(applied) == {e.event_id for e in good}

        # Other tests dead-letter onto the same topic: keep only this consumer's records.
        reasons: list[str] = []
        deadline = asyncio.get_running_loop().time() + 20
        while len(reasons) < 2 and asyncio.get_running_loop().time() < deadline:
            batch = await dead.getmany(timeout_ms=500)
            for record in (r for rs in batch.values() for r in rs):
                headers = {k: v.decode() for k, v in record.headers}
                key = (record.key or b"").decode()
                if headers.get("consumer") == consumer and key.endswith((f"{consumer}-bad", poisoned)):
                    reasons.append(headers["reason"])
        assert len(reasons) == 2
        assert any("invalid envelope" in r for r in reasons)
        assert any(f"client {poisoned} is not known" in r for r in reasons)

        # Replaying the whole outbox redelivers everything; the inbox keeps each effect single.
        assert runtime.relay is not None
        assert await runtime.relay.replay() == 21
        marker = _message(f"{consumer}-after-replay")
        async with runtime.transaction() as session:
            await outbox.add_event(session, marker)
        await _until(lambda: marker.event_id in applied)
        assert len(applied) == 21
        assert len(set(applied)) == 21
    finally:
        await runtime.stop()
        await dead.stop()


async def test_nothing_is_staged_when_the_transaction_rolls_back(runtime: ServiceRuntime) -> None:
    async def fail_after_staging() -> None:
        async with runtime.transaction() as session:
            await outbox.add_event(session, _message("c1"))
            raise RuntimeError("state change failed")

    with pytest.raises(RuntimeError):
        await fail_after_staging()
    assert runtime.sessions is not None
    async with runtime.sessions() as session:
        count = (await session.exec(select(func.count()).select_from(tables.outbox))).scalar_one()
    assert count == 0


async def test_relayed_messages_validate_against_the_contract(
    runtime: ServiceRuntime, kafka_bootstrap: str
) -> None:
    reader = AIOKafkaConsumer(topics.MESSAGING, bootstrap_servers=kafka_bootstrap, auto_offset_reset="latest")
    await reader.start()
    await reader.seek_to_end()
    await runtime.start()
    try:
        sent = _message("contract")
        with trace.get_tracer("test").start_as_current_span("the request that made the event") as span:
            async with runtime.transaction() as session:
                await outbox.add_event(session, sent)
        trace_id = format(span.get_span_context().trace_id, "032x")
        found = None
        for _ in range(40):
            batch = await reader.getmany(timeout_ms=250)
            for record in (r for rs in batch.values() for r in rs):
                envelope, event = validate_message(record.value)
                if envelope.event_id == sent.event_id:
                    found = (record, envelope, event)
            if found:
                break
        assert found is not None
        record, envelope, event = found
        assert record.key == b"rt-clinic:contract"
        assert dict(record.headers)["event_type"] == b"MessageReceived"
        # The consumer continues the trace of the request that made the event.
        assert dict(record.headers)["traceparent"].decode().split("-")[1] == trace_id
        assert isinstance(event, MessageReceived)
    finally:
        await runtime.stop()
        await reader.stop()


async def test_a_batch_with_an_unappliable_event_dead_letters_only_that_event(
    runtime: ServiceRuntime, kafka_bootstrap: str
) -> None:
    applied: list[uuid.UUID] = []
    consumer = runtime.settings.service_name
    # The topic also holds earlier tests' events: this test's clients are its own.
    mine, poisoned = f"same-{consumer}", f"poison-{consumer}"

    async def apply_batch(batch: list[tuple[Envelope, Event]]) -> None:
        if any(envelope.client_id == poisoned for envelope, _ in batch):
            raise PermanentEventError("client poison is not known here")
        async with runtime.transaction() as session:
            for envelope, _ in batch:
                claimed = await inbox.claim(session, consumer, envelope.event_id, envelope.event_type)
                if claimed and envelope.client_id == mine:
                    applied.append(envelope.event_id)

    subscribe_event_batches(
        runtime.broker,
        runtime.settings,
        [topics.MESSAGING],
        consumer=consumer,
        event_types=[MessageReceived],
        handler=apply_batch,
    )
    dead = AIOKafkaConsumer(topics.DEADLETTER, bootstrap_servers=kafka_bootstrap, auto_offset_reset="latest")
    await dead.start()
    await dead.seek_to_end()
    await runtime.start()
    try:
        good = [_message(mine) for _ in range(10)]
        poison = _message(poisoned)
        async with runtime.transaction() as session:
            await outbox.add_events(session, [*good[:5], poison, *good[5:]])
        await _until(lambda: len(applied) == 10)
        assert applied == [e.event_id for e in good]  # one key, one partition: in order
        parked: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + 20
        while not parked and asyncio.get_running_loop().time() < deadline:
            batch = await dead.getmany(timeout_ms=500)
            parked += [
                r.value for rs in batch.values() for r in rs if (r.key or b"").decode().endswith(poisoned)
            ]
        assert [Envelope.from_bytes(v).event_id for v in parked] == [poison.event_id]
    finally:
        await runtime.stop()
        await dead.stop()


async def test_purge_deletes_published_rows_past_the_retention_in_batches(runtime: ServiceRuntime) -> None:
    assert runtime.relay is not None
    assert runtime.sessions is not None
    now = datetime.now(UTC)
    async with runtime.transaction() as session:
        await outbox.add_events(session, [_message(f"purge-{i}") for i in range(12)])
        conn = await session.connection()
        ids = list((await conn.execute(select(tables.outbox.c.id).order_by(tables.outbox.c.id))).scalars())
        old, recent = ids[:7], ids[7:10]  # the last two are not published yet
        for chosen, age in ((old, timedelta(days=8)), (recent, timedelta(days=6))):
            await conn.execute(
                update(tables.outbox).where(tables.outbox.c.id.in_(chosen)).values(published_at=now - age)
            )
    assert await runtime.relay.purge(now, batch_size=3) == len(old)
    async with runtime.sessions() as session:
        kept = (await session.exec(select(tables.outbox.c.id).order_by(tables.outbox.c.id))).scalars().all()
    assert list(kept) == ids[7:]


async def test_the_backlog_counts_the_unpublished_rows_and_dates_the_oldest(runtime: ServiceRuntime) -> None:
    assert runtime.relay is not None
    assert await runtime.relay.measure_backlog() == (0, None)
    started = datetime.now(UTC)
    async with runtime.transaction() as session:
        await outbox.add_events(session, [_message(f"backlog-{i}") for i in range(3)])
        conn = await session.connection()
        first = (await conn.execute(select(func.min(tables.outbox.c.id)))).scalar_one()
        await conn.execute(
            update(tables.outbox)
            .where(tables.outbox.c.id == first)
            .values(created_at=started - timedelta(minutes=5))
        )
        # a published row is not backlog
        await conn.execute(
            update(tables.outbox).where(tables.outbox.c.id == first + 1).values(published_at=started)
        )
    count, oldest = await runtime.relay.measure_backlog()
    assert count == 2
    assert oldest is not None
    assert timedelta(minutes=5) <= started - oldest < timedelta(minutes=6)
    assert runtime.relay.backlog == (count, oldest)
