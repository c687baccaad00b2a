"""deliveries; clinics' timezone, help text and phone; contacts' email; patients' names

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()"))


def upgrade() -> None:
    op.add_column("clinics", sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
    op.add_column("clinics", sa.Column("help_text", sa.String(1000), nullable=True))
    op.add_column("clinics", sa.Column("phone", sa.String(30), nullable=True))
    op.add_column("contacts", sa.Column("email", sa.String(254), nullable=True))
    op.create_table(
        "patients",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("subject_kind", sa.String(20)),
        sa.Column("subject_id", sa.String(64)),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("reason", sa.String(200)),
        sa.Column("provider_id", sa.String(200)),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    op.create_index(
        "ix_deliveries_due", "deliveries", ["not_before"], postgresql_where=sa.text("status = 'queued'")
    )
    op.create_index("ix_deliveries_subject", "deliveries", ["clinic_id", "subject_kind", "subject_id"])
    op.create_index(
        "ux_deliveries_open_batch",
        "deliveries",
        ["clinic_id", "client_id", "channel"],
        unique=True,
        postgresql_where=sa.text("status = 'queued' AND template = 'new_messages'"),
    )
    op.create_index("ix_deliveries_provider_id", "deliveries", ["provider_id"])
    op.create_index(
        "ix_deliveries_sending", "deliveries", ["lease_until"], postgresql_where=sa.text("status = 'sending'")
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("patients")
    op.drop_column("contacts", "email")
    op.drop_column("clinics", "phone")
    op.drop_column("clinics", "help_text")
    op.drop_column("clinics", "timezone")
