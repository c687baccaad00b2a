import uuid
from datetime import UTC, datetime

import pytest

from petportal_schemas import (
    ClientEnrolledInProgram,
    Envelope,
    MessageRead,
    ProgramOffered,
    SmsOptedOut,
    new_event_ids,
    topics,
    validate_message,
)

pytestmark = pytest.mark.unit


def test_a_client_event_is_keyed_by_clinic_and_client() -> None:
    env = Envelope.wrap(
        SmsOptedOut(source="sms_keyword", keyword="STOP"),
        clinic_id="demo",
        client_id="C-1",
        producer="notify",
    )
    assert env.key == "demo:C-1"
    assert env.topic == topics.NOTIFY
    assert env.event_type == "SmsOptedOut"
    assert env.event_version == 1


def test_a_clinic_wide_event_is_keyed_by_clinic() -> None:
    env = Envelope.wrap(
        ProgramOffered(program_code="care-plan", name="Care", call_to_action="Add a Care Member"),
        clinic_id="demo",
        client_id=None,
        producer="sync",
    )
    assert env.key == "demo"


def test_a_client_event_without_a_client_is_refused() -> None:
    with pytest.raises(ValueError, match="client_id is required"):
        Envelope.wrap(
            ClientEnrolledInProgram(program_code="care-plan"),
            clinic_id="demo",
            client_id=None,
            producer="sync",
        )


def test_event_ids_made_many_at_once_are_random_uuids_and_wrap_takes_one() -> None:
    ids = new_event_ids(1000)
    assert len(set(ids)) == 1000
    assert {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}
    env = Envelope.wrap(
        SmsOptedOut(source="portal"), clinic_id="demo", client_id="C-1", producer="notify", event_id=ids[0]
    )
    assert env.event_id == ids[0]
    assert new_event_ids(0) == []


def test_round_trip_through_bytes() -> None:
    event = MessageRead(conversation_id=uuid.uuid4(), message_ids=[uuid.uuid4()], read_at=datetime.now(UTC))
    env = Envelope.wrap(event, clinic_id="demo", client_id="C-1", producer="messaging")
    parsed_env, parsed_event = validate_message(env.to_bytes())
    assert parsed_env == env
    assert parsed_event == event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"event_type": "SmsOptedOut"}', "event_version"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_message(raw)


def test_a_payload_that_breaks_its_schema_is_refused() -> None:
    env = Envelope.wrap(SmsOptedOut(source="portal"), clinic_id="demo", client_id="C-1", producer="notify")
    bad = env.model_copy(update={"payload": {"source": "carrier pigeon"}})
    with pytest.raises(ValueError, match="source"):
        validate_message(bad.to_bytes())


def test_ids_with_separators_are_refused() -> None:
    with pytest.raises(ValueError, match="client_id"):
        Envelope.wrap(SmsOptedOut(source="portal"), clinic_id="demo", client_id="C:1", producer="notify")
