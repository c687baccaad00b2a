"""A client's erasure on the in-memory broker: sync deletes its copy of the client (rows, versions,
quarantined records), confirms once, and a PIMS that sends the client again makes a new client."""

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
from petportal_schemas import ClientDataErased, ClientErasureRequested, Envelope, topics
from petportal_sync.bootstrap import bootstrap
from petportal_sync.domain.erasure import client_traces
from petportal_sync.domain.records import record_text
from petportal_sync.service_layer import services
from petportal_sync.settings import SyncSettings

pytestmark = pytest.mark.unit

CLINIC, ERASED, KEPT = "clinic-1", "c1", "c2"


def client_records(client_id: str, patient_id: str, email: str, phone: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "contact",
            "client_id": client_id,
            "first_name": "Ann",
            "last_name": "Lee",
            "email": email,
            "phone": phone,
            "version": 7,
        },
        {
            "kind": "patient",
            "client_id": client_id,
            "patient_id": patient_id,
            "name": "Rex",
            "species": "Canine",
            "version": 3,
        },
        {"kind": "enrolment", "client_id": client_id, "program_code": "cp"},
        {
            "kind": "appointment",
            "client_id": client_id,
            "appointment_id": f"a-{patient_id}",
            "patient_id": patient_id,
            "starts_at": "2030-05-04T15:30:00Z",
        },
    ]


PROGRAM = {"kind": "program", "program_code": "cp", "name": "Care", "call_to_action": "Join", "offered": True}
ERASED_RECORDS = client_records(ERASED, "p1", "Ann.Lee@Example.com", "(415) 555-0123")
KEPT_RECORDS = client_records(KEPT, "p2", "bo@example.com", "415 555 0188")
# Quarantined records: of the erased client by id, by email only, by phone only (written another
# way); and one of the other client.
REJECTED = [
    {"kind": "patient", "client_id": ERASED, "patient_id": "p9", "species": "Canine"},
    {"kind": "contact", "first_name": "Ann", "last_name": "Lee", "email": "ann.lee@example.com"},
    {"kind": "contact", "first_name": "A", "last_name": "L", "phone": "+1 415-555-0123", "x": 1},
    {"kind": "patient", "client_id": KEPT, "patient_id": "p8", "species": "Canine"},
]


@dataclass
class Sync:
    broker: Any
    uow: FakeUnitOfWork[Any]
    store: Any
    dead_letters: list[DeadLetter]

    async def push(self, *records: dict[str, Any]) -> services.BatchResult:
        return await services.receive_records(
            self.uow, CLINIC, list(records), phone_region="US", pims="ezyvet"
        )

    async def erase(self, client_id: str = ERASED, at: datetime | None = None) -> Envelope:
        request = Envelope.wrap(
            ClientErasureRequested(erasure_id=uuid.uuid4()),
            clinic_id=CLINIC,
            client_id=client_id,
            producer="identity",
            occurred_at=at or datetime.now(UTC),
        )
        await publish_envelope(self.broker, request)
        return request

    def published(self, client_id: str) -> list[str]:
        return [e.event_type for e in self.uow.published if e.client_id == client_id]


@pytest.fixture
async def sync(uow: FakeUnitOfWork[Any], repositories: Any) -> AsyncIterator[Sync]:
    settings = SyncSettings(environment="test", database_url="postgresql+asyncpg://unit@127.0.0.1:1/unit")
    runtime = bootstrap(settings, unit_of_work=lambda: uow).runtime
    under_test = Sync(runtime.broker, uow, repositories.sync, record_dead_letters(runtime.broker))
    async with TestKafkaBroker(runtime.broker):
        yield under_test


async def test_an_erasure_deletes_syncs_copy_of_the_client_and_confirms_once(sync: Sync) -> None:
    await services.register_clinic(
        sync.uow, clinic_id=CLINIC, name="Maple", pims="ezyvet", sms_number=None, timezone="UTC"
    )
    result = await sync.push(PROGRAM, *ERASED_RECORDS, *KEPT_RECORDS, *REJECTED)
    assert (result.accepted, len(result.rejected)) == (9, 4)
    assert sync.published(ERASED) == sync.published(KEPT) != []

    request = await sync.erase()

    store = sync.store
    assert set(store.contacts) == {(CLINIC, KEPT)}
    assert set(store.patients) == {(CLINIC, "p2")}
    assert store.enrolments == {(CLINIC, KEPT, "cp")}
    assert {r.client_id for r in store.records.values()} == {KEPT}
    assert set(store.versions) == {(CLINIC, "contact", KEPT), (CLINIC, "patient", "p2")}
    assert [r.raw for _, r in store.rejected] == [record_text(REJECTED[3])]
    assert set(store.programs) == {(CLINIC, "cp")}  # the clinic's own rows stay
    assert sync.uow.erased == {(CLINIC, ERASED): request.occurred_at}

    # The outbox rows keyed to the client went; one confirmation, naming sync and the erasure.
    assert sync.published(ERASED) == ["ClientDataErased"]
    assert sync.published(KEPT) == [
        "ClientUpserted",
        "PatientUpserted",
        "ClientEnrolledInProgram",
        "AppointmentUpserted",
    ]
    [confirmation] = [e for e in sync.uow.published if e.client_id == ERASED]
    event, asked = confirmation.event(), request.event()
    assert isinstance(event, ClientDataErased)
    assert isinstance(asked, ClientErasureRequested)
    assert (event.service, event.erasure_id) == ("sync", asked.erasure_id)
    assert (confirmation.producer, confirmation.topic, confirmation.key) == (
        "sync",
        topics.ERASURE,
        f"{CLINIC}:{ERASED}",
    )
    assert ("sync", request.event_id) in sync.uow.claimed

    # The same request delivered again: applied once.
    await publish_envelope(sync.broker, request)
    assert sync.published(ERASED) == ["ClientDataErased"]
    assert sync.dead_letters == []


async def test_the_pims_sending_an_erased_client_again_makes_a_new_client(sync: Sync) -> None:
    await sync.push(PROGRAM, *ERASED_RECORDS)
    again = await sync.push(*ERASED_RECORDS)
    assert (again.accepted, again.rejected) == (4, [])
    assert len(sync.published(ERASED)) == 4  # a re-send changes nothing: nothing new is published

    request = await sync.erase()
    assert sync.published(ERASED) == ["ClientDataErased"]

    # The same records, same PIMS versions: sync's versions went with the rows, so they are new.
    result = await sync.push(*ERASED_RECORDS)
    assert (result.accepted, result.rejected) == (4, [])
    assert sync.published(ERASED) == [
        "ClientDataErased",
        "ClientUpserted",
        "PatientUpserted",
        "ClientEnrolledInProgram",
        "AppointmentUpserted",
    ]
    assert sync.store.contacts[(CLINIC, ERASED)]["email"] == "Ann.Lee@example.com"
    # Those events occur after the erasure: the other services' tombstones let them through.
    republished = [e for e in sync.uow.published if e.client_id == ERASED][1:]
    assert all(e.occurred_at > request.occurred_at for e in republished)


async def test_an_older_erasure_request_than_the_last_one_changes_nothing(sync: Sync) -> None:
    now = datetime.now(UTC)
    await sync.erase(at=now)
    await sync.push(*ERASED_RECORDS[:2])
    await sync.erase(at=now - timedelta(minutes=1))  # delayed, from before the first one
    assert set(sync.store.contacts) == {(CLINIC, ERASED)}
    assert sync.published(ERASED) == ["ClientDataErased", "ClientUpserted", "PatientUpserted"]


async def test_an_erasure_request_without_a_client_is_dead_lettered(sync: Sync) -> None:
    no_client = Envelope(
        event_type="ClientErasureRequested",
        event_version=1,
        clinic_id=CLINIC,
        producer="identity",
        payload={"erasure_id": str(uuid.uuid4())},
    )
    await publish_envelope(sync.broker, no_client)
    [parked] = sync.dead_letters
    assert (parked.consumer, parked.source_topic) == ("sync", topics.IDENTITY)
    assert "without a client_id" in parked.reason
    assert sync.uow.erased == {}


def test_a_quarantined_record_is_the_clients_by_id_email_or_phone_however_written() -> None:
    traces = client_traces("c1", "Ann.Lee@example.com", "+14155550123")
    assert traces.found_in(record_text({"client_id": "c1"}))
    assert traces.found_in(record_text({"email": "ANN.LEE@EXAMPLE.COM"}))
    for phone in ("4155550123", "(415) 555-0123", "+1 415.555.0123"):
        assert traces.found_in(record_text({"kind": "contact", "phone": phone}))
    # Another client whose id contains this one's, or another number: not the client's.
    assert not traces.found_in(record_text({"client_id": "c12", "phone": "4155550124"}))
    # A non-ASCII email is found as the record's ASCII text writes it.
    assert client_traces("c1", "zoë@example.com").found_in(record_text({"email": "Zoë@example.com"}))
    # A short national number is looked for with its country code.
    assert client_traces("c1", phone="+4930123").phone_digits == "4930123"
