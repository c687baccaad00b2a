"""notify: sms_stops (the keyed hashes of opted-out numbers an erasure keeps); patients' client_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_stops",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("phone_digest", sa.String(64), primary_key=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Whose pet it is, so the client's erasure deletes its name; NULL for the rows recorded before
    # (the erasure then finds them through the client's deliveries).
    op.add_column("patients", sa.Column("client_id", sa.String(64), nullable=True))
    op.create_index("ix_patients_client", "patients", ["clinic_id", "client_id"])


def downgrade() -> None:
    op.drop_index("ix_patients_client", table_name="patients")
    op.drop_column("patients", "client_id")
    op.drop_table("sms_stops")
