"""sync: bookable slots, online bookings and the outbound queue connectors pull.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_slots",
        sa.Column("clinic_id", sa.String(64), primary_key=True),
        sa.Column("slot_id", sa.String(64), primary_key=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("appointment_type", sa.String(100)),
        sa.Column("provider", sa.String(100)),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger),
        sa.Column("hold_id", UUID(as_uuid=True)),
        sa.Column("held_by", sa.String(64)),
        sa.Column("held_until", sa.DateTime(timezone=True)),
        sa.Column("booking_id", UUID(as_uuid=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_booking_slots_clinic_start", "booking_slots", ["clinic_id", "starts_at"])
    op.create_table(
        "bookings",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("slot_id", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("appointment_type", sa.String(100)),
        sa.Column("provider", sa.String(100)),
        sa.Column("note", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_bookings_client", "bookings", ["clinic_id", "client_id", "created_at"])
    op.execute("CREATE SEQUENCE outbound_items_seq")
    op.create_table(
        "outbound_items",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "seq",
            sa.BigInteger,
            nullable=False,
            unique=True,
            server_default=sa.text("nextval('outbound_items_seq')"),
        ),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String(40)),
        sa.Column("reason_text", sa.Text),
        sa.Column("pims_reference", sa.String(100)),
    )
    op.create_index("ix_outbound_items_clinic_status_seq", "outbound_items", ["clinic_id", "status", "seq"])
    op.create_index("ix_outbound_items_client", "outbound_items", ["clinic_id", "client_id"])


def downgrade() -> None:
    op.drop_table("outbound_items")
    op.execute("DROP SEQUENCE outbound_items_seq")
    op.drop_table("bookings")
    op.drop_table("booking_slots")
