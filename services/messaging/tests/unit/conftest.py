"""messaging's repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_messaging.domain.model import (
    Conversation,
    ConversationStatus,
    ConversationSummary,
    Feedback,
    Message,
    Page,
    Sender,
)
from petportal_runtime.photos import Photo


@dataclass
class InMemoryMessaging:
    clients: list[tuple[str, str]] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    stored_messages: list[Message] = field(default_factory=list)
    stored_feedback: list[Feedback] = field(default_factory=list)
    photos: dict[uuid.UUID, Photo] = field(default_factory=dict)

    async def add_feedback(self, feedback: Feedback) -> None:
        self.stored_feedback.append(feedback)

    async def feedback(self, clinic_id: str, page: Page) -> list[Feedback]:
        found = [f for f in reversed(self.stored_feedback) if f.clinic_id == clinic_id]
        return found[page.offset : page.offset + page.limit + 1]

    async def add_photo(self, message_id: uuid.UUID, photo: Photo) -> None:
        self.photos[message_id] = photo

    async def photo(self, message_id: uuid.UUID, *, thumbnail: bool) -> tuple[bytes, str] | None:
        found = self.photos.get(message_id)
        return ((found.thumbnail if thumbnail else found.jpeg), found.etag) if found else None

    async def record_client(self, clinic_id: str, client_id: str) -> None:
        if (clinic_id, client_id) not in self.clients:
            self.clients.append((clinic_id, client_id))

    async def client_exists(self, clinic_id: str, client_id: str) -> bool:
        return (clinic_id, client_id) in self.clients

    def _of(self, clinic_id: str, client_id: str) -> list[Conversation]:
        return [c for c in self.conversations if (c.clinic_id, c.client_id) == (clinic_id, client_id)]

    async def active_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        active = [c for c in self._of(clinic_id, client_id) if c.status is ConversationStatus.ACTIVE]
        return active[0] if active else None

    async def latest_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        ordered = sorted(
            self._of(clinic_id, client_id),
            key=lambda c: (c.status is ConversationStatus.ACTIVE, c.created_at),
            reverse=True,
        )
        return ordered[0] if ordered else None

    async def add_conversation(self, conversation: Conversation) -> bool:
        if await self.active_conversation(conversation.clinic_id, conversation.client_id):
            return False
        self.conversations.append(conversation)
        return True

    async def touch_active(self, conversation_id: uuid.UUID, at: datetime) -> bool:
        conversation = next(c for c in self.conversations if c.id == conversation_id)
        if not conversation.active:
            return False
        conversation.last_activity_at = max(conversation.last_activity_at or at, at)
        return True

    async def clinic_conversation(self, clinic_id: str, conversation_id: uuid.UUID) -> Conversation | None:
        return next(
            (c for c in self.conversations if (c.id, c.clinic_id) == (conversation_id, clinic_id)), None
        )

    async def unread_by_staff(self, conversation_id: uuid.UUID) -> int:
        return sum(
            1
            for m in self.stored_messages
            if m.conversation_id == conversation_id and m.sender is Sender.CLIENT and m.read_at is None
        )

    async def list_conversations(self, clinic_id: str, page: Page) -> list[ConversationSummary]:
        ordered = sorted(
            (c for c in self.conversations if c.clinic_id == clinic_id),
            key=lambda c: (c.last_activity_at, c.id),
            reverse=True,
        )
        return [
            ConversationSummary(c, await self.unread_by_staff(c.id))
            for c in ordered[page.offset : page.offset + page.limit + 1]
        ]

    async def messages_page(self, conversation_id: uuid.UUID, page: Page) -> list[Message]:
        newest_first = list(reversed(await self.messages(conversation_id)))
        return newest_first[page.offset : page.offset + page.limit + 1]

    async def close_conversation(self, conversation: Conversation) -> Conversation:
        stored = next(c for c in self.conversations if c.id == conversation.id)
        stored.status = conversation.status
        if conversation.closed_at is not None and stored.last_activity_at is not None:
            stored.closed_at = max(conversation.closed_at, stored.last_activity_at)
        return stored

    async def add_message(self, message: Message) -> None:
        self.stored_messages.append(message)

    async def messages(self, conversation_id: uuid.UUID) -> list[Message]:
        mine = [m for m in self.stored_messages if m.conversation_id == conversation_id]
        return sorted(mine, key=lambda m: (m.sent_at, m.id))

    async def client_message(self, clinic_id: str, client_id: str, message_id: uuid.UUID) -> Message | None:
        mine = {c.id for c in self._of(clinic_id, client_id)}
        return next(
            (m for m in self.stored_messages if m.id == message_id and m.conversation_id in mine), None
        )

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
        scope = {c.id for c in self._of(clinic_id, client_id) if conversation_id in (None, c.id)}
        changed = []
        for i, m in enumerate(self.stored_messages):
            if (
                m.conversation_id in scope
                and m.sender is sender
                and m.read_at is None
                and m.position <= up_to.position
            ):
                self.stored_messages[i] = replace(m, read_at=at)
                changed.append(self.stored_messages[i])
        return sorted(changed, key=lambda m: m.position)

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """The client's row, conversations, their messages and photos, and the client's feedback."""
        key = (clinic_id, client_id)
        theirs = {c.id for c in self._of(clinic_id, client_id)}
        messages = {m.id for m in self.stored_messages if m.conversation_id in theirs}
        photos = messages & set(self.photos)
        feedback = [f for f in self.stored_feedback if (f.clinic_id, f.client_id) == key]
        clients = [c for c in self.clients if c == key]
        self.clients[:] = [c for c in self.clients if c != key]
        self.conversations[:] = [c for c in self.conversations if c.id not in theirs]
        self.stored_messages[:] = [m for m in self.stored_messages if m.id not in messages]
        self.stored_feedback[:] = [f for f in self.stored_feedback if (f.clinic_id, f.client_id) != key]
        for message_id in photos:
            del self.photos[message_id]
        return len(clients) + len(theirs) + len(messages) + len(photos) + len(feedback)


@dataclass
class InMemoryRepositories:
    messaging: InMemoryMessaging = field(default_factory=InMemoryMessaging)


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
