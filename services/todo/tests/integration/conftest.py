from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from petportal_devkit.testing import app_client
from petportal_devkit.tokens import TokenMinter
from petportal_schemas import Envelope, Event
from petportal_todo.bootstrap import TodoService, bootstrap
from petportal_todo.entrypoints.app import create_app
from petportal_todo.settings import TodoSettings

T = TypeVar("T")


@pytest.fixture(scope="session")
def keys() -> TokenMinter:
    return TokenMinter()


@pytest.fixture
def todo_settings(kafka_bootstrap: str, mongo_url: str) -> TodoSettings:
    return TodoSettings(
        environment="test",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        mongodb_url=mongo_url,
        mongodb_database=f"todo_{uuid.uuid4().hex[:10]}",
    )


@dataclass
class RunningTodo:
    service: TodoService
    app: FastAPI
    http: httpx.AsyncClient
    consumer: str


@pytest.fixture
def start_todo(todo_settings: TodoSettings, keys: TokenMinter) -> Callable[..., Any]:
    """Returns an async context manager factory starting the real app (consumer included)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start(consumer: str | None = None) -> AsyncIterator[RunningTodo]:
        name = consumer or f"todo-test-{uuid.uuid4().hex[:8]}"
        service = bootstrap(todo_settings, token_verifier=keys.verifier, consumer=name)
        app = create_app(service)
        async with app_client(app, "http://todo") as http:
            yield RunningTodo(service, app, http, name)

    return start


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    yield producer
    await producer.stop()


Publish = Callable[..., Awaitable[Envelope]]


@pytest.fixture
def publish(producer: AIOKafkaProducer) -> Publish:
    async def publish(event: Event, clinic_id: str, client_id: str | None = None, **kw: Any) -> Envelope:
        envelope = Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer="test", **kw)
        await send_envelope(producer, envelope)
        return envelope

    return publish


async def send_envelope(producer: AIOKafkaProducer, envelope: Envelope) -> None:
    await producer.send_and_wait(
        envelope.topic,
        envelope.to_bytes(),
        key=envelope.key.encode(),
        headers=[("event_type", envelope.event_type.encode())],
    )


@pytest.fixture
def send() -> Callable[[AIOKafkaProducer, Envelope], Awaitable[None]]:
    return send_envelope


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float = 30, what: str = ""
) -> T:
    """Poll `probe` until `done(result)`, failing after `timeout` seconds with the last result."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'condition'}; last: {result!r}")
        await asyncio.sleep(0.1)


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[Any]]:
    return eventually
