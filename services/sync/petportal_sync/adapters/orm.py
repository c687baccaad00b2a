"""sync's tables. Base has its own registry so several services' tables can share a process."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> Any:
    return Field(default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False))


class Base(SQLModel, registry=registry()):
    pass


class ClinicRow(Base, table=True):
    __tablename__ = "clinics"

    clinic_id: str = Field(max_length=64, primary_key=True)
    name: str = Field(max_length=200)
    pims: str = Field(max_length=20)
    sms_number: str | None = Field(default=None, max_length=20)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = _timestamp()


class ApiKeyRow(Base, table=True):
    """A clinic's API key, as its SHA-256 hash; valid until it expires (after a rotation's overlap) or
    is revoked. `key_id` (the hash's first 12 hex digits) names it without revealing it."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_clinic", "clinic_id"),)

    key_hash: str = Field(max_length=64, primary_key=True)
    key_id: str = Field(max_length=12)
    clinic_id: str = Field(max_length=64, foreign_key="clinics.clinic_id")
    created_at: datetime = _timestamp()
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ContactRow(Base, table=True):
    __tablename__ = "contacts"

    clinic_id: str = Field(max_length=64, primary_key=True)
    client_id: str = Field(max_length=64, primary_key=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=20)
    version: int | None = Field(default=None, sa_column=Column(BigInteger))  # the PIMS's, see records.Version
    updated_at: datetime = _timestamp()


class PatientRow(Base, table=True):
    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_client", "clinic_id", "client_id"),)

    clinic_id: str = Field(max_length=64, primary_key=True)
    patient_id: str = Field(max_length=64, primary_key=True)
    client_id: str = Field(max_length=64)
    name: str = Field(max_length=100)
    species: str = Field(max_length=50)
    breed: str | None = Field(default=None, max_length=100)
    sex: str | None = Field(default=None, max_length=30)
    date_of_birth: date | None = None
    colour: str | None = Field(default=None, max_length=50)
    weight_kg: float | None = None
    microchip: str | None = Field(default=None, max_length=30)
    deceased: bool = False
    deceased_on: date | None = None
    version: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_at: datetime = _timestamp()


class ProgramRow(Base, table=True):
    __tablename__ = "programs"

    clinic_id: str = Field(max_length=64, primary_key=True)
    code: str = Field(max_length=40, primary_key=True)
    name: str = Field(max_length=100)
    call_to_action: str = Field(max_length=100)
    offered: bool
    updated_at: datetime = _timestamp()


class EnrolmentRow(Base, table=True):
    __tablename__ = "enrolments"

    clinic_id: str = Field(max_length=64, primary_key=True)
    client_id: str = Field(max_length=64, primary_key=True)
    program_code: str = Field(max_length=40, primary_key=True)
    enrolled_at: datetime = _timestamp()


class ClinicalRecordRow(Base, table=True):
    """Appointments, reminders, vaccinations, medications and the clinic's settings, as last received:
    one JSON state each, to tell a change from a re-send (domain.batch)."""

    __tablename__ = "clinical_records"
    __table_args__ = (Index("ix_clinical_records_client", "clinic_id", "client_id"),)

    clinic_id: str = Field(max_length=64, primary_key=True)
    kind: str = Field(max_length=20, primary_key=True)
    record_id: str = Field(max_length=64, primary_key=True)
    client_id: str | None = Field(default=None, max_length=64)
    state: Any = Field(sa_column=Column(JSONB, nullable=False))
    version: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_at: datetime = _timestamp()


class RejectedRecordRow(Base, table=True):
    __tablename__ = "rejected_records"
    __table_args__ = (Index("ix_rejected_records_clinic_received", "clinic_id", "received_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: str = Field(max_length=64)
    received_at: datetime = _timestamp()
    index: int
    kind: str | None = Field(default=None, max_length=50)
    raw: str = Field(sa_column=Column(Text, nullable=False))  # domain.records.record_text
    source: str = Field(default="canonical", max_length=20)  # "canonical" or the PIMS of a native record
    errors: Any = Field(sa_column=Column(JSONB, nullable=False))


class SnapshotRow(Base, table=True):
    """A full snapshot of a clinic's contacts and patients, pushed in pages; complete when the
    connector says how many pages it sent and all arrived; reconciled once removals were applied."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_clinic", "clinic_id", "started_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: str = Field(max_length=64)
    started_at: datetime = _timestamp()
    pages: int = 0
    completed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    reconciled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class SnapshotSeenRow(Base, table=True):
    __tablename__ = "snapshot_seen"

    snapshot_id: uuid.UUID = Field(foreign_key="snapshots.id", primary_key=True)
    kind: str = Field(max_length=10, primary_key=True)  # contact | patient
    pims_id: str = Field(max_length=64, primary_key=True)


class SlotRow(Base, table=True):
    """A time the clinic offers for online booking, as the PIMS last sent it, with the portal's hold
    (a parent has it for a few minutes) or booking on it. Free: open, not booked, not held (or the
    hold expired), in the future."""

    __tablename__ = "booking_slots"
    __table_args__ = (Index("ix_booking_slots_clinic_start", "clinic_id", "starts_at"),)

    clinic_id: str = Field(max_length=64, primary_key=True)
    slot_id: str = Field(max_length=64, primary_key=True)
    starts_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    duration_minutes: int
    appointment_type: str | None = Field(default=None, max_length=100)
    provider: str | None = Field(default=None, max_length=100)
    open: bool = True
    version: int | None = Field(default=None, sa_column=Column(BigInteger))
    hold_id: uuid.UUID | None = None
    held_by: str | None = Field(default=None, max_length=64)  # the client holding it
    held_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    booking_id: uuid.UUID | None = None
    updated_at: datetime = _timestamp()


class BookingRow(Base, table=True):
    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_client", "clinic_id", "client_id", "created_at"),)

    id: uuid.UUID = Field(primary_key=True)
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    slot_id: str = Field(max_length=64)
    starts_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    duration_minutes: int
    appointment_type: str | None = Field(default=None, max_length=100)
    provider: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=40)
    created_at: datetime = _timestamp()
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class OutboundItemRow(Base, table=True):
    """What the portal asks of the clinic's PIMS, until its connector acknowledges or refuses it.
    `seq` is the cursor connectors pull by (taken anew from the sequence on a retry)."""

    __tablename__ = "outbound_items"
    __table_args__ = (
        Index("ix_outbound_items_clinic_status_seq", "clinic_id", "status", "seq"),
        Index("ix_outbound_items_client", "clinic_id", "client_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger, nullable=False, unique=True, server_default=text("nextval('outbound_items_seq')")
        ),
    )
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    kind: str = Field(max_length=30)
    payload: Any = Field(sa_column=Column(JSONB, nullable=False))
    status: str = Field(max_length=20)
    created_at: datetime = _timestamp()
    answered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    reason: str | None = Field(default=None, max_length=40)
    reason_text: str | None = Field(default=None, sa_column=Column(Text))
    pims_reference: str | None = Field(default=None, max_length=100)
