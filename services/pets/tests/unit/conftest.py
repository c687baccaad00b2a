"""pets' repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.domain import Pet


@dataclass
class InMemoryPets:
    stored: dict[tuple[str, str], Pet] = field(default_factory=dict)

    async def upsert(self, pet: Pet) -> bool:
        current = self.stored.get((pet.clinic_id, pet.patient_id))
        if (
            current is not None
            and current.updated_at
            and pet.updated_at
            and current.updated_at > pet.updated_at
        ):
            return False
        self.stored[(pet.clinic_id, pet.patient_id)] = pet
        return True

    async def for_client(self, clinic_id: str, client_id: str) -> list[Pet]:
        mine = [p for p in self.stored.values() if (p.clinic_id, p.client_id) == (clinic_id, client_id)]
        return sorted(mine, key=lambda p: (p.name, p.patient_id))

    async def get(self, clinic_id: str, client_id: str, patient_id: str) -> Pet | None:
        pet = self.stored.get((clinic_id, patient_id))
        return pet if pet is not None and pet.client_id == client_id else None


@dataclass
class InMemoryRepositories:
    pets: InMemoryPets = field(default_factory=InMemoryPets)


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
