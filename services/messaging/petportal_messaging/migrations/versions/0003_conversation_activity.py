"""conversations: last activity and closing time, for the clinic's list; index of unread client messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("conversations", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE conversations c SET last_activity_at = GREATEST(c.created_at, "
        "(SELECT max(m.sent_at) FROM messages m WHERE m.conversation_id = c.id))"
    )
    op.alter_column("conversations", "last_activity_at", nullable=False)
    op.create_index(
        "ix_conversations_clinic_activity",
        "conversations",
        ["clinic_id", sa.text("last_activity_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_messages_unread_client",
        "messages",
        ["conversation_id"],
        postgresql_where=sa.text("sender = 'client' AND read_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_unread_client", table_name="messages")
    op.drop_index("ix_conversations_clinic_activity", table_name="conversations")
    op.drop_column("conversations", "closed_at")
    op.drop_column("conversations", "last_activity_at")
