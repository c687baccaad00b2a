"""Reading the stores the consumers write: progress (events applied) and final state.

The todo read model (services/todo/petportal_todo/adapters/mongo.py) keeps one `parents` document
per parent (`_id` "clinic_id:client_id", `unread_messages`, the latest SMS opt-out, ...) and one
`inbox` document per applied event; the MongoDB baseline writes documents of the same shape, so one
probe reads both (parents through todo's own `parent_view`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient

from .procs import CpuMeter
from .todo_adapter import collections, parent_state
from .workload import ExpectedState

Counter = Callable[[], Awaitable[int]]


@dataclass
class Progress:
    """When a consumer's applied-event count first moved and when it reached the target.

    Throughput is measured from the first observed applied batch to the last one, so process start-up,
    consumer-group join and the first fetch are excluded alike for every consumer.
    """

    target: int
    first_seen_at: float | None = None
    first_count: int = 0
    done_at: float | None = None
    final_count: int = 0
    timed_out: bool = False
    polls: int = 0
    cpu_seconds: dict[str, float | None] = field(default_factory=dict)  # first observed → done

    @property
    def seconds(self) -> float | None:
        if self.first_seen_at is None or self.done_at is None:
            return None
        return self.done_at - self.first_seen_at

    @property
    def events_per_s(self) -> float | None:
        s = self.seconds
        if s is None or s <= 0:
            return None
        return (self.final_count - self.first_count) / s

    def as_dict(self) -> dict[str, Any]:
        rate = self.events_per_s
        return {
            "target": self.target,
            "applied": self.final_count,
            "first_observed_count": self.first_count,
            "measured_seconds": round(self.seconds, 3) if self.seconds is not None else None,
            "events_per_s": round(rate, 1) if rate is not None else None,
            "timed_out": self.timed_out,
            "polls": self.polls,
            "cpu_us_per_event": {
                name: round(seconds * 1e6 / (self.final_count - self.first_count), 1)
                for name, seconds in self.cpu_seconds.items()
                if seconds is not None and self.final_count > self.first_count
            },
        }


async def watch_progress(
    count: Counter,
    target: int,
    *,
    timeout: float,
    interval: float = 0.05,
    check_alive: Callable[[], None] = lambda: None,
    meter: CpuMeter | None = None,
) -> Progress:
    """Poll `count` every `interval` s until it reaches `target` (bounded by `timeout` s); with a
    `meter`, the CPU the processes used between the first observed batch and the end."""
    progress = Progress(target)
    deadline = time.monotonic() + timeout
    cpu_at_first: dict[str, float | None] = {}
    while True:
        n = await count()
        now = time.perf_counter()
        progress.polls += 1
        if n > 0 and progress.first_seen_at is None:
            progress.first_seen_at, progress.first_count = now, n
            cpu_at_first = meter.snapshot() if meter else {}
        if n > progress.final_count:
            progress.final_count, progress.done_at = n, now
        if n >= target:
            if meter is not None:
                progress.cpu_seconds = CpuMeter.delta(cpu_at_first, meter.snapshot())
            return progress
        # After the count: a consumer that exits once it has applied everything is not a failure.
        check_alive()
        if time.monotonic() > deadline:
            progress.timed_out = True
            return progress
        await asyncio.sleep(interval)


def mongo_client(url: str) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)


def mongo_inbox_counter(client: AsyncMongoClient[dict[str, Any]], database: str) -> Counter:
    # estimated_document_count is a metadata count (~1 ms on nx-27017); count_documents scans (~200 ms
    # for 20k documents) and would load the server under test.
    collection = client[database][collections()[1]]

    async def count() -> int:
        return int(await collection.estimated_document_count())

    return count


def postgres_inbox_counter(conn: Any) -> Counter:
    async def count() -> int:
        try:
            return int(await conn.fetchval("SELECT count(*) FROM inbox"))
        except Exception as exc:  # the consumer has not created its tables yet
            if "does not exist" in str(exc):
                return 0
            raise

    return count


@dataclass
class Verification:
    ok: bool
    parents: int
    total_unread: int
    expected_total_unread: int
    opted_out: int
    expected_opted_out: int
    mismatched_parents: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def verify(state: dict[str, tuple[int, bool]], expected: ExpectedState) -> Verification:
    """`state`: parent id -> (unread_messages, opted out?)."""
    mismatched = sum(
        1
        for pid in set(state) | set(expected.unread) | expected.opted_out
        if state.get(pid, (0, False)) != (expected.unread.get(pid, 0), pid in expected.opted_out)
    )
    total = sum(u for u, _ in state.values())
    opted_out = sum(1 for _, o in state.values() if o)
    return Verification(
        ok=mismatched == 0,
        parents=len(state),
        total_unread=total,
        expected_total_unread=expected.total_unread,
        opted_out=opted_out,
        expected_opted_out=len(expected.opted_out),
        mismatched_parents=mismatched,
    )


async def mongo_state(client: AsyncMongoClient[dict[str, Any]], database: str) -> dict[str, tuple[int, bool]]:
    cursor = client[database][collections()[0]].find({})
    return {doc["_id"]: parent_state(doc) async for doc in cursor}


async def postgres_state(conn: Any) -> dict[str, tuple[int, bool]]:
    rows = await conn.fetch("SELECT parent_id, unread_messages, sms_opted_out_at FROM parents")
    return {r["parent_id"]: (r["unread_messages"], r["sms_opted_out_at"] is not None) for r in rows}


async def mongo_unread(
    client: AsyncMongoClient[dict[str, Any]], database: str, parent_ids: list[str]
) -> dict[str, int]:
    """unread_messages of the given parents, in one `$in` query that returns only the counts: the
    latency probe polls every few milliseconds, and whole documents (todo's hold the set of unread
    message ids, which grows over a run) would cost the server and this process more with every
    poll, delaying the very writes it measures (a find with this projection answered 100 of todo's
    documents in 7.9 ms against 11.7 ms for the whole documents, and 14 ms as an aggregate, on
    nx-27017). The counts are what `parent_state` reads: the size of todo's `unread_message_ids`, or
    the baseline's `unread_messages`; `event_to_badge_latency` checks them equal after each run."""
    cursor = client[database][collections()[0]].find({"_id": {"$in": parent_ids}}, UNREAD_COUNT)
    return {doc["_id"]: int(doc["unread"]) async for doc in cursor}


UNREAD_COUNT = {
    "unread": {
        "$cond": [
            {"$isArray": "$unread_message_ids"},
            {"$size": "$unread_message_ids"},
            {"$ifNull": ["$unread_messages", 0]},
        ]
    }
}
