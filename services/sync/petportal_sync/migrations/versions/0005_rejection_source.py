"""sync: each rejected record remembers the shape it came in (canonical, or a PIMS's own), to replay it.

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
    op.add_column(
        "rejected_records", sa.Column("source", sa.String(20), nullable=False, server_default="canonical")
    )


def downgrade() -> None:
    op.drop_column("rejected_records", "source")
