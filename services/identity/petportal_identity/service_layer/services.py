"""identity's use cases. Each takes the session of the caller's unit of work."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.auth import ParentPrincipal, StaffPrincipal, sign_token

from ..adapters.orm import StaffUser
from ..adapters.repository import IdentityRepository
from ..domain import passwords
from ..domain.keys import SigningKey
from ..domain.model import AccountOrigin, Contact, normalise_email


class StaffExistsError(Exception):
    pass


class AmbiguousStaffError(Exception):
    """The email and password match staff users at several clinics: the clinic must be given."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class TokenIssuer:
    key: SigningKey
    parent_ttl: timedelta
    staff_ttl: timedelta

    def parent(self, account_id: uuid.UUID, clinic_id: str, client_id: str) -> IssuedToken:
        principal = ParentPrincipal(
            sub=str(account_id), role="parent", clinic_id=clinic_id, client_id=client_id
        )
        token = sign_token(self.key.private_key, self.key.kid, principal, self.parent_ttl)
        return IssuedToken(token, int(self.parent_ttl.total_seconds()))

    def staff(self, user: StaffUser) -> IssuedToken:
        principal = StaffPrincipal(sub=str(user.id), role="staff", clinic_id=user.clinic_id)
        token = sign_token(self.key.private_key, self.key.kid, principal, self.staff_ttl)
        return IssuedToken(token, int(self.staff_ttl.total_seconds()))


async def create_staff(session: AsyncSession, clinic_id: str, email: str, password: str) -> StaffUser:
    passwords.check_strength(password)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    user = StaffUser(clinic_id=clinic_id, email=normalise_email(email), password_hash=password_hash)
    if not await IdentityRepository(session).add_staff(user):
        raise StaffExistsError(f"a staff user with that email already exists at clinic {clinic_id}")
    return user


async def reset_staff_password(
    session: AsyncSession, clinic_id: str, email: str, password: str
) -> StaffUser | None:
    """None when no staff user has that email at that clinic."""
    passwords.check_strength(password)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    return await IdentityRepository(session).set_staff_password(
        clinic_id, normalise_email(email), password_hash
    )


async def find_staff_candidates(
    session: AsyncSession, email: str, clinic_id: str | None = None
) -> list[StaffUser]:
    return list(await IdentityRepository(session).staff_by_email(normalise_email(email), clinic_id))


async def verify_staff_password(candidates: list[StaffUser], password: str) -> StaffUser | None:
    """The one candidate whose password matches. Runs scrypt off the event loop, and once against a
    dummy hash when there is no candidate so an unknown email costs as much as a wrong password."""
    if not candidates:
        await asyncio.to_thread(passwords.verify_password, password, passwords.DUMMY_HASH)
        return None
    matches = [
        user
        for user in candidates
        if await asyncio.to_thread(passwords.verify_password, password, user.password_hash)
    ]
    if len(matches) > 1:
        raise AmbiguousStaffError()
    return matches[0] if matches else None


async def record_contact(session: AsyncSession, contact: Contact, occurred_at: datetime) -> None:
    await IdentityRepository(session).upsert_contact(contact, occurred_at)


async def open_account(
    session: AsyncSession, clinic_id: str, client_id: str, origin: AccountOrigin
) -> uuid.UUID:
    return await IdentityRepository(session).ensure_account(clinic_id, client_id, origin)


async def record_clinic(session: AsyncSession, clinic_id: str, name: str, occurred_at: datetime) -> None:
    await IdentityRepository(session).upsert_clinic(clinic_id, name, occurred_at)


async def contact_details(session: AsyncSession, clinic_id: str, client_id: str) -> Contact | None:
    return await IdentityRepository(session).contact(clinic_id, client_id)
