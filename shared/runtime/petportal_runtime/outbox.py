"""Transactional outbox: events are written with the state change, then relayed to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy import delete, func, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential_jitter

from petportal_schemas import Envelope, TraceContext

from . import telemetry
from .db import SessionFactory, transaction
from .logging import get_logger
from .tables import outbox
from .workers import run_in_passes

log = get_logger(__name__)

# Advisory lock key held by the relaying replica (any constant unique within the database).
RELAY_LOCK_ID = 0x0B7B0C5

# A record to send: topic, key, value and headers.
OutgoingRecord = tuple[str, bytes, bytes, list[tuple[str, bytes]]]
# Sends records (in order within a partition); returns once the broker has acknowledged them all.
SendRecords = Callable[[Sequence[OutgoingRecord]], Awaitable[None]]


def with_current_trace(envelope: Envelope) -> Envelope:
    """The envelope stamped with the trace context of the current span (if it has none yet)."""
    return _stamped(envelope, current_trace())


def current_trace() -> TraceContext | None:
    """The trace context of the current span, for envelopes built in it (None outside a trace).
    Passed to `Envelope.wrap`, it saves `add_events` stamping each envelope afterwards."""
    headers = telemetry.current_trace_headers()
    if not headers.get("traceparent"):
        return None
    return TraceContext(traceparent=headers["traceparent"], tracestate=headers.get("tracestate"))


def _stamped(envelope: Envelope, trace: TraceContext | None) -> Envelope:
    if envelope.trace.traceparent or trace is None:
        return envelope
    return envelope.model_copy(update={"trace": trace})


async def add_event(session: AsyncSession, envelope: Envelope) -> None:
    """Stage an event in the caller's transaction; it is published only if that transaction commits."""
    await add_events(session, [envelope])


# All of a transaction's events in one statement, one array a column; the rows take their ids in
# the order given (WITH ORDINALITY ... ORDER BY), so the relay sends them in that order.
_COLUMNS = {
    "event_id": "uuid",
    "event_type": "text",
    "topic": "text",
    "key": "text",
    "value": "bytea",
    "traceparent": "text",
    "tracestate": "text",
}
_INSERT_EVENTS = text(
    f"INSERT INTO {outbox.name} ({', '.join(_COLUMNS)})"
    f" SELECT {', '.join(_COLUMNS)} FROM unnest("
    + ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in _COLUMNS.items())
    + f") WITH ORDINALITY AS events ({', '.join(_COLUMNS)}, n) ORDER BY n"
)


# From this many events on, they are written with COPY (the driver's `copy_records_to_table`), in
# the order given like `_INSERT_EVENTS`: the statement's arrays cost the driver a type check per
# element, and the server more than COPY does (sync's batches stage a thousand events at once).
_COPY_FROM = 100


async def add_events(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    if not envelopes:
        return
    # One span is current for the whole call: its trace context is read once.
    trace = current_trace()
    # One row per event, in `_COLUMNS`' order.
    rows = [
        (
            env.event_id,
            env.event_type,
            env.topic,
            env.key,
            env.to_bytes(),
            env.trace.traceparent,
            env.trace.tracestate,
        )
        for env in (_stamped(envelope, trace) for envelope in envelopes)
    ]
    conn = await session.connection()
    if len(rows) >= _COPY_FROM:
        driver = (await conn.get_raw_connection()).driver_connection
        # Only in the transaction SQLAlchemy has begun (at its first statement): COPY on a
        # connection outside one would commit the rows on its own.
        if driver is not None and driver.is_in_transaction():
            await driver.copy_records_to_table(outbox.name, columns=list(_COLUMNS), records=rows)
            return
    await conn.execute(_INSERT_EVENTS, dict(zip(_COLUMNS, map(list, zip(*rows, strict=True)), strict=True)))


_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()


def _observe_unpublished(_options: CallbackOptions) -> Iterable[Observation]:
    for relay in list(_relays):
        if relay.backlog is not None:
            yield Observation(relay.backlog[0])


def _observe_oldest_age(_options: CallbackOptions) -> Iterable[Observation]:
    now = datetime.now(UTC)
    for relay in list(_relays):
        if relay.backlog is not None:
            oldest = relay.backlog[1]
            yield Observation(0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()))


_meter = telemetry.meter("outbox")
_meter.create_observable_gauge(
    "petportal_outbox_unpublished",
    callbacks=[_observe_unpublished],
    description="outbox rows not yet relayed to Kafka (the backlog)",
)
_meter.create_observable_gauge(
    "petportal_outbox_oldest_unpublished_age_seconds",
    callbacks=[_observe_oldest_age],
    unit="s",
    description="age of the oldest outbox row not yet relayed (0 when there is none)",
)


_tracer = telemetry.tracer("outbox")
_SEND_ATTRIBUTES = {"messaging.system": "kafka", "messaging.operation.type": "send"}


def _outgoing(rows: Sequence[Sequence[Any]]) -> tuple[list[OutgoingRecord], list[dict[str, str]]]:
    """The rows (`_RELAYED`) as Kafka records, and a trace carrier for each.

    A record's headers: the event's type and id, and the trace context of the request that made it,
    so a consumer continues that trace. FastStream's consumers name a message by its
    `correlation_id` (a batch consumer's span links each one by it). The carriers are for the
    relay's span of the batch, which links each trace once: the first row of a trace carries its
    context, the others an empty one."""
    records: list[OutgoingRecord] = []
    carriers: list[dict[str, str]] = []
    seen: set[str] = set()
    for _id, event_id, event_type, topic, key, value, traceparent, tracestate in rows:
        headers = [("event_type", event_type.encode()), ("correlation_id", str(event_id).encode())]
        carrier: dict[str, str] = {}
        if traceparent:
            headers.append(("traceparent", traceparent.encode()))
            if traceparent not in seen:
                seen.add(traceparent)
                carrier["traceparent"] = traceparent
            if tracestate:
                headers.append(("tracestate", tracestate.encode()))
                if carrier:
                    carrier["tracestate"] = tracestate
        records.append((topic, key.encode(), value, headers))
        carriers.append(carrier)
    return records, carriers


# What the relay reads of a row, in `_outgoing`'s order.
_RELAYED = (
    outbox.c.id,
    outbox.c.event_id,
    outbox.c.event_type,
    outbox.c.topic,
    outbox.c.key,
    outbox.c.value,
    outbox.c.traceparent,
    outbox.c.tracestate,
)
# The ids as one array parameter: the same statement for any batch (a prepared statement reused).
_MARK_PUBLISHED = text(f"UPDATE {outbox.name} SET published_at = :now WHERE id = ANY(CAST(:ids AS bigint[]))")


class OutboxRelay:
    """Publishes unpublished outbox rows in order, marks them published, purges old ones.

    Several replicas may run, but only one relays at a time (a transaction-scoped advisory lock):
    two relays sending different batches at once could reorder one client's events. A crash between
    send and mark re-sends the rows; consumers' inboxes absorb that.

    A batch holds the lock for at most `lock_timeout`: sends get half of it, and PostgreSQL ends the
    transaction of a relay that goes quiet for all of it (a frozen process, or a host gone without
    closing its connection, which would otherwise keep the lock until TCP keepalive gives up, hours
    by default), so another replica takes over.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        send: SendRecords,
        *,
        batch_size: int = 500,
        retention: timedelta = timedelta(days=7),
        poll_interval: float = 1.0,
        lock_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        self._factory = session_factory
        self._send = send
        self._batch_size = batch_size
        self._retention = retention
        self._poll_interval = poll_interval
        self._lock_timeout = lock_timeout
        self._wake = asyncio.Event()
        self._published = telemetry.meter("outbox").create_counter(
            "petportal_outbox_published", description="events relayed from the outbox to Kafka"
        )
        # (unpublished rows, created_at of the oldest), measured by `watch`; None until then.
        self.backlog: tuple[int, datetime | None] | None = None
        _relays.add(self)

    def wake(self) -> None:
        """Called after a commit that added events, so the relay does not wait for its next poll.

        Commits made in this process wake the relay at once; polling only picks up rows written by
        other processes (a CLI command, another replica), so it can be slow and cheap when idle.
        """
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        last_purge = datetime.min.replace(tzinfo=UTC)

        async def one_pass() -> bool:
            nonlocal last_purge
            try:
                sent = await self.relay_once()
                now = datetime.now(UTC)
                if now - last_purge > timedelta(minutes=10):
                    await self.purge(now)
                    last_purge = now
            except Exception:  # keep relaying: the rows stay in the outbox until they go out
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1)
                return False
            return sent >= self._batch_size  # a full batch: more may be waiting

        await run_in_passes(one_pass, self._wake, stop, self._poll_interval)

    async def measure_backlog(self) -> tuple[int, datetime | None]:
        """Unpublished rows and the oldest one's creation time (the partial unpublished index)."""
        async with transaction(self._factory) as session:
            conn = await session.connection()
            row = (
                await conn.execute(
                    select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
                )
            ).one()
        self.backlog = (int(row[0]), row[1])
        return self.backlog

    async def watch(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        """Keep `backlog` current for the outbox gauges, apart from the relay loop: a relay stuck
        resending to a broker that is down must still show its backlog growing older."""
        while not stop.is_set():
            try:
                await self.measure_backlog()
            except Exception as exc:  # the database is down: keep the last values (the age keeps growing)
                log.warning("outbox backlog not measured", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def relay_once(self) -> int:
        async with transaction(self._factory) as session:
            conn = await session.connection()
            # One round trip: the lock, and the idle limit for this transaction only (is_local).
            idle_limit_ms = max(1, self._lock_timeout // timedelta(milliseconds=1))
            locked = await conn.execute(
                select(
                    func.pg_try_advisory_xact_lock(RELAY_LOCK_ID),
                    func.set_config("idle_in_transaction_session_timeout", str(idle_limit_ms), True),
                )
            )
            if not locked.scalar():
                return 0
            result = await conn.execute(
                select(*_RELAYED)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self._batch_size)
            )
            rows = result.all()
            if not rows:
                return 0
            # Past this the rows stay unpublished and the lock goes back (run() retries).
            async with asyncio.timeout(self._lock_timeout.total_seconds() / 2):
                await self._send_all(rows)
            await conn.execute(_MARK_PUBLISHED, {"now": datetime.now(UTC), "ids": [row[0] for row in rows]})
        self._published.add(len(rows))
        return len(rows)

    async def _send_all(self, rows: Sequence[Sequence[Any]]) -> None:
        records, carriers = _outgoing(rows)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(multiplier=0.1, max=5),
            stop=stop_never,
            reraise=True,
        ):
            with attempt, telemetry.batch_span(_tracer, "outbox send", carriers, _SEND_ATTRIBUTES):
                await self._send(records)

    async def purge(self, now: datetime | None = None, *, batch_size: int = 5000) -> int:
        """Delete rows published before the retention, a bounded batch per statement so that each
        stays well within the database command timeout."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        total = 0
        while True:
            expired = select(outbox.c.id).where(outbox.c.published_at < cutoff).limit(batch_size)
            async with transaction(self._factory) as session:
                conn = await session.connection()
                deleted = (await conn.execute(delete(outbox).where(outbox.c.id.in_(expired)))).rowcount
            total += deleted
            if deleted < batch_size:
                return total

    async def replay(self, since: datetime | None = None) -> int:
        """Republish every kept row (published or not) in order. Consumers' inboxes skip repeats."""
        total = 0
        last_id = 0
        while True:
            async with transaction(self._factory) as session:
                query = select(*_RELAYED).where(outbox.c.id > last_id)
                if since is not None:
                    query = query.where(outbox.c.created_at >= since)
                conn = await session.connection()
                rows = (await conn.execute(query.order_by(outbox.c.id).limit(self._batch_size))).all()
                if not rows:
                    return total
                await self._send_all(rows)
                await session.exec(
                    update(outbox)
                    .where(outbox.c.id.in_([r.id for r in rows]), outbox.c.published_at.is_(None))
                    .values(published_at=datetime.now(UTC))
                )
            total += len(rows)
            last_id = rows[-1].id
