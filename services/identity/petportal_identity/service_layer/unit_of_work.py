"""What identity's use cases need: storage (staff users, contacts, parent accounts, clinics) in a unit
of work (with the inbox), and the staff sign-in limits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from petportal_runtime.auth import ClientRef
from petportal_runtime.uow import UnitOfWork

from ..domain.model import AccountOrigin, Contact, StaffUser
from ..domain.sign_in import Challenge, Identifier, RefreshToken


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

    async def remove_contact(self, clinic_id: str, client_id: str) -> None: ...

    async def ensure_account(self, clinic_id: str, client_id: str, origin: AccountOrigin) -> uuid.UUID:
        """The account id of the client, creating the account if it does not exist yet."""
        ...

    async def upsert_clinic(self, clinic_id: str, name: str, occurred_at: datetime) -> None: ...


class SignInStore(Protocol):
    async def clients_with(self, identifier: Identifier, clinic_id: str | None) -> list[ClientRef]:
        """Every (clinic, client) whose contact record has this email or phone, in a stable order."""
        ...

    async def still_clients(self, refs: list[ClientRef]) -> list[ClientRef]: ...

    async def add_challenge(self, challenge: Challenge) -> None: ...

    async def challenge_by_link(self, link_digest: str) -> Challenge | None: ...

    async def challenge_for_update(
        self, *, challenge_id: uuid.UUID | None = None, link_digest: str | None = None
    ) -> Challenge | None: ...

    async def save_challenge(self, challenge: Challenge) -> None: ...

    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def refresh_token_for_update(self, digest: str) -> RefreshToken | None: ...

    async def mark_used(self, digest: str, at: datetime) -> None: ...

    async def revoke(
        self, at: datetime, *, family_id: uuid.UUID | None = None, person: str | None = None
    ) -> int:
        """Revoke the live tokens of a family or of a person; how many."""
        ...


class IdentityRepositories(Protocol):
    @property
    def identity(self) -> IdentityStore: ...

    @property
    def sign_in(self) -> SignInStore: ...


IdentityUnitOfWork = UnitOfWork[IdentityRepositories]


class SignInLimiter(Protocol):
    async def hit(self, key: str, ip: str) -> int | None:
        """Counts one attempt; None when allowed, else the seconds to wait before retrying."""
        ...

    async def unlock(self, key: str) -> None:
        """Forgets the email's failed attempts."""
        ...
