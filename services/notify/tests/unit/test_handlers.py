"""notify's consumer on the in-memory broker, through the real use cases on an in-memory repository."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from petportal_devkit.consumers import DeadLetter, publish_envelope, record_dead_letters
from petportal_devkit.fakes import FakeUnitOfWork
from petportal_notify.bootstrap import bootstrap
from petportal_notify.domain.consent import Consent
from petportal_notify.settings import NotifySettings
from petportal_schemas import (
    AppointmentRequestAnswered,
    ClientDataErased,
    ClientErasureRequested,
    ClientUpserted,
    ClinicRegistered,
    Envelope,
    RefillRequestDecided,
    topics,
)

pytestmark = pytest.mark.unit


@dataclass
class Notify:
    broker: Any
    transactions: FakeUnitOfWork[Any]
    dead_letters: list[DeadLetter]
    repository: Any

    @property
    def numbers(self) -> dict[str | None, str]:
        """sms number → clinic"""
        return {c.sms_number: c.clinic_id for c in self.repository.clinics.values()}

    @property
    def phones(self) -> dict[tuple[str, str], str | None]:
        return dict(self.repository.phones)

    @property
    def consents(self) -> list[Consent]:
        return list(self.repository.consents.values())


@pytest.fixture
async def notify(uow: FakeUnitOfWork[Any], repositories: Any) -> AsyncIterator[Notify]:
    settings = NotifySettings(environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit")
    runtime = bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Notify(runtime.broker, uow, record_dead_letters(runtime.broker), repositories.notify)
    async with TestKafkaBroker(runtime.broker):
        yield under_test


def clinic(clinic_id: str, number: str = "+15005550006") -> Envelope:
    registered = ClinicRegistered(name="Happy Paws", pims="ezyvet", sms_number=number)
    return Envelope.wrap(registered, clinic_id=clinic_id, client_id=None, producer="sync")


async def test_clinics_and_contacts_are_recorded_with_a_consent(notify: Notify) -> None:
    await publish_envelope(notify.broker, clinic("clinic-1"))
    contact = ClientUpserted(first_name="Ada", last_name="Lovelace", phone="+15005550101")
    await publish_envelope(
        notify.broker, Envelope.wrap(contact, clinic_id="clinic-1", client_id="C-1", producer="sync")
    )

    assert notify.numbers == {"+15005550006": "clinic-1"}
    assert notify.phones == {("clinic-1", "C-1"): "+15005550101"}
    assert [(c.clinic_id, c.client_id, c.sms_opted_in) for c in notify.consents] == [
        ("clinic-1", "C-1", True)
    ]


async def test_bad_events_are_dead_lettered_with_the_reason_and_the_consumer_carries_on(
    notify: Notify,
) -> None:
    await publish_envelope(notify.broker, clinic("clinic-1"))
    await notify.broker.publish(b"", topics.SYNC, key=b"clinic-2")
    taken = clinic("clinic-2")  # the number is clinic-1's
    await publish_envelope(notify.broker, taken)
    await publish_envelope(notify.broker, clinic("clinic-3", "+15005550007"))

    empty, conflict = notify.dead_letters
    assert empty.reason.startswith("invalid envelope: <root>: Invalid JSON")
    assert (conflict.reason, conflict.value) == (
        "the SMS number already belongs to another clinic",
        taken.to_bytes(),
    )
    assert {(d.consumer, d.source_topic) for d in notify.dead_letters} == {("notify", topics.SYNC)}
    assert notify.numbers == {"+15005550006": "clinic-1", "+15005550007": "clinic-3"}
    assert ("notify", taken.event_id) not in notify.transactions.claimed


async def test_an_erasure_request_on_the_identity_topic_erases_and_confirms_once(notify: Notify) -> None:
    await publish_envelope(notify.broker, clinic("clinic-1"))
    contact = ClientUpserted(first_name="Ada", last_name="Lovelace", phone="+15005550101")
    recorded = Envelope.wrap(contact, clinic_id="clinic-1", client_id="C-1", producer="sync")
    await publish_envelope(notify.broker, recorded)
    erase = ClientErasureRequested(erasure_id=uuid.uuid4())
    request = Envelope.wrap(erase, clinic_id="clinic-1", client_id="C-1", producer="identity")
    assert request.topic == topics.IDENTITY

    await publish_envelope(notify.broker, request)
    await publish_envelope(notify.broker, request)  # identity asks again until every service confirms

    assert (notify.phones, notify.consents) == ({}, [])
    [confirmation] = [e for e in notify.transactions.published if e.event_type == "ClientDataErased"]
    event = confirmation.event()
    assert isinstance(event, ClientDataErased)
    assert (event.service, event.erasure_id) == ("notify", erase.erasure_id)
    assert (confirmation.topic, confirmation.key) == (topics.ERASURE, "clinic-1:C-1")

    # Events about the client from before the erasure are refused (a redelivery, or the same record
    # published again by sync); one that occurred after it applies.
    await publish_envelope(notify.broker, recorded)
    await publish_envelope(notify.broker, recorded.model_copy(update={"event_id": uuid.uuid4()}))
    assert notify.phones == {}
    later = request.occurred_at + timedelta(seconds=1)
    newer = Envelope.wrap(contact, clinic_id="clinic-1", client_id="C-1", producer="sync", occurred_at=later)
    await publish_envelope(notify.broker, newer)
    assert notify.phones == {("clinic-1", "C-1"): "+15005550101"}
    assert notify.dead_letters == []


async def test_answers_to_requests_on_the_pets_topic_are_notified_once(notify: Notify) -> None:
    await publish_envelope(notify.broker, clinic("clinic-1"))
    contact = ClientUpserted(first_name="Ada", last_name="Lovelace", phone="+15005550101")
    await publish_envelope(
        notify.broker, Envelope.wrap(contact, clinic_id="clinic-1", client_id="C-1", producer="sync")
    )
    now = datetime.now(UTC)
    answer = AppointmentRequestAnswered(
        request_id=uuid.uuid4(),
        patient_id="P-1",
        outcome="accepted",
        appointment_at=now + timedelta(days=2),
        answered_at=now,
    )
    refill = RefillRequestDecided(
        request_id=uuid.uuid4(), patient_id="P-1", prescription_id="RX-1", outcome="approved", decided_at=now
    )
    for event in (answer, refill):
        envelope = Envelope.wrap(event, clinic_id="clinic-1", client_id="C-1", producer="pets")
        assert envelope.topic == topics.PETS
        await publish_envelope(notify.broker, envelope)
        await publish_envelope(notify.broker, envelope)  # redelivered

    assert sorted(notify.repository.deliveries) == [
        f"refill_decided:{refill.request_id}:approved:sms",
        f"request_answered:{answer.request_id}:accepted:sms",
    ]
    assert notify.dead_letters == []
