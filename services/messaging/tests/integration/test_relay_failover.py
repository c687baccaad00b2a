"""Two real `messaging` replicas relay one outbox: one at a time (the advisory lock), and when the
one relaying dies (SIGKILL) or freezes (SIGSTOP) mid-batch, the other publishes the rest: nothing
lost, per-key order kept, repeats only of the unfinished batch (consumers' inboxes skip those).

A replica is caught mid-batch by holding the broker (SIGSTOP): the replica relaying then waits for
the broker's acknowledgement inside its transaction, which a send to a local broker otherwise leaves
after a millisecond or two, too short to be seen reliably."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import petportal_messaging
from petportal_devkit.devinfra import LocalKafka, create_topics, free_port
from petportal_devkit.supervisor import Child, Supervisor
from petportal_devkit.testing import DatabaseFactory, run_sync
from petportal_runtime import outbox
from petportal_runtime.db import make_engine, make_session_factory, transaction
from petportal_runtime.migrations import upgrade
from petportal_schemas import Envelope, MessageReceived, topics

pytestmark = pytest.mark.integration

MIGRATIONS = Path(petportal_messaging.__file__).resolve().parent / "migrations"
CLINIC = "clinic-relay"
CLIENTS = [f"client-{n:02d}" for n in range(12)]
ROWS_PER_COMMIT, COMMIT_EVERY = 5, 0.02  # ~250 outbox rows a second
REPLICAS = ("messaging-a", "messaging-b")

# Who holds the relay's advisory lock (a bigint key: classid = high, objid = low 32 bits), and what
# its connection is doing: "idle in transaction" after the SELECT of the batch = sending it to Kafka.
LOCK_HOLDER = f"""
SELECT a.application_name, a.state, a.query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
    SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = {outbox.RELAY_LOCK_ID >> 32}
  AND l.objid::bigint = {outbox.RELAY_LOCK_ID & 0xFFFFFFFF}
"""


@dataclass(frozen=True)
class Sample:
    at: float
    replica: str
    sending: bool


class Relays:
    """Two messaging replicas on one database, a steady writer of outbox rows (from outside the
    replicas, as a third replica would write them), and a sampler of who holds the relay lock."""

    def __init__(self, supervisor: Supervisor, url: str, kafka: LocalKafka, logs: Path) -> None:
        self.supervisor, self.url, self.logs = supervisor, url, logs
        self.kafka, self.bootstrap = kafka, kafka.bootstrap
        self.broker_held = False
        self.ports = {name: free_port() for name in REPLICAS}
        self.replicas: dict[str, Child] = {}  # the ones expected to be running
        self.names: dict[int, str] = {}  # pid -> replica
        self.written: dict[str, list[uuid.UUID]] = {client: [] for client in CLIENTS}
        self.samples: list[Sample] = []
        self.both_at_once = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._engine = make_engine(url, pool_size=2)
        self._pg: asyncpg.Connection | None = None
        self._watcher: asyncpg.Connection | None = None

    async def start(self, env: dict[str, str]) -> None:
        for name, port in self.ports.items():
            argv = [sys.executable, "-m", "petportal_messaging", "serve", "--port", str(port)]
            child = self.supervisor.spawn(name, argv, env=env, log_file=self.logs / f"{name}.log")
            self.replicas[name] = child
            assert child.pid is not None
            self.names[child.pid] = name
        dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._pg, self._watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        await self.until("both replicas ready", 30, self._ready)
        self._tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._sample())]

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in (self._pg, self._watcher):
            if conn is not None:
                await conn.close()
        await self._engine.dispose()

    async def until(
        self, what: str, within: float, check: Callable[[], Awaitable[Any]], every: float = 0.05
    ) -> Any:
        deadline = time.monotonic() + within
        while True:
            for name, child in self.replicas.items():
                assert child.running, f"{name} exited:\n{(self.logs / f'{name}.log').read_text()[-3000:]}"
            if result := await check():
                return result
            assert time.monotonic() < deadline, f"{what}: not within {within}s"
            await asyncio.sleep(every)

    async def _ready(self) -> bool:
        async with httpx.AsyncClient() as http:
            for port in self.ports.values():
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/readyz", timeout=2)).status_code == 200:
                        continue
                return False
        return True

    async def _write(self) -> None:
        sessions = make_session_factory(self._engine)
        n = 0
        while not self._stop.is_set():
            batch = []
            for _ in range(ROWS_PER_COMMIT):
                client = CLIENTS[n % len(CLIENTS)]
                event = MessageReceived(
                    conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC)
                )
                batch.append(Envelope.wrap(event, clinic_id=CLINIC, client_id=client, producer="messaging"))
                n += 1
            async with transaction(sessions) as session:
                await outbox.add_events(session, batch)
            for envelope in batch:
                self.written[envelope.client_id or ""].append(envelope.event_id)
            await asyncio.sleep(COMMIT_EVERY)

    async def _sample(self) -> None:
        assert self._watcher is not None
        while True:
            rows = await self._watcher.fetch(LOCK_HOLDER)
            self.both_at_once += len(rows) > 1
            for row in rows:
                replica = self.names[int(row["application_name"].rsplit(":", 1)[1])]  # replica_name()
                sending = row["state"] == "idle in transaction" and "FROM outbox" in row["query"]
                self.samples.append(Sample(time.monotonic(), replica, sending))
            await asyncio.sleep(0.005)

    async def stop_writing(self) -> int:
        self._stop.set()
        await self._tasks[0]
        return sum(map(len, self.written.values()))

    async def caught_mid_batch(self) -> str:
        """Hold the broker until a replica is seen holding the relay lock while it sends a batch (its
        transaction open after the SELECT of the batch); the broker stays held until `release_broker`."""
        self._signal_broker(signal.SIGSTOP)
        self.broker_held = True

        async def caught() -> str | None:
            for replica in self.replicas:
                if await self.sending_now(replica):
                    return replica
            return None

        replica: str = await self.until("a replica caught sending a batch", 10, caught)
        return replica

    def release_broker(self) -> None:
        if self.broker_held:
            self._signal_broker(signal.SIGCONT)
            self.broker_held = False

    def _signal_broker(self, sig: int) -> None:
        assert self.kafka.pid is not None
        os.kill(self.kafka.pid, sig)

    async def sending_now(self, replica: str) -> bool:
        """The replica holds the relay lock in an open transaction, sending a batch (asked now, on the
        test's own connection: the sampler's is busy)."""
        assert self._pg is not None
        for row in await self._pg.fetch(LOCK_HOLDER):
            holder = self.names[int(row["application_name"].rsplit(":", 1)[1])]
            if holder == replica and row["state"] == "idle in transaction" and "FROM outbox" in row["query"]:
                return True
        return False

    def holders(self, since: float, until: float = float("inf")) -> list[Sample]:
        return [s for s in self.samples if since < s.at < until]

    async def unpublished(self) -> set[uuid.UUID]:
        assert self._pg is not None
        rows = await self._pg.fetch("SELECT event_id FROM outbox WHERE published_at IS NULL")
        return {row["event_id"] for row in rows}

    async def relayed(self, replica: str) -> float:
        """The replica's `petportal_outbox_published` counter: how many rows it relayed."""
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{self.ports[replica]}/metrics", timeout=2)).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("petportal_outbox_published_total")
        )

    async def drained(self) -> bool:
        return not await self.unpublished()

    async def topic(self, total: int) -> list[tuple[str, uuid.UUID]]:
        """(key, event id) of every record on the topic, in partition order, once all `total` are there."""

        async def complete() -> list[tuple[str, uuid.UUID]] | None:
            records = await read_topic(self.bootstrap)
            return records if len({event_id for _, event_id in records}) == total else None

        records: list[tuple[str, uuid.UUID]] = await self.until("every event on the topic", 20, complete)
        return records

    def first_copies(
        self, records: list[tuple[str, uuid.UUID]]
    ) -> tuple[dict[str, list[uuid.UUID]], set[uuid.UUID]]:
        """Per client, the first copy of each event (what an inbox applies), and the events repeated."""
        first: dict[str, list[uuid.UUID]] = {client: [] for client in CLIENTS}
        seen: set[uuid.UUID] = set()
        repeated: set[uuid.UUID] = set()
        for key, event_id in records:
            if event_id in seen:
                repeated.add(event_id)
            else:
                seen.add(event_id)
                first[key.split(":", 1)[1]].append(event_id)
        return first, repeated


async def read_topic(bootstrap: str) -> list[tuple[str, uuid.UUID]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topics.MESSAGING, p) for p in consumer.partitions_for_topic(topics.MESSAGING) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[str, uuid.UUID]] = []
        async with asyncio.timeout(20):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records += [
                        ((r.key or b"").decode(), Envelope.from_bytes(r.value).event_id) for r in batch
                    ]
        return records
    finally:
        await consumer.stop()


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of its own: the messaging topic holds only this test's events."""
    with LocalKafka(log_file=tmp_path / "kafka.log") as kafka:
        run_sync(create_topics(kafka.bootstrap))
        yield kafka


@pytest.fixture
async def relays(make_database: DatabaseFactory, kafka: LocalKafka, tmp_path: Path) -> AsyncIterator[Relays]:
    url = make_database("relay")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    supervisor = Supervisor(say=print)
    relays = Relays(supervisor, url, kafka, tmp_path)
    try:
        yield relays
    finally:
        relays.release_broker()
        await relays.close()
        for child in supervisor.children.values():  # a frozen replica must be able to take SIGTERM
            if child.proc is not None and child.proc.poll() is None:
                os.killpg(child.proc.pid, signal.SIGCONT)
        supervisor.stop_all(timeout=10)


def replica_env(relays: Relays, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": relays.url,
        "KAFKA_BOOTSTRAP_SERVERS": relays.bootstrap,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


# Above the sum of the waits (30 ready + 3 + 10 + 3 + 30 drained + 20 topic); a run takes ~12 s.
@pytest.mark.timeout(150)
async def test_one_replica_relays_at_a_time_and_the_other_takes_over_when_it_is_killed(
    relays: Relays,
) -> None:
    started = time.monotonic()
    await relays.start(replica_env(relays))

    # 1. Both replicas relay, taking turns; never both at once.
    await asyncio.sleep(3)
    relayed = {name: await relays.relayed(name) for name in REPLICAS}
    assert all(relayed.values()), relayed

    # 2. SIGKILL the replica caught sending a batch.
    victim = await relays.caught_mid_batch()
    unsent = await relays.unpublished()  # includes the victim's batch: it never commits
    child = relays.replicas.pop(victim)
    assert child.proc is not None
    child.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    child.proc.wait(10)
    relays.release_broker()
    (survivor,) = relays.replicas
    held = [s.replica for s in relays.holders(0, killed)]
    assert relays.both_at_once == 0
    print(
        f"before the kill: rows relayed {relayed}; the lock seen held {held.count(REPLICAS[0])} times "
        f"by {REPLICAS[0]}, {held.count(REPLICAS[1])} by {REPLICAS[1]}, never by both at once"
    )

    # 3. The survivor relays the victim's unfinished batch and everything after it.
    await asyncio.sleep(3)
    total = await relays.stop_writing()
    await relays.until("the outbox drained by the survivor", 30, relays.drained)
    after = relays.holders(killed)
    takeover = next(i for i, s in enumerate(after) if s.replica == survivor)
    assert {s.replica for s in after[takeover:]} == {survivor}
    survivor_relayed = await relays.relayed(survivor) - relayed[survivor]
    assert survivor_relayed > 0

    # 4. Nothing lost, per-key order kept; only the victim's unmarked batch went out twice.
    first, repeated = relays.first_copies(await relays.topic(total))
    assert first == relays.written
    assert repeated <= unsent
    print(
        f"{total} rows; {survivor} took the lock {after[takeover].at - killed:.2f}s after {victim} was "
        f"killed mid-batch and relayed {survivor_relayed:.0f} rows, {len(repeated)} of them a second "
        f"time; {time.monotonic() - started:.1f}s in all"
    )


LOCK_TIMEOUT = 3.0  # OUTBOX_RELAY_LOCK_TIMEOUT_SECONDS for the frozen-replica test


# Above the sum of the waits (30 ready + 2 + 10 + 15 + 2 + 15 + 30 drained + 20 topic); ~15 s a run.
@pytest.mark.timeout(150)
async def test_a_replica_frozen_mid_batch_loses_the_relay_lock_to_the_other(relays: Relays) -> None:
    """A frozen process (or a host gone without closing its connections) keeps its transaction
    open; the relay's idle limit makes PostgreSQL end it, so the other replica takes over."""
    started = time.monotonic()
    await relays.start(replica_env(relays, OUTBOX_RELAY_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT)))
    await asyncio.sleep(2)

    # Frozen mid-batch: caught sending, stopped, and then seen (by PostgreSQL) still holding the lock
    # in its open transaction; then the broker is let go, for the survivor.
    victim = await relays.caught_mid_batch()
    unsent = await relays.unpublished()
    frozen = relays.replicas[victim]
    assert frozen.proc is not None
    frozen.proc.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    assert await relays.sending_now(victim)
    relays.release_broker()
    relays.replicas.pop(victim)
    (survivor,) = relays.replicas

    async def survivor_holds_the_lock() -> Sample | None:
        return next((s for s in relays.holders(stopped) if s.replica == survivor), None)

    # Its connection stays open: the lock goes only when PostgreSQL ends the idle transaction.
    takeover: Sample = await relays.until("the survivor taking the lock", 15, survivor_holds_the_lock)
    assert takeover.at - stopped > LOCK_TIMEOUT / 2

    # Woken up, the frozen replica finds its transaction gone and goes back to taking turns.
    await asyncio.sleep(2)
    frozen.proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    relays.replicas[victim] = frozen

    async def victim_relays_again() -> bool:
        return any(s.replica == victim for s in relays.holders(resumed + 0.5))

    await relays.until("the woken replica relaying again", 15, victim_relays_again)
    total = await relays.stop_writing()
    await relays.until("the outbox drained", 30, relays.drained)

    first, repeated = relays.first_copies(await relays.topic(total))
    assert first == relays.written
    assert repeated <= unsent  # the frozen batch: re-sent by the survivor, and late by the victim
    print(
        f"{total} rows; {survivor} took the lock {takeover.at - stopped:.2f}s after {victim} froze "
        f"mid-batch (limit {LOCK_TIMEOUT:.0f}s); {len(repeated)} rows went out twice; "
        f"{time.monotonic() - started:.1f}s in all"
    )
