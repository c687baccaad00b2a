"""sync: clinical records (appointments, reminders, vaccinations, medications, clinic settings), the
PIMS's record versions, and deceased pets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinical_records",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_clinical_records_client", "clinical_records", ["clinic_id", "client_id"])
    op.add_column("contacts", sa.Column("version", sa.BigInteger, nullable=True))
    op.add_column("patients", sa.Column("version", sa.BigInteger, nullable=True))
    op.add_column("patients", sa.Column("deceased", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("patients", sa.Column("deceased_on", sa.Date, nullable=True))


def downgrade() -> None:
    op.drop_column("patients", "deceased_on")
    op.drop_column("patients", "deceased")
    op.drop_column("patients", "version")
    op.drop_column("contacts", "version")
    op.drop_index("ix_clinical_records_client", table_name="clinical_records")
    op.drop_table("clinical_records")
