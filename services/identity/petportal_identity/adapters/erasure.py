"""Erasure requests and confirmations, and erasing identity's own data about a client."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, delete, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.db import table_of

from ..domain.erasure import Erasure, ErasureSubject
from .orm import (
    ContactRow,
    ErasureConfirmationRow,
    ErasureRow,
    ParentAccount,
    RefreshTokenRow,
    SignInChallengeRow,
)

erasures = table_of(ErasureRow)
confirmations = table_of(ErasureConfirmationRow)
contacts = table_of(ContactRow)
accounts = table_of(ParentAccount)
challenges = table_of(SignInChallengeRow)
refresh_tokens = table_of(RefreshTokenRow)


class ErasureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, erasure: Erasure) -> None:
        await self.session.execute(
            erasures.insert().values(
                id=erasure.id, requested_at=erasure.requested_at, last_requested_at=erasure.requested_at
            )
        )
        await self.session.execute(
            confirmations.insert(),
            [
                {
                    "erasure_id": erasure.id,
                    "clinic_id": clinic_id,
                    "client_id": client_id,
                    "service": service,
                    "confirmed_at": at,
                }
                for (clinic_id, client_id), by_service in erasure.confirmations.items()
                for service, at in by_service.items()
            ],
        )

    async def get(self, erasure_id: uuid.UUID) -> Erasure | None:
        row = (await self.session.execute(select(erasures).where(erasures.c.id == erasure_id))).first()
        if row is None:
            return None
        found: dict[tuple[str, str], dict[str, datetime | None]] = defaultdict(dict)
        for c in await self.session.execute(
            select(confirmations).where(confirmations.c.erasure_id == erasure_id)
        ):
            found[(c.clinic_id, c.client_id)][c.service] = c.confirmed_at
        return Erasure(row.id, row.requested_at, dict(found), row.completed_at)

    async def confirm(
        self, erasure_id: uuid.UUID, clinic_id: str, client_id: str, service: str, at: datetime
    ) -> bool:
        await self.session.execute(
            update(confirmations)
            .where(
                confirmations.c.erasure_id == erasure_id,
                confirmations.c.clinic_id == clinic_id,
                confirmations.c.client_id == client_id,
                confirmations.c.service == service,
                confirmations.c.confirmed_at.is_(None),
            )
            .values(confirmed_at=at)
        )
        still_waiting = (
            select(confirmations.c.erasure_id)
            .where(confirmations.c.erasure_id == erasure_id, confirmations.c.confirmed_at.is_(None))
            .exists()
        )
        completed = await self.session.execute(
            update(erasures)
            .where(erasures.c.id == erasure_id, erasures.c.completed_at.is_(None), ~still_waiting)
            .values(completed_at=at)
            .returning(erasures.c.id)
        )
        return completed.first() is not None

    async def due_again(
        self, asked_before: datetime, at: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, str]]:
        due = (
            select(erasures.c.id)
            .where(erasures.c.completed_at.is_(None), erasures.c.last_requested_at < asked_before)
            .order_by(erasures.c.last_requested_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = [r.id for r in await self.session.execute(due)]
        if not ids:
            return []
        await self.session.execute(
            update(erasures).where(erasures.c.id.in_(ids)).values(last_requested_at=at)
        )
        rows = await self.session.execute(
            select(confirmations.c.erasure_id, confirmations.c.clinic_id, confirmations.c.client_id)
            .where(confirmations.c.erasure_id.in_(ids), confirmations.c.confirmed_at.is_(None))
            .distinct()
        )
        return [(r.erasure_id, r.clinic_id, r.client_id) for r in rows]

    async def for_clinic(self, clinic_id: str, limit: int) -> list[ErasureSubject]:
        waiting = func.array_agg(confirmations.c.service).filter(confirmations.c.confirmed_at.is_(None))
        query = (
            select(
                erasures.c.id,
                confirmations.c.client_id,
                erasures.c.requested_at,
                erasures.c.completed_at,
                waiting.label("waiting_for"),
            )
            .join(confirmations, confirmations.c.erasure_id == erasures.c.id)
            .where(confirmations.c.clinic_id == clinic_id)
            .group_by(erasures.c.id, confirmations.c.client_id)
            .order_by(erasures.c.requested_at.desc(), confirmations.c.client_id)
            .limit(limit)
        )
        return [
            ErasureSubject(r.id, r.client_id, r.requested_at, r.completed_at, sorted(r.waiting_for or []))
            for r in await self.session.execute(query)
        ]

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        ref = [{"clinic_id": clinic_id, "client_id": client_id}]
        deleted = 0
        for statement in (
            delete(contacts).where(
                and_(contacts.c.clinic_id == clinic_id, contacts.c.client_id == client_id)
            ),
            delete(accounts).where(
                and_(accounts.c.clinic_id == clinic_id, accounts.c.client_id == client_id)
            ),
            delete(challenges).where(challenges.c.clients.contains(ref)),
            delete(refresh_tokens).where(refresh_tokens.c.clients.contains(ref)),
        ):
            result = await self.session.execute(statement)
            deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return deleted
