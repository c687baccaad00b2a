"""event_to_badge_latency: produce → read-model visible latency at a fixed event rate.

Each event is a MessageReceived for a client from a rotating set; it is "visible" when that parent's
`unread_messages` in MongoDB reaches the count the event makes (the badge's unread item is computed
from it on read). The same load is run against the MongoDB baseline consumer (plain aiokafka +
batched upsert), then against the real todo service, each on a fresh broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pymongo import AsyncMongoClient

from .baselines import command_line
from .infra import Infra, service_available
from .procs import ChildProcess
from .readmodel import mongo_client, mongo_state, mongo_unread
from .report import BenchResult, Row
from .stats import ratio, summarize_ms
from .todo_adapter import todo_fetch_max_wait_ms
from .workload import TODO_SOURCE_TOPICS, clients, message_received, parent_id, producer, to_record

StartConsumer = Callable[[str, str], ChildProcess]  # (bootstrap, database) -> a process, not started

NAME = "event_to_badge_latency"
DIAGNOSTIC = "baseline_mongo_other_fetch_wait"
TITLE = "produce → read-model visible latency (ms) at a fixed event rate"
TARGET_P99_MS = 50.0  # the target for todo, at 1,000 events/s


@dataclass(frozen=True)
class Params:
    rate_per_s: int = 1000  # the target rate
    duration_s: float = 10.0
    clients: int = 100
    poll_interval_s: float = 0.005
    settle_timeout_s: float = 30.0  # after the last event, how long to wait for the stragglers
    warmup_timeout_s: float = 60.0
    linger_ms: int = 0
    session_timeout_ms: int = 2_000
    # Each round runs the baseline and todo once (order alternating), each on a fresh broker.
    rounds: int = 2
    # The baseline's fetch_max_wait_ms; None: the same as the todo service's consumer.
    fetch_max_wait_ms: int | None = None
    # Also run the baseline with this fetch_max_wait_ms (None: skip), to show the broker's share:
    # 100 ms is what the other services' consumers use (and todo's did).
    diagnostic_fetch_max_wait_ms: int | None = 100

    @property
    def events(self) -> int:
        return int(self.rate_per_s * self.duration_s)

    @classmethod
    def quick(cls) -> Params:
        return cls(duration_s=4.0, rounds=1)


@dataclass
class LatencyRun:
    latencies_s: list[float] = field(default_factory=list)
    unseen: int = 0
    max_send_lag_s: float = 0.0
    send_seconds: float = 0.0
    polls: int = 0
    poll_query_s: list[float] = field(default_factory=list)
    warmup_s: float = 0.0  # consumer process start → one event per client visible
    probe_mismatches: int = 0  # parents whose probed count differs from the read model's reading

    def as_dict(self) -> dict[str, Any]:
        queries = sorted(self.poll_query_s)
        return {
            "latency": summarize_ms(self.latencies_s),
            "events_visible": len(self.latencies_s),
            "events_not_visible_in_time": self.unseen,
            "achieved_rate_per_s": round(len(self.latencies_s) / self.send_seconds, 1)
            if self.send_seconds
            else None,
            "max_producer_lag_ms": round(self.max_send_lag_s * 1000, 3),
            "polls": self.polls,
            "poll_query_ms": summarize_ms(queries),
            "start_to_warmup_visible_s": round(self.warmup_s, 3),
            "probe_mismatches": self.probe_mismatches,
        }


class Visibility:
    """Pending (parent, unread count to reach, send time) per parent, resolved by polling."""

    def __init__(self) -> None:
        self.pending: dict[str, deque[tuple[int, float]]] = {}
        self.latencies: list[float] = []

    def expect(self, pid: str, target: int, sent_at: float) -> None:
        self.pending.setdefault(pid, deque()).append((target, sent_at))

    def observe(self, unread: dict[str, int], seen_at: float) -> None:
        for pid, count in unread.items():
            queue = self.pending.get(pid)
            while queue and queue[0][0] <= count:
                _, sent_at = queue.popleft()
                self.latencies.append(seen_at - sent_at)
            if queue is not None and not queue:
                del self.pending[pid]

    def waiting(self) -> list[str]:
        return list(self.pending)

    def outstanding(self) -> int:
        return sum(len(q) for q in self.pending.values())


async def _poll_until_visible(
    client: AsyncMongoClient[dict[str, Any]],
    database: str,
    visibility: Visibility,
    *,
    producing_done: asyncio.Event,
    deadline: float,
    interval: float,
    run: LatencyRun | None,
    check_alive: Callable[[], None],
) -> None:
    while time.monotonic() < deadline:
        check_alive()
        pids = visibility.waiting()
        if not pids:
            if producing_done.is_set():
                return
            await asyncio.sleep(interval)
            continue
        started = time.perf_counter()
        unread = await mongo_unread(client, database, pids)
        seen_at = time.perf_counter()
        # Conservative: visible at the moment the query answered (resolution: interval + query time).
        visibility.observe(unread, seen_at)
        if run is not None:
            run.polls += 1
            run.poll_query_s.append(seen_at - started)
        await asyncio.sleep(interval)


async def measure(
    bootstrap: str,
    mongo_url: str,
    database: str,
    params: Params,
    check_alive: Callable[[], None],
) -> LatencyRun:
    run = LatencyRun()
    population = clients(params.clients)
    counts = {parent_id(c, k): 0 for c, k in population}
    client = mongo_client(mongo_url)
    kafka = producer(bootstrap, linger_ms=params.linger_ms)
    await kafka.start()
    try:
        # Warm-up: one event per client, all visible, so the consumer has joined its group, holds
        # its partitions and every parent document exists before the clock starts.
        warm = Visibility()
        started = time.perf_counter()
        for clinic_id, client_id in population:
            record = to_record(message_received(clinic_id, client_id))
            pid = parent_id(clinic_id, client_id)
            counts[pid] += 1
            warm.expect(pid, counts[pid], time.perf_counter())
            await kafka.send(record.topic, record.value, key=record.key, headers=list(record.headers))
        await kafka.flush()
        done = asyncio.Event()
        done.set()
        await _poll_until_visible(
            client,
            database,
            warm,
            producing_done=done,
            deadline=time.monotonic() + params.warmup_timeout_s,
            interval=0.05,
            run=None,
            check_alive=check_alive,
        )
        if warm.outstanding():
            raise RuntimeError(f"warm-up events not visible after {params.warmup_timeout_s}s")
        run.warmup_s = time.perf_counter() - started

        # Pre-build the records so producing costs no serialisation on the schedule.
        schedule = []
        for i in range(params.events):
            clinic_id, client_id = population[i % len(population)]
            schedule.append(
                (parent_id(clinic_id, client_id), to_record(message_received(clinic_id, client_id)))
            )

        visibility = Visibility()
        producing_done = asyncio.Event()

        async def produce() -> None:
            t0 = time.perf_counter()
            acks = []
            for i, (pid, record) in enumerate(schedule):
                due = t0 + i / params.rate_per_s
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.perf_counter()
                run.max_send_lag_s = max(run.max_send_lag_s, now - due)
                counts[pid] += 1
                visibility.expect(pid, counts[pid], now)
                acks.append(
                    await kafka.send(record.topic, record.value, key=record.key, headers=list(record.headers))
                )
            await asyncio.gather(*acks)
            run.send_seconds = time.perf_counter() - t0
            producing_done.set()

        producer_task = asyncio.create_task(produce())
        try:
            await _poll_until_visible(
                client,
                database,
                visibility,
                producing_done=producing_done,
                deadline=time.monotonic() + params.duration_s + params.settle_timeout_s,
                interval=params.poll_interval_s,
                run=run,
                check_alive=check_alive,
            )
        finally:
            if not producer_task.done():
                producer_task.cancel()
            await asyncio.gather(producer_task, return_exceptions=True)
        run.latencies_s = visibility.latencies
        run.unseen = visibility.outstanding()
        # The probe reads only the counts: they must be what the read model's own reading says.
        full = await mongo_state(client, database)
        probed = await mongo_unread(client, database, list(full))
        run.probe_mismatches = sum(probed.get(pid) != state[0] for pid, state in full.items())
        return run
    finally:
        await kafka.stop()
        await client.close()


async def _run_against(
    infra: Infra, params: Params, label: str, start_consumer: StartConsumer, database: str
) -> LatencyRun:
    kafka = await infra.fresh_kafka(f"latency-{label}")
    client = mongo_client(infra.mongo.url)
    await client.drop_database(database)
    await client.close()
    proc: ChildProcess = start_consumer(kafka.bootstrap, database)
    try:
        proc.start()
        return await measure(kafka.bootstrap, infra.mongo.url, database, params, proc.check_alive)
    finally:
        proc.stop()
        infra.stop_kafka(kafka)


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, {**asdict(params), "events": params.events})
    result.parameters["visible_when"] = (
        "the parent's unread_messages in the MongoDB read model reaches the count the event makes; "
        "polled with one $in query over the parents still pending"
    )
    budget = params.duration_s + params.settle_timeout_s + params.warmup_timeout_s + 30
    fetch_wait = params.fetch_max_wait_ms or todo_fetch_max_wait_ms()
    result.parameters["baseline_fetch_max_wait_ms"] = fetch_wait

    def baseline(fetch_max_wait_ms: int) -> StartConsumer:
        def start(bootstrap: str, database: str) -> ChildProcess:
            return infra.child(
                "latency-baseline-mongo",
                "bench.baselines",
                command_line(
                    "mongo",
                    bootstrap=bootstrap,
                    topics=TODO_SOURCE_TOPICS,
                    events=10**9,  # runs until stopped (or the time limit)
                    time_limit=budget,
                    group_id=f"bench-latency-{uuid.uuid4().hex[:8]}",
                    session_timeout_ms=params.session_timeout_ms,
                    mongodb_url=infra.mongo.url,
                    database=database,
                    fetch_max_wait_ms=fetch_max_wait_ms,
                ),
                {},
            )

        return start

    def todo(bootstrap: str, database: str) -> ChildProcess:
        proc, _port = infra.service(
            "todo",
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KAFKA_SESSION_TIMEOUT_MS": str(params.session_timeout_ms),
                "MONGODB_URL": infra.mongo.url,
                "MONGODB_DATABASE": database,
                "IDENTITY_URL": "http://127.0.0.1:9",
            },
            label="todo-latency",
        )
        return proc

    # The baseline's consumer waits for data as long as todo's does: the ratios then compare the
    # work around each event, not the consumers' settings.
    starters: dict[str, tuple[StartConsumer, str]] = {
        "baseline_mongo": (baseline(fetch_wait), "bench_lat_baseline")
    }
    if params.diagnostic_fetch_max_wait_ms is not None:
        # The same baseline with another broker long-poll: how much of the latency is the fetch wait.
        starters[DIAGNOSTIC] = (baseline(params.diagnostic_fetch_max_wait_ms), "bench_lat_diag")
    available, why = service_available("todo")
    if available:
        starters["todo"] = (todo, "bench_lat_todo")
    else:
        result.notes.append(f"todo service not available ({why}): only the baseline was measured")

    rounds: list[dict[str, LatencyRun]] = []
    for i in range(params.rounds):
        order = list(starters) if i % 2 == 0 else list(reversed(starters))
        measured = {}
        for name in order:
            start, database = starters[name]
            measured[name] = await _run_against(infra, params, name, start, database)
        rounds.append({name: measured[name] for name in starters})
    result.results["rounds"] = [{name: r.as_dict() for name, r in runs.items()} for runs in rounds]

    # Percentiles over the samples of every round (the order alternates, so drift hits both alike).
    pooled = {name: summarize_ms([x for r in rounds for x in r[name].latencies_s]) for name in starters}
    result.results["pooled"] = pooled
    for i, runs in enumerate(rounds):
        for name, latency_run in runs.items():
            if latency_run.unseen:
                result.notes.append(
                    f"{name}: round {i}: {latency_run.unseen} events not visible within the settle timeout"
                )
            if latency_run.probe_mismatches:
                result.notes.append(
                    f"{name}: round {i}: the probe's count is wrong for "
                    f"{latency_run.probe_mismatches} parents"
                )

    base, todo_lat = pooled["baseline_mongo"], pooled.get("todo", {})
    label = f"A: aiokafka+nx-27017, wait {fetch_wait} ms"
    for q in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
        result.ratios[f"todo/baseline_mongo {q}"] = ratio(todo_lat.get(q), base.get(q))
        result.rows.append(
            Row(
                f"produce → read-model visible {q[:-3]}",
                todo_lat.get(q),
                "ms",
                label,
                base.get(q),
                result.ratios[f"todo/baseline_mongo {q}"],
                "lower",
            )
        )
    result.ratios["todo p99/target"] = ratio(todo_lat.get("p99_ms"), TARGET_P99_MS)
    result.rows.append(
        Row(
            f"todo p99 at {params.rate_per_s:,} ev/s vs the target",
            todo_lat.get("p99_ms"),
            "ms",
            "the issue's target",
            TARGET_P99_MS,
            result.ratios["todo p99/target"],
            "lower",
        )
    )
    diag = pooled.get(DIAGNOSTIC)
    if diag:
        for q in ("p50_ms", "p99_ms"):
            key = f"baseline_mongo fetch_max_wait_ms={params.diagnostic_fetch_max_wait_ms}/baseline_mongo {q}"
            result.ratios[key] = ratio(diag.get(q), base.get(q))
            result.rows.append(
                Row(
                    f"diagnostic: A, fetch_max_wait_ms={params.diagnostic_fetch_max_wait_ms}, {q[:-3]}",
                    diag.get(q),
                    "ms",
                    label,
                    base.get(q),
                    result.ratios[key],
                    "lower",
                )
            )
    result.ok = not any("not visible" in n or "probe's count" in n for n in result.notes)
    if not result.ok:
        result.error = "; ".join(result.notes)[:500]
    return result
