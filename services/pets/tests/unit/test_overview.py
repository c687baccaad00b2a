"""The overview (the home screen's part): the same pets and appointments as the two lists, and the
reading of its one SQL statement's JSON."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.adapters.overview import overview_rows
from petportal_pets.domain import Clinic, Pet, PetRecord
from petportal_pets.service_layer import services
from petportal_pets.service_layer.overview import OverviewRows, parent_overview
from petportal_runtime.auth import ClientRef
from petportal_runtime.photos import Photo
from petportal_schemas import AppointmentUpserted, ClinicSettingsChanged

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def ref(clinic_id: str, client_id: str) -> ClientRef:
    return ClientRef(clinic_id=clinic_id, client_id=client_id)


def appointment(record_id: str, patient_id: str | None, hours: float, **kw: Any) -> PetRecord:
    event = AppointmentUpserted(
        appointment_id=record_id, patient_id=patient_id, starts_at=NOW + timedelta(hours=hours), **kw
    )
    return PetRecord("appointment", record_id, patient_id, event.model_dump(mode="json"))


def reader(uow: FakeUnitOfWork[Any]) -> Any:
    """The overview as the repositories read it (what the SQL statement must select)."""

    async def read(memberships: Collection[ClientRef]) -> OverviewRows:
        async with uow:
            repositories = uow.repositories
            pets = await repositories.pets.for_clients(memberships)
            photos = await repositories.photos.which(pets)
            records = await repositories.records.for_pets(pets, ["appointment"], include_unassigned=True)
            clinics = await repositories.clinics.get_many({m.clinic_id for m in memberships})
        listed = [replace(p, has_photo=(p.clinic_id, p.patient_id) in photos) for p in pets]
        return OverviewRows(listed, records, clinics)

    return read


async def test_the_overview_is_the_pets_list_and_the_appointments_list(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.clinics.register("clinic-1", "Happy Paws", "ezyvet", "Europe/London", NOW)
    hidden = ClinicSettingsChanged.model_validate(
        {"appointment_visibility": {"hidden_types": ["euthanasia"]}}
    )
    await repositories.clinics.set_settings("clinic-1", hidden, NOW)
    for clinic_id, client_id, patient_id, name in [
        ("clinic-1", "C-1", "p-1", "Rex"),
        ("clinic-1", "C-1", "p-2", "Ada"),
        ("clinic-2", "K-7", "p-1", "Zed"),
        ("clinic-1", "C-2", "p-9", "Not yours"),
    ]:
        repositories.pets.stored[(clinic_id, patient_id)] = Pet(
            clinic_id, client_id, patient_id, name, "feline"
        )
    repositories.photos.stored[("clinic-1", "p-2")] = Photo(b"jpeg", b"thumb", 1, 1)
    for clinic_id, client_id, record in [
        ("clinic-1", "C-1", appointment("a-1", "p-1", 48)),
        ("clinic-1", "C-1", appointment("a-2", "p-2", 24, appointment_type="Euthanasia")),
        ("clinic-1", "C-1", appointment("a-3", None, 72)),
        ("clinic-1", "C-1", appointment("a-4", "p-1", -24)),
        ("clinic-1", "C-2", appointment("a-9", "p-9", 5)),
        ("clinic-2", "K-7", appointment("b-1", "p-1", 5)),
    ]:
        await repositories.records.upsert(clinic_id, client_id, record, NOW)
    memberships = [ref("clinic-1", "C-1"), ref("clinic-2", "K-7")]

    overview = await parent_overview(reader(uow), memberships, NOW)

    pets = await services.parent_pets(uow, memberships)
    assert overview.pets == pets
    assert [p.name for p in overview.pets] == ["Ada", "Rex", "Zed"]
    assert [(p.clinic_name, p.has_photo) for p in overview.pets] == [
        ("Happy Paws", True),
        ("Happy Paws", False),
        (None, False),
    ]
    expected = await services.parent_appointments(uow, memberships, NOW)
    shown = [(a.appointment.appointment_id, pet.name if pet else None, c.clinic_id) for a, pet, c in expected]
    assert shown == [("b-1", "Zed", "clinic-2"), ("a-1", "Rex", "clinic-1"), ("a-3", None, "clinic-1")]
    assert [
        (a.appointment.appointment_id, pet.name if pet else None, c.clinic_id)
        for a, pet, c in overview.appointments
    ] == shown
    assert [a.local_start for a, _, _ in overview.appointments] == [a.local_start for a, _, _ in expected]


async def test_a_parent_without_pets_has_an_empty_overview(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.records.upsert("clinic-1", "C-1", appointment("a-3", None, 72), NOW)
    overview = await parent_overview(reader(uow), [ref("clinic-1", "C-1")], NOW)
    assert (overview.pets, overview.appointments) == ([], [])


def test_the_statements_json_becomes_the_repositories_domain_objects() -> None:
    payload = appointment("a-1", None, 1).payload
    rows = overview_rows(
        {"clinic-1", "clinic-2"},
        [
            {
                "clinic_id": "clinic-1",
                "client_id": "C-1",
                "patient_id": "p-1",
                "name": "Rex",
                "species": "canine",
                "breed": None,
                "sex": "male",
                "date_of_birth": "2020-01-02",
                "colour": None,
                "weight_kg": 21,  # PostgreSQL writes a whole float8 without its ".0"
                "microchip": None,
                "has_photo": True,
            }
        ],
        [["clinic-1", None, "a-1", payload]],
        [["clinic-1", "Happy Paws", "avimark", "Europe/London", {"phone": "+441234567890"}]],
    )

    [pet] = rows.pets
    assert pet == Pet(
        "clinic-1",
        "C-1",
        "p-1",
        "Rex",
        "canine",
        sex="male",
        date_of_birth=date(2020, 1, 2),
        weight_kg=21.0,
        has_photo=True,
    )
    assert isinstance(pet.weight_kg, float)
    assert rows.appointments == {("clinic-1", ""): [PetRecord("appointment", "a-1", None, payload, True)]}
    assert rows.clinics["clinic-1"] == Clinic(
        "clinic-1", "Happy Paws", "avimark", "Europe/London", ClinicSettingsChanged(phone="+441234567890")
    )
    assert rows.clinics["clinic-2"] == Clinic("clinic-2")  # not known yet: the default
