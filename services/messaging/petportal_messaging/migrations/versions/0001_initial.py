"""clients, conversations (one active per client), messages; outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-01
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
        "clients",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column(
            "first_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'closed')", name="ck_conversations_status"),
    )
    op.create_index(
        "uq_conversations_one_active",
        "conversations",
        ["clinic_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_conversations_client", "conversations", ["clinic_id", "client_id", "created_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "conversation_id", sa.Uuid, sa.ForeignKey("conversations.id", ondelete="RESTRICT"), nullable=False
        ),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("staff_user_id", sa.String(64), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("sender IN ('staff', 'client')", name="ck_messages_sender"),
        sa.CheckConstraint("char_length(body) BETWEEN 1 AND 5000", name="ck_messages_body_length"),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "sent_at"])
    op.create_index(
        "ix_messages_unread_staff",
        "messages",
        ["conversation_id"],
        postgresql_where=sa.text("sender = 'staff' AND read_at IS NULL"),
    )
    create_runtime_tables(op.get_bind())


def downgrade() -> None:
    drop_runtime_tables(op.get_bind())
    op.drop_table("messages")
    op.drop_table("conversations")
    op.drop_table("clients")
