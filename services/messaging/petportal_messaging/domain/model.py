"""Conversations and messages: plain objects and the rules about them, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

MAX_BODY_LENGTH = 5000
# MessageRead carries at most this many ids (the event contract's bound).
MAX_IDS_PER_READ_EVENT = 10_000


class InvalidMessage(ValueError):
    pass


class UnknownClient(LookupError):
    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client {client_id} at this clinic")
        self.client_id = client_id


class MessageNotFound(LookupError):
    """The message is not in this caller's conversations (another parent's ids included)."""

    def __init__(self, message_id: uuid.UUID) -> None:
        super().__init__(f"no message {message_id} in this conversation")
        self.message_id = message_id


class ConversationNotFound(LookupError):
    """No such conversation at the caller's clinic (another clinic's ids included)."""

    def __init__(self, conversation_id: uuid.UUID) -> None:
        super().__init__(f"no conversation {conversation_id} at this clinic")
        self.conversation_id = conversation_id


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Sender(StrEnum):
    STAFF = "staff"
    CLIENT = "client"


def validate_body(body: str) -> str:
    """A message body: 1..5000 characters, not only whitespace. Returned unchanged otherwise."""
    if not body.strip():
        raise InvalidMessage("the message is empty")
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidMessage(f"the message is longer than {MAX_BODY_LENGTH} characters")
    return body


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Message:
    conversation_id: uuid.UUID
    sender: Sender
    body: str
    staff_user_id: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    sent_at: datetime = field(default_factory=now)
    read_at: datetime | None = None
    has_photo: bool = False  # an image is attached (re-encoded, kept by messaging)

    def __post_init__(self) -> None:
        validate_body(self.body)
        if self.sender is Sender.STAFF and not self.staff_user_id:
            raise InvalidMessage("a staff message names the staff user who sent it")
        if self.sender is Sender.CLIENT and self.staff_user_id is not None:
            raise InvalidMessage("a client message has no staff user")

    @property
    def unread_by_parent(self) -> bool:
        return self.sender is Sender.STAFF and self.read_at is None

    @property
    def position(self) -> tuple[datetime, uuid.UUID]:
        """Where the message is in its conversation: "up to this message" means up to this position."""
        return (self.sent_at, self.id)


@dataclass
class Conversation:
    clinic_id: str
    client_id: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: ConversationStatus = ConversationStatus.ACTIVE
    created_at: datetime = field(default_factory=now)
    # The latest message, or the opening when there is none yet.
    last_activity_at: datetime | None = None
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.last_activity_at is None:
            self.last_activity_at = self.created_at

    @property
    def active(self) -> bool:
        return self.status is ConversationStatus.ACTIVE

    def staff_message(self, staff_user_id: str, body: str, at: datetime | None = None) -> Message:
        if not self.active:
            raise InvalidMessage("the conversation is closed")
        return Message(
            conversation_id=self.id,
            sender=Sender.STAFF,
            body=body,
            staff_user_id=staff_user_id,
            sent_at=at or now(),
        )

    def client_message(self, body: str, at: datetime | None = None) -> Message:
        """The client's own message: unread for the clinic's staff, never for the client."""
        if not self.active:
            raise InvalidMessage("the conversation is closed")
        return Message(conversation_id=self.id, sender=Sender.CLIENT, body=body, sent_at=at or now())

    def close(self, at: datetime | None = None) -> None:
        """Closed for new messages (the next one opens a new conversation); stays readable."""
        if self.active:
            self.status = ConversationStatus.CLOSED
            self.closed_at = at or now()


@dataclass(frozen=True)
class ConversationSummary:
    """A line of the clinic's list: the conversation and its messages from the client staff have not read."""

    conversation: Conversation
    unread_by_staff: int


MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000


@dataclass(frozen=True)
class Page:
    """limit 1..MAX_PAGE_SIZE items from offset 0..MAX_OFFSET."""

    limit: int = 20
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE or not 0 <= self.offset <= MAX_OFFSET:
            raise ValueError("page out of bounds")

    def next_offset(self, fetched: int) -> int | None:
        """Given that `limit + 1` were asked for and `fetched` came back."""
        return self.offset + self.limit if fetched > self.limit else None


def chunks(ids: list[uuid.UUID], size: int = MAX_IDS_PER_READ_EVENT) -> list[list[uuid.UUID]]:
    """Read ids split so each MessageRead stays within the contract's bound."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass(frozen=True)
class Feedback:
    """What a parent thinks of the portal: a rating of 1 to 5 and, if they like, a few words."""

    clinic_id: str
    client_id: str
    rating: int
    text: str | None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=now)

    def __post_init__(self) -> None:
        if not 1 <= self.rating <= 5:
            raise InvalidMessage("the rating is 1 to 5")
        if self.text is not None:
            validate_body(self.text)
