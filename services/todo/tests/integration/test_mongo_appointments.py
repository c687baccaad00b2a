"""Appointments to confirm in the MongoDB read model on the real server: scheduled appointments, the
parent's answers and the clinic's visibility rules round trip, the same change written twice leaves
the same document, and appointments leave with their pet or client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import (
    AppointmentAnswered,
    AppointmentCancelled,
    AppointmentUpserted,
    ClientRemoved,
    ClinicSettingsChanged,
    Envelope,
    Event,
    PatientDeceased,
)
from petportal_schemas.records import AppointmentVisibility
from petportal_todo.adapters.mongo import EPOCH, MongoReadModel, make_client, parent_updates
from petportal_todo.domain import ScheduledAppointment, project, todo_list
from petportal_todo.service_layer.projection import apply_batch

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 4, 9, 0, 0, 123456, tzinfo=UTC)
SOON = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)


@pytest.fixture
async def read_model(mongo_url: str) -> AsyncIterator[MongoReadModel]:
    model = MongoReadModel(make_client(mongo_url), f"todo_appts_{uuid.uuid4().hex[:10]}")
    await model.ensure_indexes()
    yield model
    await model.client.drop_database(model.db.name)
    await model.close()


def env(event: Event, at: datetime = NOW - timedelta(days=1)) -> tuple[Envelope, Event]:
    return Envelope.wrap(event, clinic_id="c1", client_id="p1", producer="test", occurred_at=at), event


def upserted(
    appointment_id: str,
    patient_id: str | None = "pet.7",
    starts_at: datetime = SOON,
    status: str = "scheduled",
    appointment_type: str | None = "Exam",
) -> tuple[Envelope, Event]:
    return env(
        AppointmentUpserted(
            appointment_id=appointment_id,
            patient_id=patient_id,
            starts_at=starts_at,
            timezone="America/New_York",
            appointment_type=appointment_type,
            reason="Limping",
            status=status,
        )
    )


def answered(appointment_id: str) -> tuple[Envelope, Event]:
    return env(
        AppointmentAnswered(
            appointment_id=appointment_id, patient_id="pet.7", answer="confirm", answered_at=NOW
        )
    )


async def listed(read_model: MongoReadModel) -> list[tuple[str, str, str]]:
    parent, clinic = await read_model.views("c1", "p1")
    return [(i.kind, i.title, i.href) for i in todo_list(parent, clinic, now=NOW).items]


async def test_appointments_answers_and_visibility_round_trip(read_model: MongoReadModel) -> None:
    # The first write of the document is an answer (an upsert that inserts): a nested field.
    await apply_batch(read_model, [answered("a.1")])
    doc = await read_model.db["parents"].find_one({"_id": "c1:p1"})
    assert doc is not None
    assert doc["answered_appointments"] == {"a%2E1": (NOW - EPOCH) // timedelta(microseconds=1)}

    await apply_batch(
        read_model,
        [
            upserted("a.1"),  # answered: stays off the list
            upserted("a2", starts_at=SOON + timedelta(hours=1)),
            upserted("a3", patient_id=None),
            upserted("a4", starts_at=SOON + timedelta(days=3)),  # beyond the week
            upserted("a5", appointment_type="Euthanasia"),
        ],
    )
    parent, clinic = await read_model.views("c1", "p1")
    assert parent is not None
    assert clinic is None  # the clinic never sent its settings: nothing hidden
    assert ScheduledAppointment("a3", None, SOON, "America/New_York", "Exam", "Limping") in (
        parent.scheduled_appointments
    )
    assert parent.answered_appointment_ids == {"a.1"}
    assert await listed(read_model) == [
        ("appointment_to_confirm", "Please confirm your appointment on Thu 10 Dec at 10:30", "/pets"),
        ("appointment_to_confirm", "Please confirm your appointment on Thu 10 Dec at 10:30", "/pets/pet.7"),
        ("appointment_to_confirm", "Please confirm your appointment on Thu 10 Dec at 11:30", "/pets/pet.7"),
    ]

    # The clinic hides euthanasia appointments (read on every list), then restricts the types shown:
    # the settings written into a clinic document that exists.
    await apply_batch(
        read_model,
        [
            env(
                ClinicSettingsChanged(
                    appointment_visibility=AppointmentVisibility(hidden_types=["euthanasia"])
                )
            )
        ],
    )
    assert len(await listed(read_model)) == 2
    await apply_batch(
        read_model,
        [
            env(
                ClinicSettingsChanged(
                    appointment_visibility=AppointmentVisibility(visible_types=["vaccination"])
                )
            )
        ],
    )
    _, clinic = await read_model.views("c1", "p1")
    assert clinic is not None
    assert clinic.appointment_visibility == AppointmentVisibility(visible_types=["vaccination"])
    assert await listed(read_model) == []
    await apply_batch(read_model, [env(ClinicSettingsChanged())])
    assert len(await listed(read_model)) == 3


async def test_the_same_change_twice_and_the_ends_of_appointments(read_model: MongoReadModel) -> None:
    await apply_batch(read_model, [upserted("a1"), upserted("a2", patient_id="pet.8"), upserted("a3", None)])

    # Idempotent writes: the same change applied twice leaves the same document. Within it, a1 is
    # confirmed in the PIMS, a2 answered, a3 moved to a pet, a4 scheduled.
    change = project(
        [
            upserted("a1", status="confirmed"),
            answered("a2"),
            upserted("a3", patient_id="pet.8"),
            upserted("a4", starts_at=SOON + timedelta(hours=2)),
        ]
    ).parents["c1:p1"]
    await read_model.db["parents"].bulk_write(parent_updates(change, NOW))
    once = await read_model.db["parents"].find_one({"_id": "c1:p1"})
    await read_model.db["parents"].bulk_write(parent_updates(change, NOW))
    assert await read_model.db["parents"].find_one({"_id": "c1:p1"}) == once
    assert [href for _, _, href in await listed(read_model)] == ["/pets/pet.8", "/pets/pet.7"]

    # a2 re-sent still scheduled: answered, so not asked again; then cancelled: its answer forgotten.
    await apply_batch(read_model, [upserted("a2", patient_id="pet.8")])
    assert len(await listed(read_model)) == 2
    await apply_batch(read_model, [env(AppointmentCancelled(appointment_id="a2", patient_id="pet.8"))])
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.answered_appointment_ids == frozenset()

    # A pet's appointments go with it; the client's all go with them.
    await apply_batch(read_model, [env(PatientDeceased(patient_id="pet.8"))])
    assert [href for _, _, href in await listed(read_model)] == ["/pets/pet.7"]
    await apply_batch(read_model, [upserted("a5", None)])
    await apply_batch(read_model, [env(ClientRemoved(reason="deleted_in_pims"), NOW)])
    assert await listed(read_model) == []
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.scheduled_appointments == frozenset()
