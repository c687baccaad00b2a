"""Pets in PostgreSQL, in the unit of work's transaction; they leave as domain `Pet`s, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.db import table_of

from ..domain import Pet
from .orm import PetRow

_FIELDS = (
    "client_id",
    "name",
    "species",
    "breed",
    "sex",
    "date_of_birth",
    "colour",
    "weight_kg",
    "microchip",
)


class PetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, pet: Pet) -> bool:
        """Insert or replace the pet's signalment unless a newer one is stored; True if written."""
        values: dict[str, Any] = {
            "clinic_id": pet.clinic_id,
            "patient_id": pet.patient_id,
            "updated_at": pet.updated_at,
            **{f: getattr(pet, f) for f in _FIELDS},
        }
        table = table_of(PetRow)
        insert_pet = insert(table).values(**values)
        stmt = insert_pet.on_conflict_do_update(
            constraint="uq_pets_clinic_patient",
            set_={f: insert_pet.excluded[f] for f in (*_FIELDS, "updated_at")},
            # Only a newer (or equally new) record replaces the stored one.
            where=table.c.updated_at <= insert_pet.excluded.updated_at,
        ).returning(table.c.id)
        return (await self.session.execute(stmt)).first() is not None

    async def for_client(self, clinic_id: str, client_id: str) -> list[Pet]:
        rows = await self.session.exec(
            select(PetRow)
            .where(PetRow.clinic_id == clinic_id, PetRow.client_id == client_id)
            .order_by(col(PetRow.name), col(PetRow.patient_id))
        )
        return [_pet(row) for row in rows]

    async def get(self, clinic_id: str, client_id: str, patient_id: str) -> Pet | None:
        row = (
            await self.session.exec(
                select(PetRow).where(
                    PetRow.clinic_id == clinic_id,
                    PetRow.client_id == client_id,
                    PetRow.patient_id == patient_id,
                )
            )
        ).first()
        return _pet(row) if row else None


@dataclass(frozen=True)
class SqlRepositories:
    pets: PetRepository


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(pets=PetRepository(session))


def _pet(row: PetRow) -> Pet:
    return Pet(
        clinic_id=row.clinic_id,
        patient_id=row.patient_id,
        updated_at=row.updated_at,
        **{f: getattr(row, f) for f in _FIELDS},
    )
