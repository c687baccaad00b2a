"""Messaging use cases. Each runs in the unit of work it is given (one transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from petportal_runtime.erasure import erase
from petportal_runtime.photos import Photo
from petportal_schemas import (
    ClientErasureRequested,
    ClientMessageSent,
    Envelope,
    MessageRead,
    MessageReceived,
    SmsReceived,
)

from ..domain.model import (
    Conversation,
    ConversationNotFound,
    ConversationSummary,
    Feedback,
    Message,
    MessageNotFound,
    Page,
    Sender,
    UnknownClient,
    chunks,
    now,
)
from .unit_of_work import ConversationStore, MessagingStore, MessagingUnitOfWork

__all__ = [
    "CONSUMER",
    "PRODUCER",
    "ConversationPage",
    "ConversationStore",
    "ConversationView",
    "ConversationsPage",
    "clinic_conversation",
    "clinic_conversations",
    "close_conversation",
    "erase_client",
    "get_or_open_conversation",
    "parent_conversation",
    "parent_reads_up_to",
    "record_client",
    "send_client_message",
    "send_staff_message",
    "staff_conversation",
    "staff_reads_up_to",
]

PRODUCER = "messaging"
CONSUMER = "messaging"
# Re-reads after losing the race for the one active conversation; one is enough in practice.
_OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class ConversationView:
    conversation_id: uuid.UUID | None
    messages: list[Message]


async def record_client(uow: MessagingUnitOfWork, envelope: Envelope) -> None:
    """The client of a ClientUpserted can now be messaged (once per event). Only the ids are kept."""
    if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
        return
    async with uow:
        if await uow.claim(CONSUMER, envelope):
            await uow.repositories.messaging.record_client(envelope.clinic_id, envelope.client_id)


async def erase_client(uow: MessagingUnitOfWork, envelope: Envelope, event: ClientErasureRequested) -> bool:
    """Erase everything messaging holds about the client and confirm with ClientDataErased, in one
    transaction (their MessageReceived, ClientMessageSent and MessageRead leave the outbox too, relayed
    or not); older events about the client are refused from then on. False if already applied."""
    return await erase(
        uow,
        CONSUMER,
        envelope,
        event,
        lambda clinic_id, client_id: uow.repositories.messaging.erase_client(clinic_id, client_id),
    )


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


async def _append(
    repo: MessagingStore, clinic_id: str, client_id: str, write: Callable[[Conversation], Message]
) -> Message:
    """Append a message to the client's active conversation, opened if there is none. Locking the
    conversation first means a close that committed meanwhile sends the message to a new one."""
    for _ in range(_OPEN_ATTEMPTS):
        conversation = await get_or_open_conversation(repo, clinic_id, client_id)
        message = write(conversation)
        if await repo.touch_active(conversation.id, message.sent_at):
            await repo.add_message(message)
            return message
    raise RuntimeError("the conversation kept closing")  # pragma: no cover - closed in a tight loop


def _with_photo(message: Message, photo: Photo | None) -> Message:
    return replace(message, has_photo=True) if photo is not None else message


async def send_staff_message(
    uow: MessagingUnitOfWork,
    *,
    clinic_id: str,
    client_id: str,
    staff_user_id: str,
    body: str,
    photo: Photo | None = None,
) -> Message:
    """A staff message (with a photo, already re-encoded) → MessageReceived, unread for the parent."""
    async with uow:
        repo = uow.repositories.messaging
        if not await repo.client_exists(clinic_id, client_id):
            raise UnknownClient(client_id)
        message = await _append(
            repo, clinic_id, client_id, lambda c: _with_photo(c.staff_message(staff_user_id, body), photo)
        )
        if photo is not None:
            await repo.add_photo(message.id, photo)
        event = MessageReceived(
            conversation_id=message.conversation_id, message_id=message.id, sent_at=message.sent_at
        )
        await uow.publish(Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER))
    return message


async def send_client_message(
    uow: MessagingUnitOfWork, *, clinic_id: str, client_id: str, body: str, photo: Photo | None = None
) -> Message:
    """The parent replies in the portal (with a photo, already re-encoded): appended to their active
    conversation (opened if there is none). Publishes ClientMessageSent, never MessageReceived: it is
    not unread for the parent."""
    async with uow:
        repo = uow.repositories.messaging
        if not await repo.client_exists(clinic_id, client_id):
            raise UnknownClient(client_id)
        message = await _append(
            repo, clinic_id, client_id, lambda c: _with_photo(c.client_message(body), photo)
        )
        if photo is not None:
            await repo.add_photo(message.id, photo)
        event = ClientMessageSent(
            conversation_id=message.conversation_id, message_id=message.id, sent_at=message.sent_at
        )
        await uow.publish(Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER))
    return message


async def receive_client_text(
    uow: MessagingUnitOfWork, envelope: Envelope, event: SmsReceived
) -> Message | None:
    """The client texted the clinic (notify matched their number): the text joins their active
    conversation (opened if there is none) as their message, once per event, unread for staff."""
    if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
        return None
    clinic_id, client_id = envelope.clinic_id, envelope.client_id
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return None
        repo = uow.repositories.messaging
        # notify only matches numbers of clients sync published, so the client is known (or about to be).
        await repo.record_client(clinic_id, client_id)
        message = await _append(repo, clinic_id, client_id, lambda c: c.client_message(event.body))
        sent = ClientMessageSent(
            conversation_id=message.conversation_id, message_id=message.id, sent_at=message.sent_at
        )
        await uow.publish(Envelope.wrap(sent, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER))
    return message


async def staff_conversation(uow: MessagingUnitOfWork, *, clinic_id: str, client_id: str) -> ConversationView:
    async with uow:
        repo = uow.repositories.messaging
        if not await repo.client_exists(clinic_id, client_id):
            raise UnknownClient(client_id)
        conversation = await repo.latest_conversation(clinic_id, client_id)
        if conversation is None:
            return ConversationView(None, [])
        return ConversationView(conversation.id, await repo.messages(conversation.id))


async def parent_conversation(
    uow: MessagingUnitOfWork, *, clinic_id: str, client_id: str
) -> ConversationView:
    """The parent's active conversation, else their latest closed one. Reading it changes nothing."""
    async with uow:
        repo = uow.repositories.messaging
        conversation = await repo.latest_conversation(clinic_id, client_id)
        if conversation is None:
            return ConversationView(None, [])
        return ConversationView(conversation.id, await repo.messages(conversation.id))


async def parent_reads_up_to(
    uow: MessagingUnitOfWork, *, clinic_id: str, client_id: str, up_to: uuid.UUID
) -> list[Message]:
    """The parent has read their conversations up to and including message `up_to`: each unread staff
    message at or before it becomes read, once, with one MessageRead per conversation (and chunk of
    ids). A message that is not this parent's is not found; a repeat changes and publishes nothing."""
    async with uow:
        repo = uow.repositories.messaging
        target = await repo.client_message(clinic_id, client_id, up_to)
        if target is None:
            raise MessageNotFound(up_to)
        read_at = now()
        read = await repo.mark_read_up_to(
            clinic_id=clinic_id, client_id=client_id, sender=Sender.STAFF, up_to=target, at=read_at
        )
        by_conversation: dict[uuid.UUID, list[uuid.UUID]] = {}
        for message in read:
            by_conversation.setdefault(message.conversation_id, []).append(message.id)
        for conversation_id, ids in by_conversation.items():
            for part in chunks(sorted(ids)):
                event = MessageRead(conversation_id=conversation_id, message_ids=part, read_at=read_at)
                await uow.publish(
                    Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=PRODUCER)
                )
        return read


# --- the clinic's side: its conversations, one conversation, reading and closing ------------------


@dataclass(frozen=True)
class ConversationsPage:
    conversations: list[ConversationSummary]
    next_offset: int | None


@dataclass(frozen=True)
class ConversationPage:
    summary: ConversationSummary
    messages: list[Message]
    """Newest first."""
    next_offset: int | None


async def clinic_conversations(uow: MessagingUnitOfWork, *, clinic_id: str, page: Page) -> ConversationsPage:
    """The clinic's conversations, newest activity first, each with its unread count for staff."""
    async with uow:
        found = await uow.repositories.messaging.list_conversations(clinic_id, page)
    return ConversationsPage(found[: page.limit], page.next_offset(len(found)))


async def _clinic_conversation(
    repo: MessagingStore, clinic_id: str, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await repo.clinic_conversation(clinic_id, conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


async def clinic_conversation(
    uow: MessagingUnitOfWork, *, clinic_id: str, conversation_id: uuid.UUID, page: Page
) -> ConversationPage:
    """One of the clinic's conversations (active or closed) with a page of its messages, newest first."""
    async with uow:
        repo = uow.repositories.messaging
        conversation = await _clinic_conversation(repo, clinic_id, conversation_id)
        found = await repo.messages_page(conversation.id, page)
        summary = ConversationSummary(conversation, await repo.unread_by_staff(conversation.id))
    return ConversationPage(summary, found[: page.limit], page.next_offset(len(found)))


async def staff_reads_up_to(
    uow: MessagingUnitOfWork, *, clinic_id: str, conversation_id: uuid.UUID, up_to: uuid.UUID
) -> list[Message]:
    """Staff have read the client's messages of this conversation up to and including `up_to`: each
    becomes read once. A message of another conversation (or clinic) is not found."""
    async with uow:
        repo = uow.repositories.messaging
        conversation = await _clinic_conversation(repo, clinic_id, conversation_id)
        target = await repo.client_message(clinic_id, conversation.client_id, up_to)
        if target is None or target.conversation_id != conversation.id:
            raise MessageNotFound(up_to)
        return await repo.mark_read_up_to(
            clinic_id=clinic_id,
            client_id=conversation.client_id,
            sender=Sender.CLIENT,
            up_to=target,
            at=now(),
            conversation_id=conversation.id,
        )


async def close_conversation(
    uow: MessagingUnitOfWork, *, clinic_id: str, conversation_id: uuid.UUID
) -> ConversationSummary:
    """Close it: the client's next message opens a new conversation; this one stays readable.
    Closing a closed conversation changes nothing."""
    async with uow:
        repo = uow.repositories.messaging
        conversation = await _clinic_conversation(repo, clinic_id, conversation_id)
        if conversation.active:
            conversation.close()
            conversation = await repo.close_conversation(conversation)
        return ConversationSummary(conversation, await repo.unread_by_staff(conversation.id))


class PhotoNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("no such photo")


async def parent_photo(
    uow: MessagingUnitOfWork, *, clinic_id: str, client_id: str, message_id: uuid.UUID, thumbnail: bool
) -> tuple[bytes, str]:
    """A photo in one of the parent's conversations; `PhotoNotFound` alike for another's and none."""
    async with uow:
        repo = uow.repositories.messaging
        if await repo.client_message(clinic_id, client_id, message_id) is None:
            raise PhotoNotFound()
        found = await repo.photo(message_id, thumbnail=thumbnail)
    if found is None:
        raise PhotoNotFound()
    return found


async def clinic_photo(
    uow: MessagingUnitOfWork,
    *,
    clinic_id: str,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    thumbnail: bool,
) -> tuple[bytes, str]:
    """A photo in one of the clinic's conversations; `PhotoNotFound` otherwise."""
    async with uow:
        repo = uow.repositories.messaging
        conversation = await repo.clinic_conversation(clinic_id, conversation_id)
        message = (
            await repo.client_message(clinic_id, conversation.client_id, message_id) if conversation else None
        )
        if message is None or message.conversation_id != conversation_id:
            raise PhotoNotFound()
        found = await repo.photo(message_id, thumbnail=thumbnail)
    if found is None:
        raise PhotoNotFound()
    return found


class TooMuchFeedback(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("thank you: you have sent us enough feedback for today")
        self.retry_after = retry_after


class Limiter(Protocol):
    async def hit(self, key: str) -> int | None: ...


async def give_feedback(
    uow: MessagingUnitOfWork,
    limiter: Limiter,
    *,
    clinic_id: str,
    client_id: str,
    rating: int,
    text: str | None,
) -> Feedback:
    """The parent's feedback about the portal, for their clinic; a few a day per parent
    (`TooMuchFeedback` beyond, counted by every replica)."""
    feedback = Feedback(clinic_id, client_id, rating, text)
    retry_after = await limiter.hit(f"{clinic_id}/{client_id}")
    if retry_after is not None:
        raise TooMuchFeedback(retry_after)
    async with uow:
        await uow.repositories.messaging.add_feedback(feedback)
    return feedback


async def clinic_feedback(uow: MessagingUnitOfWork, *, clinic_id: str, page: Page) -> list[Feedback]:
    async with uow:
        return await uow.repositories.messaging.feedback(clinic_id, page)
