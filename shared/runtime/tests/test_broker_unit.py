"""The consumer middleware on the in-memory broker: bounded retries, dead letters, batches split."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters
from petportal_runtime.broker import (
    DeadLetterMiddleware,
    PermanentEventError,
    make_broker,
    on,
    subscribe_event_batches,
    subscribe_events,
)
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import Envelope, Event, MessageReceived, topics
from petportal_schemas import envelope as registry

pytestmark = pytest.mark.unit

SETTINGS = ServiceSettings(service_name="unit")
ATTEMPTS = 3


def message(client_id: str) -> Envelope:
    event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC))
    return Envelope.wrap(event, clinic_id="clinic-1", client_id=client_id, producer="unit")


@pytest.fixture
def broker() -> KafkaBroker:
    return make_broker(SETTINGS, delivery=DeadLetterMiddleware(attempts=ATTEMPTS, max_wait=0))


@pytest.fixture
def dead_letters(broker: KafkaBroker) -> list[DeadLetter]:
    return record_dead_letters(broker)


async def test_transient_failures_are_retried_a_bounded_number_of_times(
    broker: KafkaBroker, dead_letters: list[DeadLetter]
) -> None:
    calls: dict[str, int] = {}

    async def apply(envelope: Envelope, event: MessageReceived) -> None:
        client = envelope.client_id or ""
        calls[client] = calls.get(client, 0) + 1
        if client == "down" or (client == "flaky" and calls[client] < ATTEMPTS):
            raise ConnectionError("database unavailable")

    subscribe_events(
        broker, SETTINGS, [topics.MESSAGING], consumer="unit", handlers=[on(MessageReceived, apply)]
    )
    async with TestKafkaBroker(broker):
        await publish_envelope(broker, message("flaky"))
        # Never succeeds: after the last attempt the error propagates, so the message is nacked and
        # redelivered rather than lost or parked.
        with pytest.raises(ConnectionError):
            await publish_envelope(broker, message("down"))

    assert calls == {"flaky": ATTEMPTS, "down": ATTEMPTS}
    assert dead_letters == []


async def test_a_permanent_error_is_dead_lettered_at_once(
    broker: KafkaBroker, dead_letters: list[DeadLetter]
) -> None:
    calls = 0

    async def apply(envelope: Envelope, event: MessageReceived) -> None:
        nonlocal calls
        calls += 1
        raise PermanentEventError("conversation unknown here")

    subscribe_events(
        broker, SETTINGS, [topics.MESSAGING], consumer="unit", handlers=[on(MessageReceived, apply)]
    )
    async with TestKafkaBroker(broker):
        poisoned = message("c-1")
        await publish_envelope(broker, poisoned)

    assert calls == 1
    assert [(d.reason, d.consumer, d.value, d.key) for d in dead_letters] == [
        ("conversation unknown here", "unit", poisoned.to_bytes(), b"clinic-1:c-1")
    ]


async def test_a_batch_parks_only_its_unappliable_events_and_applies_the_rest_in_order(
    broker: KafkaBroker, dead_letters: list[DeadLetter]
) -> None:
    applied: list[str] = []

    async def apply_batch(batch: list[tuple[Envelope, Event]]) -> None:
        if any(envelope.client_id and envelope.client_id.startswith("poison") for envelope, _ in batch):
            raise PermanentEventError("a poisoned client")
        applied.extend(envelope.client_id or "" for envelope, _ in batch)

    subscribe_event_batches(
        broker,
        SETTINGS,
        [topics.MESSAGING],
        consumer="unit",
        event_types=[MessageReceived],
        handler=apply_batch,
    )
    names = ["c-0", "c-1", "poison-a", "c-2", "c-3", "c-4", "poison-b", "c-5"]
    async with TestKafkaBroker(broker):
        await broker.publish_batch(
            *(message(n).to_bytes() for n in names[:4]),
            b"{}",
            *(message(n).to_bytes() for n in names[4:]),
            topic=topics.MESSAGING,
        )

    assert applied == [n for n in names if not n.startswith("poison")]
    reasons = sorted(d.reason for d in dead_letters)
    assert reasons[:2] == ["a poisoned client", "a poisoned client"]
    assert reasons[2].startswith("invalid envelope: event_type: Field required")
    assert len(reasons) == 3


def test_a_route_names_the_newest_version_of_its_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """Payloads are upcast to the newest version before dispatch, so a route on an older one is a bug."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register
    class MessageReceivedV2(Event):
        EVENT_TYPE: ClassVar[str] = "MessageReceived"
        VERSION: ClassVar[int] = 2
        TOPIC: ClassVar[str] = topics.MESSAGING

    async def apply(envelope: Envelope, event: Event) -> None: ...

    with pytest.raises(ValueError, match="MessageReceived v1 is not the newest version"):
        on(MessageReceived, apply)
    assert on(MessageReceivedV2, apply).event is MessageReceivedV2


def test_a_dead_letter_reason_label_is_one_of_a_few_classes() -> None:
    from petportal_runtime.broker import (
        DEAD_LETTER_REASONS,
        PermanentEventError,
        dead_letter_reason,
        decode_envelope,
    )

    with pytest.raises(PermanentEventError) as bad_envelope:
        decode_envelope(b"{}")
    assert dead_letter_reason(bad_envelope.value) == "invalid_envelope"
    assert dead_letter_reason(PermanentEventError("a poisoned client")) == "rejected"
    assert {"invalid_envelope", "invalid_event", "unknown_event", "rejected"} == set(DEAD_LETTER_REASONS)


def test_faststream_logs_each_message_only_at_debug() -> None:
    """Its "Received"/"Processed" lines carry no context into ours and cost two records an event.
    (The in-memory broker does not log them at all: the level is what can be checked here.)"""
    assert make_broker(SETTINGS).config.logger.log_level == logging.DEBUG
