"""pets: clinics and their settings, the pets' clinical records, deceased and removed pets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pets", sa.Column("deceased_on", sa.Date(), nullable=True))
    op.add_column("pets", sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "clinics",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("pims", sa.String(20), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("settings", JSONB),
        sa.Column("registered_at", sa.DateTime(timezone=True)),
        sa.Column("settings_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "pet_records",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pet_records_client", "pet_records", ["clinic_id", "client_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_pet_records_client", table_name="pet_records")
    op.drop_table("pet_records")
    op.drop_table("clinics")
    op.drop_column("pets", "gone_at")
    op.drop_column("pets", "deceased_on")
