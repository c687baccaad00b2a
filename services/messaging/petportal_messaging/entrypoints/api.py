"""HTTP models: what the API accepts and returns (never ORM rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from petportal_runtime.text import Text

from ..domain.model import (
    MAX_BODY_LENGTH,
    ConversationStatus,
    ConversationSummary,
    InvalidMessage,
    Message,
    Sender,
    validate_body,
)


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[Text, Field(min_length=1, max_length=MAX_BODY_LENGTH)]

    @field_validator("body")
    @classmethod
    def _not_blank(cls, body: str) -> str:
        try:
            return validate_body(body)
        except InvalidMessage as exc:
            raise ValueError(str(exc)) from exc


class MessageSent(BaseModel):
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    sent_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageSent:
        return cls(message_id=message.id, conversation_id=message.conversation_id, sent_at=message.sent_at)


class MessagePublic(BaseModel):
    message_id: uuid.UUID
    sender: Sender
    body: str
    sent_at: datetime
    read_at: datetime | None
    has_photo: bool = Field(
        default=False,
        description="a photo is attached: GET …/messages/{message_id}/photo (?size=thumbnail)",
    )

    @classmethod
    def of(cls, message: Message) -> MessagePublic:
        return cls(
            message_id=message.id,
            sender=message.sender,
            body=message.body,
            sent_at=message.sent_at,
            read_at=message.read_at,
            has_photo=message.has_photo,
        )


class ConversationPublic(BaseModel):
    conversation_id: uuid.UUID | None
    messages: list[MessagePublic]


class ReadUpTo(BaseModel):
    """Everything up to and including this message has been read."""

    model_config = ConfigDict(extra="forbid")

    up_to: uuid.UUID


class ReadReceipt(BaseModel):
    """The messages this request marked read (none when they already were)."""

    message_ids: list[uuid.UUID]
    read_at: datetime | None


class ConversationLine(BaseModel):
    """A conversation as the clinic sees it in its list."""

    conversation_id: uuid.UUID
    client_id: str
    status: ConversationStatus
    created_at: datetime
    last_activity_at: datetime
    closed_at: datetime | None
    unread_count: int = Field(description="messages from the client that staff have not read")

    @classmethod
    def of(cls, summary: ConversationSummary) -> ConversationLine:
        c = summary.conversation
        return cls(
            conversation_id=c.id,
            client_id=c.client_id,
            status=c.status,
            created_at=c.created_at,
            last_activity_at=c.last_activity_at or c.created_at,
            closed_at=c.closed_at,
            unread_count=summary.unread_by_staff,
        )


class ConversationList(BaseModel):
    conversations: list[ConversationLine]
    next_offset: int | None = Field(description="the offset of the next page; null on the last one")


class ConversationDetail(ConversationLine):
    messages: list[MessagePublic] = Field(description="newest first")
    next_offset: int | None = Field(
        description="the offset of the next page of older messages; null on the last one"
    )


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: StrictInt = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    text: Annotated[Text | None, Field(max_length=2000)] = None


class FeedbackPublic(BaseModel):
    feedback_id: uuid.UUID
    client_id: str
    rating: int
    text: str | None
    created_at: datetime


class FeedbackList(BaseModel):
    feedback: list[FeedbackPublic]
    next_offset: int | None
