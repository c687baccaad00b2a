"""The outbox and inbox tables every service's database has (created by its first migration)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
    func,
)

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    # Relayed in id order, which is commit order closely enough for per-key ordering: rows of one
    # key are written by one transaction after another.
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("traceparent", String(100)),
    Column("tracestate", String(500)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_outbox_unpublished", "id", postgresql_where="published_at IS NULL"),
    Index("ix_outbox_published_at", "published_at"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(100), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    Index("ix_inbox_applied_at", "applied_at"),  # the retention purge
)
