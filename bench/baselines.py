"""Baseline consumers: a plain aiokafka consumer and the least work a correct batched projection
does, against MongoDB (nx-27017) or PostgreSQL (asyncpg). Run as their own process:

    python -m bench.baselines mongo    --bootstrap H:P --topics a,b --events N --mongodb-url URL --database DB
    python -m bench.baselines postgres --bootstrap H:P --topics a,b --events N --dsn postgresql://...
    python -m bench.baselines todo-projection ... (the todo service's projection code, for diagnosis)

Per fetched batch (getmany, up to 1000 records), in ONE transaction: look up which event ids the
inbox already holds, upsert one document/row per parent with the batch's coalesced change (+/- unread
messages, latest SMS opt-out), insert the new event ids into the inbox; then commit the offsets.
Events are decoded with json.loads only (no schema validation): this is the floor, not a service.
The process exits once it has applied --events events (or after --time-limit seconds) and prints one
JSON line with its own timings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord

MAX_RECORDS = 1000
GETMANY_TIMEOUT_MS = 50  # the runtime's batch subscriber polls (batch_timeout_ms) at most this long


@dataclass
class Decoded:
    event_id: str
    event_type: str
    parent_id: str
    clinic_id: str
    client_id: str
    unread_delta: int = 0
    opted_out_at: datetime | None = None


@dataclass
class ParentDelta:
    clinic_id: str
    client_id: str
    unread_delta: int = 0
    opted_out_at: datetime | None = None


@dataclass
class Batch:
    events: list[Decoded] = field(default_factory=list)

    def coalesce(self, skip: set[str]) -> tuple[dict[str, ParentDelta], list[Decoded]]:
        parents: dict[str, ParentDelta] = {}
        fresh: list[Decoded] = []
        seen = set(skip)
        for e in self.events:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
            fresh.append(e)
            delta = parents.get(e.parent_id)
            if delta is None:
                delta = parents[e.parent_id] = ParentDelta(e.clinic_id, e.client_id)
            delta.unread_delta += e.unread_delta
            if e.opted_out_at is not None and (
                delta.opted_out_at is None or e.opted_out_at > delta.opted_out_at
            ):
                delta.opted_out_at = e.opted_out_at
        return parents, fresh


def decode(record: ConsumerRecord[Any, Any]) -> Decoded | None:
    doc = json.loads(record.value)
    clinic_id, client_id = doc["clinic_id"], doc.get("client_id")
    if client_id is None:
        return None
    decoded = Decoded(doc["event_id"], doc["event_type"], f"{clinic_id}:{client_id}", clinic_id, client_id)
    payload = doc["payload"]
    if decoded.event_type == "MessageReceived":
        decoded.unread_delta = 1
    elif decoded.event_type == "MessageRead":
        decoded.unread_delta = -len(set(payload["message_ids"]))
    elif decoded.event_type == "SmsOptedOut":
        decoded.opted_out_at = datetime.fromisoformat(doc["occurred_at"])
    else:
        return None
    return decoded


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


Records = Sequence[ConsumerRecord[Any, Any]]


class Store(Protocol):
    async def start(self) -> None: ...

    async def apply(self, records: Records) -> int:
        """Apply a fetched batch in one transaction; the number of events newly applied."""
        ...

    async def close(self) -> None: ...


class MongoStore:
    def __init__(self, url: str, database: str) -> None:
        from pymongo import AsyncMongoClient

        self.client: Any = AsyncMongoClient(url, tz_aware=True)
        self.db = self.client[database]

    async def start(self) -> None:
        # Create the collections up front, as a deployment would with its indexes. (nx-27017 also
        # ignores startTransaction when a transaction's first command is a find on a collection that
        # does not exist yet: the writes that follow would then run outside any transaction.)
        existing = set(await self.db.list_collection_names())
        for name in ("parents", "inbox"):
            if name not in existing:
                await self.db.create_collection(name)

    async def apply(self, records: Records) -> int:
        from pymongo import UpdateOne

        batch = Batch([d for d in map(decode, records) if d is not None])
        if not batch.events:
            return 0
        ids = list({e.event_id for e in batch.events})
        # Instants as the todo adapter stores them on nx-27017: epoch microseconds (for $max) and
        # ISO strings (nx-27017 turns BSON dates written by $set/$max into strings).
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        async with self.client.start_session() as session, await session.start_transaction():
            cursor = self.db.inbox.find({"_id": {"$in": ids}}, {"_id": 1}, session=session)
            seen = {doc["_id"] async for doc in cursor}
            parents, fresh = batch.coalesce(seen)
            if not fresh:
                return 0
            updates = []
            for pid, delta in parents.items():
                update: dict[str, Any] = {
                    "$set": {"clinic_id": delta.clinic_id, "client_id": delta.client_id, "updated_at": now},
                    "$inc": {"unread_messages": delta.unread_delta},
                }
                if delta.opted_out_at is not None:
                    update["$max"] = {"sms_opted_out_us": _micros(delta.opted_out_at)}
                updates.append(UpdateOne({"_id": pid}, update, upsert=True))
            await self.db.parents.bulk_write(updates, session=session)
            await self.db.inbox.insert_many(
                [{"_id": e.event_id, "event_type": e.event_type, "applied_at": now} for e in fresh],
                session=session,
            )
        return len(fresh)

    async def close(self) -> None:
        await self.client.close()


POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS parents (
    parent_id text PRIMARY KEY,
    clinic_id text NOT NULL,
    client_id text NOT NULL,
    unread_messages integer NOT NULL DEFAULT 0,
    sms_opted_out_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL,
    applied_at timestamptz NOT NULL
);
"""

CLAIM = """
INSERT INTO inbox (event_id, event_type, applied_at)
SELECT id, t, $3 FROM unnest($1::uuid[], $2::text[]) AS u(id, t)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id::text
"""

UPSERT = """
INSERT INTO parents (parent_id, clinic_id, client_id, unread_messages, sms_opted_out_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (parent_id) DO UPDATE SET
    unread_messages = parents.unread_messages + EXCLUDED.unread_messages,
    sms_opted_out_at = GREATEST(parents.sms_opted_out_at, EXCLUDED.sms_opted_out_at),
    updated_at = EXCLUDED.updated_at
"""


class PostgresStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: Any = None

    async def start(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self.conn = await asyncpg.connect(self.dsn)
        await self.conn.execute(POSTGRES_SCHEMA)

    async def apply(self, records: Records) -> int:
        batch = Batch([d for d in map(decode, records) if d is not None])
        if not batch.events:
            return 0
        unique = {e.event_id: e.event_type for e in batch.events}
        now = datetime.now(UTC)
        async with self.conn.transaction():
            # The claim is the inbox insert itself: the ids it returns were not applied before.
            claimed = {r[0] for r in await self.conn.fetch(CLAIM, list(unique), list(unique.values()), now)}
            parents, fresh = batch.coalesce({i for i in unique if i not in claimed})
            if fresh:
                await self.conn.executemany(
                    UPSERT,
                    [
                        (pid, d.clinic_id, d.client_id, d.unread_delta, d.opted_out_at, now)
                        for pid, d in parents.items()
                    ],
                )
        return len(fresh)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


class TodoProjectionStore:
    """The todo service's own projection code (petportal_runtime's parse_record, then
    petportal_todo's apply_batch on its MongoReadModel) driven by this plain consumer loop: the
    service's cost without FastStream, its middlewares, telemetry and logging."""

    def __init__(self, url: str, database: str) -> None:
        from petportal_todo.bootstrap import make_read_model
        from petportal_todo.domain import CONSUMED_EVENTS
        from petportal_todo.settings import TodoSettings

        self.read_model = make_read_model(TodoSettings(mongodb_url=url, mongodb_database=database))
        self.event_types = {cls.EVENT_TYPE for cls in CONSUMED_EVENTS}

    async def start(self) -> None:
        await self.read_model.ping()
        await self.read_model.ensure_indexes()
        # As every service does once started (petportal_runtime.service.ServiceRuntime.start).
        gc.freeze()

    async def apply(self, records: Records) -> int:
        from petportal_runtime.broker import parse_record
        from petportal_todo.service_layer.projection import apply_batch

        batch = [p for p in (parse_record(r, self.event_types) for r in records) if p is not None]
        if not batch:
            return 0
        return len((await apply_batch(self.read_model, batch)).events)

    async def close(self) -> None:
        await self.read_model.close()


@dataclass
class RunStats:
    applied: int = 0
    batches: int = 0
    records: int = 0
    first_batch_done: float | None = None
    first_batch_events: int = 0
    done_at: float | None = None
    apply_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        span = (self.done_at or 0) - (self.first_batch_done or 0)
        rate = (self.applied - self.first_batch_events) / span if span > 0 else None
        return {
            "applied": self.applied,
            "records": self.records,
            "batches": self.batches,
            "mean_batch": round(self.records / self.batches, 1) if self.batches else 0,
            "apply_seconds": round(self.apply_seconds, 3),
            "internal_events_per_s": round(rate, 1) if rate else None,
        }


async def consume(
    store: Store,
    bootstrap: str,
    source_topics: Sequence[str],
    *,
    events: int,
    time_limit: float,
    group_id: str,
    session_timeout_ms: int,
    fetch_max_wait_ms: int = 500,
) -> RunStats:
    stats = RunStats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(
        *source_topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(300, session_timeout_ms // 4),
        fetch_max_wait_ms=fetch_max_wait_ms,
        client_id="petportal-bench-baseline",
    )
    await store.start()
    await consumer.start()
    deadline = time.monotonic() + time_limit
    try:
        while stats.applied < events and not stop.is_set() and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=GETMANY_TIMEOUT_MS, max_records=MAX_RECORDS)
            records = [r for partition in fetched.values() for r in partition]
            if not records:
                continue
            started = time.perf_counter()
            applied = await store.apply(records)
            await consumer.commit()
            now = time.perf_counter()
            stats.apply_seconds += now - started
            stats.applied += applied
            stats.records += len(records)
            stats.batches += 1
            if stats.first_batch_done is None:
                stats.first_batch_done, stats.first_batch_events = now, applied
            stats.done_at = now
    finally:
        await consumer.stop()
        await store.close()
    return stats


def command_line(
    store: str,
    *,
    bootstrap: str,
    topics: Sequence[str],
    events: int,
    time_limit: float,
    group_id: str,
    session_timeout_ms: int,
    mongodb_url: str | None = None,
    database: str | None = None,
    dsn: str | None = None,
    fetch_max_wait_ms: int | None = None,
) -> list[str]:
    """The arguments of `python -m bench.baselines` for one run."""
    args = [store, "--bootstrap", bootstrap, "--topics", ",".join(topics), "--events", str(events)]
    args += ["--time-limit", str(time_limit), "--group-id", group_id]
    args += ["--session-timeout-ms", str(session_timeout_ms)]
    optional = [("--mongodb-url", mongodb_url), ("--database", database), ("--dsn", dsn)]
    if fetch_max_wait_ms is not None:
        optional.append(("--fetch-max-wait-ms", str(fetch_max_wait_ms)))
    for flag, value in optional:
        if value is not None:
            args += [flag, value]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("store", choices=["mongo", "postgres", "todo-projection"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--events", type=int, required=True, help="exit after applying this many")
    parser.add_argument("--time-limit", type=float, default=120)
    parser.add_argument("--group-id", default="petportal-bench-baseline")
    parser.add_argument("--session-timeout-ms", type=int, default=2000)
    parser.add_argument(
        "--fetch-max-wait-ms", type=int, default=500, help="aiokafka's default, which the services keep"
    )
    parser.add_argument("--mongodb-url")
    parser.add_argument("--database", default="bench_baseline")
    parser.add_argument("--dsn")
    args = parser.parse_args(argv)
    store: Store
    if args.store in ("mongo", "todo-projection"):
        if not args.mongodb_url:
            parser.error("--mongodb-url is required")
        store = (MongoStore if args.store == "mongo" else TodoProjectionStore)(
            args.mongodb_url, args.database
        )
    else:
        if not args.dsn:
            parser.error("--dsn is required")
        store = PostgresStore(args.dsn)
    stats = asyncio.run(
        consume(
            store,
            args.bootstrap,
            args.topics.split(","),
            events=args.events,
            time_limit=args.time_limit,
            group_id=args.group_id,
            session_timeout_ms=args.session_timeout_ms,
            fetch_max_wait_ms=args.fetch_max_wait_ms,
        )
    )
    print(json.dumps(stats.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
