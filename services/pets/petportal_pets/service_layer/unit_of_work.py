"""What pets' use cases need of storage: the pets, in a unit of work."""

from __future__ import annotations

from typing import Protocol

from petportal_runtime.uow import UnitOfWork

from ..domain import Pet


class PetStore(Protocol):
    async def upsert(self, pet: Pet) -> bool:
        """Insert or replace the pet's signalment unless a newer one is stored; True if written."""
        ...

    async def for_client(self, clinic_id: str, client_id: str) -> list[Pet]:
        """The client's pets, by name then id."""
        ...

    async def get(self, clinic_id: str, client_id: str, patient_id: str) -> Pet | None: ...


class PetsRepositories(Protocol):
    @property
    def pets(self) -> PetStore: ...


PetsUnitOfWork = UnitOfWork[PetsRepositories]
