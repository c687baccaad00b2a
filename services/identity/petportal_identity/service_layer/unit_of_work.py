"""What identity's use cases need: storage (staff users, contacts, parent accounts, clinics) in a unit
of work (with the inbox), and the staff sign-in limits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from petportal_runtime.auth import ClientRef
from petportal_runtime.uow import UnitOfWork

from ..domain.erasure import Erasure, ErasureSubject
from ..domain.model import AccountOrigin, Contact, StaffUser
from ..domain.sign_in import Challenge, ChallengePurpose, Identifier, IdentifierKind, RefreshToken


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
        self,
        *,
        challenge_id: uuid.UUID | None = None,
        link_digest: str | None = None,
        purpose: ChallengePurpose = "sign_in",
    ) -> Challenge | None: ...

    async def latest_kind(self, identifier_digest: str) -> IdentifierKind | None:
        """Whether the person last asked for a code by email or by phone (None: never)."""
        ...

    async def save_challenge(self, challenge: Challenge) -> None: ...

    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def refresh_token_for_update(self, digest: str) -> RefreshToken | None: ...

    async def mark_used(self, digest: str, at: datetime) -> None: ...

    async def revoke(
        self, at: datetime, *, family_id: uuid.UUID | None = None, person: str | None = None
    ) -> int:
        """Revoke the live tokens of a family or of a person; how many."""
        ...


class ErasureStore(Protocol):
    async def add(self, erasure: Erasure) -> None: ...

    async def get(self, erasure_id: uuid.UUID) -> Erasure | None: ...

    async def confirm(
        self, erasure_id: uuid.UUID, clinic_id: str, client_id: str, service: str, at: datetime
    ) -> bool:
        """Record the confirmation (a repeated one changes nothing); True if it completed the erasure."""
        ...

    async def due_again(
        self, asked_before: datetime, at: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, str]]:
        """(erasure, clinic, client) of incomplete erasures last asked before `asked_before`, whose
        clients some service has not confirmed; marked asked at `at` (replicas skip each other's)."""
        ...

    async def for_clinic(self, clinic_id: str, limit: int) -> list[ErasureSubject]:
        """The clinic's clients' erasures, newest first."""
        ...

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete the client's contact record, account, sign-in challenges and refresh tokens."""
        ...


class IdentityRepositories(Protocol):
    @property
    def identity(self) -> IdentityStore: ...

    @property
    def sign_in(self) -> SignInStore: ...

    @property
    def erasures(self) -> ErasureStore: ...


IdentityUnitOfWork = UnitOfWork[IdentityRepositories]


class SignInLimiter(Protocol):
    async def hit(self, key: str, ip: str) -> int | None:
        """Counts one attempt; None when allowed, else the seconds to wait before retrying."""
        ...

    async def unlock(self, key: str) -> None:
        """Forgets the email's failed attempts."""
        ...
