"""What identity's use cases need: storage (staff users, contacts, parent accounts, clinics) in a unit
of work (with the inbox), and the staff sign-in limits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from petportal_runtime.uow import UnitOfWork

from ..domain.model import AccountOrigin, Contact, StaffUser


class IdentityStore(Protocol):
    async def staff_by_email(self, email: str, clinic_id: str | None = None) -> list[StaffUser]: ...

    async def set_staff_password(self, clinic_id: str, email: str, password_hash: str) -> StaffUser | None:
        """The staff user with the new hash; None when there is no such user at that clinic."""
        ...

    async def add_staff(self, user: StaffUser) -> bool:
        """False when the email is already taken at that clinic."""
        ...

    async def upsert_contact(self, contact: Contact, occurred_at: datetime) -> None:
        """Insert or replace the contact unless a newer one is stored."""
        ...

    async def contact(self, clinic_id: str, client_id: str) -> Contact | None: ...

    async def ensure_account(self, clinic_id: str, client_id: str, origin: AccountOrigin) -> uuid.UUID:
        """The account id of the client, creating the account if it does not exist yet."""
        ...

    async def upsert_clinic(self, clinic_id: str, name: str, occurred_at: datetime) -> None: ...


class IdentityRepositories(Protocol):
    @property
    def identity(self) -> IdentityStore: ...


IdentityUnitOfWork = UnitOfWork[IdentityRepositories]


class SignInLimiter(Protocol):
    async def hit(self, email: str, ip: str) -> int | None:
        """Counts one attempt; None when allowed, else the seconds to wait before retrying."""
        ...

    async def unlock(self, email: str) -> None:
        """Forgets the email's failed attempts."""
        ...
