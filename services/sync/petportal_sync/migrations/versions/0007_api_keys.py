"""sync: a clinic may hold several API keys (rotation with an overlap, revocation).

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
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(12), nullable=False),
        sa.Column("clinic_id", sa.String(64), sa.ForeignKey("clinics.clinic_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_keys_clinic", "api_keys", ["clinic_id"])
    op.execute(
        "INSERT INTO api_keys (key_hash, key_id, clinic_id, created_at) "
        "SELECT api_key_hash, left(api_key_hash, 12), clinic_id, created_at FROM clinics"
    )
    op.drop_column("clinics", "api_key_hash")


def downgrade() -> None:
    op.add_column("clinics", sa.Column("api_key_hash", sa.String(64), nullable=True, unique=True))
    op.execute(
        "UPDATE clinics SET api_key_hash = (SELECT key_hash FROM api_keys k WHERE k.clinic_id = clinics.clinic_id "
        "AND k.revoked_at IS NULL ORDER BY created_at DESC LIMIT 1)"
    )
    op.drop_index("ix_api_keys_clinic", table_name="api_keys")
    op.drop_table("api_keys")
