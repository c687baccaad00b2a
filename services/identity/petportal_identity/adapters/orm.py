"""identity's tables. Base has its own registry so several services' tables can share a process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
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


class SignInChallengeRow(Base, table=True):
    """One passwordless sign-in request: digests only (identifier, code, link), who it may sign in."""

    __tablename__ = "sign_in_challenges"

    id: uuid.UUID = Field(primary_key=True)
    identifier_digest: str = Field(max_length=64, index=True)
    kind: str = Field(sa_column=Column(String(10), nullable=False))
    clients: list[dict[str, str]] = Field(sa_column=Column(JSONB, nullable=False))
    code_digest: str = Field(max_length=64)
    link_digest: str = Field(max_length=64, unique=True)
    attempts: int = Field(default=0)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    link_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # A reminder link's: the identifier on the contact record, pre-filled once the link is spent.
    prefill: str | None = Field(default=None, max_length=254)
    # "sign_in", or "erasure": the fresh code that confirms an erasure (it signs nobody in).
    purpose: str = Field(
        default="sign_in", sa_column=Column(String(10), nullable=False, server_default="sign_in")
    )


class RefreshTokenRow(Base, table=True):
    """A refresh token by digest; a family is every token rotated from one sign-in."""

    __tablename__ = "refresh_tokens"

    digest: str = Field(max_length=64, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    person: str = Field(max_length=64, index=True)
    clients: list[dict[str, str]] = Field(sa_column=Column(JSONB, nullable=False))
    selected_clinic_id: str = Field(max_length=64)
    selected_client_id: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ErasureRow(Base, table=True):
    """A parent's erasure request (docs/erasure.md): asked again until every service confirmed."""

    __tablename__ = "erasures"
    __table_args__ = (
        Index("ix_erasures_pending", "last_requested_at", postgresql_where=text("completed_at IS NULL")),
    )

    id: uuid.UUID = Field(primary_key=True)
    requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ErasureConfirmationRow(Base, table=True):
    """One service's confirmation for one client of an erasure (ids only: nothing personal)."""

    __tablename__ = "erasure_confirmations"
    __table_args__ = (
        PrimaryKeyConstraint(
            "erasure_id", "clinic_id", "client_id", "service", name="pk_erasure_confirmations"
        ),
        Index("ix_erasure_confirmations_clinic", "clinic_id"),
    )

    erasure_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("erasures.id", ondelete="CASCADE"), nullable=False)
    )
    clinic_id: str = Field(sa_column=Column(String(64), nullable=False))
    client_id: str = Field(sa_column=Column(String(64), nullable=False))
    service: str = Field(sa_column=Column(String(40), nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
