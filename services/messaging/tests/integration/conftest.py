"""A real messaging app on a fresh PostgreSQL database and the session's Kafka broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

import petportal_messaging
from petportal_devkit.testing import app_client, eventually, read_events
from petportal_devkit.tokens import TokenMinter
from petportal_messaging.bootstrap import bootstrap
from petportal_messaging.entrypoints.app import create_app
from petportal_messaging.settings import MessagingSettings
from petportal_runtime.migrations import upgrade
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, Envelope, Event, topics

MIGRATIONS = Path(petportal_messaging.__file__).resolve().parent / "migrations"
T = TypeVar("T")


@dataclass
class Messaging:
    app: FastAPI
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    kafka: str
    clinic_id: str
    tokens: TokenMinter

    def staff(self, clinic_id: str | None = None) -> dict[str, str]:
        return self.tokens.staff_headers(clinic_id or self.clinic_id, sub=f"staff-{uuid.uuid4().hex[:6]}")

    def parent(self, client_id: str, clinic_id: str | None = None) -> dict[str, str]:
        return self.tokens.parent_headers(clinic_id or self.clinic_id, client_id)

    async def publish(self, event: Event, client_id: str | None, clinic_id: str | None = None) -> None:
        envelope = Envelope.wrap(
            event, clinic_id=clinic_id or self.clinic_id, client_id=client_id, producer="sync"
        )
        producer = AIOKafkaProducer(bootstrap_servers=self.kafka)
        await producer.start()
        try:
            await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
        finally:
            await producer.stop()

    async def add_client(self, client_id: str, clinic_id: str | None = None) -> None:
        """Publish ClientUpserted and wait until messaging knows the client."""
        clinic = clinic_id or self.clinic_id
        await self.publish(ClientUpserted(first_name="Ada", last_name="Lovelace"), client_id, clinic)

        async def known() -> bool:
            response = await self.http.get(
                f"/clinic/v1/clients/{client_id}/conversation", headers=self.staff(clinic)
            )
            return response.status_code == 200

        await eventually(known)

    async def published(
        self, event_type: str, count: int, *, timeout: float = 20
    ) -> list[tuple[Envelope, Event]]:
        """At least `count` events of this type for this test's clinic, read back from Kafka."""
        return await consume(self.kafka, topics.MESSAGING, self.clinic_id, event_type, count, timeout)


async def consume(
    bootstrap_servers: str, topic: str, clinic_id: str, event_type: str, count: int, timeout: float
) -> list[tuple[Envelope, Event]]:
    """At least `count` events of a type for a clinic, read from the topic and validated."""
    found = await read_events(
        bootstrap_servers, topic, clinic_id=clinic_id, event_type=event_type, count=count, within=timeout
    )
    assert len(found) >= count, f"expected {count} {event_type} on {topic}, got {len(found)}"
    return [(envelope, event) for envelope, event, _ in found]


@pytest.fixture
async def messaging(make_database: Callable[[str], str], kafka_bootstrap: str) -> AsyncIterator[Messaging]:
    url = make_database("messaging")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    tokens = TokenMinter()
    verifier = tokens.verifier
    settings = MessagingSettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
    )
    container = bootstrap(settings, token_verifier=verifier)
    app = create_app(container)
    async with app_client(app, "http://messaging") as http:
        yield Messaging(
            app, container.runtime, http, kafka_bootstrap, f"clinic-{uuid.uuid4().hex[:8]}", tokens
        )
