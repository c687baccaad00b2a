"""The whole clinical record from a PIMS: appointments, reminders, vaccinations, medications, clinic
settings and removals, each published once per change and never overtaken by an older version."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_schemas import (
    AppointmentCancelled,
    AppointmentUpserted,
    ClientRemoved,
    ClientUpserted,
    ClinicSettingsChanged,
    Event,
    MedicationPrescribed,
    PatientDeceased,
    PatientRemoved,
    PatientUpserted,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    VaccinationRecorded,
    VaccinationRemoved,
)
from petportal_sync.service_layer import services

pytestmark = pytest.mark.unit

CONTACT = {"kind": "contact", "client_id": "c1", "first_name": "Ann", "last_name": "Lee"}
PATIENT = {"kind": "patient", "client_id": "c1", "patient_id": "p1", "name": "Rex", "species": "Canine"}
APPOINTMENT = {
    "kind": "appointment",
    "client_id": "c1",
    "appointment_id": "a1",
    "patient_id": "p1",
    "starts_at": "2030-05-04T15:30:00Z",
    "appointment_type": "Vaccination",
    "reason": "Boosters",
}
REMINDER = {
    "kind": "reminder",
    "client_id": "c1",
    "reminder_id": "r1",
    "patient_id": "p1",
    "service": "Rabies booster",
    "due_on": "2030-06-01",
}
VACCINATION = {
    "kind": "vaccination",
    "client_id": "c1",
    "vaccination_id": "v1",
    "patient_id": "p1",
    "name": "Rabies (3 year)",
    "given_on": "2027-06-01",
    "expires_on": "2030-06-01",
    "rabies_tag": "RT-1",
}
MEDICATION = {
    "kind": "medication",
    "client_id": "c1",
    "prescription_id": "rx1",
    "patient_id": "p1",
    "name": "Carprofen 75 mg",
    "refills_remaining": 2,
    "prescribed_on": "2030-01-10",
}


@pytest.fixture
async def clinic(uow: FakeUnitOfWork[Any]) -> FakeUnitOfWork[Any]:
    await services.register_clinic(
        uow,
        clinic_id="clinic-1",
        name="Happy Paws",
        pims="ezyvet",
        sms_number=None,
        timezone="America/Chicago",
    )
    await receive(uow, CONTACT, PATIENT)
    uow.published.clear()
    return uow


async def receive(uow: FakeUnitOfWork[Any], *records: dict[str, Any]) -> services.BatchResult:
    return await services.receive_records(uow, "clinic-1", list(records), phone_region="US", pims="ezyvet")


def published(uow: FakeUnitOfWork[Any]) -> list[Event]:
    events = [envelope.event() for envelope in uow.published]
    uow.published.clear()
    return events


async def test_an_appointment_is_published_in_the_clinics_timezone_and_its_cancellation_once(
    clinic: FakeUnitOfWork[Any],
) -> None:
    assert (await receive(clinic, APPOINTMENT)).accepted == 1
    [upserted] = published(clinic)
    assert isinstance(upserted, AppointmentUpserted)
    assert upserted.starts_at == datetime.fromisoformat("2030-05-04T15:30:00+00:00")
    assert (upserted.timezone, upserted.appointment_type, upserted.patient_id) == (
        "America/Chicago",
        "Vaccination",
        "p1",
    )
    await receive(clinic, APPOINTMENT)
    assert published(clinic) == []  # the same record again changes nothing
    cancelled = {**APPOINTMENT, "status": "cancelled"}
    await receive(clinic, cancelled)
    assert published(clinic) == [AppointmentCancelled(appointment_id="a1", patient_id="p1")]
    await receive(clinic, cancelled)
    assert published(clinic) == []


async def test_a_reminder_ends_when_the_service_is_booked_or_done(clinic: FakeUnitOfWork[Any]) -> None:
    await receive(clinic, REMINDER)
    [due] = published(clinic)
    assert isinstance(due, ServiceReminderUpserted)
    assert (due.service, due.due_on) == ("Rabies booster", date(2030, 6, 1))
    await receive(clinic, {**REMINDER, "status": "booked"})
    assert published(clinic) == [ServiceReminderCompleted(reminder_id="r1", patient_id="p1", reason="booked")]
    await receive(clinic, {**REMINDER, "status": "completed"})
    assert published(clinic) == []  # already ended
    # A reminder first heard of as done has nothing to stop.
    await receive(clinic, {**REMINDER, "reminder_id": "r2", "status": "completed"})
    assert published(clinic) == []


async def test_vaccinations_and_medications_are_published_and_a_deleted_vaccination_removed(
    clinic: FakeUnitOfWork[Any],
) -> None:
    await receive(clinic, VACCINATION, MEDICATION)
    recorded, prescribed = published(clinic)
    assert isinstance(recorded, VaccinationRecorded)
    assert (recorded.rabies_tag, recorded.expires_on) == ("RT-1", date(2030, 6, 1))
    assert isinstance(prescribed, MedicationPrescribed)
    assert prescribed.refills_remaining == 2
    await receive(clinic, {**VACCINATION, "deleted": True})
    assert published(clinic) == [VaccinationRemoved(vaccination_id="v1", patient_id="p1")]


async def test_an_older_version_after_a_newer_one_changes_nothing(clinic: FakeUnitOfWork[Any]) -> None:
    newer = {**APPOINTMENT, "version": "2030-01-02T10:00:00Z", "reason": "Moved"}
    older = {**APPOINTMENT, "version": "2030-01-01T10:00:00Z", "reason": "Original"}
    await receive(clinic, newer)
    assert [e.reason for e in published(clinic) if isinstance(e, AppointmentUpserted)] == ["Moved"]
    result = await receive(clinic, older)
    assert (result.accepted, result.rejected) == (1, [])  # accepted, and overtaken
    assert published(clinic) == []
    await receive(clinic, {**CONTACT, "first_name": "Annie", "version": 7})
    await receive(clinic, {**CONTACT, "first_name": "Anne", "version": 6})
    assert [e.first_name for e in published(clinic) if isinstance(e, ClientUpserted)] == ["Annie"]


async def test_clinic_settings_are_published_once_per_change(clinic: FakeUnitOfWork[Any]) -> None:
    settings = {
        "kind": "clinic_settings",
        "booking_mode": "request",
        "live_chat": True,
        "appointment_visibility": {"hidden_types": ["Euthanasia"]},
    }
    await receive(clinic, settings)
    [changed] = published(clinic)
    assert isinstance(changed, ClinicSettingsChanged)
    assert (changed.booking_mode, changed.live_chat) == ("request", True)
    assert changed.appointment_visibility.hidden_types == ["Euthanasia"]
    await receive(clinic, settings)
    assert published(clinic) == []


async def test_removals_and_deaths_are_published(clinic: FakeUnitOfWork[Any]) -> None:
    await receive(clinic, {**PATIENT, "deceased": True, "deceased_on": "2030-02-01"})
    assert published(clinic) == [PatientDeceased(patient_id="p1", deceased_on=date(2030, 2, 1))]
    await receive(clinic, {"kind": "patient_removed", "client_id": "c1", "patient_id": "p1"})
    assert published(clinic) == [PatientRemoved(patient_id="p1", reason="deleted_in_pims")]
    await receive(clinic, {"kind": "contact_removed", "client_id": "c1"})
    [removed] = [(e, env.client_id) for env in clinic.published for e in [env.event()]]
    assert removed == (ClientRemoved(reason="deleted_in_pims"), "c1")
    clinic.published.clear()
    # The PIMS brings the client back: contact and pet are published again in full.
    await receive(clinic, CONTACT, PATIENT)
    assert [type(e) for e in published(clinic)] == [ClientUpserted, PatientUpserted]


async def test_a_record_naming_an_unknown_pet_is_rejected_with_the_field(clinic: FakeUnitOfWork[Any]) -> None:
    result = await receive(clinic, {**REMINDER, "patient_id": "p9"}, MEDICATION)
    assert result.accepted == 1
    [rejection] = result.rejected
    assert (rejection.index, rejection.kind, rejection.errors[0].field) == (0, "reminder", "patient_id")
    assert [type(e) for e in published(clinic)] == [MedicationPrescribed]


async def test_bad_clinical_fields_are_named() -> None:
    result = services.validate_records(
        [{**APPOINTMENT, "starts_at": "2030-05-04T15:30:00"}, {**MEDICATION, "refills_remaining": -1}], "US"
    )
    valid, rejected = result
    assert valid == []
    assert [(r.index, [e.field for e in r.errors]) for r in rejected] == [
        (0, ["starts_at"]),
        (1, ["refills_remaining"]),
    ]
