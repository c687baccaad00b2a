"""todo_throughput: events/s the todo projection applies from a pre-filled broker, versus two plain
consumers doing the same batched work (MongoDB and PostgreSQL) in the same run."""

from __future__ import annotations

import time
import uuid
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
from .workload import TODO_SOURCE_TOPICS, Workload, mixed_workload, produce_all

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

    @classmethod
    def quick(cls) -> Params:
        return cls(events=4_000, clients=300, time_limit_s=60.0)


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


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    available, why = service_available("todo")
    started = time.perf_counter()
    workload = mixed_workload(params.events, params.clients)
    generated_s = time.perf_counter() - started
    kafka = await infra.fresh_kafka("throughput")
    produced = await produce_all(kafka.bootstrap, workload.records, linger_ms=params.linger_ms)
    result.parameters.update(
        event_mix=workload.counts,
        topics=workload.topics,
        partitions_per_topic=3,
        record_bytes_mean=round(sum(len(r.value) for r in workload.records) / len(workload.records)),
    )
    result.results["produce"] = {
        "records": produced.records,
        "seconds": round(produced.seconds, 3),
        "records_per_s": round(produced.per_second, 1),
        "generate_seconds": round(generated_s, 3),
    }

    runs: dict[str, ConsumerRun] = {}
    runs["baseline_mongo"] = await run_mongo_consumer(infra, kafka.bootstrap, workload, params, "mongo")
    runs["baseline_postgres"] = await run_postgres_baseline(infra, kafka.bootstrap, workload, params)
    if available:
        runs["todo"] = await run_todo(infra, kafka.bootstrap, workload, params)
        runs["todo_projection"] = await run_mongo_consumer(
            infra, kafka.bootstrap, workload, params, "todo-projection"
        )
    else:
        result.notes.append(f"todo service not available ({why}): only the baselines were measured")
    infra.stop_kafka(kafka)

    for name, consumer_run in runs.items():
        result.results[name] = consumer_run.as_dict()
        if not consumer_run.verification["ok"]:
            result.notes.append(
                f"{name}: final read model does NOT match the workload: {consumer_run.verification}"
            )
        if consumer_run.progress.timed_out:
            result.notes.append(
                f"{name}: did not apply all {params.events} events within {params.time_limit_s}s"
            )

    rate = {name: r.progress.events_per_s for name, r in runs.items()}
    todo, projection = rate.get("todo"), rate.get("todo_projection")
    base_a, base_b = rate["baseline_mongo"], rate["baseline_postgres"]
    result.ratios = {
        "todo/baseline_mongo": ratio(todo, base_a),
        "todo/baseline_postgres": ratio(todo, base_b),
        "todo_projection/baseline_mongo": ratio(projection, base_a),
        "todo/todo_projection": ratio(todo, projection),
        "baseline_mongo/baseline_postgres": ratio(base_a, base_b),
    }
    result.rows = [
        Row(
            "todo service events/s",
            todo,
            "ev/s",
            "A: aiokafka+nx-27017",
            base_a,
            result.ratios["todo/baseline_mongo"],
        ),
        Row(
            "todo service events/s",
            todo,
            "ev/s",
            "B: aiokafka+asyncpg",
            base_b,
            result.ratios["todo/baseline_postgres"],
        ),
        Row(
            "todo projection code, plain consumer loop",
            projection,
            "ev/s",
            "A: aiokafka+nx-27017",
            base_a,
            result.ratios["todo_projection/baseline_mongo"],
        ),
        Row("A: aiokafka + nx-27017 batched upsert", base_a, "ev/s"),
        Row("B: aiokafka + asyncpg batched upsert", base_b, "ev/s"),
        Row("aiokafka produce to Tansu (acks=all)", produced.per_second, "msg/s"),
    ]
    result.ok = all(r.verification["ok"] and not r.progress.timed_out for r in runs.values())
    if not result.ok:
        result.error = "; ".join(n for n in result.notes if "NOT match" in n or "did not apply" in n)[:500]
    return result
