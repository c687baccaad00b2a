"""gateway_todo_rps: requests/s of `GET /api/v1/todo` through the real gateway (token check, rate
limiter, proxy) → todo (token check, MongoDB reads) versus a bare uvicorn app making the same MongoDB
reads, and versus todo called directly; and the home screen (`GET /api/v1/home`: the To-Do list, the
pets and the upcoming appointments, from two upstream calls at once: todo's list, pets' overview) as a
ratio to the To-Do read through the same gateway (target ≥ 0.6: composing must not cost more than its
parts). The load generator is its own process; targets alternate over rounds so drift on a noisy
machine hits them alike."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from petportal_devkit.devinfra import free_port
from petportal_schemas import (
    AppointmentUpserted,
    ClientUpserted,
    ClinicRegistered,
    Envelope,
    PatientUpserted,
    ProgramOffered,
    SmsOptedOut,
)

from .infra import LOOPBACK, Infra, service_available
from .procs import ChildFailed, ChildProcess, CpuMeter, tail
from .report import BenchResult, Row
from .stats import ratio
from .workload import message_received, produce_all, to_record, wrap

NAME = "gateway_todo_rps"
TITLE = "GET /api/v1/todo requests/s: gateway → todo → MongoDB vs a bare uvicorn app doing the same reads"

CLINIC_ID = "bench-clinic-gw"
CLIENT_ID = "C-GW-0001"
TODO_PATH = "/api/v1/todo"
HOME_PATH = "/api/v1/home"
PATIENT_ID = "P-GW-0001"
TODO_DATABASE = "bench_gw_todo"


@dataclass(frozen=True)
class Params:
    concurrency: int = 32
    warmup_s: float = 2.0
    duration_s: float = 8.0
    rounds: int = 2
    # The gateway's per-IP budget (default 300/minute) would answer 429 to a load test from one IP:
    # raised so every request is served, while the limiter still runs (and costs) on each one.
    gateway_rate_limit_per_minute: int = 1_000_000_000
    ready_timeout_s: float = 90.0

    @classmethod
    def quick(cls) -> Params:
        return cls(warmup_s=1.0, duration_s=3.0, rounds=1)


async def _seed(bootstrap: str) -> None:
    """The client's contact (so identity issues a dev token) and a To-Do list with three items."""
    now = datetime.now(UTC)
    envelopes: list[Envelope] = [
        wrap(
            ClientUpserted(first_name="Bench", last_name="Parent", email="bench@example.invalid"),
            CLINIC_ID,
            CLIENT_ID,
        ),
        message_received(CLINIC_ID, CLIENT_ID),
        message_received(CLINIC_ID, CLIENT_ID),
        wrap(SmsOptedOut(source="sms_keyword", keyword="STOP"), CLINIC_ID, CLIENT_ID),
        Envelope.wrap(
            ProgramOffered(program_code="care-plan", name="Care Plan", call_to_action="Add a Care Member"),
            clinic_id=CLINIC_ID,
            client_id=None,
            producer="sync",
            occurred_at=now,
        ),
        # The home screen's other parts: a clinic, a pet and two upcoming appointments (pets).
        Envelope.wrap(
            ClinicRegistered(name="Bench Vets", pims="ezyvet", timezone="America/Chicago"),
            clinic_id=CLINIC_ID,
            client_id=None,
            producer="sync",
            occurred_at=now,
        ),
        wrap(PatientUpserted(patient_id=PATIENT_ID, name="Biscuit", species="dog"), CLINIC_ID, CLIENT_ID),
        *(
            wrap(
                AppointmentUpserted(
                    appointment_id=f"A-GW-{n}",
                    patient_id=PATIENT_ID,
                    starts_at=now + timedelta(days=n + 1),
                    timezone="America/Chicago",
                    appointment_type="Exam",
                ),
                CLINIC_ID,
                CLIENT_ID,
            )
            for n in range(2)
        ),
    ]
    await produce_all(bootstrap, [to_record(e) for e in envelopes], linger_ms=0)


async def _dev_token(identity_url: str, deadline: float) -> str:
    """Poll identity's dev-token endpoint until the seeded contact has been consumed."""
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        while True:
            response = await client.post(
                f"{identity_url}/api/v1/auth/dev-token", json={"clinic_id": CLINIC_ID, "client_id": CLIENT_ID}
            )
            if response.status_code == 200:
                return str(response.json()["access_token"])
            if response.status_code != 404 or time.monotonic() > deadline:
                raise ChildFailed(f"dev-token: {response.status_code} {response.text[:300]}")
            await asyncio.sleep(0.2)


async def _wait_todo_list(url: str, token: str, deadline: float, min_badge: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        while True:
            response = await client.get(url, headers={"authorization": f"Bearer {token}"})
            if response.status_code == 200 and response.json().get("badge", 0) >= min_badge:
                body: dict[str, Any] = response.json()
                return body
            if time.monotonic() > deadline:
                raise ChildFailed(
                    f"{url}: {response.status_code} {response.text[:300]} (waiting for badge {min_badge})"
                )
            await asyncio.sleep(0.2)


async def _load(
    infra: Infra, label: str, url: str, headers: list[str], params: Params, meter: CpuMeter
) -> dict[str, Any]:
    args = ["--url", url, "--concurrency", str(params.concurrency)]
    args += ["--warmup", str(params.warmup_s), "--duration", str(params.duration_s)]
    for header in headers:
        args += ["--header", header]
    proc = infra.child(f"loadgen-{label}", "bench.loadgen", args, {}, capture_stdout=True)
    before = meter.snapshot()
    proc.start()
    code = await proc.wait_exit(params.warmup_s + params.duration_s + 60)
    cpu = CpuMeter.delta(before, meter.snapshot())
    if code != 0:
        raise ChildFailed(f"loadgen for {label} exited with {code}")
    result: dict[str, Any] = proc.stdout_json()
    # CPU each process spent per request over the whole load (warm-up included, like the count).
    responses = max(1, int(result["responses_total"]))
    cpu["loadgen"] = result["loadgen_cpu_seconds"]
    result["cpu_ms_per_request"] = {
        name: round(seconds * 1000 / responses, 3) for name, seconds in cpu.items() if seconds is not None
    }
    return result


@dataclass
class Stack:
    """identity + todo + gateway + the bare app, running, with a parent token."""

    token: str
    urls: dict[str, str]  # target name -> base URL
    meter: CpuMeter
    direct_body: dict[str, Any]
    gateway_body: dict[str, Any]
    home_body: dict[str, Any]


async def _wait_home(url: str, token: str, deadline: float) -> dict[str, Any]:
    """The home screen once every part is there: the To-Do list, the pet, both appointments."""
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        while True:
            response = await client.get(url, headers={"authorization": f"Bearer {token}"})
            body: dict[str, Any] = response.json() if response.status_code == 200 else {}
            if body.get("pets") and len(body.get("upcoming_appointments") or []) == 2:
                return body
            if time.monotonic() > deadline:
                raise ChildFailed(
                    f"{url}: {response.status_code} {response.text[:300]} (waiting for every part)"
                )
            await asyncio.sleep(0.2)


async def _migrated_database(infra: Infra, service: str) -> str:
    server = infra.ensure_postgres()
    await server.drop_database(f"bench_{service}")
    await server.create_database(f"bench_{service}")
    database_url = server.url(f"bench_{service}")
    migrate = infra.service_command(service, ["migrate"], {"DATABASE_URL": database_url})
    migrate.start()
    if await migrate.wait_exit(120) != 0:
        raise ChildFailed(f"{service} migrate failed:\n{tail(migrate.log_file)}")
    return database_url


async def _start_identity(infra: Infra, kafka_env: dict[str, str]) -> tuple[ChildProcess, str]:
    """identity on its own (migrated) PostgreSQL database, with the development token endpoint."""
    database_url = await _migrated_database(infra, "identity")
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    identity, _ = infra.service(
        "identity",
        {
            **kafka_env,
            "DATABASE_URL": database_url,
            "DEV_TOKEN_ENDPOINT_ENABLED": "true",
            "DEV_KEY_DIR": str(infra.workdir / "keys"),
            "IDENTITY_URL": url,
        },
        port=port,
    )
    identity.start()
    return identity, url


async def start_stack(infra: Infra, params: Params) -> Stack:
    deadline = time.monotonic() + params.ready_timeout_s
    kafka = await infra.fresh_kafka("gateway")
    kafka_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "KAFKA_SESSION_TIMEOUT_MS": "2000"}
    identity, identity_url = await _start_identity(infra, kafka_env)
    todo, todo_port = infra.service(
        "todo",
        {
            **kafka_env,
            "MONGODB_URL": infra.mongo.url,
            "MONGODB_DATABASE": TODO_DATABASE,
            "IDENTITY_URL": identity_url,
        },
        label="todo-gateway",
    )
    todo.start()
    pets, pets_port = infra.service(
        "pets",
        {**kafka_env, "DATABASE_URL": await _migrated_database(infra, "pets"), "IDENTITY_URL": identity_url},
    )
    pets.start()
    pets_url = f"http://{LOOPBACK}:{pets_port}"
    await _seed(kafka.bootstrap)
    todo_url = f"http://{LOOPBACK}:{todo_port}"
    await identity.wait_http_ok(f"{identity_url}/healthz", timeout=params.ready_timeout_s)
    await todo.wait_http_ok(f"{todo_url}/healthz", timeout=params.ready_timeout_s)
    await pets.wait_http_ok(f"{pets_url}/healthz", timeout=params.ready_timeout_s)
    token = await _dev_token(identity_url, deadline)
    direct_body = await _wait_todo_list(f"{todo_url}{TODO_PATH}", token, deadline, min_badge=3)

    gateway, gateway_port = infra.service(
        "gateway",
        {
            "IDENTITY_URL": identity_url,
            "TODO_URL": todo_url,
            "PETS_URL": pets_url,
            "RATE_LIMIT_PER_MINUTE": str(params.gateway_rate_limit_per_minute),
            "METRICS_PORT": str(free_port()),
        },
    )
    gateway.start()
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    await gateway.wait_http_ok(f"{gateway_url}/healthz", timeout=params.ready_timeout_s)
    gateway_body = await _wait_todo_list(f"{gateway_url}{TODO_PATH}", token, deadline, min_badge=3)
    home_body = await _wait_home(f"{gateway_url}{HOME_PATH}", token, deadline)

    bare_port = free_port()
    bare_args = ["--port", str(bare_port), "--mongodb-url", infra.mongo.url, "--database", TODO_DATABASE]
    bare = infra.child(
        "bare-app", "bench.bare_app", [*bare_args, "--clinic-id", CLINIC_ID, "--client-id", CLIENT_ID], {}
    )
    bare.start()
    bare_url = f"http://{LOOPBACK}:{bare_port}"
    await bare.wait_http_ok(f"{bare_url}{TODO_PATH}", timeout=params.ready_timeout_s)
    # Diagnostic: the floor as it was when todo made two find_one per request.
    two_port = free_port()
    two_args = ["--port", str(two_port), "--mongodb-url", infra.mongo.url, "--database", TODO_DATABASE]
    two_args += ["--clinic-id", CLINIC_ID, "--client-id", CLIENT_ID, "--reads", "two-find-one"]
    bare_two = infra.child("bare-app-two-reads", "bench.bare_app", two_args, {})
    bare_two.start()
    bare_two_url = f"http://{LOOPBACK}:{two_port}"
    await bare_two.wait_http_ok(f"{bare_two_url}{TODO_PATH}", timeout=params.ready_timeout_s)
    # Diagnostics: FastAPI making the same read, and FastAPI + aiohttp forwarding to it, with none
    # of the services' guarantees (bench.framework_floor).
    read_port, proxy_port = free_port(), free_port()
    read_args = ["read", "--port", str(read_port), "--mongodb-url", infra.mongo.url]
    read_args += ["--database", TODO_DATABASE, "--clinic-id", CLINIC_ID, "--client-id", CLIENT_ID]
    floor_read = infra.child("fastapi-read", "bench.framework_floor", read_args, {})
    floor_read.start()
    floor_read_url = f"http://{LOOPBACK}:{read_port}"
    await floor_read.wait_http_ok(f"{floor_read_url}{TODO_PATH}", timeout=params.ready_timeout_s)
    proxy_args = ["proxy", "--port", str(proxy_port), "--upstream", floor_read_url]
    floor_proxy = infra.child("fastapi-proxy", "bench.framework_floor", proxy_args, {})
    floor_proxy.start()
    floor_proxy_url = f"http://{LOOPBACK}:{proxy_port}"
    await floor_proxy.wait_http_ok(f"{floor_proxy_url}{TODO_PATH}", timeout=params.ready_timeout_s)

    meter = CpuMeter(
        {
            "gateway": gateway.pid,
            "todo": todo.pid,
            "identity": identity.pid,
            "pets": pets.pid,
            "bare": bare.pid,
            "bare_two_reads": bare_two.pid,
            "fastapi_read": floor_read.pid,
            "fastapi_proxy": floor_proxy.pid,
            "nx-27017": infra.mongo.pid,
            "tansu": kafka.pid,
        }
    )
    urls = {
        "bare": f"{bare_url}{TODO_PATH}",
        "gateway": f"{gateway_url}{TODO_PATH}",
        "todo_direct": f"{todo_url}{TODO_PATH}",
        "bare_two_reads": f"{bare_two_url}{TODO_PATH}",
        "gateway_home": f"{gateway_url}{HOME_PATH}",
        "fastapi_read": f"{floor_read_url}{TODO_PATH}",
        "fastapi_proxy": f"{floor_proxy_url}{TODO_PATH}",
    }
    return Stack(token, urls, meter, direct_body, gateway_body, home_body)


def _value(measured: dict[str, Any], key: str) -> float | None:
    value = measured["rps"] if key == "rps" else measured["latency"].get(key)
    return float(value) if value is not None else None


def _best(rounds: list[dict[str, dict[str, Any]]], name: str, key: str) -> float | None:
    """The best round: the most requests/s, the lowest latency (noise only ever makes things worse)."""
    values = [v for r in rounds if (v := _value(r[name], key)) is not None]
    if not values:
        return None
    return max(values) if key == "rps" else min(values)


def _cpu_per_request(rounds: list[dict[str, dict[str, Any]]], name: str) -> float | None:
    """CPU ms per request summed over every server process (the load generator excluded), least
    over rounds."""
    totals = [
        sum(ms for proc, ms in r[name]["cpu_ms_per_request"].items() if proc != "loadgen") for r in rounds
    ]
    return round(min(totals), 3) if totals else None


def summarize(result: BenchResult, rounds: list[dict[str, dict[str, Any]]]) -> None:
    targets = list(rounds[0])
    best = {name: {key: _best(rounds, name, key) for key in ("rps", "p50_ms", "p99_ms")} for name in targets}
    cpu = {name: _cpu_per_request(rounds, name) for name in targets}
    result.results["best_of_rounds"] = best
    result.results["cpu_ms_per_request_all_servers"] = cpu
    for i, r in enumerate(rounds):
        for name, measured in r.items():
            bad = {k: v for k, v in measured["statuses"].items() if not k.startswith("2")}
            if bad or measured["errors"]:
                result.notes.append(f"{name}: round {i}: non-2xx {bad}, errors {measured['errors']}")

    bare, gw, direct, two = best["bare"], best["gateway"], best["todo_direct"], best["bare_two_reads"]
    home = best["gateway_home"]
    fa_read, fa_proxy = best["fastapi_read"], best["fastapi_proxy"]
    result.ratios = {
        "gateway/bare rps": ratio(gw["rps"], bare["rps"]),
        "todo_direct/bare rps": ratio(direct["rps"], bare["rps"]),
        "gateway/todo_direct rps": ratio(gw["rps"], direct["rps"]),
        "home/gateway todo rps": ratio(home["rps"], gw["rps"]),
        "gateway/bare p50": ratio(gw["p50_ms"], bare["p50_ms"]),
        "gateway/bare p99": ratio(gw["p99_ms"], bare["p99_ms"]),
        "gateway/bare cpu per request": ratio(cpu["gateway"], cpu["bare"]),
        "todo_direct/bare cpu per request": ratio(cpu["todo_direct"], cpu["bare"]),
        # Diagnostics against the floor with the reads todo made before (two find_one).
        "bare_two_reads/bare rps": ratio(two["rps"], bare["rps"]),
        "gateway/bare_two_reads rps": ratio(gw["rps"], two["rps"]),
        "todo_direct/bare_two_reads rps": ratio(direct["rps"], two["rps"]),
        "gateway/bare_two_reads cpu per request": ratio(cpu["gateway"], cpu["bare_two_reads"]),
        # Diagnostics: the framework's own floors (bench.framework_floor), before any guarantee.
        "fastapi_read/bare rps": ratio(fa_read["rps"], bare["rps"]),
        "fastapi_proxy/bare rps": ratio(fa_proxy["rps"], bare["rps"]),
        "fastapi_read/bare cpu per request": ratio(cpu["fastapi_read"], cpu["bare"]),
        "fastapi_proxy/bare cpu per request": ratio(cpu["fastapi_proxy"], cpu["bare"]),
        "todo_direct/fastapi_read rps": ratio(direct["rps"], fa_read["rps"]),
        "gateway/fastapi_proxy rps": ratio(gw["rps"], fa_proxy["rps"]),
    }
    ratios, floor = result.ratios, "bare uvicorn app"
    result.rows = [
        Row(
            "home screen (todo + pets + appointments) requests/s, target >= 0.6x",
            home["rps"],
            "req/s",
            "GET /api/v1/todo through the gateway",
            gw["rps"],
            ratios["home/gateway todo rps"],
            "higher",
        ),
        Row(
            "gateway → todo requests/s",
            gw["rps"],
            "req/s",
            floor,
            bare["rps"],
            ratios["gateway/bare rps"],
            "higher",
        ),
        Row(
            "todo direct requests/s",
            direct["rps"],
            "req/s",
            floor,
            bare["rps"],
            ratios["todo_direct/bare rps"],
            "higher",
        ),
        Row(
            "gateway → todo latency p50",
            gw["p50_ms"],
            "ms",
            floor,
            bare["p50_ms"],
            ratios["gateway/bare p50"],
            "lower",
        ),
        Row(
            "gateway → todo latency p99",
            gw["p99_ms"],
            "ms",
            floor,
            bare["p99_ms"],
            ratios["gateway/bare p99"],
            "lower",
        ),
        Row(
            "gateway → todo CPU per request (all servers)",
            cpu["gateway"],
            "ms",
            floor,
            cpu["bare"],
            ratios["gateway/bare cpu per request"],
            "lower",
        ),
        Row(
            "todo direct CPU per request (all servers)",
            cpu["todo_direct"],
            "ms",
            floor,
            cpu["bare"],
            ratios["todo_direct/bare cpu per request"],
            "lower",
        ),
        Row(
            "diagnostic: floor with two find_one, req/s",
            two["rps"],
            "req/s",
            floor,
            bare["rps"],
            ratios["bare_two_reads/bare rps"],
            "higher",
        ),
        Row(
            "diagnostic: gateway → todo vs two-find_one floor",
            gw["rps"],
            "req/s",
            "bare, two find_one",
            two["rps"],
            ratios["gateway/bare_two_reads rps"],
            "higher",
        ),
        Row(
            "diagnostic: todo direct vs two-find_one floor",
            direct["rps"],
            "req/s",
            "bare, two find_one",
            two["rps"],
            ratios["todo_direct/bare_two_reads rps"],
            "higher",
        ),
        Row(
            "diagnostic: FastAPI, same read, no middleware, req/s",
            fa_read["rps"],
            "req/s",
            floor,
            bare["rps"],
            ratios["fastapi_read/bare rps"],
            "higher",
        ),
        Row(
            "diagnostic: FastAPI + aiohttp proxy → that, req/s",
            fa_proxy["rps"],
            "req/s",
            floor,
            bare["rps"],
            ratios["fastapi_proxy/bare rps"],
            "higher",
        ),
        Row(
            "diagnostic: FastAPI, same read, CPU per request",
            cpu["fastapi_read"],
            "ms",
            floor,
            cpu["bare"],
            ratios["fastapi_read/bare cpu per request"],
            "lower",
        ),
        Row(
            "diagnostic: FastAPI + aiohttp proxy, CPU per request",
            cpu["fastapi_proxy"],
            "ms",
            floor,
            cpu["bare"],
            ratios["fastapi_proxy/bare cpu per request"],
            "lower",
        ),
    ]


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    result.parameters["bare_app_reads"] = "one aggregate: the parent, the clinic $unionWith-ed in (as todo)"
    result.parameters["bare_two_reads_app_reads"] = "parent + clinic find_one, concurrently (todo before)"
    for service in ("identity", "todo", "pets", "gateway"):
        available, why = service_available(service)
        if not available:
            result.ok = False
            result.error = f"{service} service not available ({why})"
            return result
    stack = await start_stack(infra, params)
    result.results["response_via_gateway"] = stack.gateway_body
    if stack.gateway_body != stack.direct_body:
        result.notes.append("the gateway's answer differs from todo's own answer")

    auth = [f"authorization: Bearer {stack.token}"]
    headers = {
        "bare": [],
        "gateway": auth,
        "todo_direct": auth,
        "bare_two_reads": [],
        "gateway_home": auth,
        "fastapi_read": [],
        "fastapi_proxy": auth,
    }
    result.results["home_via_gateway"] = stack.home_body
    rounds: list[dict[str, dict[str, Any]]] = []
    for i in range(params.rounds):
        order = list(stack.urls) if i % 2 == 0 else list(reversed(stack.urls))
        measured: dict[str, dict[str, Any]] = {}
        for name in order:
            measured[name] = await _load(
                infra, f"{name}-{i}", stack.urls[name], headers[name], params, stack.meter
            )
        rounds.append({name: measured[name] for name in stack.urls})
    result.results["rounds"] = rounds
    summarize(result, rounds)
    result.ok = not any(n.startswith(tuple(f"{name}:" for name in stack.urls)) for n in result.notes)
    if not result.ok:
        result.error = "; ".join(result.notes)[:500]
    return result
