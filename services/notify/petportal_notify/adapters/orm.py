"""Tables of the notify database (this service's own metadata, not SQLModel's global one)."""

from __future__ import annotations

from datetime import datetime

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
    updated_at: datetime = Field(sa_column=_timestamp())


class ContactRow(Base, table=True):
    """From ClientUpserted: only the phone (E.164), nothing else about the client."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_phone", "clinic_id", "phone"),)

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    client_id: str = Field(sa_column=Column(String(64), primary_key=True))
    phone: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
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
