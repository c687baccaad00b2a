"""Idempotent consumers: record each applied event in the same transaction as its effect."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from .tables import inbox


async def claim(session: AsyncSession, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
    """True if this consumer has not applied the event yet (and now owns applying it).

    Call inside the transaction that applies the event: if that transaction rolls back, so does the
    claim, and the redelivered event is applied then.
    """
    stmt = (
        insert(inbox)
        .values(consumer=consumer, event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id)
    )
    result = await session.exec(stmt)
    return result.first() is not None
