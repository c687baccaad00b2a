"""PostgreSQL access for messaging, in the unit of work's transaction; rows leave as domain objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.db import table_of
from petportal_runtime.photos import Photo

from ..domain.model import (
    Conversation,
    ConversationStatus,
    ConversationSummary,
    Feedback,
    Message,
    Page,
    Sender,
)
from .orm import ClientRow, ConversationRow, FeedbackRow, MessagePhotoRow, MessageRow

ONE_ACTIVE_INDEX = "uq_conversations_one_active"


client_table = table_of(ClientRow)
conversation_table = table_of(ConversationRow)
message_table = table_of(MessageRow)
photo_table = table_of(MessagePhotoRow)
feedback_table = table_of(FeedbackRow)


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        id=row.id,
        status=ConversationStatus(row.status),
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        closed_at=row.closed_at,
    )


def _message(row: MessageRow) -> Message:
    return Message(
        conversation_id=row.conversation_id,
        sender=Sender(row.sender),
        body=row.body,
        staff_user_id=row.staff_user_id,
        id=row.id,
        sent_at=row.sent_at,
        read_at=row.read_at,
        has_photo=row.has_photo,
    )


class MessagingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_client(self, clinic_id: str, client_id: str) -> None:
        await self.session.execute(
            insert(client_table)
            .values(clinic_id=clinic_id, client_id=client_id)
            .on_conflict_do_nothing(index_elements=["clinic_id", "client_id"])
        )

    async def client_exists(self, clinic_id: str, client_id: str) -> bool:
        query = select(
            exists().where(
                client_table.c.clinic_id == clinic_id,
                client_table.c.client_id == client_id,
            )
        )
        return bool((await self.session.execute(query)).scalar())

    async def active_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        t = conversation_table.c
        row = (
            await self.session.execute(
                select(ConversationRow).where(
                    t.clinic_id == clinic_id, t.client_id == client_id, t.status == "active"
                )
            )
        ).scalar_one_or_none()
        return _conversation(row) if row else None

    async def latest_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        """The active conversation, else the most recent closed one."""
        t = conversation_table.c
        row = (
            await self.session.execute(
                select(ConversationRow)
                .where(t.clinic_id == clinic_id, t.client_id == client_id)
                .order_by((t.status == "active").desc(), t.created_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return _conversation(row) if row else None

    async def add_conversation(self, conversation: Conversation) -> bool:
        """Insert; False when another transaction already holds the client's active conversation."""
        try:
            async with self.session.begin_nested():
                self.session.add(
                    ConversationRow(
                        id=conversation.id,
                        clinic_id=conversation.clinic_id,
                        client_id=conversation.client_id,
                        status=conversation.status.value,
                        created_at=conversation.created_at,
                        last_activity_at=conversation.last_activity_at or conversation.created_at,
                        closed_at=conversation.closed_at,
                    )
                )
                await self.session.flush()
        except IntegrityError as exc:
            if ONE_ACTIVE_INDEX not in str(exc.orig):
                raise
            return False
        return True

    async def touch_active(self, conversation_id: uuid.UUID, at: datetime) -> bool:
        """The UPDATE waits for a concurrent close and re-checks `status` on the row it committed."""
        t = conversation_table.c
        result = await self.session.execute(
            update(conversation_table)
            .where(t.id == conversation_id, t.status == "active")
            .values(last_activity_at=func.greatest(t.last_activity_at, at))
            .returning(t.id)
        )
        return result.first() is not None

    async def clinic_conversation(self, clinic_id: str, conversation_id: uuid.UUID) -> Conversation | None:
        t = conversation_table.c
        row = (
            await self.session.execute(
                select(ConversationRow).where(t.id == conversation_id, t.clinic_id == clinic_id)
            )
        ).scalar_one_or_none()
        return _conversation(row) if row else None

    async def list_conversations(self, clinic_id: str, page: Page) -> list[ConversationSummary]:
        m, c = message_table.c, conversation_table.c
        unread = (
            select(func.count())
            .where(m.conversation_id == c.id, m.sender == "client", m.read_at.is_(None))
            .scalar_subquery()
        )
        rows = (
            await self.session.execute(
                select(ConversationRow, unread)
                .where(c.clinic_id == clinic_id)
                .order_by(c.last_activity_at.desc(), c.id.desc())
                .limit(page.limit + 1)
                .offset(page.offset)
            )
        ).all()
        return [ConversationSummary(_conversation(row), count) for row, count in rows]

    async def messages_page(self, conversation_id: uuid.UUID, page: Page) -> list[Message]:
        t = message_table.c
        rows = (
            await self.session.execute(
                select(MessageRow)
                .where(t.conversation_id == conversation_id)
                .order_by(t.sent_at.desc(), t.id.desc())
                .limit(page.limit + 1)
                .offset(page.offset)
            )
        ).scalars()
        return [_message(r) for r in rows]

    async def unread_by_staff(self, conversation_id: uuid.UUID) -> int:
        t = message_table.c
        query = select(func.count()).where(
            t.conversation_id == conversation_id, t.sender == "client", t.read_at.is_(None)
        )
        return int((await self.session.execute(query)).scalar_one())

    async def close_conversation(self, conversation: Conversation) -> Conversation:
        """Waits for a message being appended (it holds the row lock), and is never earlier than the
        conversation's latest message, so every message of a closed conversation precedes its close."""
        t = conversation_table.c
        await self.session.execute(
            update(conversation_table)
            .where(t.id == conversation.id, t.status == "active")
            .values(
                status=conversation.status.value,
                closed_at=func.greatest(conversation.closed_at, t.last_activity_at),
            )
        )
        row = (
            await self.session.execute(
                select(ConversationRow)
                .where(t.id == conversation.id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        return _conversation(row)

    async def add_message(self, message: Message) -> None:
        self.session.add(
            MessageRow(
                id=message.id,
                conversation_id=message.conversation_id,
                sender=message.sender.value,
                staff_user_id=message.staff_user_id,
                body=message.body,
                sent_at=message.sent_at,
                read_at=message.read_at,
                has_photo=message.has_photo,
            )
        )
        await self.session.flush()

    async def add_feedback(self, feedback: Feedback) -> None:
        await self.session.execute(
            insert(feedback_table).values(
                id=feedback.id,
                clinic_id=feedback.clinic_id,
                client_id=feedback.client_id,
                rating=feedback.rating,
                text=feedback.text,
                created_at=feedback.created_at,
            )
        )

    async def feedback(self, clinic_id: str, page: Page) -> list[Feedback]:
        t = feedback_table.c
        rows = await self.session.execute(
            select(feedback_table)
            .where(t.clinic_id == clinic_id)
            .order_by(t.created_at.desc(), t.id.desc())
            .limit(page.limit + 1)
            .offset(page.offset)
        )
        return [Feedback(r.clinic_id, r.client_id, r.rating, r.text, r.id, r.created_at) for r in rows]

    async def add_photo(self, message_id: uuid.UUID, photo: Photo) -> None:
        self.session.add(
            MessagePhotoRow(
                message_id=message_id,
                jpeg=photo.jpeg,
                thumbnail=photo.thumbnail,
                etag=photo.etag,
                width=photo.width,
                height=photo.height,
            )
        )
        await self.session.flush()

    async def photo(self, message_id: uuid.UUID, *, thumbnail: bool) -> tuple[bytes, str] | None:
        column = photo_table.c.thumbnail if thumbnail else photo_table.c.jpeg
        row = (
            await self.session.execute(
                select(column, photo_table.c.etag).where(photo_table.c.message_id == message_id)
            )
        ).first()
        return (bytes(row[0]), f"{row[1]}{'-t' if thumbnail else ''}") if row else None

    async def messages(self, conversation_id: uuid.UUID) -> list[Message]:
        t = message_table.c
        rows = (
            await self.session.execute(
                select(MessageRow).where(t.conversation_id == conversation_id).order_by(t.sent_at, t.id)
            )
        ).scalars()
        return [_message(r) for r in rows]

    async def client_message(self, clinic_id: str, client_id: str, message_id: uuid.UUID) -> Message | None:
        t, c = message_table.c, conversation_table.c
        row = (
            await self.session.execute(
                select(MessageRow)
                .join(conversation_table, c.id == t.conversation_id)
                .where(t.id == message_id, c.clinic_id == clinic_id, c.client_id == client_id)
            )
        ).scalar_one_or_none()
        return _message(row) if row else None

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
        """Mark read; returns exactly the messages this call changed, in conversation order.

        Row locks make a concurrent reader wait, then re-check `read_at IS NULL`, so each message is
        returned to one reader only.
        """
        t, c = message_table.c, conversation_table.c
        scope = select(c.id).where(c.clinic_id == clinic_id, c.client_id == client_id)
        if conversation_id is not None:
            scope = scope.where(c.id == conversation_id)
        result = await self.session.execute(
            update(message_table)
            .where(
                t.conversation_id.in_(scope.scalar_subquery()),
                t.sender == sender.value,
                t.read_at.is_(None),
                tuple_(t.sent_at, t.id) <= tuple_(up_to.sent_at, up_to.id),
            )
            .values(read_at=at)
            .returning(*message_table.c)
        )
        changed = [
            Message(
                conversation_id=r.conversation_id,
                sender=Sender(r.sender),
                body=r.body,
                staff_user_id=r.staff_user_id,
                id=r.id,
                sent_at=r.sent_at,
                read_at=r.read_at,
            )
            for r in result.all()
        ]
        return sorted(changed, key=lambda m: m.position)

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete everything messaging holds about the client: the photos and messages of their
        conversations (staff's messages to them too), the conversations, their feedback and their
        `clients` row. The clinic's other rows stay. How many rows were deleted."""
        c, m = conversation_table.c, message_table.c
        theirs = select(c.id).where(c.clinic_id == clinic_id, c.client_id == client_id)
        in_theirs = select(m.id).where(m.conversation_id.in_(theirs))
        statements = (
            delete(photo_table).where(photo_table.c.message_id.in_(in_theirs)),
            delete(message_table).where(m.conversation_id.in_(theirs)),
            delete(conversation_table).where(c.clinic_id == clinic_id, c.client_id == client_id),
            delete(feedback_table).where(
                feedback_table.c.clinic_id == clinic_id, feedback_table.c.client_id == client_id
            ),
            delete(client_table).where(
                client_table.c.clinic_id == clinic_id, client_table.c.client_id == client_id
            ),
        )
        deleted = 0
        for statement in statements:  # children first: messages hold their conversation (RESTRICT)
            result: Any = await self.session.execute(statement)
            deleted += int(result.rowcount)
        return deleted


@dataclass(frozen=True)
class SqlRepositories:
    messaging: MessagingRepository


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(messaging=MessagingRepository(session))
