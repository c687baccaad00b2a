"""Sign-in challenges, refresh tokens and the contact lookup by identifier, in identity's database."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.auth import ClientRef
from petportal_runtime.db import table_of

from ..domain.sign_in import Challenge, ChallengePurpose, Identifier, IdentifierKind, RefreshToken
from .orm import ContactRow, RefreshTokenRow, SignInChallengeRow

challenges = table_of(SignInChallengeRow)
refresh_tokens = table_of(RefreshTokenRow)
contacts = table_of(ContactRow)


def _refs(rows: list[dict[str, str]]) -> list[ClientRef]:
    return [ClientRef(**r) for r in rows]


def _json(refs: list[ClientRef]) -> list[dict[str, str]]:
    return [r.model_dump() for r in refs]


def _challenge(row: Any) -> Challenge:
    return Challenge(
        id=row.id,
        identifier_digest=row.identifier_digest,
        kind=row.kind,
        clients=_refs(row.clients),
        code_digest=row.code_digest,
        link_digest=row.link_digest,
        expires_at=row.expires_at,
        attempts=row.attempts,
        used_at=row.used_at,
        link_used_at=row.link_used_at,
        prefill=row.prefill,
        purpose=row.purpose,
    )


def _token(row: Any) -> RefreshToken:
    return RefreshToken(
        digest=row.digest,
        family_id=row.family_id,
        person=row.person,
        clients=_refs(row.clients),
        selected=ClientRef(clinic_id=row.selected_clinic_id, client_id=row.selected_client_id),
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
    )


class SignInRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def clients_with(self, identifier: Identifier, clinic_id: str | None) -> list[ClientRef]:
        """Every (clinic, client) whose contact record has this email or phone, in a stable order."""
        if identifier.kind == "email":
            condition = func.lower(contacts.c.email) == identifier.value
        else:
            condition = contacts.c.phone == identifier.value
        query = select(contacts.c.clinic_id, contacts.c.client_id).where(condition)
        if clinic_id is not None:
            query = query.where(contacts.c.clinic_id == clinic_id)
        rows = await self.session.execute(query.order_by(contacts.c.clinic_id, contacts.c.client_id))
        return [ClientRef(clinic_id=r.clinic_id, client_id=r.client_id) for r in rows]

    async def still_clients(self, refs: list[ClientRef]) -> list[ClientRef]:
        """Those of `refs` whose contact record still exists (a removed contact loses access)."""
        if not refs:
            return []
        query = select(contacts.c.clinic_id, contacts.c.client_id).where(
            or_(
                *((contacts.c.clinic_id == r.clinic_id) & (contacts.c.client_id == r.client_id) for r in refs)
            )
        )
        found = {(r.clinic_id, r.client_id) for r in await self.session.execute(query)}
        return [r for r in refs if (r.clinic_id, r.client_id) in found]

    async def add_challenge(self, challenge: Challenge) -> None:
        await self.session.execute(
            challenges.insert().values(
                id=challenge.id,
                identifier_digest=challenge.identifier_digest,
                kind=challenge.kind,
                clients=_json(challenge.clients),
                code_digest=challenge.code_digest,
                link_digest=challenge.link_digest,
                attempts=challenge.attempts,
                expires_at=challenge.expires_at,
                prefill=challenge.prefill,
                purpose=challenge.purpose,
            )
        )

    async def challenge_by_link(self, link_digest: str) -> Challenge | None:
        row = (
            await self.session.execute(select(challenges).where(challenges.c.link_digest == link_digest))
        ).first()
        return _challenge(row) if row else None

    async def challenge_for_update(
        self,
        *,
        challenge_id: uuid.UUID | None = None,
        link_digest: str | None = None,
        purpose: ChallengePurpose = "sign_in",
    ) -> Challenge | None:
        query = select(challenges).where(challenges.c.purpose == purpose).with_for_update()
        if challenge_id is not None:
            query = query.where(challenges.c.id == challenge_id)
        else:
            query = query.where(challenges.c.link_digest == link_digest)
        row = (await self.session.execute(query)).first()
        return _challenge(row) if row else None

    async def latest_kind(self, identifier_digest: str) -> IdentifierKind | None:
        """Whether the person last asked for a code by email or by phone (None: never)."""
        row = (
            await self.session.execute(
                select(challenges.c.kind)
                .where(challenges.c.identifier_digest == identifier_digest)
                .order_by(challenges.c.expires_at.desc())
                .limit(1)
            )
        ).first()
        return row.kind if row else None

    async def save_challenge(self, challenge: Challenge) -> None:
        await self.session.execute(
            update(challenges)
            .where(challenges.c.id == challenge.id)
            .values(
                attempts=challenge.attempts, used_at=challenge.used_at, link_used_at=challenge.link_used_at
            )
        )

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await self.session.execute(
            refresh_tokens.insert().values(
                digest=token.digest,
                family_id=token.family_id,
                person=token.person,
                clients=_json(token.clients),
                selected_clinic_id=token.selected.clinic_id,
                selected_client_id=token.selected.client_id,
                expires_at=token.expires_at,
            )
        )

    async def refresh_token_for_update(self, digest: str) -> RefreshToken | None:
        row = (
            await self.session.execute(
                select(refresh_tokens).where(refresh_tokens.c.digest == digest).with_for_update()
            )
        ).first()
        return _token(row) if row else None

    async def mark_used(self, digest: str, at: datetime) -> None:
        await self.session.execute(
            update(refresh_tokens).where(refresh_tokens.c.digest == digest).values(used_at=at)
        )

    async def revoke(
        self, at: datetime, *, family_id: uuid.UUID | None = None, person: str | None = None
    ) -> int:
        query = update(refresh_tokens).where(refresh_tokens.c.revoked_at.is_(None))
        if family_id is not None:
            query = query.where(refresh_tokens.c.family_id == family_id)
        if person is not None:
            query = query.where(refresh_tokens.c.person == person)
        result = await self.session.execute(query.values(revoked_at=at))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
