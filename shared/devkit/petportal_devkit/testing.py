"""pytest fixtures for real infrastructure; register with `pytest_plugins = ["petportal_devkit.testing"]`.

Each fixture uses an existing server when its environment variable is set, and otherwise starts an
embedded one for the session (`petportal_devkit.devinfra`), so tests never skip for lack of infra:

- `kafka_bootstrap` (session; `KAFKA_BOOTSTRAP_SERVERS`): `host:port`, the project topics exist.
- `postgres_server_url` (session; `TEST_DATABASE_URL`): a server URL such as
  `postgresql://postgres@127.0.0.1:5432/postgres` (superuser; the path names the maintenance db).
- `make_database` (function): factory returning a fresh database's `postgresql+asyncpg://` URL.
- `mongo_url` (session; `TEST_MONGODB_URL`): `mongodb://host:port`.

Note for consumers on the embedded broker (Tansu): joining a consumer group takes about half the
consumer's `session_timeout_ms` (5 s with the default 10 s).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI

from petportal_schemas import Envelope, Event, validate_message

from .devinfra import (
    LocalKafka,
    LocalMongo,
    LocalPostgres,
    create_database,
    create_topics,
    database_url,
    drop_database,
    validate_database_name,
)

__all__ = [
    "DatabaseFactory",
    "app_client",
    "eventually",
    "kafka_bootstrap",
    "make_database",
    "mongo_url",
    "postgres_server_url",
    "read_events",
    "run_sync",
    "serve",
    "wait_for",
]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from sync code, even while this thread's event loop is running."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="petportal-testing")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka broker on which the `petportal_schemas.topics.ALL` topics exist."""
    if external := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        run_sync(create_topics(external))
        yield external
        return
    with LocalKafka() as kafka:
        run_sync(create_topics(kafka.bootstrap))
        yield kafka.bootstrap


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server (superuser, maintenance database); see `make_database`."""
    if external := os.environ.get("TEST_DATABASE_URL"):
        yield external
        return
    datadir = Path(tempfile.mkdtemp(prefix="petportal-pg-"))
    try:
        with LocalPostgres(datadir, durable=False) as server:
            yield server.server_url
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


class DatabaseFactory(Protocol):
    def __call__(self, prefix: str = "test") -> str:
        """Create an empty database named `<prefix>_<random>`; returns its postgresql+asyncpg URL."""
        ...


@pytest.fixture
def make_database(postgres_server_url: str) -> Iterator[DatabaseFactory]:
    """Factory for fresh databases on `postgres_server_url`, dropped (WITH FORCE) after the test."""
    created: list[str] = []

    def make(prefix: str = "test") -> str:
        name = validate_database_name(f"{prefix}_{uuid.uuid4().hex[:12]}")
        run_sync(create_database(postgres_server_url, name))
        created.append(name)
        return database_url(postgres_server_url, name)

    yield make
    for name in created:
        run_sync(drop_database(postgres_server_url, name))


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a MongoDB-compatible server (nx-27017 unless TEST_MONGODB_URL is set)."""
    if external := os.environ.get("TEST_MONGODB_URL"):
        yield external
        return
    with LocalMongo(tmp_path_factory.mktemp("mongo")) as mongo:
        yield mongo.url


async def read_events(
    bootstrap: str,
    topic: str,
    *,
    clinic_id: str,
    event_type: str | None = None,
    count: int = 1,
    within: float = 30,
) -> list[tuple[Envelope, Event, ConsumerRecord[Any, Any]]]:
    """Events of one clinic on `topic` (from the beginning), each validated against its contract.

    Topics are shared by every test of a session, and some tests put malformed messages on them on
    purpose, so records are selected by their partition key (`clinic_id[:client_id]`) first; every
    selected record must then be a valid event.
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[Envelope, Event, ConsumerRecord[Any, Any]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for record in (r for records in batches.values() for r in records):
                key = (record.key or b"").decode(errors="replace")
                if key.split(":", 1)[0] != clinic_id:
                    continue
                envelope, event = validate_message(record.value)
                if event_type is None or envelope.event_type == event_type:
                    found.append((envelope, event, record))
    finally:
        await consumer.stop()
    return found


async def passes_when_woken_mid_pass(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    wake: Callable[[], None],
    replace_pass: Callable[[Callable[..., Awaitable[int]]], None],
) -> int:
    """How many passes a background worker's `run(stop)` has made once a second one began, when
    `wake()` is called during its first pass (the pass, replaced through `replace_pass`, does nothing
    else and finds nothing to do). Fails unless the second pass begins within 10 s: give the worker a
    longer poll interval, so that only the wake-up can start it that soon."""
    passes = 0
    second_pass = asyncio.Event()

    async def one_pass(*_args: object) -> int:
        nonlocal passes
        passes += 1
        if passes == 1:
            wake()  # work given while the pass runs, after it looked for any
        else:
            second_pass.set()
        return 0

    replace_pass(one_pass)
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        await asyncio.wait_for(second_pass.wait(), 10)
    finally:
        stop.set()
        wake()
        await asyncio.wait_for(task, 10)
    return passes


def wait_for(check: Callable[[], Any], *, timeout: float = 30, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout}s; last seen: {last!r}")


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 20, interval: float = 0.05) -> T:
    """Poll the async `check` until it returns something truthy; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def app_client(app: FastAPI, base_url: str = "http://service") -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in-process, with the app's lifespan (broker, relay, consumers) running
    and its consumers in their groups."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http,
    ):
        await _consumers_started(app)
        yield http


async def _consumers_started(app: Any) -> None:
    # A service serves HTTP before its consumers have joined their groups (ServiceRuntime.start);
    # tests publish right after start-up and wait for what they publish to be applied.
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    if runtime is not None:
        await asyncio.wait_for(runtime.consumers_started(), 60)


@asynccontextmanager
async def serve(app: Any, *, startup_timeout: float = 30, **config: Any) -> AsyncIterator[str]:
    """`app` under a real uvicorn (`config` added to its settings) on a free loopback port, as
    `python -m petportal_<svc> serve` runs it; yields its base URL and stops it afterwards."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        await _consumers_started(app)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, startup_timeout)
        sock.close()
