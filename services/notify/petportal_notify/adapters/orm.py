"""Tables of the notify database (this service's own metadata, not SQLModel's global one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


def _timestamp() -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))


class ClinicRow(Base, table=True):
    """From ClinicRegistered: the clinic's texting number identifies it on inbound SMS."""

    __tablename__ = "clinics"

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    sms_number: str | None = Field(default=None, sa_column=Column(String(16), unique=True, nullable=True))
    # For the messages it sends: reminders in its local time, its help text and phone in the footer.
    timezone: str = Field(default="UTC", sa_column=Column(String(64), nullable=False, server_default="UTC"))
    help_text: str | None = Field(default=None, sa_column=Column(String(1000), nullable=True))
    phone: str | None = Field(default=None, sa_column=Column(String(30), nullable=True))
    updated_at: datetime = Field(sa_column=_timestamp())


class ContactRow(Base, table=True):
    """From ClientUpserted: only where the client is reached (phone in E.164, email), nothing else."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_phone", "clinic_id", "phone"),)

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    client_id: str = Field(sa_column=Column(String(64), primary_key=True))
    phone: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True))
    updated_at: datetime = Field(sa_column=_timestamp())


class PatientRow(Base, table=True):
    """From PatientUpserted: the pet's name only, for reminders ("Biscuit's booster is due"), and whose
    pet it is (the client's erasure deletes it)."""

    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_client", "clinic_id", "client_id"),)

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    patient_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    # Unknown (NULL) for rows recorded before revision 0005, until the pet's next PatientUpserted.
    client_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


class DeliveryRow(Base, table=True):
    """One message to one client on one channel (domain/delivery.py: the states)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # What the dispatcher claims: due and queued, oldest first.
        Index("ix_deliveries_due", "not_before", postgresql_where=text("status = 'queued'")),
        Index("ix_deliveries_subject", "clinic_id", "subject_kind", "subject_id"),
        # One open batch of new-message notifications per client and channel.
        Index(
            "ux_deliveries_open_batch",
            "clinic_id",
            "client_id",
            "channel",
            unique=True,
            postgresql_where=text("status = 'queued' AND template = 'new_messages'"),
        ),
        Index("ix_deliveries_provider_id", "provider_id"),
        Index("ix_deliveries_sending", "lease_until", postgresql_where=text("status = 'sending'")),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    clinic_id: str = Field(sa_column=Column(String(64), nullable=False))
    client_id: str = Field(sa_column=Column(String(64), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    template: str = Field(sa_column=Column(String(40), nullable=False))
    # Template values; a sign-in code's are cleared once it is sent or given up.
    params: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False, index=True))
    not_before: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    subject_kind: str | None = Field(default=None, sa_column=Column(String(20)))
    subject_id: str | None = Field(default=None, sa_column=Column(String(64)))
    patient_id: str | None = Field(default=None, sa_column=Column(String(64)))
    reason: str | None = Field(default=None, sa_column=Column(String(200)))
    provider_id: str | None = Field(default=None, sa_column=Column(String(200)))
    created_at: datetime = Field(sa_column=_timestamp())
    updated_at: datetime = Field(sa_column=_timestamp())


class ConsentRow(Base, table=True):
    __tablename__ = "consents"

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    client_id: str = Field(sa_column=Column(String(64), primary_key=True))
    sms_opted_in: bool = Field(sa_column=Column(Boolean, nullable=False))
    email_opted_in: bool = Field(sa_column=Column(Boolean, nullable=False))
    # Derived by the database, for reporting queries; the domain derives it the same way.
    sms_opt_out_indicator: bool | None = Field(
        default=None, sa_column=Column(Boolean, Computed("NOT sms_opted_in", persisted=True))
    )
    source: str = Field(sa_column=Column(String(20), nullable=False))
    updated_at: datetime = Field(sa_column=_timestamp())


class InboundSmsRow(Base, table=True):
    """Every inbound text to a clinic number, kept so ordinary replies can reach the conversation."""

    __tablename__ = "inbound_sms"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    clinic_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    from_number: str = Field(sa_column=Column(String(32), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    keyword: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    matched_clients: int = Field(sa_column=Column(Integer, nullable=False))
    received_at: datetime = Field(sa_column=_timestamp())


class SmsStopRow(Base, table=True):
    """A number that had opted out of texts when its client was erased (domain/stops.py): only its keyed
    hash, HMAC-SHA256 under PHONE_HASH_KEY of the E.164 number in hex. A contact recorded later with the
    number starts opted out; an opt-in keyword from the number deletes the row."""

    __tablename__ = "sms_stops"

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    phone_digest: str = Field(sa_column=Column(String(64), primary_key=True))
    opted_out_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
