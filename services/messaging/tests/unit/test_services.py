"""messaging's use cases: get-or-open against a fake repository (including losing the race for the
active conversation), then every use case on the in-memory unit of work."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_messaging.domain.model import (
    Conversation,
    ConversationNotFound,
    Message,
    MessageNotFound,
    Page,
    UnknownClient,
)
from petportal_messaging.service_layer import services
from petportal_messaging.service_layer.services import get_or_open_conversation
from petportal_runtime.photos import Photo
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


# --- the clinic's side ---------------------------------------------------------------------------


async def _known(repositories: Any, *clients: str, clinic_id: str = "clinic-1") -> None:
    for client in clients:
        await repositories.messaging.record_client(clinic_id, client)


async def test_staff_list_the_clinics_conversations_newest_activity_first_with_unread_counts(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await _known(repositories, "C-1", "C-2", "C-3")
    await _known(repositories, "C-1", clinic_id="clinic-2")
    await _staff_sends(uow, "to C-1", client_id="C-1")
    for client, body in (("C-2", "hi"), ("C-2", "are you there?"), ("C-3", "hello"), ("C-1", "thanks")):
        await services.send_client_message(uow, clinic_id="clinic-1", client_id=client, body=body)
    await services.send_client_message(uow, clinic_id="clinic-2", client_id="C-1", body="other clinic")

    first = await services.clinic_conversations(uow, clinic_id="clinic-1", page=Page(limit=2))
    assert [(s.conversation.client_id, s.unread_by_staff) for s in first.conversations] == [
        ("C-1", 1),
        ("C-3", 1),
    ]
    assert first.next_offset == 2
    rest = await services.clinic_conversations(uow, clinic_id="clinic-1", page=Page(limit=2, offset=2))
    assert [(s.conversation.client_id, s.unread_by_staff) for s in rest.conversations] == [("C-2", 2)]
    assert rest.next_offset is None


async def test_page_bounds_are_capped() -> None:
    for limit, offset in ((0, 0), (101, 0), (20, -1), (20, 10_001)):
        with pytest.raises(ValueError, match="page out of bounds"):
            Page(limit=limit, offset=offset)


async def test_staff_see_one_conversation_newest_first_in_pages_and_only_their_clinics(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await _known(repositories, "C-1")
    sent = await _staff_sends(uow, "one", "two", "three")
    conversation_id = sent[0].conversation_id
    page = await services.clinic_conversation(
        uow, clinic_id="clinic-1", conversation_id=conversation_id, page=Page(limit=2)
    )
    assert [m.body for m in page.messages] == ["three", "two"]
    assert page.next_offset == 2
    older = await services.clinic_conversation(
        uow, clinic_id="clinic-1", conversation_id=conversation_id, page=Page(limit=2, offset=2)
    )
    assert ([m.body for m in older.messages], older.next_offset) == (["one"], None)
    for clinic, conversation in (("clinic-2", conversation_id), ("clinic-1", uuid.uuid4())):
        with pytest.raises(ConversationNotFound):
            await services.clinic_conversation(
                uow, clinic_id=clinic, conversation_id=conversation, page=Page()
            )


async def test_staff_read_the_clients_messages_up_to_one_once_and_only_in_that_conversation(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await _known(repositories, "C-1", "C-2")
    one = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-1", body="one")
    [staff] = await _staff_sends(uow, "answer")
    two = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-1", body="two")
    theirs = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-2", body="other")
    published = len(uow.published)

    read = await services.staff_reads_up_to(
        uow, clinic_id="clinic-1", conversation_id=one.conversation_id, up_to=two.id
    )
    assert [m.id for m in read] == [one.id, two.id]  # the staff message is not the staff's to read
    assert (
        await services.staff_reads_up_to(
            uow, clinic_id="clinic-1", conversation_id=one.conversation_id, up_to=two.id
        )
        == []
    )
    assert len(uow.published) == published
    assert await repositories.messaging.unread_by_staff(one.conversation_id) == 0
    assert next(m for m in repositories.messaging.stored_messages if m.id == staff.id).read_at is None
    for conversation_id, up_to, clinic in (
        (one.conversation_id, theirs.id, "clinic-1"),  # another conversation's message
        (one.conversation_id, uuid.uuid4(), "clinic-1"),
    ):
        with pytest.raises(MessageNotFound):
            await services.staff_reads_up_to(
                uow, clinic_id=clinic, conversation_id=conversation_id, up_to=up_to
            )
    with pytest.raises(ConversationNotFound):
        await services.staff_reads_up_to(
            uow, clinic_id="clinic-2", conversation_id=one.conversation_id, up_to=one.id
        )
    assert await repositories.messaging.unread_by_staff(theirs.conversation_id) == 1


async def test_closing_keeps_the_conversation_readable_and_the_next_message_opens_a_new_one(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await _known(repositories, "C-1")
    [first] = await _staff_sends(uow, "old thread")
    closed = await services.close_conversation(
        uow, clinic_id="clinic-1", conversation_id=first.conversation_id
    )
    assert (closed.conversation.status.value, closed.conversation.closed_at is not None) == ("closed", True)
    closed_at = closed.conversation.closed_at
    again = await services.close_conversation(
        uow, clinic_id="clinic-1", conversation_id=first.conversation_id
    )
    assert again.conversation.closed_at == closed_at  # closing a closed one changes nothing

    reply = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-1", body="new thread")
    assert reply.conversation_id != first.conversation_id
    old = await services.clinic_conversation(
        uow, clinic_id="clinic-1", conversation_id=first.conversation_id, page=Page()
    )
    assert [m.body for m in old.messages] == ["old thread"]
    with pytest.raises(ConversationNotFound):
        await services.close_conversation(uow, clinic_id="clinic-2", conversation_id=first.conversation_id)


async def test_a_message_racing_a_close_goes_to_a_new_conversation(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await _known(repositories, "C-1")
    [first] = await _staff_sends(uow, "old thread")
    store = repositories.messaging
    real_touch = store.touch_active

    async def closed_meanwhile(conversation_id: uuid.UUID, at: Any) -> bool:
        store.touch_active = real_touch
        next(c for c in store.conversations if c.id == conversation_id).close()
        return await real_touch(conversation_id, at)

    store.touch_active = closed_meanwhile
    reply = await services.send_client_message(uow, clinic_id="clinic-1", client_id="C-1", body="late")
    assert reply.conversation_id != first.conversation_id
    assert [m.body for m in await store.messages(first.conversation_id)] == ["old thread"]


class CountingLimiter:
    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.keys: list[str] = []

    async def hit(self, key: str) -> int | None:
        self.keys.append(key)
        return None if len(self.keys) <= self.allowed else 3600


async def test_feedback_is_kept_for_the_clinic_and_limited(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    limiter = CountingLimiter(allowed=1)
    given = await services.give_feedback(uow, limiter, clinic_id="c1", client_id="k1", rating=5, text="Great")
    with pytest.raises(services.TooMuchFeedback) as refused:
        await services.give_feedback(uow, limiter, clinic_id="c1", client_id="k1", rating=4, text=None)
    assert refused.value.retry_after == 3600
    assert limiter.keys == ["c1/k1", "c1/k1"]
    assert await services.clinic_feedback(uow, clinic_id="c1", page=Page(limit=10, offset=0)) == [given]
    assert await services.clinic_feedback(uow, clinic_id="c2", page=Page(limit=10, offset=0)) == []


async def test_a_staff_photo_is_stored_with_its_message(uow: FakeUnitOfWork[Any], repositories: Any) -> None:
    await repositories.messaging.record_client("c1", "k1")
    photo = Photo(b"jpeg", b"thumb", 10, 10)
    message = await services.send_staff_message(
        uow, clinic_id="c1", client_id="k1", staff_user_id="s1", body="Look", photo=photo
    )
    assert message.has_photo
    assert await services.parent_photo(
        uow, clinic_id="c1", client_id="k1", message_id=message.id, thumbnail=True
    ) == (
        b"thumb",
        photo.etag,
    )
    with pytest.raises(services.PhotoNotFound):
        await services.parent_photo(
            uow, clinic_id="c1", client_id="k2", message_id=message.id, thumbnail=False
        )
