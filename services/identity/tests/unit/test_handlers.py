"""identity's consumer on the in-memory broker: envelopes in, use cases called, bad ones dead-lettered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters
from petportal_devkit.fakes import FakeUnitOfWork
from petportal_identity import bootstrap as identity_bootstrap
from petportal_identity.domain.keys import KeySet, SigningKey
from petportal_identity.domain.model import Contact
from petportal_identity.settings import IdentitySettings
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, ReminderSent, topics

pytestmark = pytest.mark.unit


@dataclass
class Identity:
    broker: Any
    transactions: FakeUnitOfWork[Any]
    dead_letters: list[DeadLetter]
    repository: Any

    @property
    def contacts(self) -> list[tuple[Contact, datetime]]:
        return list(self.repository.contacts.values())

    @property
    def accounts(self) -> list[tuple[str, str, str]]:
        return [
            (clinic, client, origin) for (clinic, client), (_, origin) in self.repository.accounts.items()
        ]

    @property
    def clinics(self) -> list[tuple[str, str]]:
        return [(clinic_id, name) for clinic_id, (name, _) in self.repository.clinics.items()]


@pytest.fixture
async def identity(
    monkeypatch: pytest.MonkeyPatch, uow: FakeUnitOfWork[Any], repositories: Any
) -> AsyncIterator[Identity]:
    monkeypatch.setattr(identity_bootstrap, "load_key_set", lambda _: KeySet(SigningKey.generate()))
    settings = IdentitySettings(environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit")
    runtime = identity_bootstrap.bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Identity(runtime.broker, uow, record_dead_letters(runtime.broker), repositories.identity)
    async with TestKafkaBroker(runtime.broker):
        yield under_test


ADA = ClientUpserted(first_name="Ada", last_name="Lovelace", email="ada@example.com", phone="+15555550123")


async def test_a_client_upserted_records_the_contact_once_however_often_it_is_delivered(
    identity: Identity,
) -> None:
    envelope = Envelope.wrap(ADA, clinic_id="clinic-1", client_id="C-1", producer="sync")
    await publish_envelope(identity.broker, envelope)
    await publish_envelope(identity.broker, envelope)

    assert identity.contacts == [
        (
            Contact("clinic-1", "C-1", "Ada", "Lovelace", "ada@example.com", "+15555550123"),
            envelope.occurred_at,
        )
    ]
    assert identity.transactions.claimed == {("identity", envelope.event_id)}


async def test_a_reminder_opens_the_clients_account_and_a_clinic_is_recorded(identity: Identity) -> None:
    reminder = ReminderSent(reminder_id="r-1", channel="sms", kind="service")
    await publish_envelope(
        identity.broker, Envelope.wrap(reminder, clinic_id="clinic-1", client_id="C-2", producer="notify")
    )
    clinic = ClinicRegistered(name="Happy Paws", pims="ezyvet")
    await publish_envelope(
        identity.broker, Envelope.wrap(clinic, clinic_id="clinic-1", client_id=None, producer="sync")
    )

    assert identity.accounts == [("clinic-1", "C-2", "reminder")]
    assert identity.clinics == [("clinic-1", "Happy Paws")]


async def test_bad_events_are_dead_lettered_with_the_reason_and_the_consumer_carries_on(
    identity: Identity,
) -> None:
    await identity.broker.publish(b"not json", topics.SYNC, key=b"clinic-1:C-3")
    wrong_payload = Envelope(
        event_type="ClientUpserted",
        event_version=1,
        clinic_id="clinic-1",
        client_id="C-3",
        producer="sync",
        payload={"first_name": "Ada", "last_name": "L", "phone": "555-0100"},
    )
    await publish_envelope(identity.broker, wrong_payload)
    # Well-formed, but a contact needs a client: never appliable.
    no_client = Envelope(
        event_type="ClientUpserted",
        event_version=1,
        clinic_id="clinic-1",
        producer="sync",
        payload=ADA.model_dump(mode="json"),
    )
    await publish_envelope(identity.broker, no_client)
    after = Envelope.wrap(ADA, clinic_id="clinic-1", client_id="C-4", producer="sync")
    await publish_envelope(identity.broker, after)

    reasons = [d.reason for d in identity.dead_letters]
    assert reasons[0].startswith("invalid envelope: <root>: Invalid JSON")
    assert reasons[1].startswith("invalid ClientUpserted v1: phone")
    assert reasons[2] == "ClientUpserted without a client_id"
    assert len(reasons) == 3
    assert {(d.consumer, d.source_topic) for d in identity.dead_letters} == {("identity", topics.SYNC)}
    assert identity.dead_letters[0].value == b"not json"
    assert [c.client_id for c, _ in identity.contacts] == ["C-4"]
    assert identity.transactions.claimed == {("identity", after.event_id)}
