"""Idempotent consumers: record each applied event in the same transaction as its effect.

Records are kept `INBOX_RETENTION_HOURS` (see ServiceSettings.inbox_retention), longer than any
outbox keeps an event it could replay, and then purged by the running service.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, Uuid, delete, exists, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_schemas import partition_key

from .db import SessionFactory, transaction
from .logging import get_logger
from .tables import erased_clients, inbox, outbox

log = get_logger(__name__)

# The advisory lock namespace of one client's events (the second key: a hash of `clinic:client`). An
# erasure waits for the events of its client being applied to commit, and they wait for it: otherwise
# an older event claimed just before the tombstone was written could commit its rows after the
# erasure deleted what it could see.
ERASURE_LOCK = 0x3E4A5E
ERASURE_REQUEST = "ClientErasureRequested"

# Advisory lock key held by the purging replica (the outbox relay's is 0x0B7B0C5).
PURGE_LOCK_ID = 0x1B0C5


async def claim(
    session: AsyncSession,
    consumer: str,
    event_id: uuid.UUID,
    event_type: str,
    subject: tuple[str, str, datetime] | None = None,
) -> bool:
    """True if this consumer has not applied the event yet (and now owns applying it).

    `subject` is the event's (clinic_id, client_id, occurred_at) when it concerns one client: an event
    about an erased client that occurred before the erasure is refused too (not recorded, not applied),
    in the same statement.

    Call inside the transaction that applies the event: if that transaction rolls back, so does the
    claim, and the redelivered event is applied then.
    """
    if subject is not None:
        # Events about one client take its lock shared, an erasure request exclusive (see
        # `ERASURE_LOCK`), in a statement of their own: the claim's statement then reads the tombstone
        # as committed after the wait.
        lock = (
            func.pg_advisory_xact_lock if event_type == ERASURE_REQUEST else func.pg_advisory_xact_lock_shared
        )
        key = func.hashtext(partition_key(subject[0], subject[1]))
        await session.execute(select(lock(ERASURE_LOCK, key)))
    row = select(
        literal(consumer, String).label("consumer"),
        literal(event_id, Uuid).label("event_id"),
        literal(event_type, String).label("event_type"),
    )
    if subject is not None:
        clinic_id, client_id, occurred_at = subject
        row = row.where(
            ~exists().where(
                erased_clients.c.clinic_id == clinic_id,
                erased_clients.c.client_id == client_id,
                erased_clients.c.erased_at >= occurred_at,
            )
        )
    stmt = (
        insert(inbox)
        .from_select(["consumer", "event_id", "event_type"], row)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id)
    )
    result = await session.exec(stmt)
    return result.first() is not None


async def forget_client(
    session: AsyncSession, clinic_id: str, client_id: str, erased_at: datetime, erasure_id: uuid.UUID
) -> None:
    """Record the erasure's tombstone (the latest erasure wins) and delete the outbox rows keyed to the
    client, published or not: their payloads are the client's data. Events staged after this call
    (the confirmation) are kept."""
    stmt = insert(erased_clients).values(
        clinic_id=clinic_id, client_id=client_id, erased_at=erased_at, erasure_id=erasure_id
    )
    await session.exec(
        stmt.on_conflict_do_update(
            index_elements=["clinic_id", "client_id"],
            set_={
                "erased_at": func.greatest(erased_clients.c.erased_at, stmt.excluded.erased_at),
                "erasure_id": stmt.excluded.erasure_id,
            },
        )
    )
    await session.exec(delete(outbox).where(outbox.c.key == partition_key(clinic_id, client_id)))


class InboxPurger:
    """Deletes inbox records older than the retention, a bounded batch per statement (each statement
    stays well within the database command timeout), one replica at a time."""

    def __init__(
        self,
        session_factory: SessionFactory,
        retention: timedelta,
        *,
        interval: timedelta = timedelta(minutes=10),
        batch_size: int = 5000,
    ) -> None:
        self._factory = session_factory
        self._retention = retention
        self._interval = interval
        self._batch_size = batch_size

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.purge()
            except Exception:  # the records stay until the next round
                log.exception("inbox purge failed; retrying later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval.total_seconds())

    async def purge(self, now: datetime | None = None) -> int:
        """Delete the expired records; how many were deleted (0 if another replica is purging)."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        total = 0
        while True:
            async with transaction(self._factory) as session:
                conn = await session.connection()
                if not (await conn.execute(select(func.pg_try_advisory_xact_lock(PURGE_LOCK_ID)))).scalar():
                    return total
                expired = (
                    select(inbox.c.consumer, inbox.c.event_id)
                    .where(inbox.c.applied_at < cutoff)
                    .limit(self._batch_size)
                )
                result = await conn.execute(
                    delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.event_id).in_(expired))
                )
            total += result.rowcount
            if result.rowcount < self._batch_size:
                return total
