"""messaging's consumer on the in-memory broker, through the real use case on an in-memory repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters
from petportal_devkit.fakes import FakeUnitOfWork
from petportal_messaging.bootstrap import bootstrap
from petportal_messaging.settings import MessagingSettings
from petportal_schemas import ClientUpserted, Envelope, topics

pytestmark = pytest.mark.unit


@dataclass
class Messaging:
    broker: Any
    transactions: FakeUnitOfWork[Any]
    dead_letters: list[DeadLetter]
    clients: list[tuple[str, str]]


@pytest.fixture
async def messaging(uow: FakeUnitOfWork[Any], repositories: Any) -> AsyncIterator[Messaging]:
    settings = MessagingSettings(
        environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit"
    )
    runtime = bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Messaging(
        runtime.broker, uow, record_dead_letters(runtime.broker), repositories.messaging.clients
    )
    async with TestKafkaBroker(runtime.broker):
        yield under_test


ADA = ClientUpserted(first_name="Ada", last_name="Lovelace", phone="+15555550123")


async def test_a_client_upserted_makes_the_client_reachable_once(messaging: Messaging) -> None:
    envelope = Envelope.wrap(ADA, clinic_id="clinic-1", client_id="C-1", producer="sync")
    await publish_envelope(messaging.broker, envelope)
    await publish_envelope(messaging.broker, envelope)  # redelivered: the inbox skips it

    assert messaging.clients == [("clinic-1", "C-1")]
    assert messaging.transactions.claimed == {("messaging", envelope.event_id)}


async def test_bad_events_are_dead_lettered_with_the_reason_and_the_consumer_carries_on(
    messaging: Messaging,
) -> None:
    await messaging.broker.publish(b'{"event_type": 1}', topics.SYNC, key=b"clinic-1:C-1")
    unknown_version = Envelope(
        event_type="ClientUpserted",
        event_version=9,
        clinic_id="clinic-1",
        client_id="C-1",
        producer="sync",
        payload=ADA.model_dump(mode="json"),
    )
    await messaging.broker.publish(unknown_version.to_bytes(), topics.SYNC, key=b"clinic-1:C-1")
    await publish_envelope(
        messaging.broker, Envelope.wrap(ADA, clinic_id="clinic-1", client_id="C-2", producer="sync")
    )

    malformed, unknown = (d.reason for d in messaging.dead_letters)
    assert malformed.startswith("invalid envelope: event_type: Input should be a valid string")
    assert unknown == "unknown event ClientUpserted v9"
    assert {(d.consumer, d.source_topic) for d in messaging.dead_letters} == {("messaging", topics.SYNC)}
    assert messaging.clients == [("clinic-1", "C-2")]
