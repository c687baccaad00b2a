"""sync: clinics, contacts, patients, programs, enrolments, rejected records, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from petportal_runtime.migrations import create_runtime_tables, drop_runtime_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("pims", sa.String(20), nullable=False),
        sa.Column("sms_number", sa.String(20)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        _timestamp("created_at"),
    )
    op.create_table(
        "contacts",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(20)),
        _timestamp("updated_at"),
    )
    op.create_table(
        "patients",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("species", sa.String(50), nullable=False),
        sa.Column("breed", sa.String(100)),
        sa.Column("sex", sa.String(30)),
        sa.Column("date_of_birth", sa.Date()),
        sa.Column("colour", sa.String(50)),
        sa.Column("weight_kg", sa.Float()),
        sa.Column("microchip", sa.String(30)),
        _timestamp("updated_at"),
    )
    op.create_index("ix_patients_client", "patients", ["clinic_id", "client_id"])
    op.create_table(
        "programs",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("call_to_action", sa.String(100), nullable=False),
        sa.Column("offered", sa.Boolean(), nullable=False),
        _timestamp("updated_at"),
    )
    op.create_table(
        "enrolments",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("program_code", sa.String(40), primary_key=True),
        _timestamp("enrolled_at"),
    )
    op.create_table(
        "rejected_records",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        _timestamp("received_at"),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(50)),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.Column("errors", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_rejected_records_clinic_received", "rejected_records", ["clinic_id", "received_at"])
    create_runtime_tables(op.get_bind())


def downgrade() -> None:
    drop_runtime_tables(op.get_bind())
    for table in ("rejected_records", "enrolments", "programs", "patients", "contacts", "clinics"):
        op.drop_table(table)
