"""identity: erased_clients, the tombstones that keep an erased client's old events from being applied.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from petportal_runtime.migrations import create_erased_clients_table, drop_erased_clients_table

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_erased_clients_table(op.get_bind())


def downgrade() -> None:
    drop_erased_clients_table(op.get_bind())
