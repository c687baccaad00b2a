"""Inbox retention against a real PostgreSQL: the running service purges expired records only."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from petportal_devkit.testing import DatabaseFactory, eventually
from petportal_runtime import inbox
from petportal_runtime.migrations import create_inbox_purge_index
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_runtime.tables import inbox as inbox_table
from petportal_runtime.tables import metadata

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(make_database: DatabaseFactory) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(make_database("inbox"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def _add(engine: AsyncEngine, consumer: str, ages_hours: list[float]) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    rows = [
        {
            "consumer": consumer,
            "event_id": uuid.uuid4(),
            "event_type": "T",
            "applied_at": now - timedelta(hours=h),
        }
        for h in ages_hours
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(inbox_table), rows)
    return [r["event_id"] for r in rows]


async def _kept(engine: AsyncEngine) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(inbox_table.c.event_id))).scalars())


async def test_the_running_service_purges_expired_inbox_records_and_keeps_recent_ones(
    engine: AsyncEngine,
) -> None:
    # Outbox rows are kept 10 h, so the inbox keeps 10 + 24 = 34 h.
    settings = ServiceSettings(
        service_name="inbox-test",
        database_url=engine.url.render_as_string(hide_password=False),
        outbox_retention_hours=10,
    )
    assert settings.inbox_retention == timedelta(hours=34)
    expired = await _add(engine, "a", [35, 100, 1000]) + await _add(engine, "b", [40])
    recent = await _add(engine, "a", [0, 12, 33]) + await _add(engine, "b", [33.5])

    runtime = ServiceRuntime(settings, broker=False)
    await runtime.start()
    try:
        await eventually(lambda: _gone(engine, expired), within=20)
    finally:
        await runtime.stop()
    assert await _kept(engine) == set(recent)


async def _gone(engine: AsyncEngine, event_ids: list[uuid.UUID]) -> bool:
    return not (await _kept(engine)) & set(event_ids)


async def test_purge_deletes_in_batches_and_one_replica_at_a_time(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    runtime = ServiceRuntime(ServiceSettings(database_url=url), broker=False)
    assert runtime.sessions is not None
    expired = await _add(engine, "c", [200.0 + i for i in range(23)])
    recent = await _add(engine, "c", [1, 2])
    purger = inbox.InboxPurger(runtime.sessions, timedelta(hours=100), batch_size=5)
    try:
        # Another replica holding the purge lock: this one skips the round.
        async with engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(inbox.PURGE_LOCK_ID)))
            assert await purger.purge() == 0
        assert await purger.purge() == len(expired)
        assert await _kept(engine) == set(recent)
    finally:
        await runtime.stop()


async def test_the_purge_index_migration_is_idempotent(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_inbox_applied_at"))  # a database from before the index
        await conn.run_sync(create_inbox_purge_index)
        await conn.run_sync(create_inbox_purge_index)
        indexes = await conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'inbox'"))
        assert "ix_inbox_applied_at" in set(indexes.scalars())
