"""PostgreSQL access for messaging, in the unit of work's transaction; rows leave as domain objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.db import table_of

from ..domain.model import Conversation, ConversationStatus, Message, Sender
from .orm import ClientRow, ConversationRow, MessageRow

ONE_ACTIVE_INDEX = "uq_conversations_one_active"


client_table = table_of(ClientRow)
conversation_table = table_of(ConversationRow)
message_table = table_of(MessageRow)


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        id=row.id,
        status=ConversationStatus(row.status),
        created_at=row.created_at,
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
                    )
                )
                await self.session.flush()
        except IntegrityError as exc:
            if ONE_ACTIVE_INDEX not in str(exc.orig):
                raise
            return False
        return True

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
            )
        )
        await self.session.flush()

    async def messages(self, conversation_id: uuid.UUID) -> list[Message]:
        t = message_table.c
        rows = (
            await self.session.execute(
                select(MessageRow).where(t.conversation_id == conversation_id).order_by(t.sent_at, t.id)
            )
        ).scalars()
        return [_message(r) for r in rows]

    async def mark_staff_messages_read(self, conversation_id: uuid.UUID, at: datetime) -> list[uuid.UUID]:
        """Mark unread staff messages read; returns exactly the ids this call changed.

        Row locks make a concurrent reader wait, then re-check `read_at IS NULL`, so each id is
        returned to one reader only.
        """
        t = message_table.c
        result = await self.session.execute(
            update(message_table)
            .where(t.conversation_id == conversation_id, t.sender == "staff", t.read_at.is_(None))
            .values(read_at=at)
            .returning(t.id)
        )
        return sorted(r[0] for r in result.all())


@dataclass(frozen=True)
class SqlRepositories:
    messaging: MessagingRepository


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(messaging=MessagingRepository(session))
