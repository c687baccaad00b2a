"""The PostgreSQL rate-limit storage against a real PostgreSQL: the `limits` fixed-window contract (run
on `limits`' own memory storage too, as the reference), and replicas sharing one database."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from limits.aio.storage import MemoryStorage, Storage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from petportal_devkit.testing import DatabaseFactory, run_sync
from petportal_runtime.migrations import create_rate_limit_table
from petportal_runtime.ratelimit import PostgresStorage, RateLimiter

pytestmark = pytest.mark.integration


async def _create_table(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(create_rate_limit_table)
    await engine.dispose()


@pytest.fixture
def database_url(make_database: DatabaseFactory) -> str:
    url = make_database("ratelimit")
    run_sync(_create_table(url))
    return url


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """Two engines on one database: two replicas of a service."""
    engines = [create_async_engine(database_url) for _ in range(2)]
    yield engines
    for engine in engines:
        await engine.dispose()


@pytest.fixture(params=["memory", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def storage(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    if kind == "memory":
        yield MemoryStorage()
        return
    engine = create_async_engine(request.getfixturevalue("database_url"))
    yield PostgresStorage(engine)
    await engine.dispose()


async def test_storage_counts_per_key_within_a_window_that_starts_at_the_first_hit(storage: Storage) -> None:
    before = time.time()
    assert await storage.get("k") == 0
    assert await storage.incr("k", 60) == 1
    assert await storage.incr("k", 60, amount=2) == 3
    assert await storage.get("k") == 3
    assert await storage.get("other") == 0
    assert before + 59 <= await storage.get_expiry("k") <= time.time() + 61
    assert await storage.check() is True


async def test_a_window_ends_and_the_count_starts_again(storage: Storage) -> None:
    limiter = RateLimiter(storage, "2/second", namespace="t")
    assert [await limiter.hit("k") for _ in range(3)] == [None, None, 1]
    await asyncio.sleep(1.1)
    assert await storage.get("LIMITER/t/x/2/1/second") == 0  # an unknown key reads as zero
    assert [await limiter.hit("k") for _ in range(3)] == [None, None, 1]


async def test_clear_forgets_one_key_and_reset_every_key(storage: Storage) -> None:
    limiter = RateLimiter(storage, "1/minute", namespace="t")
    for key in ("a", "b", "c"):
        assert await limiter.hit(key) is None
        assert await limiter.hit(key) is not None
    await limiter.clear("a")
    assert await limiter.hit("a") is None
    assert await limiter.hit("b") is not None
    assert await storage.reset() == 3
    assert await limiter.hit("b") is None
    assert await limiter.hit("c") is None


async def test_two_replicas_on_one_database_count_together(engines: list[AsyncEngine]) -> None:
    one, two = (RateLimiter(PostgresStorage(e), "3/minute", namespace="sign-in") for e in engines)
    assert await one.hit("vet@clinic.example") is None
    assert await two.hit("vet@clinic.example") is None
    assert await one.hit("vet@clinic.example") is None
    retry_after = await two.hit("vet@clinic.example")
    assert retry_after is not None
    assert 1 <= retry_after <= 60
    assert await one.hit("vet@clinic.example") is not None
    # Cleared through one replica, the key is free on the other.
    await one.clear("vet@clinic.example")
    assert await two.hit("vet@clinic.example") is None


async def test_concurrent_hits_from_two_replicas_never_exceed_the_limit(engines: list[AsyncEngine]) -> None:
    limiters = [RateLimiter(PostgresStorage(e), "5/minute", namespace="t") for e in engines]
    results = await asyncio.gather(*(limiters[i % 2].hit("k") for i in range(20)))
    assert results.count(None) == 5


async def test_rows_hold_no_identifier_and_ended_windows_are_pruned(engines: list[AsyncEngine]) -> None:
    storage = PostgresStorage(engines[0])
    await RateLimiter(storage, "5/second", namespace="short").hit("vet@clinic.example")
    await RateLimiter(storage, "5/minute", namespace="long").hit("10.1.2.3")
    async with engines[0].connect() as conn:
        keys = (await conn.execute(text("SELECT key FROM rate_limits"))).scalars().all()
    assert len(keys) == 2
    assert not [key for key in keys if "vet@" in key or "10.1.2.3" in key]
    await asyncio.sleep(1.1)
    assert await storage.prune() == 1
    assert await storage.get(next(key for key in keys if "/long/" in key)) == 1


async def test_an_unreachable_database_is_reported_by_check() -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        assert await PostgresStorage(engine).check() is False
    finally:
        await engine.dispose()
