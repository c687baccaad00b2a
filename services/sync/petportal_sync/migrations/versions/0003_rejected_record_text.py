"""sync: rejected records are kept as JSON text, which can hold what JSONB cannot (NUL, NaN).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE rejected_records ALTER COLUMN raw TYPE text USING raw::text")


def downgrade() -> None:
    # Rows that JSONB cannot hold (an escaped NUL or lone surrogate, NaN) become a JSON string.
    op.execute(
        """
        ALTER TABLE rejected_records ALTER COLUMN raw TYPE jsonb USING (
            CASE WHEN raw ~ '(\\\\u0000|\\\\ud[89a-f]|NaN|Infinity)' THEN to_jsonb(raw) ELSE raw::jsonb END
        )
        """
    )
