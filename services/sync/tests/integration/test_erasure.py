"""A client's erasure against a real PostgreSQL and a real Kafka broker: identity's request is consumed,
no row of sync's database holds the client any more but their tombstone and the confirmation, and the
PIMS sending the client again makes a new client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import petportal_sync
from petportal_devkit.consumers import publish_envelope
from petportal_devkit.testing import DatabaseFactory, app_client, eventually, read_events
from petportal_runtime.migrations import upgrade
from petportal_schemas import ClientDataErased, ClientErasureRequested, ClientUpserted, Envelope, topics
from petportal_sync.bootstrap import Sync, bootstrap
from petportal_sync.entrypoints.app import create_app
from petportal_sync.service_layer import services
from petportal_sync.settings import SyncSettings

pytestmark = pytest.mark.integration

MIGRATIONS = Path(petportal_sync.__file__).parent / "migrations"


@dataclass(frozen=True)
class Client:
    client_id: str
    patient_id: str
    first_name: str
    last_name: str
    email: str
    phone: str  # as the PIMS writes it; stored as +1<digits>
    phone_digits: str

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": "contact",
                "client_id": self.client_id,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "email": self.email,
                "phone": self.phone,
                "version": 41,
            },
            {
                "kind": "patient",
                "client_id": self.client_id,
                "patient_id": self.patient_id,
                "name": "Pickle",
                "species": "Feline",
                "version": 5,
            },
            {"kind": "enrolment", "client_id": self.client_id, "program_code": "care"},
            {
                "kind": "appointment",
                "client_id": self.client_id,
                "appointment_id": f"appt-{self.patient_id}",
                "patient_id": self.patient_id,
                "starts_at": "2030-05-04T15:30:00Z",
                "reason": f"{self.first_name}'s cat, boosters",
            },
            {
                "kind": "vaccination",
                "client_id": self.client_id,
                "vaccination_id": f"vac-{self.patient_id}",
                "patient_id": self.patient_id,
                "name": "Rabies",
                "given_on": "2026-01-10",
            },
        ]

    def rejected(self) -> list[dict[str, Any]]:
        """Records the portal refuses, each naming the client one way: by id, by email only, by
        phone only (written another way)."""
        return [
            {"kind": "patient", "client_id": self.client_id, "patient_id": "bad", "species": "Feline"},
            {"kind": "contact", "first_name": self.first_name, "last_name": "X", "email": self.email.upper()},
            {"kind": "contact", "client_id": "", "first_name": "X", "last_name": "Y", "phone": self.phone},
        ]

    def mentioned_in(self, row: dict[str, Any]) -> bool:
        """Whether the row holds anything of the client's: ids, name, email or phone (any case)."""
        found = as_text(row).lower()
        traces = (self.client_id, self.patient_id, self.first_name, self.last_name, self.email, self.phone)
        return any(t.lower() in found for t in (*traces, self.phone_digits))


def client(tag: str, first: str, last: str, digits: str) -> Client:
    unique = uuid.uuid4().hex[:8]
    phone = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return Client(
        f"{tag}-{unique}", f"pet-{unique}", first, last, f"{first}.{last}@Example.org", phone, digits
    )


PROGRAM = {
    "kind": "program",
    "program_code": "care",
    "name": "Care",
    "call_to_action": "Join",
    "offered": True,
}


@pytest.fixture
async def settings(make_database: DatabaseFactory, kafka_bootstrap: str) -> SyncSettings:
    url = make_database("sync")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    return SyncSettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
    )


@dataclass
class Running:
    sync: Sync
    http: httpx.AsyncClient
    clinic_id: str
    auth: dict[str, str]

    async def push(self, *records: dict[str, Any], path: str = "/pims/v1/records") -> dict[str, Any]:
        response = await self.http.post(
            path, json={"pims": "ezyvet", "records": list(records)}, headers=self.auth
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def erase(self, who: Client) -> Envelope:
        """identity's request, on its topic; returns once sync has applied it."""
        request = Envelope.wrap(
            ClientErasureRequested(erasure_id=uuid.uuid4()),
            clinic_id=self.clinic_id,
            client_id=who.client_id,
            producer="identity",
        )
        await publish_envelope(self.sync.runtime.broker, request)
        await eventually(
            lambda: rows(
                self.sync.settings.database_url,
                "SELECT * FROM erased_clients WHERE client_id = :c",
                c=who.client_id,
            ),
            within=60,
        )
        return request


@pytest.fixture
async def running(settings: SyncSettings) -> AsyncIterator[Running]:
    sync = bootstrap(settings)
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    api_key = await services.register_clinic(
        sync.unit_of_work(),
        clinic_id=clinic_id,
        name="Maple Vets",
        pims="ezyvet",
        sms_number=None,
        timezone="UTC",
    )
    async with app_client(create_app(sync), "http://sync") as http:
        yield Running(sync, http, clinic_id, {"Authorization": f"Bearer {api_key}"})


async def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def every_row(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the database, by table."""
    tables = await rows(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    return {t["table_name"]: await rows(url, f'SELECT * FROM "{t["table_name"]}"') for t in tables}


def as_text(row: dict[str, Any]) -> str:
    return " ".join(v.decode() if isinstance(v, bytes) else str(v) for v in row.values())


CLIENT_TABLES = (
    "contacts",
    "patients",
    "enrolments",
    "clinical_records",
    "snapshot_seen",
    "rejected_records",
)


async def test_an_erasure_leaves_nothing_of_the_client_but_the_tombstone_and_the_confirmation(
    running: Running, settings: SyncSettings
) -> None:
    erased = client("erase-me", "Zelda", "Quixotic", "4155550199")
    kept = client("keep-me", "Bruno", "Marlowe", "4155550142")
    snapshot = (await running.http.post("/pims/v1/snapshots", headers=running.auth)).json()["snapshot_id"]
    page = await running.push(
        PROGRAM, *erased.records(), *kept.records(), path=f"/pims/v1/snapshots/{snapshot}/records"
    )
    assert (page["accepted"], page["rejected"]) == (11, [])
    body = await running.push(*erased.rejected(), *kept.rejected())
    assert (body["accepted"], len(body["rejected"])) == (0, 6)
    url = settings.database_url
    before = await every_row(url)
    for table in CLIENT_TABLES:
        assert any(erased.mentioned_in(r) for r in before[table]), table
        assert any(kept.mentioned_in(r) for r in before[table]), table

    request = await running.erase(erased)

    after = await every_row(url)
    left = [
        (table, row) for table, table_rows in after.items() for row in table_rows if erased.mentioned_in(row)
    ]
    assert sorted(table for table, _ in left) == ["erased_clients", "outbox"], left
    [tombstone] = [row for table, row in left if table == "erased_clients"]
    assert (tombstone["clinic_id"], tombstone["erased_at"]) == (running.clinic_id, request.occurred_at)
    [confirmation] = [row for table, row in left if table == "outbox"]
    assert confirmation["event_type"] == "ClientDataErased"
    assert request.event_id in {r["event_id"] for r in after["inbox"]}
    assert {r["event_type"] for r in after["inbox"]} == {"ClientErasureRequested"}

    # The other client is intact, every row of theirs; so are the clinic's own rows.
    for table in CLIENT_TABLES:
        theirs = sorted(as_text(r) for r in before[table] if not erased.mentioned_in(r))
        assert theirs, table
        assert sorted(as_text(r) for r in after[table]) == theirs, table
        assert all(kept.mentioned_in(r) for r in after[table]), table
    for table in ("clinics", "programs", "api_keys", "snapshots"):
        assert after[table] == before[table], table
    outbox = sorted(after["outbox"], key=lambda r: int(r["id"]))
    assert [r["event_type"] for r in outbox if kept.mentioned_in(r)] == [
        "ClientUpserted",
        "PatientUpserted",
        "ClientEnrolledInProgram",
        "AppointmentUpserted",
        "VaccinationRecorded",
    ]

    # The confirmation reaches the erasure topic, keyed to the client, naming sync and the request.
    [(envelope, event, record)] = await read_events(
        settings.kafka_bootstrap_servers, topics.ERASURE, clinic_id=running.clinic_id, count=1
    )
    asked = request.event()
    assert isinstance(event, ClientDataErased)
    assert isinstance(asked, ClientErasureRequested)
    assert (envelope.producer, event.service, event.erasure_id, record.key) == (
        "sync",
        "sync",
        asked.erasure_id,
        f"{running.clinic_id}:{erased.client_id}".encode(),
    )


async def test_the_pims_sending_the_erased_client_again_makes_a_new_client(
    running: Running, settings: SyncSettings
) -> None:
    who = client("again", "Ada", "Byron", "4155550111")
    assert (await running.push(PROGRAM, *who.records()))["accepted"] == 6
    # A re-send of the same records, same versions, changes nothing.
    url = settings.database_url
    count_sql = "SELECT count(*) AS n FROM outbox WHERE key = :k"
    key = f"{running.clinic_id}:{who.client_id}"
    assert (await rows(url, count_sql, k=key))[0]["n"] == 5
    assert (await running.push(*who.records()))["accepted"] == 5
    assert (await rows(url, count_sql, k=key))[0]["n"] == 5
    # (relayed before the erasure deletes the client's outbox rows)
    await read_events(
        settings.kafka_bootstrap_servers,
        topics.SYNC,
        clinic_id=running.clinic_id,
        event_type="ClientUpserted",
    )

    request = await running.erase(who)
    assert [
        r["event_type"] for r in await rows(url, "SELECT event_type FROM outbox WHERE key = :k", k=key)
    ] == ["ClientDataErased"]

    # The same records again: a new client to sync, stored and published in full.
    assert (await running.push(*who.records()))["accepted"] == 5
    contact = await rows(url, "SELECT * FROM contacts WHERE client_id = :c", c=who.client_id)
    assert [(c["first_name"], c["version"]) for c in contact] == [("Ada", 41)]
    events = await rows(url, "SELECT event_type FROM outbox WHERE key = :k ORDER BY id", k=key)
    assert [e["event_type"] for e in events] == [
        "ClientDataErased",
        "ClientUpserted",
        "PatientUpserted",
        "ClientEnrolledInProgram",
        "AppointmentUpserted",
        "VaccinationRecorded",
    ]
    # ...and what sync republishes occurred after the erasure: the other services apply it.
    found = await read_events(
        settings.kafka_bootstrap_servers,
        topics.SYNC,
        clinic_id=running.clinic_id,
        event_type="ClientUpserted",
        count=2,
    )
    upserts = [(e.occurred_at, ev) for e, ev, _ in found if e.client_id == who.client_id]
    assert len(upserts) == 2
    assert upserts[0][0] < request.occurred_at < upserts[1][0]
    assert isinstance(upserts[1][1], ClientUpserted)
    assert upserts[1][1].email == "Ada.Byron@example.org"  # (the domain in lower case)
