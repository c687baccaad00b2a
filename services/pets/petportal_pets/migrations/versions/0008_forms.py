"""clinic forms: their versions (fields and JSON Schema), assignments to clients, submissions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_versions",
        sa.Column("form_id", sa.Uuid, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("fields", JSONB, nullable=False),
        sa.Column("schema", JSONB, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_form_versions_clinic", "form_versions", ["clinic_id", "form_id"])
    op.create_table(
        "form_assignments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("form_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("appointment_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submission_id", sa.Uuid, nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_form_assignments_client", "form_assignments", ["clinic_id", "client_id", "assigned_at"]
    )
    op.create_index("ix_form_assignments_clinic", "form_assignments", ["clinic_id", "status", "assigned_at"])
    op.create_table(
        "form_submissions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("assignment_id", sa.Uuid, nullable=False),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("form_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("appointment_id", sa.String(64), nullable=True),
        sa.Column("answers", JSONB, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("assignment_id", name="uq_form_submissions_assignment"),
    )
    op.create_index("ix_form_submissions_clinic", "form_submissions", ["clinic_id", "submitted_at"])


def downgrade() -> None:
    op.drop_table("form_submissions")
    op.drop_table("form_assignments")
    op.drop_table("form_versions")
