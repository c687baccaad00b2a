"""Messaging use cases. Each runs inside the caller's unit of work (one transaction)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime import outbox
from petportal_schemas import Envelope, MessageRead, MessageReceived

from ..adapters.repository import MessagingRepository
from ..domain.model import Conversation, Message, UnknownClient, chunks, now

PRODUCER = "messaging"
# Re-reads after losing the race for the one active conversation; one is enough in practice.
_OPEN_ATTEMPTS = 3


class ConversationStore(Protocol):
    async def active_conversation(self, clinic_id: str, client_id: str) -> Conversation | None: ...

    async def add_conversation(self, conversation: Conversation) -> bool: ...


@dataclass(frozen=True)
class ConversationView:
    conversation_id: uuid.UUID | None
    messages: list[Message]


async def record_client(session: AsyncSession, clinic_id: str, client_id: str) -> None:
    await MessagingRepository(session).record_client(clinic_id, client_id)


async def get_or_open_conversation(repo: ConversationStore, clinic_id: str, client_id: str) -> Conversation:
    """The client's active conversation, opened if there is none.

    Two concurrent senders may both find none; the partial unique index lets one insert win and the
    other re-reads the winner's conversation.
    """
    for _ in range(_OPEN_ATTEMPTS):
        existing = await repo.active_conversation(clinic_id, client_id)
        if existing is not None:
            return existing
        conversation = Conversation(clinic_id=clinic_id, client_id=client_id)
        if await repo.add_conversation(conversation):
            return conversation
    raise RuntimeError("could not open a conversation")  # pragma: no cover - closed in a tight loop


async def send_staff_message(
    session: AsyncSession, *, clinic_id: str, client_id: str, staff_user_id: str, body: str
) -> Message:
    repo = MessagingRepository(session)
    if not await repo.client_exists(clinic_id, client_id):
        raise UnknownClient(client_id)
    conversation = await get_or_open_conversation(repo, clinic_id, client_id)
    message = conversation.staff_message(staff_user_id, body)
    await repo.add_message(message)
    event = MessageReceived(conversation_id=conversation.id, message_id=message.id, sent_at=message.sent_at)
    await outbox.add_event(
        session, Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER)
    )
    return message


async def staff_conversation(session: AsyncSession, *, clinic_id: str, client_id: str) -> ConversationView:
    repo = MessagingRepository(session)
    if not await repo.client_exists(clinic_id, client_id):
        raise UnknownClient(client_id)
    conversation = await repo.latest_conversation(clinic_id, client_id)
    if conversation is None:
        return ConversationView(None, [])
    return ConversationView(conversation.id, await repo.messages(conversation.id))


async def read_conversation(session: AsyncSession, *, clinic_id: str, client_id: str) -> ConversationView:
    """The parent's active conversation; its unread staff messages become read, with one MessageRead."""
    repo = MessagingRepository(session)
    conversation = await repo.active_conversation(clinic_id, client_id)
    if conversation is None:
        return ConversationView(None, [])
    read_at = now()
    read_ids = await repo.mark_staff_messages_read(conversation.id, read_at)
    for ids in chunks(read_ids):
        event = MessageRead(conversation_id=conversation.id, message_ids=ids, read_at=read_at)
        await outbox.add_event(
            session, Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER)
        )
    return ConversationView(conversation.id, await repo.messages(conversation.id))
