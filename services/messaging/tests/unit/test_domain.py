from __future__ import annotations

import uuid

import pytest

from petportal_messaging.domain.model import (
    MAX_BODY_LENGTH,
    Conversation,
    InvalidMessage,
    Message,
    Sender,
    chunks,
    validate_body,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("body", ["x", "Rex is ready for pick-up", "a" * MAX_BODY_LENGTH, "  hi  "])
def test_valid_bodies_are_kept_unchanged(body: str) -> None:
    assert validate_body(body) == body


@pytest.mark.parametrize("body", ["", "   ", "\n\t", "a" * (MAX_BODY_LENGTH + 1)])
def test_empty_blank_or_long_bodies_are_rejected(body: str) -> None:
    with pytest.raises(InvalidMessage):
        validate_body(body)


def test_staff_message_belongs_to_the_conversation_and_is_unread() -> None:
    conversation = Conversation(clinic_id="c1", client_id="k1")
    message = conversation.staff_message("staff-1", "hello")
    assert message.conversation_id == conversation.id
    assert message.sender is Sender.STAFF
    assert message.staff_user_id == "staff-1"
    assert message.unread_by_parent


def test_closed_conversation_takes_no_new_messages() -> None:
    conversation = Conversation(clinic_id="c1", client_id="k1")
    conversation.close()
    assert not conversation.active
    with pytest.raises(InvalidMessage):
        conversation.staff_message("staff-1", "hello")


def test_staff_message_needs_a_staff_user_and_client_message_has_none() -> None:
    with pytest.raises(InvalidMessage):
        Message(conversation_id=uuid.uuid4(), sender=Sender.STAFF, body="hi")
    with pytest.raises(InvalidMessage):
        Message(conversation_id=uuid.uuid4(), sender=Sender.CLIENT, body="hi", staff_user_id="s")
    client_message = Message(conversation_id=uuid.uuid4(), sender=Sender.CLIENT, body="hi")
    assert not client_message.unread_by_parent


def test_read_ids_are_split_within_the_event_bound() -> None:
    ids = [uuid.uuid4() for _ in range(25)]
    parts = chunks(ids, size=10)
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [i for p in parts for i in p] == ids
    assert chunks([]) == []
