"""Each supported PIMS's own record shapes (the samples in docs/pims/samples, the pages' examples)
become the canonical records, and a bad native record is explained in the PIMS's own field names."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from petportal_sync.domain.adapters import ADAPTERS
from petportal_sync.domain.records import (
    AppointmentRecord,
    ContactRecord,
    MedicationRecord,
    PatientRecord,
    ReminderRecord,
    VaccinationRecord,
)
from petportal_sync.service_layer import services

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[4] / "docs" / "pims" / "samples"
PIMS = sorted(ADAPTERS)


def sample(pims: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((SAMPLES / f"{pims}.json").read_text())["records"]
    return records


def test_there_is_a_sample_and_a_page_for_every_pims() -> None:
    assert PIMS == ["avimark", "cornerstone", "ezyvet", "impromed", "pulse"]
    for pims in PIMS:
        page = (SAMPLES.parent / f"{pims}.md").read_text()
        assert f"samples/{pims}.json" in page
        for resource in ADAPTERS[pims].resources.values():
            for field in resource.fields:  # the mapping table names every native field
                assert f"`{field.native}`" in page, (pims, field.native)


@pytest.mark.parametrize("pims", PIMS)
def test_a_pims_sample_maps_to_the_canonical_records(pims: str) -> None:
    valid, rejected, _ = services.validate_native_records(ADAPTERS[pims], sample(pims), "US")
    assert rejected == []
    by_type = {type(record): record for _, record in valid}
    contact = by_type[ContactRecord]
    assert isinstance(contact, ContactRecord)
    assert (contact.first_name, contact.email, contact.phone) == ("Ada", "ada@example.com", "+14155550123")
    patient = by_type[PatientRecord]
    assert isinstance(patient, PatientRecord)
    assert (patient.name, patient.microchip, patient.client_id) == (
        "Biscuit",
        "985112345678901",
        contact.client_id,
    )
    assert patient.sex is not None
    assert "neutered" in patient.sex.lower()
    assert patient.date_of_birth == date(2020, 6, 2)
    appointment = by_type[AppointmentRecord]
    assert isinstance(appointment, AppointmentRecord)
    assert appointment.starts_at.astimezone(UTC) == datetime(2030, 1, 1, 15, 30, tzinfo=UTC)
    assert appointment.duration_minutes == 30
    assert appointment.status in ("scheduled", "confirmed")
    vaccination = by_type[VaccinationRecord]
    assert isinstance(vaccination, VaccinationRecord)
    assert (vaccination.rabies_tag, vaccination.lot, vaccination.deleted) == ("RT-4471", "L123", False)
    medication = by_type[MedicationRecord]
    assert isinstance(medication, MedicationRecord)
    assert medication.refills_remaining == 2
    if pims != "ezyvet":  # ezyVet has no reminders capability
        reminder = by_type[ReminderRecord]
        assert isinstance(reminder, ReminderRecord)
        assert (reminder.service, reminder.due_on, reminder.status) == (
            "DHPP booster",
            date(2030, 2, 1),
            "due",
        )
    assert all(record.version is not None for _, record in valid if hasattr(record, "version"))


BAD = {
    "ezyvet": (
        [
            {
                "animal": {
                    "id": 9,
                    "contact_id": 1001,
                    "name": "",
                    "species_name": "Canine",
                    "date_of_birth": "soon",
                }
            }
        ],
        {"animal.name", "animal.date_of_birth"},
    ),
    "cornerstone": (
        [{"table": "Patient", "row": {"PatientId": "P9", "ClientId": "C1001", "Species": "Canine"}}],
        {"row.Name"},
    ),
    "avimark": (
        [
            {
                "table": "ANIMAL",
                "row": {
                    "ANIMAL_ID": "9",
                    "CLIENT_ID": "1001",
                    "NAME": "Rex",
                    "SPECIES": "Canine",
                    "BIRTHDAY": "31/31/2020",
                },
            }
        ],
        {"row.BIRTHDAY"},
    ),
    "impromed": (
        [
            {
                "table": "Clients",
                "row": {"ClientNumber": 7, "FirstName": "Bo", "LastName": "Ng", "MobilePhone": "12"},
            }
        ],
        {"row.MobilePhone"},
    ),
    "pulse": (
        [
            {
                "resourceType": "patient",
                "id": "p9",
                "clientId": "c-1001",
                "name": "Rex",
                "species": "Canine",
                "weight": {"kg": -3},
            }
        ],
        {"weight.kg"},
    ),
}


@pytest.mark.parametrize("pims", PIMS)
def test_a_bad_native_record_is_rejected_alone_in_the_pims_own_field_names(pims: str) -> None:
    records, fields = BAD[pims]
    valid, rejected, _ = services.validate_native_records(ADAPTERS[pims], [*sample(pims)[:2], *records], "US")
    assert len(valid) == 2
    [rejection] = rejected
    assert rejection.index == 2
    assert {e.field for e in rejection.errors} == fields


@pytest.mark.parametrize(
    "raw", [{"invoice": {"id": 1}}, {"a": {}, "b": {}}, ["not", "an", "object"], {"animal": 5}]
)
def test_an_unknown_or_malformed_ezyvet_record_says_what_was_expected(raw: Any) -> None:
    _, [rejection], _ = services.validate_native_records(ADAPTERS["ezyvet"], [raw], "US")
    [error] = rejection.errors
    assert "ezyvet" in error.message


def test_a_removed_native_record_becomes_a_removal() -> None:
    records = [
        {"contact": {"id": 5, "first_name": "A", "last_name": "B", "active": 0}},
        {"table": "Patient", "row": {"PatientId": "P1", "ClientId": "C1", "Inactive": "Y"}},
    ]
    ezyvet, _, _ = services.validate_native_records(ADAPTERS["ezyvet"], records[:1], "US")
    assert ezyvet[0][1].kind == "contact_removed"
    cornerstone, _, _ = services.validate_native_records(ADAPTERS["cornerstone"], records[1:], "US")
    assert cornerstone[0][1].kind == "patient_removed"
