"""sync against a real PostgreSQL and a real Kafka broker, through its ASGI app."""

import argparse
import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

import petportal_sync
from petportal_devkit.testing import DatabaseFactory, app_client, read_events
from petportal_runtime.migrations import upgrade
from petportal_runtime.tables import outbox
from petportal_schemas import ClinicRegistered, topics
from petportal_sync.bootstrap import bootstrap
from petportal_sync.entrypoints.app import create_app
from petportal_sync.entrypoints.cli import create_clinic
from petportal_sync.settings import SyncSettings

pytestmark = pytest.mark.integration

MIGRATIONS = Path(petportal_sync.__file__).parent / "migrations"


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


async def new_clinic(settings: SyncSettings, capsys: pytest.CaptureFixture[str], clinic_id: str) -> str:
    args = argparse.Namespace(
        clinic_id=clinic_id, name="Maple Vets", pims="ezyvet", sms_number="(415) 555-0100", timezone="UTC"
    )
    assert await create_clinic(args, settings) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["clinic_id"] == clinic_id
    return str(printed["api_key"])


@pytest.fixture
async def client(settings: SyncSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(bootstrap(settings))
    async with app_client(app, "http://sync") as http:
        yield http


async def events_for(bootstrap: str, clinic_id: str, expected: int, timeout: float = 30) -> list[Any]:
    """Envelopes of `clinic_id` on the sync topic, once `expected` of them are there (bounded wait)."""
    return await read_events(bootstrap, topics.SYNC, clinic_id=clinic_id, count=expected, within=timeout)


async def count(url: str, sql: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def unpublished_outbox(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"pims": "ezyvet", "records": list(records)}


GOOD = [
    {"kind": "contact", "client_id": "c1", "first_name": "Ann", "last_name": "Lee", "phone": "4155552671"},
    {"kind": "patient", "client_id": "c1", "patient_id": "p1", "name": "Rex", "species": "Canine"},
    {
        "kind": "program",
        "program_code": "care-plan",
        "name": "Care plan",
        "call_to_action": "Join",
        "offered": True,
    },
    {"kind": "enrolment", "client_id": "c1", "program_code": "care-plan"},
]
BAD_PHONE = {"kind": "contact", "client_id": "c2", "first_name": "Bo", "last_name": "Ng", "phone": "12"}


async def test_batch_applies_good_records_publishes_them_and_keeps_the_bad_one(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    api_key = await new_clinic(settings, capsys, clinic_id)
    auth = {"Authorization": f"Bearer {api_key}"}

    response = await client.post(
        "/pims/v1/records", json=batch(*GOOD[:2], BAD_PHONE, *GOOD[2:]), headers=auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 4
    metrics = (await client.get("/metrics")).text
    assert re.search(r'petportal_sync_accepted_records_total\{[^}]*pims="ezyvet"', metrics)
    assert body["rejected"] == [
        {"index": 2, "kind": "contact", "errors": [{"field": "phone", "message": "not a valid phone number"}]}
    ]

    # Good records are stored; the bad one is not, but is kept for inspection.
    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM contacts") == 1
    assert await count(url, "SELECT count(*) FROM patients WHERE client_id = 'c1'") == 1
    assert await count(url, "SELECT count(*) FROM enrolments") == 1
    rejections = (await client.get("/pims/v1/rejections", headers=auth)).json()["rejections"]
    assert len(rejections) == 1
    assert rejections[0]["record"] == BAD_PHONE
    assert rejections[0]["index"] == 2
    assert rejections[0]["errors"][0]["field"] == "phone"

    # Their events (and the clinic's registration) reach the topic, valid and keyed by client.
    found = await events_for(settings.kafka_bootstrap_servers, clinic_id, expected=5)
    types = [envelope.event_type for envelope, _, _ in found]
    assert sorted(types) == sorted(
        ["ClinicRegistered", "ClientUpserted", "PatientUpserted", "ProgramOffered", "ClientEnrolledInProgram"]
    )
    by_type = {envelope.event_type: (envelope, event, record) for envelope, event, record in found}
    envelope, event, record = by_type["ClientUpserted"]
    assert envelope.client_id == "c1"
    assert envelope.producer == "sync"
    assert event.phone == "+14155552671"  # type: ignore[attr-defined]
    assert record.key == f"{clinic_id}:c1".encode()
    registered = by_type["ClinicRegistered"]
    assert isinstance(registered[1], ClinicRegistered)
    assert registered[1].sms_number == "+14155550100"
    assert registered[0].client_id is None
    assert registered[2].key == clinic_id.encode()
    assert by_type["ProgramOffered"][0].client_id is None
    assert all(h[0] != "event_type" or h[1] for h in record.headers)

    # The connector re-sends the same data: accepted again, but nothing new is published.
    events_before = await count(url, "SELECT count(*) FROM outbox")
    again = await client.post("/pims/v1/records", json=batch(*GOOD), headers=auth)
    assert again.json() == {"accepted": 4, "rejected": []}
    assert await count(url, "SELECT count(*) FROM outbox") == events_before

    # A real change is published.
    changed = {**GOOD[0], "last_name": "Lee-Smith"}
    assert (await client.post("/pims/v1/records", json=batch(changed), headers=auth)).json()["accepted"] == 1
    assert await count(url, "SELECT count(*) FROM outbox") == events_before + 1


async def test_a_batchs_events_are_staged_in_record_order_with_the_requests_trace(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    api_key = await new_clinic(settings, capsys, clinic_id)
    trace_id = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {api_key}", "traceparent": f"00-{trace_id}-{'b' * 16}-01"}
    contacts = [
        {"kind": "contact", "client_id": f"t{i}", "first_name": "Ann", "last_name": f"Lee{i}"}
        for i in range(30)
    ]

    response = await client.post("/pims/v1/records", json=batch(*contacts), headers=headers)
    assert response.json() == {"accepted": 30, "rejected": []}

    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.key, outbox.c.traceparent, outbox.c.value)
                    .where(outbox.c.event_type == "ClientUpserted", outbox.c.key.startswith(clinic_id))
                    .order_by(outbox.c.id)
                )
            ).all()
    finally:
        await engine.dispose()
    # One row per event, in the order of the records (the relay sends them in id order).
    assert [key for key, _, _ in rows] == [f"{clinic_id}:t{i}" for i in range(30)]
    for _key, traceparent, value in rows:
        assert traceparent is not None
        assert traceparent.split("-")[1] == trace_id
        assert json.loads(value)["trace"]["traceparent"] == traceparent


async def test_patient_of_an_unknown_client_is_rejected_with_a_clear_error(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    api_key = await new_clinic(settings, capsys, f"clinic-{uuid.uuid4().hex[:8]}")
    orphan = {"kind": "patient", "client_id": "ghost", "patient_id": "p9", "name": "Tom", "species": "Feline"}
    response = await client.post(
        "/pims/v1/records",
        json=batch(orphan, {"kind": "invoice"}),
        headers={"Authorization": f"Bearer {api_key}"},
    )
    body = response.json()
    assert body["accepted"] == 0
    assert [(r["index"], r["kind"], r["errors"][0]["field"]) for r in body["rejected"]] == [
        (0, "patient", "client_id"),
        (1, "invoice", "kind"),
    ]
    assert "unknown client ghost" in body["rejected"][0]["errors"][0]["message"]
    assert await count(settings.database_url, "SELECT count(*) FROM rejected_records") == 2
    assert await count(settings.database_url, "SELECT count(*) FROM patients") == 0
    # ops see the rejects on the dashboard; an unknown kind does not become a label of its own
    metrics = (await client.get("/metrics")).text
    assert 'petportal_sync_rejected_records_total{kind="patient",' in metrics
    assert 'petportal_sync_rejected_records_total{kind="unknown",' in metrics
    assert 'kind="invoice"' not in metrics
    # and per PIMS: the clinic's, registered as ezyvet
    assert re.search(r'petportal_sync_rejected_records_total\{kind="patient",[^}]*pims="ezyvet"', metrics)


async def test_api_key_and_batch_shape_are_enforced(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_a = f"clinic-{uuid.uuid4().hex[:8]}"
    key_a = await new_clinic(settings, capsys, clinic_a)
    key_b = await new_clinic(settings, capsys, f"clinic-{uuid.uuid4().hex[:8]}")

    assert (await client.post("/pims/v1/records", json=batch(*GOOD))).status_code == 401
    wrong = {"Authorization": "Bearer ppk_" + "x" * 43}
    response = await client.post("/pims/v1/records", json=batch(*GOOD), headers=wrong)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/pims/v1/rejections", headers=wrong)).status_code == 401

    auth = {"Authorization": f"Bearer {key_a}"}
    for bad_body in (
        {"records": []},
        {"pims": "notapims", "records": []},
        {"pims": "ezyvet", "records": "nope"},
        {"pims": "ezyvet", "records": [1, 2]},
        {"pims": "ezyvet", "records": [{}] * 5001},
    ):
        response = await client.post("/pims/v1/records", json=bad_body, headers=auth)
        assert response.status_code == 422, bad_body
        assert response.json()["detail"][0]["loc"][0] == "body"

    # Each clinic only sees its own rejections.
    await client.post("/pims/v1/records", json=batch(BAD_PHONE), headers=auth)
    assert len((await client.get("/pims/v1/rejections", headers=auth)).json()["rejections"]) == 1
    other = await client.get("/pims/v1/rejections", headers={"Authorization": f"Bearer {key_b}"})
    assert other.json() == {"rejections": []}
    assert (
        await count(settings.database_url, f"SELECT count(*) FROM contacts WHERE clinic_id='{clinic_a}'") == 0
    )


async def test_create_clinic_stores_only_the_key_hash_and_refuses_duplicates(
    settings: SyncSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    api_key = await new_clinic(settings, capsys, "clinic-dup")
    assert api_key.startswith("ppk_")
    url = settings.database_url
    assert await count(url, f"SELECT count(*) FROM api_keys WHERE key_hash LIKE '%{api_key[4:]}%'") == 0
    assert await count(url, "SELECT count(*) FROM api_keys WHERE clinic_id = 'clinic-dup'") == 1
    assert await count(url, "SELECT count(*) FROM outbox WHERE event_type = 'ClinicRegistered'") == 1
    assert await unpublished_outbox(url) == 1  # the running service's relay publishes it

    args = argparse.Namespace(
        clinic_id="clinic-dup", name="Again", pims="ezyvet", sms_number="4155550100", timezone="UTC"
    )
    assert await create_clinic(args, settings) == 1
    assert "clinic-dup already exists" in capsys.readouterr().err
    bad = argparse.Namespace(clinic_id="c x", name="X", pims="ezyvet", sms_number="12", timezone="Mars/Base")
    assert await create_clinic(bad, settings) == 2
    err = capsys.readouterr().err
    assert "clinic_id" in err
    assert "sms_number" in err
    assert "timezone" in err
    assert await count(url, "SELECT count(*) FROM clinics") == 1


def raw_batch(*records: Any, pims: Any = "ezyvet") -> bytes:
    """A batch as JSON text with what `httpx`'s json= refuses to write: NaN, Infinity, lone surrogates."""
    return json.dumps({"pims": pims, "records": list(records)}, ensure_ascii=True).encode()


JSON = {"Content-Type": "application/json"}


async def test_records_with_refused_text_or_numbers_are_rejected_alone_and_the_rest_applied(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {await new_clinic(settings, capsys, clinic_id)}", **JSON}
    nul = {"kind": "contact", "client_id": "c2", "first_name": "Bo\x00", "last_name": "Ng"}
    nan = {**GOOD[1], "patient_id": "p2", "weight_kg": float("nan")}
    infinite = {**GOOD[1], "patient_id": "p3", "weight_kg": float("inf")}
    surrogate = {**GOOD[1], "patient_id": "p4", "name": "Rex\ud800"}
    control = {**GOOD[0], "client_id": "c3", "last_name": "Lee\x1b[31m"}
    body = raw_batch(GOOD[0], nul, nan, GOOD[1], infinite, surrogate, GOOD[2], control, GOOD[3])

    response = await client.post("/pims/v1/records", content=body, headers=auth)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 4
    assert [
        (r["index"], r["kind"], [(e["field"], e["message"]) for e in r["errors"]]) for r in result["rejected"]
    ] == [
        (1, "contact", [("first_name", "String should not contain NUL (U+0000)")]),
        (2, "patient", [("weight_kg", "Input should be a finite number")]),
        (4, "patient", [("weight_kg", "Input should be a finite number")]),
        (5, "patient", [("name", "String should not contain a lone surrogate (U+D800)")]),
        (7, "contact", [("last_name", "String should not contain a control character (U+001B)")]),
    ]

    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM contacts") == 1
    assert await count(url, "SELECT count(*) FROM patients") == 1
    assert await count(url, "SELECT count(*) FROM enrolments") == 1
    found = await events_for(settings.kafka_bootstrap_servers, clinic_id, expected=5)
    assert sorted(envelope.event_type for envelope, _, _ in found) == sorted(
        ["ClinicRegistered", "ClientUpserted", "PatientUpserted", "ProgramOffered", "ClientEnrolledInProgram"]
    )

    # Every rejected record is kept, as the JSON text that was sent (escaped), for inspection.
    rejections = (await client.get("/pims/v1/rejections", headers=auth)).json()["rejections"]
    by_index = {r["index"]: r for r in rejections}
    assert sorted(by_index) == [1, 2, 4, 5, 7]
    assert all(r["record"] is None for r in rejections)
    assert '"first_name": "Bo\\u0000"' in by_index[1]["raw"]
    assert '"weight_kg": NaN' in by_index[2]["raw"]
    assert '"weight_kg": Infinity' in by_index[4]["raw"]
    assert '"name": "Rex\\ud800"' in by_index[5]["raw"]
    assert json.loads(by_index[5]["raw"]) == surrogate


async def test_refused_input_outside_the_records_or_too_big_refuses_the_batch(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = {"Authorization": f"Bearer {await new_clinic(settings, capsys, f'clinic-{uuid.uuid4().hex[:8]}')}"}
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    cases: list[tuple[bytes, dict[str, str], int, list[Any] | None]] = [
        (raw_batch(GOOD[0], pims="ezy\x00vet"), JSON, 422, ["body", "pims"]),
        (raw_batch(GOOD[0], pims="\udc00"), JSON, 422, ["body", "pims"]),
        (raw_batch(GOOD[0], pims=float("nan")), JSON, 422, ["body", "pims"]),
        (raw_batch(GOOD[0], {**GOOD[1], "name": deep}), JSON, 422, None),
        (b'{"pims": "ezyvet", "records": [' + b"[" * 5000 + b"]" * 5000 + b"]}", JSON, 400, None),
        (b'{"pims": "ezyvet", "records": [{"kind": "\xff"}]}', JSON, 400, None),
        (raw_batch(*[GOOD[0]] * 100_000), JSON, 413, None),
        (raw_batch(GOOD[0]), {"Content-Type": "text/plain"}, 415, None),
        (b"pims=ezyvet&records=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, None),
    ]
    for body, headers, status, loc in cases:
        response = await client.post("/pims/v1/records", content=body, headers={**auth, **headers})
        assert response.status_code == status, (body[:80], response.text)
        if loc is not None:
            assert response.json()["detail"][0]["loc"] == loc
    for query in ("limit=%00", "limit=NaN", "limit=Infinity", "limit=1e999", "limit=%ED%A0%80", "x=%07"):
        response = await client.get(f"/pims/v1/rejections?{query}", headers=auth)
        assert response.status_code == 422, query
        assert response.json()["detail"][0]["loc"][0] == "query"
    assert await count(settings.database_url, "SELECT count(*) FROM contacts") == 0
    assert await count(settings.database_url, "SELECT count(*) FROM rejected_records") == 0


async def test_the_whole_clinical_record_is_stored_published_once_and_order_safe(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {await new_clinic(settings, capsys, clinic_id)}"}
    appointment = {
        "kind": "appointment",
        "client_id": "c1",
        "appointment_id": "a1",
        "patient_id": "p1",
        "starts_at": "2030-05-04T15:30:00Z",
        "version": 2,
    }
    records = [
        *GOOD[:2],
        appointment,
        {
            "kind": "reminder",
            "client_id": "c1",
            "reminder_id": "r1",
            "patient_id": "p1",
            "service": "Rabies",
            "due_on": "2030-06-01",
        },
        {
            "kind": "vaccination",
            "client_id": "c1",
            "vaccination_id": "v1",
            "patient_id": "p1",
            "name": "DHPP",
            "given_on": "2029-06-01",
        },
        {
            "kind": "medication",
            "client_id": "c1",
            "prescription_id": "m1",
            "patient_id": "p1",
            "name": "Carprofen",
            "refills_remaining": 1,
            "prescribed_on": "2030-01-01",
        },
        {"kind": "clinic_settings", "booking_mode": "direct", "live_chat": True},
    ]
    response = await client.post("/pims/v1/records", json=batch(*records), headers=auth)
    assert response.json() == {"accepted": 7, "rejected": []}
    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM clinical_records") == 5
    outbox_rows = "SELECT count(*) FROM outbox"
    before = await count(url, outbox_rows)
    # The same batch again, and an older version of the appointment: nothing new is published.
    assert (await client.post("/pims/v1/records", json=batch(*records), headers=auth)).json()["accepted"] == 7
    older = {**appointment, "version": 1, "reason": "stale"}
    assert (await client.post("/pims/v1/records", json=batch(older), headers=auth)).json()["accepted"] == 1
    assert await count(url, outbox_rows) == before
    # Booked: the reminder ends; the contact leaves with its pets and records.
    done = {**records[3], "status": "booked"}
    gone = {"kind": "contact_removed", "client_id": "c1"}
    assert (await client.post("/pims/v1/records", json=batch(done, gone), headers=auth)).json()[
        "accepted"
    ] == 2
    assert await count(url, "SELECT count(*) FROM clinical_records WHERE client_id = 'c1'") == 0
    assert await count(url, "SELECT count(*) FROM patients") == 0
    found = await events_for(settings.kafka_bootstrap_servers, clinic_id, expected=11)
    # One client's events share a partition, so they are in order (clinic-wide ones are on another).
    mine = [envelope.event_type for envelope, _, _ in found if envelope.client_id == "c1"]
    assert mine[-2:] == ["ServiceReminderCompleted", "ClientRemoved"]


SAMPLES = Path(__file__).resolve().parents[4] / "docs" / "pims" / "samples"


@pytest.mark.parametrize("pims", ["avimark", "cornerstone", "ezyvet", "impromed", "pulse"])
async def test_a_pims_sample_lands_through_its_native_endpoint_once(
    pims: str, settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    args = argparse.Namespace(
        clinic_id=clinic_id, name="Maple Vets", pims=pims, sms_number="(415) 555-0100", timezone="UTC"
    )
    assert await create_clinic(args, settings) == 0
    auth = {"Authorization": f"Bearer {json.loads(capsys.readouterr().out)['api_key']}"}
    records = json.loads((SAMPLES / f"{pims}.json").read_text())["records"]
    patient = records[1]
    if "table" in patient:  # a row with none of its fields
        bad = {"table": patient["table"], "row": {}}
    elif "animal" in patient:
        bad = {"animal": {**patient["animal"], "name": ""}}
    else:
        bad = {**patient, "name": ""}
    response = await client.post(f"/pims/v1/{pims}/records", json={"records": [*records, bad]}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == len(records)
    [rejection] = body["rejected"]
    assert rejection["index"] == len(records)
    url = settings.database_url
    before = await count(url, "SELECT count(*) FROM outbox")
    assert before >= len(records)  # registration + one event per record
    again = await client.post(f"/pims/v1/{pims}/records", json={"records": records}, headers=auth)
    assert again.json() == {"accepted": len(records), "rejected": []}
    assert await count(url, "SELECT count(*) FROM outbox") == before
    # The clinic's rejections keep the record as the PIMS sent it.
    kept = (await client.get("/pims/v1/rejections", headers=auth)).json()["rejections"]
    assert [r["record"] for r in kept] == [bad]
    other = "ezyvet" if pims != "ezyvet" else "pulse"
    wrong = await client.post(f"/pims/v1/{other}/records", json={"records": records}, headers=auth)
    assert wrong.status_code == 409
    assert pims in wrong.json()["detail"]
    # A snapshot's page in the native shapes counts as the snapshot's, like a canonical one.
    snapshot = (await client.post("/pims/v1/snapshots", headers=auth)).json()["snapshot_id"]
    page = await client.post(
        f"/pims/v1/{pims}/snapshots/{snapshot}/records", json={"records": records}, headers=auth
    )
    assert page.json() == {"accepted": len(records), "rejected": []}
    done = await client.post(f"/pims/v1/snapshots/{snapshot}/complete", json={"pages": 1}, headers=auth)
    assert done.status_code == 200, done.text


async def test_a_complete_snapshot_removes_what_the_pims_no_longer_has_and_a_partial_one_nothing(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from petportal_sync.entrypoints.cli import reconcile

    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {await new_clinic(settings, capsys, clinic_id)}"}

    def contact(client_id: str, last: str = "Lee") -> dict[str, Any]:
        return {"kind": "contact", "client_id": client_id, "first_name": "Ann", "last_name": last}

    def pet(client_id: str, patient_id: str) -> dict[str, Any]:
        return {
            "kind": "patient",
            "client_id": client_id,
            "patient_id": patient_id,
            "name": "Rex",
            "species": "Canine",
        }

    initial = [contact("c1"), pet("c1", "p1"), pet("c1", "p2"), contact("c2"), pet("c2", "p3"), contact("c3")]
    assert (await client.post("/pims/v1/records", json=batch(*initial), headers=auth)).json()["accepted"] == 6

    async def run_reconcile() -> list[dict[str, Any]]:
        capsys.readouterr()
        assert await reconcile(argparse.Namespace(clinic_id=clinic_id), settings) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    # A snapshot that ends half way (announced 3 pages, sent 1) removes nothing.
    partial = (await client.post("/pims/v1/snapshots", headers=auth)).json()["snapshot_id"]
    await client.post(f"/pims/v1/snapshots/{partial}/records", json=batch(contact("c1")), headers=auth)
    refused = await client.post(f"/pims/v1/snapshots/{partial}/complete", json={"pages": 3}, headers=auth)
    assert refused.status_code == 409
    assert await run_reconcile() == []
    assert await count(settings.database_url, "SELECT count(*) FROM contacts") == 3

    # A full one in two pages: c2 and its pet, and p2, are gone; c1 drifted and is corrected.
    snapshot = (await client.post("/pims/v1/snapshots", headers=auth)).json()["snapshot_id"]
    page_1 = await client.post(
        f"/pims/v1/snapshots/{snapshot}/records",
        json=batch(contact("c1", "Lee-Smith"), pet("c1", "p1")),
        headers=auth,
    )
    assert page_1.json() == {"accepted": 2, "rejected": []}
    await client.post(f"/pims/v1/snapshots/{snapshot}/records", json=batch(contact("c3")), headers=auth)
    done = await client.post(f"/pims/v1/snapshots/{snapshot}/complete", json={"pages": 2}, headers=auth)
    assert done.status_code == 200, done.text
    late = await client.post(
        f"/pims/v1/snapshots/{snapshot}/records", json=batch(contact("c9")), headers=auth
    )
    assert late.status_code == 409
    assert await run_reconcile() == [
        {"clinic_id": clinic_id, "snapshot_id": snapshot, "contacts_removed": 1, "patients_removed": 1}
    ]
    url = settings.database_url
    assert await count(url, "SELECT count(*) FROM contacts") == 2
    assert await count(url, "SELECT count(*) FROM patients") == 1
    assert await count(url, "SELECT count(*) FROM outbox WHERE event_type = 'ClientRemoved'") == 1
    assert await count(url, "SELECT count(*) FROM outbox WHERE event_type = 'PatientRemoved'") == 1
    assert (
        await count(url, "SELECT count(*) FROM outbox WHERE event_type = 'ClientUpserted'") == 4
    )  # 3 + drift
    assert await run_reconcile() == []  # reconciled once
    other = await client.post(
        "/pims/v1/snapshots/00000000-0000-0000-0000-000000000000/complete", json={"pages": 1}, headers=auth
    )
    assert other.status_code == 404


async def test_a_rejected_record_replays_after_a_fix_and_one_still_bad_stays_with_its_new_reason(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {await new_clinic(settings, capsys, clinic_id)}"}
    orphan = {"kind": "patient", "client_id": "c7", "patient_id": "p7", "name": "Rex", "species": "Canine"}
    hopeless = {"kind": "patient", "client_id": "c8", "patient_id": "p8", "name": "", "species": "Canine"}
    first = await client.post("/pims/v1/records", json=batch(orphan, hopeless), headers=auth)
    assert [r["errors"][0]["field"] for r in first.json()["rejected"]] == ["client_id", "name"]
    # The fix: the contact arrives. Replaying everything lands the pet; the other stays, re-checked.
    contact = {"kind": "contact", "client_id": "c7", "first_name": "Ann", "last_name": "Lee"}
    await client.post("/pims/v1/records", json=batch(contact), headers=auth)
    replay = await client.post("/pims/v1/rejections/replay", json={}, headers=auth)
    assert replay.status_code == 200, replay.text
    body = replay.json()
    assert (body["replayed"], body["accepted"]) == (2, 1)
    kept = (await client.get("/pims/v1/rejections", headers=auth)).json()["rejections"]
    assert [r["record"] for r in kept] == [hopeless]
    assert await count(settings.database_url, "SELECT count(*) FROM patients WHERE patient_id = 'p7'") == 1
    missing = await client.post("/pims/v1/rejections/replay", json={"ids": [str(uuid.uuid4())]}, headers=auth)
    assert missing.status_code == 404
    purged = await client.delete(f"/pims/v1/rejections/{kept[0]['id']}", headers=auth)
    assert purged.json() == {"purged": 1}
    assert (await client.get("/pims/v1/rejections", headers=auth)).json()["rejections"] == []


async def test_a_rotated_key_overlaps_the_old_one_for_a_while_and_a_revoked_key_stops_at_once(
    settings: SyncSettings, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    old = {"Authorization": f"Bearer {await new_clinic(settings, capsys, clinic_id)}"}
    rotated = await client.post("/pims/v1/api-keys/rotate", json={"overlap_hours": 1}, headers=old)
    assert rotated.status_code == 201
    new = {"Authorization": f"Bearer {rotated.json()['api_key']}"}
    # During the overlap both work.
    for auth in (old, new):
        assert (await client.get("/pims/v1/rejections", headers=auth)).status_code == 200
    keys = (await client.get("/pims/v1/api-keys", headers=new)).json()["api_keys"]
    assert [k["expires_at"] is not None for k in keys] == [True, False]
    # A rotation without overlap ends the others at once; a revoked key stops at once.
    third = (await client.post("/pims/v1/api-keys/rotate", json={"overlap_hours": 0}, headers=new)).json()
    assert (await client.get("/pims/v1/rejections", headers=new)).status_code == 401
    assert (await client.get("/pims/v1/rejections", headers=old)).status_code == 401
    latest = {"Authorization": f"Bearer {third['api_key']}"}
    gone = await client.delete(f"/pims/v1/api-keys/{third['key_id']}", headers=latest)
    assert gone.status_code == 204
    assert (await client.get("/pims/v1/rejections", headers=latest)).status_code == 401
    assert (
        await count(settings.database_url, f"SELECT count(*) FROM api_keys WHERE clinic_id = '{clinic_id}'")
        == 3
    )
