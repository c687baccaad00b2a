"""A client's erasure on the in-memory broker: pets deletes what it holds about them, confirms once,
and refuses their events from before the erasure (a replay brings nothing back)."""

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
from petportal_pets.bootstrap import bootstrap
from petportal_pets.domain.forms import FormAssignment, FormSubmission
from petportal_pets.domain.refills import RefillRequest
from petportal_pets.domain.requests import AppointmentRequest
from petportal_pets.settings import PetsSettings
from petportal_runtime.photos import Photo
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClinicRegistered,
    Envelope,
    Event,
    PatientUpserted,
    VaccinationRecorded,
    topics,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ERASED_AT = AT + timedelta(hours=1)
CLINIC, ERASED, KEPT = "clinic-1", "C-1", "C-2"
FORM = uuid.uuid4()


@dataclass
class Pets:
    broker: Any
    uow: FakeUnitOfWork[Any]
    repositories: Any
    dead_letters: list[DeadLetter]

    async def send(self, event: Event, client_id: str | None, at: datetime) -> Envelope:
        envelope = Envelope.wrap(
            event, clinic_id=CLINIC, client_id=client_id, producer="sync", occurred_at=at
        )
        await publish_envelope(self.broker, envelope)
        return envelope


@pytest.fixture
async def pets(uow: FakeUnitOfWork[Any], repositories: Any) -> AsyncIterator[Pets]:
    settings = PetsSettings(environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit")
    runtime = bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Pets(runtime.broker, uow, repositories, record_dead_letters(runtime.broker))
    async with TestKafkaBroker(runtime.broker):
        yield under_test


def vaccination(patient_id: str) -> VaccinationRecorded:
    return VaccinationRecorded(
        vaccination_id=f"v-{patient_id}", patient_id=patient_id, name="DHPP", given_on=AT.date()
    )


async def test_an_erasure_deletes_the_clients_data_confirms_once_and_refuses_their_older_events(
    pets: Pets,
) -> None:
    await pets.send(ClinicRegistered(name="Maple Vets", pims="avimark", timezone="UTC"), None, AT)
    for client_id, patient_id, name in ((ERASED, "p-1", "Rex"), (KEPT, "p-2", "Bella")):
        await pets.send(PatientUpserted(patient_id=patient_id, name=name, species="canine"), client_id, AT)
        await pets.send(vaccination(patient_id), client_id, AT)
        pets.repositories.photos.stored[(CLINIC, patient_id)] = Photo(b"jpeg", b"thumb", 10, 10)
        appointment = AppointmentRequest.new(
            CLINIC, client_id, patient_id, "Limping", [AT + timedelta(days=1)], AT
        )
        pets.repositories.requests.stored[appointment.id] = appointment
        refill = RefillRequest(CLINIC, client_id, patient_id, f"m-{patient_id}", "Carprofen", "Running low")
        pets.repositories.refills.stored[refill.id] = refill
        assigned = FormAssignment(CLINIC, client_id, FORM, 1, "Surgery consent", patient_id=patient_id)
        pets.repositories.forms.assignments[assigned.id] = assigned
        answered = FormSubmission(CLINIC, client_id, assigned.id, FORM, 1, {"allergies": "none"}, AT)
        pets.repositories.forms.submissions[answered.id] = answered
    assert pets.uow.published == []

    erasure_id = uuid.uuid4()
    request = Envelope.wrap(
        ClientErasureRequested(erasure_id=erasure_id),
        clinic_id=CLINIC,
        client_id=ERASED,
        producer="identity",
        occurred_at=ERASED_AT,
    )
    await publish_envelope(pets.broker, request)

    # Everything of the erased client is gone; the other client's and the clinic's rows stay.
    assert set(pets.repositories.pets.stored) == {(CLINIC, "p-2")}
    assert set(pets.repositories.photos.stored) == {(CLINIC, "p-2")}
    assert [client for client, _, _ in pets.repositories.records.stored.values()] == [KEPT]
    assert [r.client_id for r in pets.repositories.requests.stored.values()] == [KEPT]
    assert [r.client_id for r in pets.repositories.refills.stored.values()] == [KEPT]
    assert [a.client_id for a in pets.repositories.forms.assignments.values()] == [KEPT]
    assert [f.client_id for f in pets.repositories.forms.submissions.values()] == [KEPT]
    assert pets.repositories.clinics.clinics[CLINIC].name == "Maple Vets"
    assert pets.uow.erased == {(CLINIC, ERASED): ERASED_AT}
    # One confirmation, keyed to the client, naming pets and the erasure.
    [confirmation] = pets.uow.published
    event = confirmation.event()
    assert isinstance(event, ClientDataErased)
    assert (event.service, event.erasure_id) == ("pets", erasure_id)
    assert (confirmation.producer, confirmation.key, confirmation.topic) == (
        "pets",
        f"{CLINIC}:{ERASED}",
        topics.ERASURE,
    )
    assert confirmation.trace == request.trace

    # The same request delivered again: nothing more deleted, nothing more published.
    await publish_envelope(pets.broker, request)
    assert pets.uow.published == [confirmation]
    assert ("pets", request.event_id) in pets.uow.claimed

    # A replay of the client's older events (new ids, occurred before the erasure) is refused...
    older = [
        await pets.send(PatientUpserted(patient_id="p-1", name="Rex", species="canine"), ERASED, AT),
        await pets.send(vaccination("p-1"), ERASED, ERASED_AT - timedelta(seconds=1)),
        await pets.send(PatientUpserted(patient_id="p-3", name="Old", species="canine"), ERASED, ERASED_AT),
    ]
    assert set(pets.repositories.pets.stored) == {(CLINIC, "p-2")}
    assert [client for client, _, _ in pets.repositories.records.stored.values()] == [KEPT]
    assert not {("pets", e.event_id) for e in older} & pets.uow.claimed
    # ...the other client's are not, and an event after the erasure is applied as usual.
    await pets.send(PatientUpserted(patient_id="p-4", name="Max", species="canine"), KEPT, AT)
    newer = await pets.send(
        PatientUpserted(patient_id="p-5", name="Luna", species="feline"),
        ERASED,
        ERASED_AT + timedelta(hours=1),
    )
    assert set(pets.repositories.pets.stored) == {(CLINIC, "p-2"), (CLINIC, "p-4"), (CLINIC, "p-5")}
    assert pets.repositories.pets.stored[(CLINIC, "p-5")].client_id == ERASED
    assert ("pets", newer.event_id) in pets.uow.claimed
    assert pets.uow.published == [confirmation]
    assert pets.dead_letters == []


async def test_an_erasure_request_without_a_client_is_dead_lettered(pets: Pets) -> None:
    no_client = Envelope(
        event_type="ClientErasureRequested",
        event_version=1,
        clinic_id=CLINIC,
        producer="identity",
        payload={"erasure_id": str(uuid.uuid4())},
    )
    await publish_envelope(pets.broker, no_client)

    [parked] = pets.dead_letters
    assert (parked.reason, parked.consumer, parked.source_topic) == (
        "ClientErasureRequested without client_id",
        "pets",
        topics.IDENTITY,
    )
    assert pets.uow.published == []
    assert pets.uow.erased == {}
