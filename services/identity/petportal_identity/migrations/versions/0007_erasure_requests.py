"""identity: erasure requests and the services' confirmations; a challenge's purpose (sign-in or
confirming an erasure).

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
    op.add_column(
        "sign_in_challenges",
        sa.Column("purpose", sa.String(10), nullable=False, server_default="sign_in"),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_erasures_pending",
        "erasures",
        ["last_requested_at"],
        postgresql_where=sa.text("completed_at IS NULL"),
    )
    op.create_table(
        "erasure_confirmations",
        sa.Column("erasure_id", sa.Uuid(), sa.ForeignKey("erasures.id", ondelete="CASCADE"), nullable=False),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "erasure_id", "clinic_id", "client_id", "service", name="pk_erasure_confirmations"
        ),
    )
    op.create_index("ix_erasure_confirmations_clinic", "erasure_confirmations", ["clinic_id"])


def downgrade() -> None:
    op.drop_table("erasure_confirmations")
    op.drop_table("erasures")
    op.drop_column("sign_in_challenges", "purpose")
