"""messaging's use cases: get-or-open against a fake repository (including losing the race for the
active conversation), then every use case on the in-memory unit of work."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_messaging.domain.model import Conversation, Message, MessageNotFound, UnknownClient
from petportal_messaging.service_layer import services
from petportal_messaging.service_layer.services import get_or_open_conversation
from petportal_schemas import ClientMessageSent, ClientUpserted, Envelope, MessageRead, MessageReceived

pytestmark = pytest.mark.unit


class FakeRepository:
    def __init__(self, *, concurrent_winner: Conversation | None = None) -> None:
        self.active: dict[tuple[str, str], Conversation] = {}
        self.concurrent_winner = concurrent_winner
        self.inserts = 0

    async def active_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        return self.active.get((clinic_id, client_id))

    async def add_conversation(self, conversation: Conversation) -> bool:
        self.inserts += 1
        key = (conversation.clinic_id, conversation.client_id)
        if self.concurrent_winner is not None:
            # Another transaction committed its conversation first: the unique index refuses ours.
            self.active[key] = self.concurrent_winner
            self.concurrent_winner = None
            return False
        if key in self.active:
            return False
        self.active[key] = conversation
        return True


async def test_opens_a_conversation_once_then_reuses_it() -> None:
    repo = FakeRepository()
    first = await get_or_open_conversation(repo, "c1", "k1")
    second = await get_or_open_conversation(repo, "c1", "k1")
    assert first.id == second.id
    assert repo.inserts == 1


async def test_losing_the_race_returns_the_winners_conversation() -> None:
    winner = Conversation(clinic_id="c1", client_id="k1")
    repo = FakeRepository(concurrent_winner=winner)
    got = await get_or_open_conversation(repo, "c1", "k1")
    assert got.id == winner.id


async def test_conversations_are_per_client() -> None:
    repo = FakeRepository()
    a = await get_or_open_conversation(repo, "c1", "k1")
    b = await get_or_open_conversation(repo, "c1", "k2")
    c = await get_or_open_conversation(repo, "c2", "k1")
    assert len({a.id, b.id, c.id}) == 3


# --- the use cases on the in-memory unit of work ------------------------------------------------


def _client_upserted(client_id: str = "C-1") -> Envelope:
    event = ClientUpserted(first_name="Ada", last_name="Lovelace")
    return Envelope.wrap(event, clinic_id="clinic-1", client_id=client_id, producer="sync")


async def test_a_client_upserted_makes_the_client_known_once(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    envelope = _client_upserted()
    await services.record_client(uow, envelope)
    await services.record_client(uow, envelope)
    assert repositories.messaging.clients == [("clinic-1", "C-1")]
    assert uow.claimed == {("messaging", envelope.event_id)}


async def test_a_staff_message_opens_the_conversation_and_publishes_message_received(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.messaging.record_client("clinic-1", "C-1")
    message = await services.send_staff_message(
        uow, clinic_id="clinic-1", client_id="C-1", staff_user_id="staff-1", body="Rex is ready"
    )
    (envelope,) = uow.published
    received = MessageReceived.model_validate(envelope.payload)
    assert (envelope.event_type, envelope.client_id, envelope.producer) == (
        "MessageReceived",
        "C-1",
        "messaging",
    )
    assert (received.message_id, received.conversation_id) == (message.id, message.conversation_id)
    assert repositories.messaging.stored_messages == [message]


async def test_a_message_to_an_unknown_client_is_refused_and_publishes_nothing(
    uow: FakeUnitOfWork[Any],
) -> None:
    with pytest.raises(UnknownClient, match="no client C-9 at this clinic"):
        await services.send_staff_message(
            uow, clinic_id="clinic-1", client_id="C-9", staff_user_id="staff-1", body="hello"
        )
    assert (uow.published, uow.commits, uow.rollbacks) == ([], 0, 1)


async def test_staff_see_an_unknown_client_as_not_found_and_a_known_one_without_messages_as_empty(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    with pytest.raises(UnknownClient):
        await services.staff_conversation(uow, clinic_id="clinic-1", client_id="C-1")
    await repositories.messaging.record_client("clinic-1", "C-1")
    view = await services.staff_conversation(uow, clinic_id="clinic-1", client_id="C-1")
    assert (view.conversation_id, view.messages) == (None, [])


async def _staff_sends(uow: FakeUnitOfWork[Any], *bodies: str, client_id: str = "C-1") -> list[Message]:
    return [
        await services.send_staff_message(
            uow, clinic_id="clinic-1", client_id=client_id, staff_user_id="staff-1", body=body
        )
        for body in bodies
    ]


async def test_the_parent_viewing_the_conversation_changes_nothing(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.messaging.record_client("clinic-1", "C-1")
    await _staff_sends(uow, "one", "two")
    view = await services.parent_conversation(uow, clinic_id="clinic-1", client_id="C-1")
    assert [m.body for m in view.messages] == ["one", "two"]
    assert all(m.read_at is None for m in view.messages)
    assert uow.published_types() == ["MessageReceived", "MessageReceived"]


async def test_reading_up_to_a_message_marks_it_and_the_earlier_ones_read_once(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.messaging.record_client("clinic-1", "C-1")
    one, two, three = await _staff_sends(uow, "one", "two", "three")

    read = await services.parent_reads_up_to(uow, clinic_id="clinic-1", client_id="C-1", up_to=two.id)
    assert [m.id for m in read] == [one.id, two.id]
    event = MessageRead.model_validate(uow.published[-1].payload)
    assert (event.conversation_id, event.message_ids) == (one.conversation_id, sorted([one.id, two.id]))

    # A repeat changes nothing and publishes nothing; the later message is still unread.
    published = len(uow.published)
    assert await services.parent_reads_up_to(uow, clinic_id="clinic-1", client_id="C-1", up_to=two.id) == []
    assert len(uow.published) == published
    view = await services.parent_conversation(uow, clinic_id="clinic-1", client_id="C-1")
    assert [m.read_at is not None for m in view.messages] == [True, True, False]

    read = await services.parent_reads_up_to(uow, clinic_id="clinic-1", client_id="C-1", up_to=three.id)
    assert [m.id for m in read] == [three.id]
    assert MessageRead.model_validate(uow.published[-1].payload).message_ids == [three.id]


async def test_reading_up_to_a_message_that_is_not_the_parents_is_not_found_and_changes_nothing(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    for client in ("C-1", "C-2"):
        await repositories.messaging.record_client("clinic-1", client)
    [theirs] = await _staff_sends(uow, "for C-2", client_id="C-2")
    [mine] = await _staff_sends(uow, "for C-1")
    for up_to in (theirs.id, uuid.uuid4()):
        with pytest.raises(MessageNotFound):
            await services.parent_reads_up_to(uow, clinic_id="clinic-1", client_id="C-1", up_to=up_to)
    # The same client id at another clinic is another parent.
    with pytest.raises(MessageNotFound):
        await services.parent_reads_up_to(uow, clinic_id="clinic-2", client_id="C-1", up_to=mine.id)
    assert uow.published_types() == ["MessageReceived", "MessageReceived"]
    assert all(m.read_at is None for m in repositories.messaging.stored_messages)


async def test_a_parent_without_a_conversation_views_an_empty_one(uow: FakeUnitOfWork[Any]) -> None:
    view = await services.parent_conversation(uow, clinic_id="clinic-1", client_id="C-1")
    assert (view.conversation_id, view.messages, uow.published) == (None, [], [])


async def test_the_parent_replies_in_the_active_conversation_with_client_message_sent(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.messaging.record_client("clinic-1", "C-1")
    [staff] = await _staff_sends(uow, "Rex is ready")
    reply = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-1", body="On my way")
    assert reply.conversation_id == staff.conversation_id
    assert (reply.sender.value, reply.staff_user_id, reply.read_at) == ("client", None, None)
    assert uow.published_types() == ["MessageReceived", "ClientMessageSent"]
    sent = ClientMessageSent.model_validate(uow.published[-1].payload)
    assert (sent.conversation_id, sent.message_id) == (reply.conversation_id, reply.id)
    # The parent's own message is never unread for them: reading up to it reports only the staff one.
    read = await services.parent_reads_up_to(uow, clinic_id="clinic-1", client_id="C-1", up_to=reply.id)
    assert [m.id for m in read] == [staff.id]


async def test_the_parents_first_message_opens_a_conversation(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.messaging.record_client("clinic-1", "C-1")
    reply = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-1", body="Hello")
    view = await services.parent_conversation(uow, clinic_id="clinic-1", client_id="C-1")
    assert (view.conversation_id, [m.id for m in view.messages]) == (reply.conversation_id, [reply.id])


async def test_a_parent_unknown_to_messaging_cannot_write_and_publishes_nothing(
    uow: FakeUnitOfWork[Any],
) -> None:
    with pytest.raises(UnknownClient):
        await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-9", body="Hello")
    assert (uow.published, uow.rollbacks) == ([], 1)
