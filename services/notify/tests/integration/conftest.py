"""A real notify app on a fresh PostgreSQL database and the session's Kafka broker, with one clinic and
its clients delivered the way production delivers them: as events on petportal.sync.v1."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from sqlalchemy import select, text
from twilio.request_validator import RequestValidator

import petportal_notify
from petportal_devkit.sinks import DevMailbox, create_sms_sink
from petportal_devkit.testing import app_client, eventually, read_events, serve
from petportal_devkit.tokens import TokenMinter
from petportal_notify.bootstrap import Notify, bootstrap
from petportal_notify.entrypoints.app import create_app
from petportal_notify.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN, NotifySettings
from petportal_runtime.internal import internal_headers
from petportal_runtime.migrations import upgrade
from petportal_runtime.tables import outbox
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, Event, topics

# The portal's public address, which Twilio calls (and signs); the tests reach notify directly.
PUBLIC_BASE_URL = "https://portal.example.com"
MIGRATIONS = Path(petportal_notify.__file__).resolve().parent / "migrations"
T = TypeVar("T")


def random_number() -> str:
    """A valid US number (petportal_runtime.phone refuses the fictional 555 area code)."""
    return f"+1415{random.randrange(2 * 10**6, 10**7):07d}"


@dataclass
class NotifyUnderTest:
    notify: Notify
    http: httpx.AsyncClient
    kafka: str
    tokens: TokenMinter
    secret: str | None
    clinic_id: str = field(default_factory=lambda: f"clinic-{uuid.uuid4().hex[:8]}")
    clinic_number: str = field(default_factory=random_number)
    shared_phone: str = field(default_factory=random_number)  # k1 and k2 (one household)
    own_phone: str = field(default_factory=random_number)  # k3
    url: str = ""

    def staff(self, clinic_id: str | None = None) -> dict[str, str]:
        return self.tokens.staff_headers(clinic_id or self.clinic_id)

    def parent(self, client_id: str) -> dict[str, str]:
        return self.tokens.parent_headers(self.clinic_id, client_id)

    async def publish(self, *envelopes: Envelope) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.kafka)
        await producer.start()
        try:
            for envelope in envelopes:
                await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
        finally:
            await producer.stop()

    async def seed(self) -> None:
        """The clinic and four clients (k4 has no phone), published and applied."""

        def client(client_id: str, phone: str | None) -> Envelope:
            event = ClientUpserted(first_name="Ada", last_name="Lovelace", phone=phone)
            return Envelope.wrap(event, clinic_id=self.clinic_id, client_id=client_id, producer="sync")

        clinic = ClinicRegistered(name="Paws & Claws", pims="ezyvet", sms_number=self.clinic_number)
        await self.publish(
            Envelope.wrap(clinic, clinic_id=self.clinic_id, client_id=None, producer="sync"),
            client("k1", self.shared_phone),
            client("k2", self.shared_phone),
            client("k3", self.own_phone),
            client("k4", None),
        )

        async def applied() -> bool:
            clinics = await self.scalar("SELECT count(*) FROM clinics WHERE clinic_id = :c", c=self.clinic_id)
            contacts = await self.scalar(
                "SELECT count(*) FROM contacts WHERE clinic_id = :c", c=self.clinic_id
            )
            return clinics == 1 and contacts == 4

        await eventually(applied)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.notify.runtime.transaction() as session:
            return list((await session.execute(text(sql), params)).all())

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.notify.runtime.transaction() as session:
            return (await session.execute(text(sql), params)).scalar_one()

    async def outbox_events(self, event_type: str | None = None) -> list[Envelope]:
        query = select(outbox.c.value).order_by(outbox.c.id)
        if event_type:
            query = query.where(outbox.c.event_type == event_type)
        async with self.notify.runtime.transaction() as session:
            return [Envelope.from_bytes(r.value) for r in (await session.execute(query)).all()]

    async def send_sign_in_code(self, client_id: str, channel: str = "sms") -> Any:
        """Ask for a delivery as identity does, then run one dispatch round; the delivery."""
        response = await self.http.post(
            "/internal/v1/deliveries",
            json={
                "key": f"sign-in-{uuid.uuid4().hex}",
                "clinic_id": self.clinic_id,
                "client_id": client_id,
                "channel": channel,
                "template": "sign_in_code",
                "params": {"code": "123456", "link": f"{PUBLIC_BASE_URL}/sign-in/link#token=t"},
            },
            headers=internal_headers(self.notify.settings),
        )
        assert response.status_code == 202, response.text
        await self.notify.dispatcher.dispatch_once()
        found = await self.http.get(
            "/clinic/v1/deliveries", params={"client_id": client_id}, headers=self.staff()
        )
        return next(d for d in found.json()["deliveries"] if d["id"] == response.json()["id"])

    async def sms(
        self, body: str, *, from_number: str, to_number: str | None = None, signature: str | None = "auto"
    ) -> httpx.Response:
        form = {"From": from_number, "To": to_number or self.clinic_number, "Body": body}
        content = str(httpx.QueryParams(form)).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "auto" and self.secret:
            # Signed by Twilio's own library, over the public URL Twilio calls (the gateway's).
            headers["X-Twilio-Signature"] = RequestValidator(self.secret).compute_signature(
                PUBLIC_BASE_URL + "/webhooks/sms/inbound", form
            )
        elif signature not in (None, "auto"):
            headers["X-Twilio-Signature"] = signature
        return await self.http.post("/webhooks/sms/inbound", content=content, headers=headers)

    async def opted_out(self, client_id: str) -> bool:
        response = await self.http.get(f"/clinic/v1/clients/{client_id}/sms-status", headers=self.staff())
        assert response.status_code == 200, response.text
        result: bool = response.json()["sms_opt_out_indicator"]
        return result

    async def published(
        self, event_type: str, count: int, timeout: float = 20
    ) -> list[tuple[Envelope, Event]]:
        return await consume(self.kafka, topics.NOTIFY, self.clinic_id, event_type, count, timeout)


async def consume(
    bootstrap_servers: str, topic: str, clinic_id: str, event_type: str, count: int, timeout: float
) -> list[tuple[Envelope, Event]]:
    """At least `count` events of a type for a clinic, read from the topic and validated."""
    found = await read_events(
        bootstrap_servers, topic, clinic_id=clinic_id, event_type=event_type, count=count, within=timeout
    )
    assert len(found) >= count, f"expected {count} {event_type} on {topic}, got {len(found)}"
    return [(envelope, event) for envelope, event, _ in found]


NotifyFactory = Callable[..., Any]


@dataclass
class Sinks:
    """The real SMTP server (a Maildir) and the server speaking Twilio's Messages API."""

    mailbox: DevMailbox
    sms_app: Any
    sms_url: str
    token: str

    def texts(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.sms_app.state.messages if to is None or m["to"] == to]


@pytest.fixture
async def sinks(tmp_path: Path) -> AsyncIterator[Sinks]:
    token = DEV_TWILIO_AUTH_TOKEN  # what notify sends with when no auth token is configured
    app = create_sms_sink(tmp_path / "sms.jsonl", account_sid=DEV_TWILIO_ACCOUNT_SID, auth_token=token)
    with DevMailbox(tmp_path / "mail") as mailbox:
        async with serve(app) as url:
            yield Sinks(mailbox, app, url, token)


@pytest.fixture
def running_notify(make_database: Callable[[str], str], kafka_bootstrap: str, sinks: Sinks) -> NotifyFactory:
    @asynccontextmanager
    async def run(
        secret: str | None = None, *, database: str | None = None, seed: bool = True, **options: Any
    ) -> AsyncIterator[NotifyUnderTest]:
        """`database`: another notify on the same database (a restart). `options`: settings."""
        dispatch = bool(options.pop("dispatch", False))
        url = database or make_database("notify")
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        tokens = TokenMinter()
        verifier = tokens.verifier
        settings = NotifySettings(
            environment="test",
            database_url=url,
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_session_timeout_ms=2000,
            twilio_auth_token=SecretStr(secret) if secret else None,
            public_base_url=PUBLIC_BASE_URL,
            smtp_port=sinks.mailbox.port,
            twilio_api_base=sinks.sms_url,
            **options,
        )
        # The tests send by calling the dispatcher themselves, unless they ask for its loop.
        notify = bootstrap(settings, token_verifier=verifier, dispatch=dispatch)
        app = create_app(notify)
        async with app_client(app, "http://notify") as http:
            under_test = NotifyUnderTest(
                notify, http, kafka_bootstrap, tokens, secret or sinks.token, url=url
            )
            if seed:
                await under_test.seed()
            yield under_test

    return run


@pytest.fixture
async def notify(running_notify: NotifyFactory) -> AsyncIterator[NotifyUnderTest]:
    async with running_notify() as n:
        yield n
