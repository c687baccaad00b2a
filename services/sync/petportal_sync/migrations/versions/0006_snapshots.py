"""sync: full snapshots of a clinic's contacts and patients, for the nightly reconciliation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("reconciled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_snapshots_clinic", "snapshots", ["clinic_id", "started_at"])
    op.create_table(
        "snapshot_seen",
        sa.Column(
            "snapshot_id",
            UUID(as_uuid=True),
            sa.ForeignKey("snapshots.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("pims_id", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("snapshot_seen")
    op.drop_index("ix_snapshots_clinic", table_name="snapshots")
    op.drop_table("snapshots")
