"""Tables of the messaging database (this service's own metadata, not SQLModel's global one)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class ClientRow(Base, table=True):
    """Clients known from ClientUpserted: ids only, no contact details."""

    __tablename__ = "clients"

    clinic_id: str = Field(sa_column=Column(String(64), primary_key=True))
    client_id: str = Field(sa_column=Column(String(64), primary_key=True))
    first_seen_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )


class ConversationRow(Base, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'closed')", name="ck_conversations_status"),
        # At most one active conversation per client of a clinic; closed ones stay for history.
        Index(
            "uq_conversations_one_active",
            "clinic_id",
            "client_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_conversations_client", "clinic_id", "client_id", "created_at"),
        Index(
            "ix_conversations_clinic_activity", "clinic_id", text("last_activity_at DESC"), text("id DESC")
        ),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    clinic_id: str = Field(sa_column=Column(String(64), nullable=False))
    client_id: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The latest message (or the opening): the clinic's list is newest activity first.
    last_activity_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class MessageRow(Base, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("sender IN ('staff', 'client')", name="ck_messages_sender"),
        CheckConstraint("char_length(body) BETWEEN 1 AND 5000", name="ck_messages_body_length"),
        Index("ix_messages_conversation", "conversation_id", "sent_at"),
        Index(
            "ix_messages_unread_staff",
            "conversation_id",
            postgresql_where=text("sender = 'staff' AND read_at IS NULL"),
        ),
        Index(
            "ix_messages_unread_client",
            "conversation_id",
            postgresql_where=text("sender = 'client' AND read_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    conversation_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("conversations.id", ondelete="RESTRICT"), nullable=False)
    )
    sender: str = Field(sa_column=Column(String(16), nullable=False))
    staff_user_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    body: str = Field(sa_column=Column(Text, nullable=False))
    sent_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    has_photo: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))


class MessagePhotoRow(Base, table=True):
    """The image attached to a message, as the portal re-encoded it (no EXIF), and its thumbnail."""

    __tablename__ = "message_photos"

    message_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    )
    jpeg: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    thumbnail: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    etag: str = Field(sa_column=Column(String(32), nullable=False))
    width: int = Field(sa_column=Column(Integer, nullable=False))
    height: int = Field(sa_column=Column(Integer, nullable=False))


class FeedbackRow(Base, table=True):
    """A parent's rating and words about the portal, for their clinic."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        Index("ix_feedback_clinic", "clinic_id", "created_at"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    clinic_id: str = Field(sa_column=Column(String(64), nullable=False))
    client_id: str = Field(sa_column=Column(String(64), nullable=False))
    rating: int = Field(sa_column=Column(SmallInteger, nullable=False))
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
