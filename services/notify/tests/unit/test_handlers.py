"""notify's consumer on the in-memory broker, through the real use cases on an in-memory repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy.exc import IntegrityError

from petportal_devkit.consumers import DeadLetter, InMemoryTransactions, publish_envelope, record_dead_letters
from petportal_notify.bootstrap import bootstrap
from petportal_notify.domain.consent import Consent
from petportal_notify.service_layer import services
from petportal_notify.settings import NotifySettings
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, topics

pytestmark = pytest.mark.unit


@dataclass
class Notify:
    broker: Any
    transactions: InMemoryTransactions
    dead_letters: list[DeadLetter]
    numbers: dict[str, str | None] = field(default_factory=dict)  # sms number → clinic
    phones: dict[tuple[str, str], str | None] = field(default_factory=dict)
    consents: list[Consent] = field(default_factory=list)


@pytest.fixture
async def notify(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Notify]:
    settings = NotifySettings(environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit")
    runtime = bootstrap(settings).runtime
    under_test = Notify(
        runtime.broker,
        InMemoryTransactions().install(monkeypatch, runtime),
        record_dead_letters(runtime.broker),
    )

    class InMemoryNotify:
        def __init__(self, session: Any) -> None:
            pass

        async def upsert_clinic(self, clinic: Any) -> None:
            # The unique index on sms_number.
            if under_test.numbers.get(clinic.sms_number, clinic.clinic_id) != clinic.clinic_id:
                raise IntegrityError("INSERT INTO clinics", {}, Exception("uq_clinics_sms_number"))
            under_test.numbers[clinic.sms_number] = clinic.clinic_id

        async def upsert_contact(self, clinic_id: str, client_id: str, phone: str | None) -> None:
            under_test.phones[(clinic_id, client_id)] = phone

        async def ensure_consent(self, consent: Consent) -> None:
            under_test.consents.append(consent)

    monkeypatch.setattr(services, "NotifyRepository", InMemoryNotify)
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
