"""clinics, contacts, consents, inbound SMS log; outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from petportal_runtime.migrations import create_runtime_tables, drop_runtime_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()"))


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sms_number", sa.String(16), nullable=True, unique=True),
        _timestamp("updated_at"),
    )
    op.create_table(
        "contacts",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("phone", sa.String(16), nullable=True),
        _timestamp("updated_at"),
    )
    op.create_index("ix_contacts_phone", "contacts", ["clinic_id", "phone"])
    op.create_table(
        "consents",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("sms_opted_in", sa.Boolean, nullable=False),
        sa.Column("email_opted_in", sa.Boolean, nullable=False),
        sa.Column("sms_opt_out_indicator", sa.Boolean, sa.Computed("NOT sms_opted_in", persisted=True)),
        sa.Column("source", sa.String(20), nullable=False),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "source IN ('default', 'sms_keyword', 'portal', 'staff')", name="ck_consents_source"
        ),
    )
    op.create_table(
        "inbound_sms",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("keyword", sa.String(20), nullable=True),
        sa.Column("matched_clients", sa.Integer, nullable=False),
        _timestamp("received_at"),
    )
    op.create_index("ix_inbound_sms_clinic_id", "inbound_sms", ["clinic_id"])
    create_runtime_tables(op.get_bind())


def downgrade() -> None:
    drop_runtime_tables(op.get_bind())
    op.drop_table("inbound_sms")
    op.drop_table("consents")
    op.drop_table("contacts")
    op.drop_table("clinics")
