"""appointment requests: when the parent saw the answer; prescription refill requests

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("appointment_requests", sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "refill_requests",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("prescription_id", sa.String(64), nullable=False),
        sa.Column("medication", sa.String(200), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("clinic_note", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_refill_requests_client", "refill_requests", ["clinic_id", "client_id", "created_at"])
    op.create_index("ix_refill_requests_clinic", "refill_requests", ["clinic_id", "status", "created_at"])
    # One pending request per prescription (a prescription is keyed by its clinic and PIMS id).
    op.create_index(
        "uq_refill_requests_pending",
        "refill_requests",
        ["clinic_id", "prescription_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("refill_requests")
    op.drop_column("appointment_requests", "seen_at")
