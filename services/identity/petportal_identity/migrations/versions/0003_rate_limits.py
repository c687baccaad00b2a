"""identity: rate_limits, the staff sign-in counters every replica shares (RATE_LIMIT_STORAGE_URL=postgresql).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from petportal_runtime.migrations import create_rate_limit_table, drop_rate_limit_table

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_rate_limit_table(op.get_bind())


def downgrade() -> None:
    drop_rate_limit_table(op.get_bind())
