"""What messaging's use cases need of storage: clients, conversations and messages, in a unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from petportal_runtime.photos import Photo
from petportal_runtime.uow import UnitOfWork

from ..domain.model import Conversation, ConversationSummary, Feedback, Message, Page, Sender


class ConversationStore(Protocol):
    async def active_conversation(self, clinic_id: str, client_id: str) -> Conversation | None: ...

    async def add_conversation(self, conversation: Conversation) -> bool:
        """Insert; False when another transaction already holds the client's active conversation."""
        ...

    async def touch_active(self, conversation_id: uuid.UUID, at: datetime) -> bool:
        """Lock the conversation and move its last activity to `at`; False if it is no longer active
        (closed meanwhile: the message belongs in a new one)."""
        ...


class MessagingStore(ConversationStore, Protocol):
    async def record_client(self, clinic_id: str, client_id: str) -> None: ...

    async def client_exists(self, clinic_id: str, client_id: str) -> bool: ...

    async def latest_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        """The active conversation, else the most recent closed one."""
        ...

    async def add_message(self, message: Message) -> None: ...

    async def add_photo(self, message_id: uuid.UUID, photo: Photo) -> None: ...

    async def add_feedback(self, feedback: Feedback) -> None: ...

    async def feedback(self, clinic_id: str, page: Page) -> list[Feedback]:
        """The clinic's feedback, newest first, `page.limit + 1` at most from `page.offset`."""
        ...

    async def photo(self, message_id: uuid.UUID, *, thumbnail: bool) -> tuple[bytes, str] | None:
        """The JPEG (or its thumbnail) and its ETag; None when the message has no photo."""
        ...

    async def messages(self, conversation_id: uuid.UUID) -> list[Message]:
        """The conversation's messages, oldest first."""
        ...

    async def client_message(self, clinic_id: str, client_id: str, message_id: uuid.UUID) -> Message | None:
        """The message if it is in one of this client's conversations at this clinic, else None."""
        ...

    async def mark_read_up_to(
        self,
        *,
        clinic_id: str,
        client_id: str,
        sender: Sender,
        up_to: Message,
        at: datetime,
        conversation_id: uuid.UUID | None = None,
    ) -> list[Message]:
        """Mark read the unread messages of `sender` in this client's conversations (or only in
        `conversation_id`) at or before `up_to`'s position; exactly the messages this call changed."""
        ...

    async def clinic_conversation(self, clinic_id: str, conversation_id: uuid.UUID) -> Conversation | None:
        """The conversation if it is this clinic's, else None."""
        ...

    async def list_conversations(self, clinic_id: str, page: Page) -> list[ConversationSummary]:
        """The clinic's conversations, newest activity first, `page.limit + 1` at most from `page.offset`."""
        ...

    async def messages_page(self, conversation_id: uuid.UUID, page: Page) -> list[Message]:
        """The conversation's messages newest first, `page.limit + 1` at most from `page.offset`."""
        ...

    async def unread_by_staff(self, conversation_id: uuid.UUID) -> int: ...

    async def close_conversation(self, conversation: Conversation) -> Conversation:
        """Store the closing of a conversation the caller has closed; the conversation as stored (its
        `closed_at` is never earlier than its latest message)."""
        ...

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete everything messaging holds about the client: their `clients` row, their
        conversations with every message in them (staff's too) and those messages' photos, and their
        feedback; the clinic's other rows stay. How many rows were deleted."""
        ...


class MessagingRepositories(Protocol):
    @property
    def messaging(self) -> MessagingStore: ...


MessagingUnitOfWork = UnitOfWork[MessagingRepositories]
