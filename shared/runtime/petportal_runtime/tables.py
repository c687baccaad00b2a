"""The outbox and inbox tables every service's database has (created by its first migration), and the
rate-limit counters of the services that keep them in their own database."""

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

# Clients whose portal data was erased (docs/erasure.md): the inbox claim refuses every event about
# one of them that occurred before `erased_at`, so a redelivery or a replay cannot bring data back.
# Only the ids: nothing personal. Created by each service's erasure migration (and by
# create_runtime_tables for a new database).
erased_clients = Table(
    "erased_clients",
    metadata,
    Column("clinic_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("erasure_id", Uuid, nullable=False),
    PrimaryKeyConstraint("clinic_id", "client_id", name="pk_erased_clients"),
)

# Not in `metadata`: only a service that keeps its rate limits in its own database has this table,
# created by a migration of its own (petportal_runtime.migrations.create_rate_limit_table).
rate_limit_metadata = MetaData()

rate_limits = Table(
    "rate_limits",
    rate_limit_metadata,
    # petportal_runtime.ratelimit.RateLimiter's keys: namespace, SHA-256 of the identifier, the limit.
    Column("key", String(300), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_rate_limits_expires_at", "expires_at"),
)
