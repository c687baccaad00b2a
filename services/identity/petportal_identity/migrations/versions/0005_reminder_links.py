"""sign-in challenges: what a used reminder link pre-fills (the identifier on the contact record)

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
    op.add_column("sign_in_challenges", sa.Column("prefill", sa.String(254), nullable=True))


def downgrade() -> None:
    op.drop_column("sign_in_challenges", "prefill")
