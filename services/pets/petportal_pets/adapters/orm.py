"""pets' tables. Base has its own registry so several services' tables can share a process."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
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
    # A deceased or removed pet is kept (an older event must not bring it back) but never listed.
    deceased_on: date | None = Field(default=None, sa_column=Column(Date))
    gone_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ClinicRow(Base, table=True):
    """A clinic as registered in sync (ClinicRegistered) and its portal settings (ClinicSettingsChanged)."""

    __tablename__ = "clinics"

    clinic_id: str = Field(max_length=64, primary_key=True)
    name: str | None = Field(default=None, sa_column=Column(String(200)))
    pims: str = Field(default="other", max_length=20)
    timezone: str = Field(default="UTC", max_length=64)
    settings: Any = Field(default=None, sa_column=Column(JSONB))
    registered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    settings_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class PetRecordRow(Base, table=True):
    """A pet's appointment, reminder, vaccination or medication: the payload of the last event about
    it, `active` False once it ended (cancelled, done, deleted)."""

    __tablename__ = "pet_records"
    __table_args__ = (Index("ix_pet_records_client", "clinic_id", "client_id", "kind"),)

    clinic_id: str = Field(max_length=64, primary_key=True)
    kind: str = Field(max_length=20, primary_key=True)
    record_id: str = Field(max_length=64, primary_key=True)
    client_id: str = Field(max_length=64)
    patient_id: str | None = Field(default=None, sa_column=Column(String(64)))
    payload: Any = Field(sa_column=Column(JSONB, nullable=False))
    active: bool = Field(sa_column=Column(Boolean, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class PetPhotoRow(Base, table=True):
    """A pet's photo as the portal re-encoded it (domain.photos), and its thumbnail."""

    __tablename__ = "pet_photos"

    clinic_id: str = Field(max_length=64, primary_key=True)
    patient_id: str = Field(max_length=64, primary_key=True)
    photo: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    thumbnail: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    width: int
    height: int
    etag: str = Field(max_length=32)
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AppointmentRequestRow(Base, table=True):
    """A parent's appointment request and the clinic's answer (domain.requests)."""

    __tablename__ = "appointment_requests"
    __table_args__ = (
        Index("ix_appointment_requests_client", "clinic_id", "client_id", "created_at"),
        Index("ix_appointment_requests_clinic", "clinic_id", "status", "created_at"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    preferred_times: Any = Field(sa_column=Column(JSONB, nullable=False))
    status: str = Field(max_length=20)
    answer_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    seen_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class RefillRequestRow(Base, table=True):
    """A parent's prescription refill request and the clinic's decision (domain.refills). At most one
    pending request per prescription."""

    __tablename__ = "refill_requests"
    __table_args__ = (
        Index("ix_refill_requests_client", "clinic_id", "client_id", "created_at"),
        Index("ix_refill_requests_clinic", "clinic_id", "status", "created_at"),
        Index(
            "uq_refill_requests_pending",
            "clinic_id",
            "prescription_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    prescription_id: str = Field(max_length=64)
    medication: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=500)
    status: str = Field(max_length=20)
    clinic_note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    seen_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class FormVersionRow(Base, table=True):
    """One version of a clinic's form (domain.forms): its fields and the JSON Schema built from them.
    The form's id stays; each changed publication adds the next version."""

    __tablename__ = "form_versions"
    __table_args__ = (Index("ix_form_versions_clinic", "clinic_id", "form_id"),)

    form_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    version: int = Field(primary_key=True)
    clinic_id: str = Field(max_length=64)
    title: str = Field(max_length=120)
    description: str | None = Field(default=None, sa_column=Column(String(2000)))
    fields: Any = Field(sa_column=Column(JSONB, nullable=False))
    json_schema: Any = Field(sa_column=Column("schema", JSONB, nullable=False))
    published_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class FormAssignmentRow(Base, table=True):
    """A form version assigned to a client (maybe about a pet and an appointment), pending until the
    parent submits it."""

    __tablename__ = "form_assignments"
    __table_args__ = (
        Index("ix_form_assignments_client", "clinic_id", "client_id", "assigned_at"),
        Index("ix_form_assignments_clinic", "clinic_id", "status", "assigned_at"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    form_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    version: int
    title: str = Field(max_length=120)
    patient_id: str | None = Field(default=None, sa_column=Column(String(64)))
    appointment_id: str | None = Field(default=None, sa_column=Column(String(64)))
    status: str = Field(max_length=20)
    assigned_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    submission_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    completed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class FormSubmissionRow(Base, table=True):
    """A completed form: the answers and the exact version they answered; one per assignment."""

    __tablename__ = "form_submissions"
    __table_args__ = (
        UniqueConstraint("assignment_id", name="uq_form_submissions_assignment"),
        Index("ix_form_submissions_clinic", "clinic_id", "submitted_at"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    form_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    version: int
    patient_id: str | None = Field(default=None, sa_column=Column(String(64)))
    appointment_id: str | None = Field(default=None, sa_column=Column(String(64)))
    answers: Any = Field(sa_column=Column(JSONB, nullable=False))
    submitted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
