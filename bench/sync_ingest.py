"""sync_ingest: 100k mixed PIMS records (contacts, patients, appointments, reminders, vaccinations,
medications) pushed through sync's API in batches of 1,000, as records/s, against PostgreSQL COPY of
the same rows into the same tables of a second, identically migrated database (the floor: no HTTP, no
validation, no change detection, no events)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from petportal_devkit.devinfra import free_port

from .infra import LOOPBACK, SERVICES_DIR, Infra, postgres_dsn
from .procs import ChildFailed, tail
from .report import BenchResult, Row
from .stats import ratio

NAME = "sync_ingest"
TITLE = "PIMS records/s through sync's API (batches of 1,000) vs PostgreSQL COPY of the same rows"
CLINIC_ID = "bench-clinic-sync"


@dataclass(frozen=True)
class Params:
    records: int = 100_000
    batch_size: int = 1_000
    concurrency: int = 2  # batches in flight (one clinic's batches apply one after another)
    ready_timeout_s: float = 90.0

    @classmethod
    def quick(cls) -> Params:
        return cls(records=10_000)


def workload(count: int) -> list[dict[str, Any]]:
    """`count` canonical records in the order a connector sends them: each client's contact, then its
    two pets, then their appointments, reminders, vaccinations and a medication: 10 records a client,
    so batches of 1,000 hold whole clients and may apply in any order."""
    base = date(2030, 1, 1)
    records: list[dict[str, Any]] = []
    i = 0
    while len(records) < count:
        client = f"C{i:06d}"
        pets = [f"P{i:06d}a", f"P{i:06d}b"]
        records.append(
            {
                "kind": "contact",
                "client_id": client,
                "first_name": "Bench",
                "last_name": f"Parent{i}",
                "email": f"parent{i}@example.com",
                "phone": f"+1415555{i % 10_000:04d}",
            }
        )
        for n, pet in enumerate(pets):
            records.append(
                {
                    "kind": "patient",
                    "client_id": client,
                    "patient_id": pet,
                    "name": f"Pet{n}",
                    "species": "Canine",
                    "breed": "Beagle",
                    "date_of_birth": "2020-06-02",
                    "microchip": f"985{i:09d}{n}",
                }
            )
        for n, pet in enumerate(pets):
            day = base + timedelta(days=(i + n) % 300)
            records.append(
                {
                    "kind": "appointment",
                    "client_id": client,
                    "appointment_id": f"A{i:06d}{n}",
                    "patient_id": pet,
                    "starts_at": f"{day.isoformat()}T15:30:00Z",
                    "reason": "Exam",
                }
            )
            records.append(
                {
                    "kind": "reminder",
                    "client_id": client,
                    "reminder_id": f"R{i:06d}{n}",
                    "patient_id": pet,
                    "service": "Rabies booster",
                    "due_on": day.isoformat(),
                }
            )
        for n, pet in enumerate(pets):
            records.append(
                {
                    "kind": "vaccination",
                    "client_id": client,
                    "vaccination_id": f"V{i:06d}{n}",
                    "patient_id": pet,
                    "name": "DHPP",
                    "given_on": "2029-06-01",
                    "lot": "L1",
                }
            )
        records.append(
            {
                "kind": "medication",
                "client_id": client,
                "prescription_id": f"M{i:06d}",
                "patient_id": pets[0],
                "name": "Carprofen",
                "refills_remaining": 2,
                "prescribed_on": "2029-12-01",
            }
        )
        i += 1
    return records[:count]


async def _migrated(infra: Infra, database: str) -> str:
    server = infra.ensure_postgres()
    await server.drop_database(database)
    await server.create_database(database)
    url = server.url(database)
    migrate = infra.service_command("sync", ["migrate"], {"DATABASE_URL": url})
    migrate.start()
    if await migrate.wait_exit(120) != 0:
        raise ChildFailed(f"sync migrate failed:\n{tail(migrate.log_file)}")
    return url


async def _through_api(infra: Infra, params: Params, records: list[dict[str, Any]]) -> dict[str, Any]:
    kafka = await infra.fresh_kafka("sync")
    url = await _migrated(infra, "bench_sync")
    env = {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    create = infra.child(
        "sync-create-clinic",
        "petportal_sync",
        [
            "create-clinic",
            "--clinic-id",
            CLINIC_ID,
            "--name",
            "Bench Vets",
            "--pims",
            "other",
            "--sms-number",
            "+14155550100",
        ],
        {"ENVIRONMENT": "development", **env},
        capture_stdout=True,
    )
    create.start()
    if await create.wait_exit(60) != 0:
        raise ChildFailed(f"create-clinic failed:\n{tail(create.log_file)}")
    api_key = create.stdout_json()["api_key"]
    port = free_port()
    sync, _ = infra.service("sync", env, port=port)
    sync.start()
    base = f"http://{LOOPBACK}:{port}"
    await sync.wait_http_ok(f"{base}/healthz", timeout=params.ready_timeout_s)
    try:
        return await _post_all(base, {"authorization": f"Bearer {api_key}"}, params, records)
    finally:
        sync.stop()  # not in the background of the measurements that follow


async def _post_all(
    base: str, headers: dict[str, str], params: Params, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every batch POSTed, `params.concurrency` at a time; records/s from the first to the last."""
    batches = [records[i : i + params.batch_size] for i in range(0, len(records), params.batch_size)]
    accepted = 0
    batch_seconds: list[float] = []
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for chunk in batches:
        queue.put_nowait(chunk)

    async def poster(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            chunk = queue.get_nowait()
            t0 = time.perf_counter()
            response = await client.post("/pims/v1/records", json={"pims": "other", "records": chunk})
            batch_seconds.append(time.perf_counter() - t0)
            if response.status_code != 200 or response.json()["rejected"]:
                raise ChildFailed(f"batch refused: {response.status_code} {response.text[:300]}")
            accepted += response.json()["accepted"]

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(poster(client) for _ in range(params.concurrency)))
        elapsed = time.perf_counter() - started
    if accepted != len(records):
        raise ChildFailed(f"accepted {accepted} of {len(records)} records")
    tenth = max(1, len(batch_seconds) // 10)
    return {
        "seconds": round(elapsed, 3),
        "records_per_s": round(len(records) / elapsed, 1),
        "batch_ms_first_tenth": round(sum(batch_seconds[:tenth]) / tenth * 1000, 1),
        "batch_ms_last_tenth": round(sum(batch_seconds[-tenth:]) / tenth * 1000, 1),
    }


async def _through_floor(infra: Infra, params: Params, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Diagnostic: the same batches through `bench.framework_floor ingest` (validation with sync's
    models, COPY of the rows and of one outbox row per record, nothing else)."""
    await _migrated(infra, "bench_sync_floor")
    port = free_port()
    dsn = postgres_dsn(infra.ensure_postgres(), "bench_sync_floor")
    floor = infra.child(
        "sync-floor",
        "bench.framework_floor",
        ["ingest", "--port", str(port), "--database-dsn", dsn, "--clinic-id", CLINIC_ID],
        {},
        python_path=[SERVICES_DIR / "sync"],
    )
    floor.start()
    base = f"http://{LOOPBACK}:{port}"
    await floor.wait_http_ok(f"{base}/healthz", timeout=params.ready_timeout_s)
    try:
        return await _post_all(base, {}, params, records)
    finally:
        floor.stop()


def _rows(records: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    return rows_of(CLINIC_ID, records)


def rows_of(clinic_id: str, records: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of sync's tables that hold `records` (canonical, valid), for COPY."""
    now = datetime.now(UTC)
    rows: dict[str, list[tuple[Any, ...]]] = {"contacts": [], "patients": [], "clinical_records": []}
    for r in records:
        kind = r["kind"]
        if kind == "contact":
            rows["contacts"].append(
                (
                    clinic_id,
                    r["client_id"],
                    r["first_name"],
                    r["last_name"],
                    r["email"],
                    r["phone"],
                    None,
                    now,
                )
            )
        elif kind == "patient":
            rows["patients"].append(
                (
                    clinic_id,
                    r["patient_id"],
                    r["client_id"],
                    r["name"],
                    r["species"],
                    r["breed"],
                    None,
                    date.fromisoformat(r["date_of_birth"]),
                    None,
                    None,
                    r["microchip"],
                    False,
                    None,
                    None,
                    now,
                )
            )
        else:
            key = {
                "appointment": "appointment_id",
                "reminder": "reminder_id",
                "vaccination": "vaccination_id",
                "medication": "prescription_id",
            }[kind]
            state = {k: v for k, v in r.items() if k not in ("kind", "client_id")}
            rows["clinical_records"].append(
                (clinic_id, kind, r[key], r["client_id"], json.dumps(state), None, now)
            )
    return rows


COLUMNS = {
    "contacts": [
        "clinic_id",
        "client_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "version",
        "updated_at",
    ],
    "patients": [
        "clinic_id",
        "patient_id",
        "client_id",
        "name",
        "species",
        "breed",
        "sex",
        "date_of_birth",
        "colour",
        "weight_kg",
        "microchip",
        "deceased",
        "deceased_on",
        "version",
        "updated_at",
    ],
    "clinical_records": ["clinic_id", "kind", "record_id", "client_id", "state", "version", "updated_at"],
}


async def jsonb_binary(connection: asyncpg.Connection) -> None:
    """COPY's binary format: jsonb is a version byte then the JSON text."""
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda text: b"\x01" + text.encode(),
        decoder=lambda data: json.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _copy(infra: Infra, records: list[dict[str, Any]]) -> dict[str, Any]:
    url = await _migrated(infra, "bench_sync_copy")
    rows = _rows(records)
    connection = await asyncpg.connect(postgres_dsn(infra.ensure_postgres(), "bench_sync_copy"))
    try:
        await jsonb_binary(connection)
        started = time.perf_counter()
        async with connection.transaction():
            for table, values in rows.items():
                await connection.copy_records_to_table(table, records=values, columns=COLUMNS[table])
        elapsed = time.perf_counter() - started
    finally:
        await connection.close()
    assert url
    return {"seconds": round(elapsed, 3), "records_per_s": round(len(records) / elapsed, 1)}


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    records = workload(params.records)
    api = await _through_api(infra, params, records)
    floor = await _through_floor(infra, params, records)
    copy = await _copy(infra, records)
    result.results = {"api": api, "floor": floor, "copy": copy}
    result.ratios = {
        "api_vs_copy": ratio(api["records_per_s"], copy["records_per_s"]),
        "floor_vs_copy": ratio(floor["records_per_s"], copy["records_per_s"]),
        "api_vs_floor": ratio(api["records_per_s"], floor["records_per_s"]),
    }
    result.rows = [
        Row(
            "sync API records/s",
            api["records_per_s"],
            "rec/s",
            "PostgreSQL COPY",
            copy["records_per_s"],
            result.ratios["api_vs_copy"],
            "higher",
        ),
        Row(
            "diagnostic: floor (FastAPI, sync's validation, COPY of rows + outbox), records/s",
            floor["records_per_s"],
            "rec/s",
            "PostgreSQL COPY",
            copy["records_per_s"],
            result.ratios["floor_vs_copy"],
            "higher",
        ),
    ]
    result.notes.append(
        "the API path validates each record, loads the clinic's stored state, compares, stores, and writes "
        "one outbox event per change (relayed to Kafka meanwhile); COPY only writes the rows"
    )
    result.notes.append(
        "the floor (bench.framework_floor ingest) validates with sync's models and COPYs the rows and an "
        "outbox row a record: no authentication, lock, comparison, quarantine or relay"
    )
    return result
