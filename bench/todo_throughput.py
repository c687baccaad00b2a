"""todo_throughput: events/s the todo projection applies from a pre-filled broker, versus two plain
consumers doing the same batched work (MongoDB and PostgreSQL) in the same run."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from .baselines import command_line
from .infra import SERVICES_DIR, Infra, postgres_dsn, service_available
from .procs import ChildProcess, CpuMeter
from .readmodel import (
    Counter,
    Progress,
    mongo_client,
    mongo_inbox_counter,
    mongo_state,
    postgres_inbox_counter,
    postgres_state,
    verify,
    watch_progress,
)
from .report import BenchResult, Row
from .stats import ratio
from .workload import TODO_SOURCE_TOPICS, ProduceStats, Workload, mixed_workload, produce_all

NAME = "todo_throughput"
TITLE = "todo projection throughput from a pre-filled broker (events applied per second)"


@dataclass(frozen=True)
class Params:
    events: int = 20_000
    clients: int = 1_000
    linger_ms: int = 20
    session_timeout_ms: int = 2_000
    poll_interval_s: float = 0.05
    time_limit_s: float = 120.0  # per consumer
    # Each round: a fresh broker pre-filled with the workload, then every consumer in turn (the order
    # alternates between rounds). The best round of each consumer is reported: noise only slows down.
    rounds: int = 2

    @classmethod
    def quick(cls) -> Params:
        return cls(events=4_000, clients=300, time_limit_s=60.0, rounds=1)


@dataclass
class ConsumerRun:
    name: str
    progress: Progress
    verification: dict[str, Any]
    internal: dict[str, Any] | None = None
    startup_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.progress.as_dict(),
            "verification": self.verification,
            "consumer_report": self.internal,
            "first_event_after_start_s": self.startup_s,
        }


async def _measure(
    infra: Infra, proc: ChildProcess, count: Counter, params: Params, *, mongo: bool
) -> tuple[Progress, float | None]:
    """Start the consumer and watch its store; CPU is metered for the consumer process and, for
    MongoDB, for nx-27017 (PostgreSQL's per-connection backends are not metered)."""
    proc.start()
    pids = {"consumer": proc.pid, **({"nx-27017": infra.mongo.pid} if mongo else {})}
    progress = await watch_progress(
        count,
        params.events,
        timeout=params.time_limit_s,
        interval=params.poll_interval_s,
        check_alive=proc.check_alive,
        meter=CpuMeter(pids),
    )
    startup = progress.first_seen_at - proc.started_at if progress.first_seen_at else None
    return progress, startup


async def run_mongo_consumer(
    infra: Infra, bootstrap: str, workload: Workload, params: Params, store: str
) -> ConsumerRun:
    """A `bench.baselines` consumer process writing to MongoDB: `mongo` or `todo-projection`."""
    label = store.replace("-", "_")
    database = f"bench_tp_{label}"
    client = mongo_client(infra.mongo.url)
    try:
        await client.drop_database(database)
        proc = infra.child(
            f"consumer-{store}",
            "bench.baselines",
            command_line(
                store,
                bootstrap=bootstrap,
                topics=TODO_SOURCE_TOPICS,
                events=params.events,
                time_limit=params.time_limit_s,
                group_id=f"bench-{store}-{uuid.uuid4().hex[:8]}",
                session_timeout_ms=params.session_timeout_ms,
                mongodb_url=infra.mongo.url,
                database=database,
            ),
            {},
            python_path=[SERVICES_DIR / "todo"] if store == "todo-projection" else [],
            capture_stdout=True,
        )
        progress, startup = await _measure(
            infra, proc, mongo_inbox_counter(client, database), params, mongo=True
        )
        await proc.wait_exit(30)
        state = await mongo_state(client, database)
        return ConsumerRun(
            label, progress, verify(state, workload.expected).as_dict(), proc.stdout_json(), startup
        )
    finally:
        await client.close()


async def run_postgres_baseline(
    infra: Infra, bootstrap: str, workload: Workload, params: Params
) -> ConsumerRun:
    server = infra.ensure_postgres()
    database = "bench_tp_baseline_pg"
    await server.drop_database(database)
    await server.create_database(database)
    dsn = postgres_dsn(server, database)
    conn = await asyncpg.connect(dsn)
    try:
        proc = infra.child(
            "baseline-postgres",
            "bench.baselines",
            command_line(
                "postgres",
                bootstrap=bootstrap,
                topics=TODO_SOURCE_TOPICS,
                events=params.events,
                time_limit=params.time_limit_s,
                group_id=f"bench-pg-{uuid.uuid4().hex[:8]}",
                session_timeout_ms=params.session_timeout_ms,
                dsn=dsn,
            ),
            {},
            capture_stdout=True,
        )
        progress, startup = await _measure(infra, proc, postgres_inbox_counter(conn), params, mongo=False)
        await proc.wait_exit(30)
        state = await postgres_state(conn)
        return ConsumerRun(
            "baseline_postgres",
            progress,
            verify(state, workload.expected).as_dict(),
            proc.stdout_json(),
            startup,
        )
    finally:
        await conn.close()


async def run_todo(infra: Infra, bootstrap: str, workload: Workload, params: Params) -> ConsumerRun:
    database = "bench_tp_todo"
    client = mongo_client(infra.mongo.url)
    try:
        await client.drop_database(database)
        proc, _port = infra.service(
            "todo",
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KAFKA_SESSION_TIMEOUT_MS": str(params.session_timeout_ms),
                "MONGODB_URL": infra.mongo.url,
                "MONGODB_DATABASE": database,
                # Not contacted: no HTTP request is made in this benchmark.
                "IDENTITY_URL": "http://127.0.0.1:9",
            },
            label="todo-throughput",
        )
        progress, startup = await _measure(
            infra, proc, mongo_inbox_counter(client, database), params, mongo=True
        )
        proc.stop()
        state = await mongo_state(client, database)
        return ConsumerRun("todo", progress, verify(state, workload.expected).as_dict(), None, startup)
    finally:
        await client.close()


Runner = Callable[[Infra, str, Workload, Params], Awaitable[ConsumerRun]]


def _runners(with_todo: bool) -> dict[str, Runner]:
    runners: dict[str, Runner] = {
        "baseline_mongo": lambda i, b, w, p: run_mongo_consumer(i, b, w, p, "mongo"),
        "baseline_postgres": run_postgres_baseline,
    }
    if with_todo:
        runners["todo"] = run_todo
        runners["todo_projection"] = lambda i, b, w, p: run_mongo_consumer(i, b, w, p, "todo-projection")
    return runners


async def run_round(
    infra: Infra, workload: Workload, params: Params, runners: dict[str, Runner], order: list[str]
) -> tuple[dict[str, ConsumerRun], ProduceStats]:
    """A fresh broker, pre-filled once; every consumer reads it all, one after the other."""
    kafka = await infra.fresh_kafka("throughput")
    try:
        produced = await produce_all(kafka.bootstrap, workload.records, linger_ms=params.linger_ms)
        runs = {name: await runners[name](infra, kafka.bootstrap, workload, params) for name in order}
    finally:
        infra.stop_kafka(kafka)
    return {name: runs[name] for name in runners}, produced


def _best_rate(rounds: list[dict[str, ConsumerRun]], name: str) -> float | None:
    """The highest rate over rounds: noise only ever slows a run down."""
    rates = [v for r in rounds if name in r and (v := r[name].progress.events_per_s) is not None]
    return max(rates) if rates else None


def _least_cpu(rounds: list[dict[str, ConsumerRun]], name: str) -> float | None:
    """The lowest CPU time per event (consumer process + nx-27017) over rounds, in µs."""
    totals = []
    for r in rounds:
        per_event = r[name].progress.as_dict()["cpu_us_per_event"] if name in r else {}
        if per_event:
            totals.append(sum(per_event.values()))
    return round(min(totals), 1) if totals else None


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    available, why = service_available("todo")
    if not available:
        result.notes.append(f"todo service not available ({why}): only the baselines were measured")
    started = time.perf_counter()
    workload = mixed_workload(params.events, params.clients)
    result.parameters.update(
        event_mix=workload.counts,
        topics=workload.topics,
        partitions_per_topic=3,
        record_bytes_mean=round(sum(len(r.value) for r in workload.records) / len(workload.records)),
        generate_seconds=round(time.perf_counter() - started, 3),
    )
    runners = _runners(available)
    rounds: list[dict[str, ConsumerRun]] = []
    produce_rates: list[float] = []
    for i in range(params.rounds):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        runs, produced = await run_round(infra, workload, params, runners, order)
        rounds.append(runs)
        produce_rates.append(produced.per_second)

    result.results["produce_records_per_s"] = [round(r, 1) for r in produce_rates]
    result.results["rounds"] = [{name: run.as_dict() for name, run in r.items()} for r in rounds]
    for i, r in enumerate(rounds):
        for name, consumer_run in r.items():
            if not consumer_run.verification["ok"]:
                result.notes.append(
                    f"{name}: round {i}: final read model does NOT match the workload: "
                    f"{consumer_run.verification}"
                )
            if consumer_run.progress.timed_out:
                result.notes.append(
                    f"{name}: round {i}: did not apply all {params.events} events "
                    f"within {params.time_limit_s}s"
                )

    rate = {name: _best_rate(rounds, name) for name in runners}
    cpu = {name: _least_cpu(rounds, name) for name in runners}
    result.results["events_per_s_best"] = {n: round(v, 1) if v else None for n, v in rate.items()}
    result.results["cpu_us_per_event_least"] = cpu
    todo, projection = rate.get("todo"), rate.get("todo_projection")
    base_a, base_b, cpu_a = rate["baseline_mongo"], rate["baseline_postgres"], cpu["baseline_mongo"]
    result.ratios = {
        "todo/baseline_mongo": ratio(todo, base_a),
        "todo/baseline_postgres": ratio(todo, base_b),
        "todo_projection/baseline_mongo": ratio(projection, base_a),
        "todo/todo_projection": ratio(todo, projection),
        "baseline_mongo/baseline_postgres": ratio(base_a, base_b),
        "cpu per event todo/baseline_mongo": ratio(cpu.get("todo"), cpu_a),
        "cpu per event todo_projection/baseline_mongo": ratio(cpu.get("todo_projection"), cpu_a),
    }
    ratios = result.ratios
    a, b = "A: aiokafka+nx-27017", "B: aiokafka+asyncpg"
    result.rows = [
        Row("todo service events/s", todo, "ev/s", a, base_a, ratios["todo/baseline_mongo"], "higher"),
        Row("todo service events/s", todo, "ev/s", b, base_b, ratios["todo/baseline_postgres"], "higher"),
        Row(
            "todo projection code, plain consumer loop",
            projection,
            "ev/s",
            a,
            base_a,
            ratios["todo_projection/baseline_mongo"],
            "higher",
        ),
        Row(
            "todo CPU per event (service + nx-27017)",
            cpu.get("todo"),
            "µs",
            a,
            cpu_a,
            ratios["cpu per event todo/baseline_mongo"],
            "lower",
        ),
        Row("A: aiokafka + nx-27017 batched upsert", base_a, "ev/s"),
        Row("B: aiokafka + asyncpg batched upsert", base_b, "ev/s"),
        Row("aiokafka produce to Tansu (acks=all)", max(produce_rates), "msg/s"),
    ]
    result.ok = not any("NOT match" in n or "did not apply" in n for n in result.notes)
    if not result.ok:
        result.error = "; ".join(n for n in result.notes if "NOT match" in n or "did not apply" in n)[:500]
    return result
