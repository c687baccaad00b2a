"""identity's tables. Base has its own registry so several services' tables can share a process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, String, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class Base(SQLModel, registry=registry()):
    pass


class StaffUserRow(Base, table=True):
    __tablename__ = "staff_users"
    __table_args__ = (UniqueConstraint("clinic_id", "email", name="uq_staff_users_clinic_email"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: str = Field(max_length=64)
    email: str = Field(max_length=254, index=True)  # lower-cased
    password_hash: str = Field(max_length=300)
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class ContactRow(Base, table=True):
    """The clinic's contact record of a client, as last published by sync."""

    __tablename__ = "contacts"

    clinic_id: str = Field(max_length=64, primary_key=True)
    client_id: str = Field(max_length=64, primary_key=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=20)
    # occurred_at of the event that wrote this row: older events never overwrite newer data.
    source_occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ParentAccount(Base, table=True):
    __tablename__ = "parent_accounts"
    __table_args__ = (UniqueConstraint("clinic_id", "client_id", name="uq_parent_accounts_client"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    created_via: str = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class ClinicRow(Base, table=True):
    __tablename__ = "clinics"

    clinic_id: str = Field(max_length=64, primary_key=True)
    name: str = Field(max_length=200)
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
