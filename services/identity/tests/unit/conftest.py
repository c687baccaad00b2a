"""identity's repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_identity.domain.model import AccountOrigin, Contact, StaffUser


@dataclass
class InMemoryIdentity:
    staff: list[StaffUser] = field(default_factory=list)
    contacts: dict[tuple[str, str], tuple[Contact, datetime]] = field(default_factory=dict)
    accounts: dict[tuple[str, str], tuple[uuid.UUID, AccountOrigin]] = field(default_factory=dict)
    clinics: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    async def staff_by_email(self, email: str, clinic_id: str | None = None) -> list[StaffUser]:
        return [u for u in self.staff if u.email == email and clinic_id in (None, u.clinic_id)]

    async def set_staff_password(self, clinic_id: str, email: str, password_hash: str) -> StaffUser | None:
        for i, user in enumerate(self.staff):
            if (user.clinic_id, user.email) == (clinic_id, email):
                self.staff[i] = replace(user, password_hash=password_hash)
                return self.staff[i]
        return None

    async def add_staff(self, user: StaffUser) -> bool:
        if await self.staff_by_email(user.email, user.clinic_id):
            return False
        self.staff.append(user)
        return True

    async def upsert_contact(self, contact: Contact, occurred_at: datetime) -> None:
        key = (contact.clinic_id, contact.client_id)
        if key not in self.contacts or self.contacts[key][1] <= occurred_at:
            self.contacts[key] = (contact, occurred_at)

    async def contact(self, clinic_id: str, client_id: str) -> Contact | None:
        stored = self.contacts.get((clinic_id, client_id))
        return stored[0] if stored else None

    async def remove_contact(self, clinic_id: str, client_id: str) -> None:
        self.contacts.pop((clinic_id, client_id), None)

    async def ensure_account(self, clinic_id: str, client_id: str, origin: AccountOrigin) -> uuid.UUID:
        return self.accounts.setdefault((clinic_id, client_id), (uuid.uuid4(), origin))[0]

    async def upsert_clinic(self, clinic_id: str, name: str, occurred_at: datetime) -> None:
        registered_at = self.clinics[clinic_id][1] if clinic_id in self.clinics else occurred_at
        self.clinics[clinic_id] = (name, registered_at)


@dataclass
class InMemoryRepositories:
    identity: InMemoryIdentity = field(default_factory=InMemoryIdentity)


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
