"""identity against a real PostgreSQL and Kafka: the harness the sign-in and erasure tests share.

Codes are handed to a recorder in place of notify; what it receives is checked against notify's own
OpenAPI (the request schema of `POST /internal/v1/deliveries`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from jsonschema.validators import Draft202012Validator

import petportal_identity
from petportal_devkit.contracts import openapi_snapshot
from petportal_devkit.testing import DatabaseFactory, app_client, eventually
from petportal_identity.bootstrap import Identity, bootstrap
from petportal_identity.entrypoints.app import create_app
from petportal_identity.settings import IdentitySettings
from petportal_runtime.auth import ClientRef
from petportal_runtime.migrations import upgrade
from petportal_schemas import ClientUpserted, Envelope

MIGRATIONS = Path(petportal_identity.__file__).parent / "migrations"


def _delivery_request_schema() -> Draft202012Validator:
    document = openapi_snapshot("notify")
    body = document["paths"]["/internal/v1/deliveries"]["post"]["requestBody"]["content"]["application/json"]
    return Draft202012Validator({**body["schema"], "components": document["components"]})


@dataclass
class Outbox:
    """What identity handed to notify, as notify's delivery API would receive it."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    schema: Draft202012Validator = field(default_factory=_delivery_request_schema)

    async def send(
        self, key: str, client: ClientRef, channel: str, code: str, link: str, minutes: int
    ) -> None:
        request = {
            "key": key,
            "clinic_id": client.clinic_id,
            "client_id": client.client_id,
            "channel": channel,
            "template": "sign_in_code",
            "params": {"code": code, "link": link, "minutes": minutes},
        }
        self.schema.validate(request)
        self.sent.append(request)

    async def send_erasure_code(
        self, key: str, client: ClientRef, channel: str, code: str, minutes: int
    ) -> None:
        request = {
            "key": key,
            "clinic_id": client.clinic_id,
            "client_id": client.client_id,
            "channel": channel,
            "template": "erasure_code",
            "params": {"code": code, "minutes": minutes},
        }
        self.schema.validate(request)
        self.sent.append(request)


@dataclass
class Harness:
    http: httpx.AsyncClient
    outbox: Outbox
    settings: IdentitySettings
    identity: Identity
    clinic_a: str = field(default_factory=lambda: f"clinic-{uuid.uuid4().hex[:8]}")
    clinic_b: str = field(default_factory=lambda: f"clinic-{uuid.uuid4().hex[:8]}")
    email: str = field(default_factory=lambda: f"ann.{uuid.uuid4().hex[:6]}@example.com")
    phone: str = field(default_factory=lambda: f"+1415{uuid.uuid4().int % 8_000_000 + 2_000_000:07d}")

    async def start(self, identifier: str, clinic_id: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"identifier": identifier}
        if clinic_id:
            body["clinic_id"] = clinic_id
        return await self.http.post("/api/v1/auth/sign-in", json=body)

    async def code_for(self, response: httpx.Response) -> tuple[str, str]:
        assert response.status_code == 202, response.text
        await asyncio.sleep(0)
        sent = self.outbox.sent[-1]
        return response.json()["challenge_id"], sent["params"]["code"]

    async def verify(self, challenge_id: str, code: str, **extra: Any) -> httpx.Response:
        return await self.http.post(
            "/api/v1/auth/sign-in/verify", json={"challenge_id": challenge_id, "code": code, **extra}
        )


@pytest.fixture
async def harness(
    make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    url = make_database("identity")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    settings = IdentitySettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        dev_key_dir=tmp_path / "keys",
        portal_public_url="https://portal.example.com",
    )
    outbox = Outbox()
    identity = bootstrap(settings, send_code=outbox.send, send_erasure_code=outbox.send_erasure_code)
    app = create_app(identity)
    async with app_client(app, "http://identity") as http:
        h = Harness(http, outbox, settings, identity)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for clinic_id, client_id, email, phone in (
                (h.clinic_a, "A-1", h.email.upper(), h.phone),  # the PIMS kept capitals
                (h.clinic_b, "B-7", h.email, None),
            ):
                event = ClientUpserted(first_name="Ann", last_name="Lee", email=email, phone=phone)
                envelope = Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer="sync")
                await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
        finally:
            await producer.stop()

        # Wait for the contacts through the sign-in itself (this app has no dev-token endpoint).
        async def applied() -> bool:
            response = await h.start(h.email)
            return response.status_code == 202 and len(outbox.sent) > 0

        assert await eventually(applied)
        outbox.sent.clear()
        yield h
