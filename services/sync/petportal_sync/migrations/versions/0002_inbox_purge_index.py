"""inbox: index on applied_at for the retention purge

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from petportal_runtime.migrations import create_inbox_purge_index, drop_inbox_purge_index

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_inbox_purge_index(op.get_bind())


def downgrade() -> None:
    drop_inbox_purge_index(op.get_bind())
