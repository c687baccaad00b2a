"""pets' consumer on the in-memory broker, through the real use case on an in-memory repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters
from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.bootstrap import bootstrap
from petportal_pets.domain import Pet
from petportal_pets.settings import PetsSettings
from petportal_schemas import Envelope, PatientUpserted, topics

pytestmark = pytest.mark.unit


@dataclass
class Pets:
    broker: Any
    transactions: FakeUnitOfWork[Any]
    dead_letters: list[DeadLetter]
    stored: dict[tuple[str, str], Pet]


@pytest.fixture
async def pets(uow: FakeUnitOfWork[Any], repositories: Any) -> AsyncIterator[Pets]:
    settings = PetsSettings(environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit")
    runtime = bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Pets(runtime.broker, uow, record_dead_letters(runtime.broker), repositories.pets.stored)
    async with TestKafkaBroker(runtime.broker):
        yield under_test


REX = PatientUpserted(
    patient_id="pat-1", name="Rex", species="canine", breed="Labrador", date_of_birth=date(2020, 1, 2)
)
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


async def test_a_patient_upserted_becomes_the_parents_pet(pets: Pets) -> None:
    envelope = Envelope.wrap(REX, clinic_id="clinic-1", client_id="C-1", producer="sync", occurred_at=AT)
    await publish_envelope(pets.broker, envelope)

    pet = pets.stored[("clinic-1", "pat-1")]
    assert (pet.client_id, pet.name, pet.species, pet.breed, pet.date_of_birth, pet.updated_at) == (
        "C-1",
        "Rex",
        "canine",
        "Labrador",
        date(2020, 1, 2),
        AT,
    )
    assert pets.transactions.claimed == {("pets", envelope.event_id)}


async def test_bad_events_are_dead_lettered_with_the_reason_and_the_consumer_carries_on(pets: Pets) -> None:
    await pets.broker.publish(b'{"event_type": "PatientUpserted"', topics.SYNC, key=b"clinic-1:C-1")
    no_client = Envelope(
        event_type="PatientUpserted",
        event_version=1,
        clinic_id="clinic-1",
        producer="sync",
        payload=REX.model_dump(mode="json"),
    )
    await publish_envelope(pets.broker, no_client)
    later = Envelope.wrap(REX, clinic_id="clinic-1", client_id="C-1", producer="sync", occurred_at=AT)
    await publish_envelope(pets.broker, later)

    malformed, unappliable = (d.reason for d in pets.dead_letters)
    assert malformed.startswith("invalid envelope: <root>: Invalid JSON")
    assert unappliable == "PatientUpserted without client_id"
    assert {(d.consumer, d.source_topic) for d in pets.dead_letters} == {("pets", topics.SYNC)}
    assert pets.dead_letters[1].value == no_client.to_bytes()
    assert list(pets.stored) == [("clinic-1", "pat-1")]
    assert pets.transactions.claimed == {("pets", later.event_id)}
