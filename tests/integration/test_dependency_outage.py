"""A stalled or vanished dependency answers 503 with Retry-After within the configured bound, /readyz
says which, and requests succeed again once it is back, without a restart.

Real services in-process (todo on MongoDB, pets on PostgreSQL) reach their store through a proxy
that can hang or drop it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import petportal_pets
from petportal_devkit.testing import DatabaseFactory, app_client, eventually
from petportal_devkit.tokens import TokenMinter
from petportal_pets.bootstrap import bootstrap as bootstrap_pets
from petportal_pets.entrypoints.app import create_app as create_pets_app
from petportal_pets.settings import PetsSettings
from petportal_runtime.migrations import upgrade
from petportal_todo.bootstrap import bootstrap as bootstrap_todo
from petportal_todo.entrypoints.app import create_app as create_todo_app
from petportal_todo.settings import TodoSettings

from .stall import StallingProxy, postgres_through, postgres_upstream, tcp

pytestmark = pytest.mark.integration

TIMEOUT = 1.0
# At most two waits of TIMEOUT (a pooled connection's ping, then a new connection), plus slack for a
# loaded two-core machine.
BOUND = 2 * TIMEOUT + 3


class Parent:
    def __init__(self) -> None:
        tokens = TokenMinter()
        self.verifier = tokens.verifier
        self.headers = tokens.parent_headers("outage-clinic", "k1")


async def timed(
    http: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> tuple[Any, float]:
    started = time.monotonic()
    response = await http.get(path, headers=headers)
    return response, time.monotonic() - started


async def assert_unavailable(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], dependency: str
) -> None:
    response, elapsed = await timed(http, path, headers)
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": f"{dependency} temporarily unavailable"}
    assert int(response.headers["retry-after"]) > 0
    assert elapsed < BOUND, f"{path} took {elapsed:.1f}s"

    ready, elapsed = await timed(http, "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"][dependency].startswith("failing")
    assert ready.json()["checks"]["broker"] == "ok"
    assert elapsed < BOUND, f"/readyz took {elapsed:.1f}s"


async def assert_recovers(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    async def answers() -> bool:
        return (await http.get(path, headers=headers)).status_code == 200

    await eventually(answers, within=20, interval=0.2)
    assert (await http.get("/readyz")).status_code == 200


@pytest.fixture
async def mongo_proxy(mongo_url: str) -> AsyncIterator[StallingProxy]:
    parts = urlsplit(mongo_url)
    async with StallingProxy(tcp(parts.hostname or "127.0.0.1", parts.port or 27017)) as proxy:
        yield proxy


@pytest.fixture
async def postgres_proxy(make_database: DatabaseFactory) -> AsyncIterator[tuple[StallingProxy, str]]:
    url = make_database("outage")
    await asyncio.to_thread(upgrade, Path(petportal_pets.__file__).parent / "migrations", url)
    async with StallingProxy(postgres_upstream(url)) as proxy:
        yield proxy, postgres_through(url, proxy.port)


async def test_todo_answers_503_while_mongodb_stalls_and_recovers(
    mongo_proxy: StallingProxy, kafka_bootstrap: str
) -> None:
    parent = Parent()
    settings = TodoSettings(
        environment="test",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        mongodb_url=f"mongodb://127.0.0.1:{mongo_proxy.port}",
        mongodb_database=f"todo_{uuid.uuid4().hex[:10]}",
        dependency_timeout_seconds=TIMEOUT,
    )
    service = bootstrap_todo(
        settings, token_verifier=parent.verifier, consumer=f"outage-{uuid.uuid4().hex[:8]}"
    )
    async with app_client(create_todo_app(service), "http://todo") as http:
        assert (await http.get("/api/v1/todo", headers=parent.headers)).status_code == 200
        mongo_proxy.stall()
        try:
            await assert_unavailable(http, "/api/v1/todo", parent.headers, "mongodb")
            await assert_unavailable(http, "/api/v1/todo", parent.headers, "mongodb")
        finally:
            await mongo_proxy.resume()
        await assert_recovers(http, "/api/v1/todo", parent.headers)


async def test_pets_answers_503_while_postgresql_stalls_or_is_down_and_recovers(
    postgres_proxy: tuple[StallingProxy, str], kafka_bootstrap: str
) -> None:
    proxy, url = postgres_proxy
    parent = Parent()
    settings = PetsSettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        dependency_timeout_seconds=TIMEOUT,
    )
    service = bootstrap_pets(settings, token_verifier=parent.verifier)
    async with app_client(create_pets_app(service), "http://pets") as http:
        assert (await http.get("/api/v1/pets", headers=parent.headers)).status_code == 200
        proxy.stall()
        try:
            await assert_unavailable(http, "/api/v1/pets", parent.headers, "database")
            await assert_unavailable(http, "/api/v1/pets", parent.headers, "database")
        finally:
            await proxy.resume()
        await assert_recovers(http, "/api/v1/pets", parent.headers)

        await proxy.down()
        try:
            await assert_unavailable(http, "/api/v1/pets", parent.headers, "database")
        finally:
            await proxy.resume()
        await assert_recovers(http, "/api/v1/pets", parent.headers)
