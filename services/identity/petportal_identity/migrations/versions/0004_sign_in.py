"""identity: passwordless sign-in challenges, refresh tokens; contacts looked up by email and phone

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sign_in_challenges",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("identifier_digest", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("clients", JSONB, nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("link_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _at("expires_at", nullable=False),
        _at("used_at"),
        _at("link_used_at"),
    )
    op.create_index("ix_sign_in_challenges_expires_at", "sign_in_challenges", ["expires_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.Uuid, nullable=False, index=True),
        sa.Column("person", sa.String(64), nullable=False, index=True),
        sa.Column("clients", JSONB, nullable=False),
        sa.Column("selected_clinic_id", sa.String(64), nullable=False),
        sa.Column("selected_client_id", sa.String(64), nullable=False),
        _at("expires_at", nullable=False),
        _at("used_at"),
        _at("revoked_at"),
    )
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])
    op.create_index("ix_contacts_email", "contacts", [sa.text("lower(email)")])
    op.create_index("ix_contacts_phone", "contacts", ["phone"])


def downgrade() -> None:
    op.drop_index("ix_contacts_phone", "contacts")
    op.drop_index("ix_contacts_email", "contacts")
    op.drop_table("refresh_tokens")
    op.drop_table("sign_in_challenges")
