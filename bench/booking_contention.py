"""booking_contention: 200 parents racing for 20 bookable slots through the real gateway → sync, as
bookings/s, attempts/s and the latency of an attempt, against the floor of the same race: 200 asyncio
tasks on an asyncpg pool running the same conditional UPDATE on a table of the same shape in the same
PostgreSQL (no HTTP, no token checks, no framework, no booking row, no outbound item).

Every parent tries the slots in its own random order until one is booked (201) or every slot answered
409. Exactly one parent must win each slot: a run with more or fewer than `slots` bookings, a slot
booked twice, or any answer other than 201 and 409 fails the benchmark. That is a correctness check,
not a timing one."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import httpx

from petportal_devkit.devinfra import free_port, tail

from .gateway_rps import _start_identity
from .infra import LOOPBACK, Infra, postgres_dsn, service_available
from .procs import ChildFailed, ChildProcess, CpuMeter
from .report import BenchResult, Row
from .stats import ratio, summarize_ms
from .sync_ingest import _migrated as migrated_sync_database

NAME = "booking_contention"
TITLE = "200 parents racing for 20 slots: bookings through gateway → sync vs a bare UPDATE race"

CLINIC_ID = "bench-clinic-book"
BOOKINGS_PATH = "/api/v1/booking/bookings"
SYNC_DATABASE = "bench_booking_sync"
FLOOR_DATABASE = "bench_booking_floor"
# The decisive statement of a booking, as sync's BookingRepository.take makes it (adapters/booking.py:
# `_free`): the row changes only while the slot is open, unbooked, in the future and not held by
# someone else, so of any number of racers exactly one gets the row back.
FLOOR_TAKE = """
UPDATE booking_slots SET booking_id = $1, hold_id = NULL, held_by = NULL, held_until = NULL
WHERE clinic_id = $2 AND slot_id = $3 AND open AND booking_id IS NULL AND starts_at > now()
  AND (held_until IS NULL OR held_until <= now() OR held_by = $4)
RETURNING clinic_id, slot_id, starts_at, duration_minutes, appointment_type, provider
"""
FLOOR_INSERT = """
INSERT INTO booking_slots (clinic_id, slot_id, starts_at, duration_minutes, appointment_type, open,
                           updated_at)
VALUES ($1, $2, $3, 30, 'Exam', true, now())
"""

# An attempt: (parent index, slot id) -> HTTP-like status (201 booked, 409 taken, anything else wrong).
Attempt = Callable[[int, str], Awaitable[int]]


@dataclass(frozen=True)
class Params:
    parents: int = 200
    slots: int = 20
    rounds: int = 2
    # Before the rounds, one untimed race per target on this many slots (first-use costs: statement
    # caches, connections, imports done lazily), so the first measured round is not the odd one.
    warmup_slots: int = 2
    # sync's SQLAlchemy pool is 10 connections plus 10 of overflow: the floor gets as many.
    floor_pool_size: int = 20
    race_time_limit_s: float = 120.0  # a round stops (and fails) after this
    ready_timeout_s: float = 120.0
    # The gateway's per-IP budget (default 300/minute) would answer 429 to 200 parents on one IP:
    # raised so every request is served, while the limiter still runs on each one.
    gateway_rate_limit_per_minute: int = 1_000_000_000
    seed: int = 20_261_204

    @classmethod
    def quick(cls) -> Params:
        return cls(parents=40, slots=8, race_time_limit_s=60.0)


def client_id(n: int) -> str:
    return f"BC-{n:04d}"


def patient_id(n: int) -> str:
    return f"BP-{n:04d}"


def slot_ids(round_no: int, slots: int) -> list[str]:
    """Fresh slot ids every round, so rounds do not depend on each other."""
    return [f"R{round_no}-S{n:03d}" for n in range(slots)]


def orders(round_no: int, params: Params) -> list[list[int]]:
    """Each parent's order of trying the slots (as indices); the same for every target of a round."""
    rng = random.Random(params.seed + round_no)
    out = []
    for _ in range(params.parents):
        mine = list(range(params.slots))
        rng.shuffle(mine)
        out.append(mine)
    return out


def _starts_at(n: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=30, minutes=30 * n)).replace(microsecond=0)


# --- the race, the same for every target ------------------------------------------------------------


@dataclass
class Race:
    started: float = 0.0
    attempts: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    winners: dict[str, list[int]] = field(default_factory=dict)  # slot -> parents answered 201 for it
    last_answer: float = 0.0
    last_booking: float = 0.0
    out_of_time: int = 0  # parents stopped by the time limit


async def race(parent_orders: list[list[str]], attempt: Attempt, time_limit_s: float) -> Race:
    """Every parent at once: the slots in its order until one is booked or every one is taken."""
    state = Race()
    go = asyncio.Event()
    deadline = 0.0

    async def parent(n: int) -> None:
        await go.wait()
        for slot in parent_orders[n]:
            if time.perf_counter() > deadline:
                state.out_of_time += 1
                return
            t0 = time.perf_counter()
            try:
                status = await attempt(n, slot)
            except Exception as exc:  # counted, and this parent stops: the run fails
                state.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                state.last_answer = max(state.last_answer, time.perf_counter())
                return
            t1 = time.perf_counter()
            state.attempts += 1
            state.statuses[status] += 1
            state.latencies.append(t1 - t0)
            state.last_answer = max(state.last_answer, t1)
            if status == 201:
                state.winners.setdefault(slot, []).append(n)
                state.last_booking = max(state.last_booking, t1)
                return
            if status != 409:
                return

    tasks = [asyncio.create_task(parent(n)) for n in range(len(parent_orders))]
    await asyncio.sleep(0)  # every task is waiting on the event
    state.started = time.perf_counter()
    deadline = state.started + time_limit_s
    go.set()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=time_limit_s + 30)
    except TimeoutError:
        state.errors["round did not end within its time limit"] += 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return state


def measured(state: Race, slots: list[str], cpu: dict[str, float | None]) -> dict[str, Any]:
    wall = max(state.last_answer - state.started, 1e-9)
    winners = sum(len(v) for v in state.winners.values())
    problems: list[str] = []
    if winners != len(slots):
        problems.append(f"{winners} bookings for {len(slots)} slots")
    if twice := {s: p for s, p in state.winners.items() if len(p) > 1}:
        problems.append(f"slots booked more than once: {twice}")
    if unknown := set(state.winners) - set(slots):
        problems.append(f"bookings of slots not in the race: {sorted(unknown)}")
    if other := {str(k): v for k, v in state.statuses.items() if k not in (201, 409)}:
        problems.append(f"answers other than 201/409: {other}")
    if state.errors:
        problems.append(f"errors: {dict(state.errors)}")
    if state.out_of_time:
        problems.append(f"{state.out_of_time} parents stopped by the time limit")
    return {
        "wall_s": round(wall, 3),
        "all_slots_booked_after_s": round(state.last_booking - state.started, 3) if winners else None,
        "attempts": state.attempts,
        "bookings": winners,
        "statuses": {str(k): v for k, v in sorted(state.statuses.items())},
        "bookings_per_s": round(winners / wall, 2),
        "attempts_per_s": round(state.attempts / wall, 1),
        "latency": summarize_ms(state.latencies),
        "cpu_s": cpu,
        "cpu_ms_per_attempt": {
            name: round(seconds * 1000 / max(1, state.attempts), 3)
            for name, seconds in cpu.items()
            if seconds is not None
        },
        "problems": problems,
    }


async def metered_race(
    parent_orders: list[list[str]], attempt: Attempt, params: Params, meter: CpuMeter
) -> tuple[Race, dict[str, float | None]]:
    """The race, with the CPU seconds of the servers and of this process (the clients) during it."""
    before, client_before = meter.snapshot(), time.process_time()
    state = await race(parent_orders, attempt, params.race_time_limit_s)
    cpu = CpuMeter.delta(before, meter.snapshot())
    cpu["bench_clients"] = round(time.process_time() - client_before, 3)
    return state, cpu


# --- the stack ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    gateway_url: str
    sync_url: str
    api_key: str
    tokens: list[str]
    sync_dsn: str
    meter: CpuMeter


async def _create_clinic(infra: Infra, env: dict[str, str]) -> str:
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
            "ezyvet",
            "--sms-number",
            "+14155550101",
        ],
        {"ENVIRONMENT": "development", **env},
        capture_stdout=True,
    )
    create.start()
    if await create.wait_exit(60) != 0:
        raise ChildFailed(f"create-clinic failed:\n{tail(create.log_file)}")
    return str(create.stdout_json()["api_key"])


async def _push(http: httpx.AsyncClient, api_key: str, records: list[dict[str, Any]]) -> None:
    response = await http.post(
        "/pims/v1/records",
        json={"pims": "ezyvet", "records": records},
        headers={"authorization": f"Bearer {api_key}"},
    )
    if response.status_code != 200 or response.json()["rejected"]:
        raise ChildFailed(f"records refused: {response.status_code} {response.text[:500]}")


def _seed_records(parents: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [{"kind": "clinic_settings", "booking_mode": "direct"}]
    for n in range(parents):
        records.append(
            {"kind": "contact", "client_id": client_id(n), "first_name": "Bench", "last_name": f"Parent{n}"}
        )
        records.append(
            {
                "kind": "patient",
                "client_id": client_id(n),
                "patient_id": patient_id(n),
                "name": f"Rex{n}",
                "species": "Canine",
            }
        )
    return records


async def _dev_tokens(identity_url: str, parents: int, deadline: float) -> list[str]:
    """A token per parent, once identity has consumed the ClientUpserted sync published for each."""
    limit = asyncio.Semaphore(16)

    async def one(http: httpx.AsyncClient, n: int) -> str:
        async with limit:
            while True:
                response = await http.post(
                    "/api/v1/auth/dev-token", json={"clinic_id": CLINIC_ID, "client_id": client_id(n)}
                )
                if response.status_code == 200:
                    return str(response.json()["access_token"])
                if response.status_code != 404 or time.monotonic() > deadline:
                    answer = f"{response.status_code} {response.text[:300]}"
                    raise ChildFailed(f"dev-token {client_id(n)}: {answer}")
                await asyncio.sleep(0.2)

    async with httpx.AsyncClient(base_url=identity_url, timeout=10, trust_env=False) as http:
        return list(await asyncio.gather(*(one(http, n) for n in range(parents))))


async def start_stack(infra: Infra, params: Params) -> Stack:
    deadline = time.monotonic() + params.ready_timeout_s
    kafka = await infra.fresh_kafka("booking")
    kafka_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "KAFKA_SESSION_TIMEOUT_MS": "2000"}
    identity, identity_url = await _start_identity(infra, kafka_env)
    sync_database = await migrated_sync_database(infra, SYNC_DATABASE)
    sync_env = {**kafka_env, "DATABASE_URL": sync_database, "IDENTITY_URL": identity_url}
    api_key = await _create_clinic(infra, sync_env)
    sync, sync_port = infra.service("sync", sync_env)
    sync.start()
    sync_url = f"http://{LOOPBACK}:{sync_port}"
    gateway, gateway_port = infra.service(
        "gateway",
        {
            "IDENTITY_URL": identity_url,
            "SYNC_URL": sync_url,
            "RATE_LIMIT_PER_MINUTE": str(params.gateway_rate_limit_per_minute),
            "METRICS_PORT": str(free_port()),
        },
    )
    gateway.start()
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    await identity.wait_http_ok(f"{identity_url}/healthz", timeout=params.ready_timeout_s)
    await sync.wait_http_ok(f"{sync_url}/healthz", timeout=params.ready_timeout_s)
    await gateway.wait_http_ok(f"{gateway_url}/healthz", timeout=params.ready_timeout_s)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60, trust_env=False) as http:
        await _push(http, api_key, _seed_records(params.parents))
    tokens = await _dev_tokens(identity_url, params.parents, deadline)
    pids: dict[str, ChildProcess] = {"gateway": gateway, "sync": sync, "identity": identity}
    meter = CpuMeter({name: proc.pid for name, proc in pids.items()})
    sync_dsn = postgres_dsn(infra.ensure_postgres(), SYNC_DATABASE)
    return Stack(gateway_url, sync_url, api_key, tokens, sync_dsn, meter)


async def _service_round(
    stack: Stack, base_url: str, slots: list[str], parent_orders: list[list[str]], params: Params
) -> dict[str, Any]:
    """Fresh slots pushed by the connector, then the race over HTTP, then the store checked."""
    records = [
        {"kind": "slot", "slot_id": s, "starts_at": _starts_at(n).isoformat()} for n, s in enumerate(slots)
    ]
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, trust_env=False) as http:
        await _push(http, stack.api_key, records)
    headers = [{"authorization": f"Bearer {token}"} for token in stack.tokens]
    booked_slot: dict[int, str] = {}
    # aiohttp rather than httpx: it costs this process (which shares the cores with the servers)
    # several times less CPU per request. One connection per parent at most, as 200 phones would have.
    connector = aiohttp.TCPConnector(limit=params.parents, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:

        async def attempt(n: int, slot: str) -> int:
            body = {"clinic_id": CLINIC_ID, "slot_id": slot, "patient_id": patient_id(n)}
            async with session.post(BOOKINGS_PATH, json=body, headers=headers[n]) as response:
                if response.status == 201:
                    booked_slot[n] = (await response.json())["slot"]["slot_id"]
                else:
                    await response.read()
                return int(response.status)

        state, cpu = await metered_race(parent_orders, attempt, params, stack.meter)
    result = measured(state, slots, cpu)
    mismatched = {n: s for n, s in booked_slot.items() if n not in state.winners.get(s, [])}
    if mismatched:
        result["problems"].append(f"a 201 named another slot than the one asked for: {mismatched}")
    result["store"] = await _check_store(stack.sync_dsn, slots)
    if result["store"] != {"booked_slots": len(slots), "bookings": len(slots), "distinct_clients": len(slots),
                           "outbound_items": len(slots)}:  # fmt: skip
        result["problems"].append(f"the store does not hold one booking per slot: {result['store']}")
    return result


async def _check_store(dsn: str, slots: list[str]) -> dict[str, int]:
    """What sync stored for the round's slots: each booked once, by one client, queued for the PIMS."""
    connection = await asyncpg.connect(dsn)
    try:
        booked = await connection.fetchval(
            "SELECT count(*) FROM booking_slots WHERE clinic_id = $1 AND slot_id = ANY($2) "
            "AND booking_id IS NOT NULL",
            CLINIC_ID,
            slots,
        )
        row = await connection.fetchrow(
            "SELECT count(*) AS bookings, count(DISTINCT client_id) AS clients, "
            "(SELECT count(*) FROM outbound_items o WHERE o.id IN "
            "  (SELECT id FROM bookings WHERE clinic_id = $1 AND slot_id = ANY($2))) AS outbound "
            "FROM bookings WHERE clinic_id = $1 AND slot_id = ANY($2)",
            CLINIC_ID,
            slots,
        )
    finally:
        await connection.close()
    assert row is not None
    return {
        "booked_slots": int(booked),
        "bookings": int(row["bookings"]),
        "distinct_clients": int(row["clients"]),
        "outbound_items": int(row["outbound"]),
    }


async def _floor_round(
    pool: asyncpg.Pool, slots: list[str], parent_orders: list[list[str]], params: Params, meter: CpuMeter
) -> dict[str, Any]:
    """The same race with no framework: the conditional UPDATE alone, on a pool of connections."""
    async with pool.acquire() as connection:
        await connection.executemany(
            FLOOR_INSERT, [(CLINIC_ID, s, _starts_at(n)) for n, s in enumerate(slots)]
        )

    async def attempt(n: int, slot: str) -> int:
        row = await pool.fetchrow(FLOOR_TAKE, uuid.uuid4(), CLINIC_ID, slot, client_id(n))
        return 201 if row is not None else 409

    state, cpu = await metered_race(parent_orders, attempt, params, meter)
    result = measured(state, slots, cpu)
    async with pool.acquire() as connection:
        booked = await connection.fetchval(
            "SELECT count(*) FROM booking_slots WHERE clinic_id = $1 AND slot_id = ANY($2) "
            "AND booking_id IS NOT NULL",
            CLINIC_ID,
            slots,
        )
    result["store"] = {"booked_slots": int(booked)}
    if booked != len(slots):
        result["problems"].append(f"{booked} slots booked in the table for {len(slots)}")
    return result


async def _target_round(
    name: str,
    stack: Stack,
    pool: asyncpg.Pool,
    slots: list[str],
    parent_orders: list[list[str]],
    params: Params,
) -> dict[str, Any]:
    if name == "floor":
        return await _floor_round(pool, slots, parent_orders, params, stack.meter)
    url = stack.gateway_url if name == "gateway" else stack.sync_url
    return await _service_round(stack, url, slots, parent_orders, params)


# --- the report ---------------------------------------------------------------------------------------

TARGETS = ("gateway", "sync_direct", "floor")


def _best(rounds: list[dict[str, dict[str, Any]]], name: str, key: str) -> float | None:
    """The best round (noise only ever makes things slower): most per second, least latency."""
    values: list[float] = []
    for r in rounds:
        m = r[name]
        value = m[key] if key.endswith("_per_s") else m["latency"].get(key)
        if value is not None:
            values.append(float(value))
    if not values:
        return None
    return max(values) if key.endswith("_per_s") else min(values)


def summarize(result: BenchResult, rounds: list[dict[str, dict[str, Any]]], params: Params) -> None:
    keys = ("bookings_per_s", "attempts_per_s", "p50_ms", "p95_ms")
    best = {name: {key: _best(rounds, name, key) for key in keys} for name in TARGETS}
    result.results["best_of_rounds"] = best
    gw, direct, floor = best["gateway"], best["sync_direct"], best["floor"]
    result.ratios = {
        "gateway/floor attempts/s": ratio(gw["attempts_per_s"], floor["attempts_per_s"]),
        "gateway/floor bookings/s": ratio(gw["bookings_per_s"], floor["bookings_per_s"]),
        "gateway/floor p50": ratio(gw["p50_ms"], floor["p50_ms"]),
        "gateway/floor p95": ratio(gw["p95_ms"], floor["p95_ms"]),
        "sync_direct/floor attempts/s": ratio(direct["attempts_per_s"], floor["attempts_per_s"]),
        "gateway/sync_direct attempts/s": ratio(gw["attempts_per_s"], direct["attempts_per_s"]),
    }
    winners = [r["gateway"]["bookings"] for r in rounds]
    floor_label = "UPDATE race, asyncpg"
    result.rows = [
        Row(
            f"{params.parents} parents / {params.slots} slots: bookings (every round)",
            float(min(winners)) if len(set(winners)) == 1 else None,
            "",
        ),
        Row(
            "gateway → sync booking attempts/s",
            gw["attempts_per_s"],
            "att/s",
            floor_label,
            floor["attempts_per_s"],
            result.ratios["gateway/floor attempts/s"],
            "higher",
        ),
        Row(
            "gateway → sync bookings/s (race start → last answer)",
            gw["bookings_per_s"],
            "bk/s",
            floor_label,
            floor["bookings_per_s"],
            result.ratios["gateway/floor bookings/s"],
            "higher",
        ),
        Row(
            "gateway → sync attempt latency p50",
            gw["p50_ms"],
            "ms",
            floor_label,
            floor["p50_ms"],
            result.ratios["gateway/floor p50"],
            "lower",
        ),
        Row(
            "gateway → sync attempt latency p95",
            gw["p95_ms"],
            "ms",
            floor_label,
            floor["p95_ms"],
            result.ratios["gateway/floor p95"],
            "lower",
        ),
        Row(
            "diagnostic: sync direct attempts/s",
            direct["attempts_per_s"],
            "att/s",
            floor_label,
            floor["attempts_per_s"],
            result.ratios["sync_direct/floor attempts/s"],
            "higher",
        ),
    ]


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    result.parameters["floor"] = "asyncpg pool, autocommit conditional UPDATE … RETURNING on booking_slots"
    for service in ("identity", "sync", "gateway"):
        available, why = service_available(service)
        if not available:
            result.ok = False
            result.error = f"{service} service not available ({why})"
            return result
    stack = await start_stack(infra, params)
    await migrated_sync_database(infra, FLOOR_DATABASE)  # the same table, migrated the same way
    pool = await asyncpg.create_pool(
        postgres_dsn(infra.ensure_postgres(), FLOOR_DATABASE),
        min_size=params.floor_pool_size,
        max_size=params.floor_pool_size,
    )
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        warmup: dict[str, dict[str, Any]] = {}
        for t, name in enumerate(TARGETS):
            slots = [f"W{t}-S{n:03d}" for n in range(params.warmup_slots)]
            rng = random.Random(params.seed - 1 - t)
            parent_orders = [rng.sample(slots, len(slots)) for _ in range(params.parents)]
            warmup[name] = await _target_round(name, stack, pool, slots, parent_orders, params)
        result.results["warmup"] = {
            name: {k: m[k] for k in ("attempts", "statuses", "wall_s", "problems")}
            for name, m in warmup.items()
        }
        for name, m in warmup.items():
            result.notes.extend(f"{name}: warm-up: {problem}" for problem in m["problems"])
        for i in range(params.rounds):
            order = list(TARGETS) if i % 2 == 0 else list(reversed(TARGETS))
            current: dict[str, dict[str, Any]] = {}
            for t, name in enumerate(order):
                # Fresh slots for every target of every round: no race depends on another.
                slots = slot_ids(i * len(TARGETS) + t, params.slots)
                parent_orders = [[slots[k] for k in o] for o in orders(i, params)]
                current[name] = await _target_round(name, stack, pool, slots, parent_orders, params)
                current[name]["slot_ids"] = f"{slots[0]} … {slots[-1]}"
            rounds.append({name: current[name] for name in TARGETS})
    finally:
        await pool.close()
    result.results["rounds"] = rounds
    for i, r in enumerate(rounds):
        for name, m in r.items():
            result.notes.extend(f"{name}: round {i}: {problem}" for problem in m["problems"])
    summarize(result, rounds, params)
    result.notes.append(
        "an attempt through sync checks the token, the clinic's booking mode and the pet, takes the slot "
        "with one conditional UPDATE, writes the booking and its outbound item in the same transaction "
        "(a 409 reads the slot once more to tell 'taken' from 'missing'); the floor runs only the UPDATE"
    )
    if problems := [n for n in result.notes if n.startswith(tuple(f"{t}:" for t in TARGETS))]:
        result.ok = False
        result.error = "; ".join(problems)[:500]
    return result
