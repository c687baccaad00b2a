"""pets: the pets table, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from petportal_runtime.migrations import create_runtime_tables, drop_runtime_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pets",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("species", sa.String(50), nullable=False),
        sa.Column("breed", sa.String(100)),
        sa.Column("sex", sa.String(30)),
        sa.Column("date_of_birth", sa.Date()),
        sa.Column("colour", sa.String(50)),
        sa.Column("weight_kg", sa.Float()),
        sa.Column("microchip", sa.String(30)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("clinic_id", "patient_id", name="uq_pets_clinic_patient"),
    )
    op.create_index("ix_pets_clinic_client", "pets", ["clinic_id", "client_id"])
    create_runtime_tables(op.get_bind())


def downgrade() -> None:
    drop_runtime_tables(op.get_bind())
    op.drop_index("ix_pets_clinic_client", table_name="pets")
    op.drop_table("pets")
