"""No personal data in the logs on error paths: real services (identity and notify under uvicorn, on
real PostgreSQL and Kafka) are made to fail on an email, a phone number and a message text, and
every byte they print is searched for them.

The failures are provoked by sabotaging the services' own tables, so the errors come from the
database and its driver exactly as they would in production: a unique violation whose DETAIL names
the email, a bad value quoted in the error message itself, a check violation whose DETAIL holds the
whole row, each with the statement's parameters.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import petportal_identity
import petportal_notify
from petportal_devkit.testing import DatabaseFactory, eventually, serve
from petportal_identity.bootstrap import bootstrap as bootstrap_identity
from petportal_identity.entrypoints.app import create_app as create_identity_app
from petportal_identity.settings import IdentitySettings
from petportal_notify.bootstrap import bootstrap as bootstrap_notify
from petportal_notify.entrypoints.app import create_app as create_notify_app
from petportal_notify.settings import NotifySettings
from petportal_runtime.broker import consumer_group
from petportal_runtime.migrations import upgrade
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, topics

pytestmark = pytest.mark.integration

EMAIL = "wilhelmina.canary@example.org"
PHONE = "+14155550123"
TEXT = "the biopsy of Biscuit shows a tumour"
FIRST, LAST = "Wilhelmina", "Fotheringay"
PERSONAL = (EMAIL, PHONE, PHONE.removeprefix("+"), TEXT, FIRST, LAST)


async def execute(url: str, *statements: str) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def publish(kafka: str, *envelopes: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
    finally:
        await producer.stop()


class Output:
    """Everything the process writes to stdout and stderr, accumulated."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd
        self.text = ""

    def read(self) -> str:
        out, err = self._capfd.readouterr()
        self.text += out + err
        return self.text

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.read().splitlines() if line.startswith("{")]

    def exception_types(self) -> set[str]:
        return {e["type"] for r in self.records() for e in r.get("exception", [])}


async def skip_backlog(kafka: str, *groups: str) -> None:
    """Commit the end of every topic for these consumer groups: services started next read only what
    this test publishes, not the whole session's events on the shared broker (other tests' traffic,
    thousands of records by the time this test runs)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, so every topic's partitions are known
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics.ALL
            for partition in consumer.partitions_for_topic(topic) or ()
        ]
        assert partitions
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    for group in groups:
        committer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
        await committer.start()
        try:
            committer.assign(partitions)
            await committer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
            assert await committer.committed(partitions[0]) == ends[partitions[0]]
        finally:
            await committer.stop()


@pytest.mark.timeout(240)
async def test_errors_on_personal_data_leave_none_of_it_in_the_logs(
    make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    identity_db, notify_db = make_database("identity"), make_database("notify")
    await asyncio.to_thread(upgrade, Path(petportal_identity.__file__).parent / "migrations", identity_db)
    await asyncio.to_thread(upgrade, Path(petportal_notify.__file__).parent / "migrations", notify_db)
    await skip_backlog(kafka_bootstrap, consumer_group("identity"), consumer_group("notify"))
    common: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_session_timeout_ms": 2000,
    }
    identity = create_identity_app(
        bootstrap_identity(
            IdentitySettings(**common, database_url=identity_db, dev_key_dir=tmp_path / "keys")
        )
    )
    notify = create_notify_app(bootstrap_notify(NotifySettings(**common, database_url=notify_db)))
    output = Output(capfd)
    clinic_id, clinic_number = f"clinic-{uuid.uuid4().hex[:8]}", "+14155550100"

    # Sabotage: a second client with the same email breaks a unique index; texts are refused by a check.
    await execute(identity_db, "CREATE UNIQUE INDEX ux_contacts_email ON contacts (email)")
    await execute(notify_db, "ALTER TABLE inbound_sms ADD CONSTRAINT ck_no_texts CHECK (length(body) < 5)")

    async with serve(identity) as identity_url, serve(notify) as notify_url, httpx.AsyncClient() as http:
        clinic = ClinicRegistered(name="Maple Vets", pims="ezyvet", sms_number=clinic_number)
        await publish(
            kafka_bootstrap, Envelope.wrap(clinic, clinic_id=clinic_id, client_id=None, producer="test")
        )

        async def clinic_known() -> bool:
            # This clinic's row: notify reads the whole shared topic, other tests' clinics too.
            found = f"SELECT count(*) FROM clinics WHERE clinic_id = '{clinic_id}'"
            return bool(await execute(notify_db, found))

        await eventually(clinic_known, within=90)

        # A 500 in a route: the inbound text breaks the check, its DETAIL holds the sender and the text.
        sms = await http.post(
            f"{notify_url}/webhooks/sms/inbound", data={"From": PHONE, "To": clinic_number, "Body": TEXT}
        )
        assert sms.status_code == 500

        # Failing handlers: identity's unique violation on the email; in notify a trigger reads the
        # phone as a uuid, and PostgreSQL's error quotes the value it could not read.
        await execute(
            notify_db,
            "CREATE FUNCTION phone_as_uuid() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN PERFORM NEW.phone::uuid; RETURN NEW; END $$",
            "CREATE TRIGGER tg_phone_as_uuid BEFORE INSERT OR UPDATE ON contacts"
            " FOR EACH ROW EXECUTE FUNCTION phone_as_uuid()",
        )
        contact = ClientUpserted(first_name=FIRST, last_name=LAST, email=EMAIL, phone=PHONE)
        await publish(
            kafka_bootstrap,
            *(
                Envelope.wrap(contact, clinic_id=clinic_id, client_id=k, producer="test")
                for k in ("k1", "k2")
            ),
        )

        # Ordinary requests with personal data in their bodies.
        for _ in range(2):
            await http.post(
                f"{identity_url}/clinic/v1/auth/token", json={"email": EMAIL, "password": "not the password"}
            )

        # The consumers give up after their retries (about 11 s) and FastStream logs "<type>: <message>".
        async def handlers_failed() -> bool:
            events = [str(r.get("event")) for r in output.records()]
            return all(any(e.startswith(t) for e in events) for t in ("IntegrityError:", "DBAPIError:"))

        await eventually(handlers_failed, within=60, interval=0.5)
        # Repaired, the redelivered events apply and the services stop without waiting on retries.
        await execute(identity_db, "DROP INDEX ux_contacts_email")
        await execute(notify_db, "DROP TRIGGER tg_phone_as_uuid ON contacts")

        async def applied() -> bool:
            count = "SELECT count(*) FROM contacts WHERE client_id IN ('k1', 'k2')"
            return await execute(identity_db, count) == 2 and await execute(notify_db, count) == 2

        await eventually(applied, within=30, interval=0.5)

    logged = output.read()
    leaked = [value for value in PERSONAL if value in logged]
    assert not leaked, f"personal data in the logs: {leaked}"

    records = output.records()
    assert any(r["event"].startswith("Exception in ASGI application") for r in records)
    assert output.exception_types() >= {
        "asyncpg.exceptions.CheckViolationError",
        "asyncpg.exceptions.UniqueViolationError",
        "asyncpg.exceptions.InvalidTextRepresentationError",
    }
    request_lines = [r for r in records if r["event"] == "request"]
    assert {(r["route"], r["status"]) for r in request_lines} >= {
        ("/webhooks/sms/inbound", 500),
        ("/clinic/v1/auth/token", 401),
    }
