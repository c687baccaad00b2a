"""identity: staff users, contacts, parent accounts, clinics, outbox and inbox.

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
        "staff_users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("clinic_id", "email", name="uq_staff_users_clinic_email"),
    )
    op.create_index("ix_staff_users_email", "staff_users", ["email"])
    op.create_table(
        "contacts",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(20)),
        sa.Column("source_occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "parent_accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("created_via", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("clinic_id", "client_id", name="uq_parent_accounts_client"),
        sa.CheckConstraint(
            "created_via IN ('reminder', 'sign_in', 'dev')", name="ck_parent_accounts_created_via"
        ),
    )
    op.create_table(
        "clinics",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_runtime_tables(op.get_bind())


def downgrade() -> None:
    drop_runtime_tables(op.get_bind())
    op.drop_table("clinics")
    op.drop_table("parent_accounts")
    op.drop_table("contacts")
    op.drop_index("ix_staff_users_email", table_name="staff_users")
    op.drop_table("staff_users")
