"""pets' tables. Base has its own registry so several services' tables can share a process."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class PetRow(Base, table=True):
    """A pet's signalment as last published by sync (PatientUpserted)."""

    __tablename__ = "pets"
    __table_args__ = (
        UniqueConstraint("clinic_id", "patient_id", name="uq_pets_clinic_patient"),
        Index("ix_pets_clinic_client", "clinic_id", "client_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    name: str = Field(max_length=100)
    species: str = Field(max_length=50)
    breed: str | None = Field(default=None, sa_column=Column(String(100)))
    sex: str | None = Field(default=None, sa_column=Column(String(30)))
    date_of_birth: date | None = Field(default=None, sa_column=Column(Date))
    colour: str | None = Field(default=None, sa_column=Column(String(50)))
    weight_kg: float | None = Field(default=None, sa_column=Column(Float))
    microchip: str | None = Field(default=None, sa_column=Column(String(30)))
    # occurred_at of the event that wrote the row: older events never overwrite newer data.
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
