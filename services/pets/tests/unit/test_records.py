"""What a parent sees of a pet's records: the reminder, appointment and vaccine rules, across clinics,
and the ID card (its PDF read back as text)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.adapters.idcard_pdf import render_id_card
from petportal_pets.domain import Clinic, Pet
from petportal_pets.domain.records import add_months
from petportal_pets.service_layer import services
from petportal_runtime.auth import ClientRef
from petportal_schemas import (
    AppointmentCancelled,
    AppointmentUpserted,
    ClientRemoved,
    ClinicRegistered,
    ClinicSettingsChanged,
    Envelope,
    Event,
    PatientDeceased,
    PatientUpserted,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    VaccinationRecorded,
    VaccinationRemoved,
)
from petportal_schemas.pims import CapabilityMissing
from petportal_schemas.records import AppointmentVisibility

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
TODAY = NOW.date()
ME = [ClientRef(clinic_id="clinic-1", client_id="C-1")]


async def deliver(
    uow: FakeUnitOfWork[Any],
    event: Event,
    *,
    clinic: str = "clinic-1",
    client: str | None = "C-1",
    at: datetime | None = None,
) -> None:
    envelope = Envelope.wrap(
        event,
        clinic_id=clinic,
        client_id=None if event.CLINIC_WIDE else client,
        producer="sync",
        occurred_at=at or datetime.now(UTC),
    )
    match event:
        case PatientUpserted():
            await services.record_patient(uow, envelope, event)
        case ClinicRegistered() | ClinicSettingsChanged():
            await services.record_clinic(uow, envelope, event)
        case PatientDeceased() | ClientRemoved():
            await services.record_pet_gone(uow, envelope, event)
        case _:
            await services.record_clinical(uow, envelope, event)  # type: ignore[arg-type]


@pytest.fixture
async def rex(uow: FakeUnitOfWork[Any]) -> tuple[Pet, Clinic]:
    await deliver(uow, ClinicRegistered(name="Happy Paws", pims="cornerstone", timezone="America/Chicago"))
    await deliver(
        uow, PatientUpserted(patient_id="p1", name="Rex", species="Canine", microchip="985112345678901")
    )
    return await services.parent_pet(uow, ME, "p1")


def reminder(reminder_id: str, due_on: date) -> ServiceReminderUpserted:
    return ServiceReminderUpserted(
        reminder_id=reminder_id, patient_id="p1", service=f"Service {reminder_id}", due_on=due_on
    )


async def test_reminders_show_overdue_and_the_next_six_months_and_leave_when_done(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    await deliver(uow, reminder("overdue", TODAY - timedelta(days=30)))
    await deliver(uow, reminder("soon", TODAY + timedelta(days=20)))
    await deliver(uow, reminder("edge", add_months(TODAY, 6)))
    await deliver(uow, reminder("later", add_months(TODAY, 6) + timedelta(days=1)))
    await deliver(uow, reminder("booked", TODAY + timedelta(days=5)))
    await deliver(uow, ServiceReminderCompleted(reminder_id="booked", patient_id="p1", reason="booked"))
    shown = await services.pet_reminders(uow, *rex, TODAY)
    assert [(r.reminder.reminder_id, r.overdue) for r in shown] == [
        ("overdue", True),
        ("soon", False),
        ("edge", False),
    ]


async def test_reminders_of_a_pims_without_them_are_an_error_not_an_empty_list(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    await deliver(uow, ClinicRegistered(name="Happy Paws", pims="ezyvet"))
    pet, clinic = await services.parent_pet(uow, ME, "p1")
    with pytest.raises(CapabilityMissing, match="ezyvet"):
        await services.pet_reminders(uow, pet, clinic, TODAY)
    await deliver(uow, ClinicRegistered(name="Happy Paws", pims="other"))
    with pytest.raises(CapabilityMissing):
        await services.id_card(uow, *(await services.parent_pet(uow, ME, "p1")), TODAY)


async def test_appointments_are_upcoming_visible_and_in_the_clinics_time(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    def appointment(
        appointment_id: str, hours: float, kind: str = "Exam", reason: str | None = None
    ) -> AppointmentUpserted:
        return AppointmentUpserted(
            appointment_id=appointment_id,
            patient_id="p1",
            starts_at=NOW + timedelta(hours=hours),
            appointment_type=kind,
            reason=reason,
        )

    await deliver(
        uow,
        ClinicSettingsChanged(
            appointment_visibility=AppointmentVisibility(
                hidden_types=["euthanasia"], hidden_reasons=["Internal review"]
            )
        ),
    )
    for event in (
        appointment("later", 48),
        appointment("sooner", 3),
        appointment("past", -5),
        appointment("hidden", 4, kind="Euthanasia"),
        appointment("private", 5, reason="internal review"),
        appointment("cancelled", 6),
    ):
        await deliver(uow, event)
    await deliver(uow, AppointmentCancelled(appointment_id="cancelled", patient_id="p1"))
    pet, clinic = await services.parent_pet(uow, ME, "p1")
    shown = await services.pet_appointments(uow, pet, clinic, NOW)
    assert [a.appointment.appointment_id for a in shown] == ["sooner", "later"]
    assert str(shown[0].local_start.tzinfo) == "America/Chicago"
    assert shown[0].local_start == shown[0].appointment.starts_at
    everything = await services.parent_appointments(uow, ME, NOW)
    assert [(a.appointment.appointment_id, p.name if p else None) for a, p, _ in everything] == [
        ("sooner", "Rex"),
        ("later", "Rex"),
    ]


async def test_an_older_event_does_not_bring_back_an_ended_record(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    at = datetime.now(UTC)
    await deliver(uow, reminder("r1", TODAY), at=at)
    await deliver(
        uow,
        ServiceReminderCompleted(reminder_id="r1", patient_id="p1", reason="completed"),
        at=at + timedelta(seconds=1),
    )
    await deliver(uow, reminder("r1", TODAY), at=at - timedelta(seconds=1))  # late, redelivered
    assert await services.pet_reminders(uow, *rex, TODAY) == []


async def test_a_parent_sees_pets_of_every_clinic_where_they_are_a_client_and_no_others(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    await deliver(uow, ClinicRegistered(name="Oak Vets", pims="avimark"), clinic="clinic-2")
    await deliver(
        uow, PatientUpserted(patient_id="p1", name="Mia", species="Feline"), clinic="clinic-2", client="K-9"
    )
    await deliver(
        uow, PatientUpserted(patient_id="p7", name="Zed", species="Feline"), clinic="clinic-3", client="C-1"
    )
    both = [*ME, ClientRef(clinic_id="clinic-2", client_id="K-9")]
    pets = await services.parent_pets(uow, both)
    assert [(p.name, p.clinic_name) for p in pets] == [("Mia", "Oak Vets"), ("Rex", "Happy Paws")]
    with pytest.raises(services.AmbiguousPet):
        await services.parent_pet(uow, both, "p1")
    assert (await services.parent_pet(uow, both, "p1", "clinic-2"))[0].name == "Mia"
    with pytest.raises(services.PetNotFound):
        await services.parent_pet(uow, both, "p7")  # clinic-3's client C-1 is someone else


async def test_deceased_pets_and_removed_clients_pets_are_not_listed(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    await deliver(uow, PatientUpserted(patient_id="p2", name="Ada", species="Feline"))
    await deliver(uow, PatientDeceased(patient_id="p1"))
    assert [p.name for p in await services.parent_pets(uow, ME)] == ["Ada"]
    await deliver(uow, ClientRemoved(reason="missing_from_snapshot"))
    assert await services.parent_pets(uow, ME) == []


async def test_the_id_card_pdf_holds_the_signalment_and_every_current_vaccine(
    uow: FakeUnitOfWork[Any], rex: tuple[Pet, Clinic]
) -> None:
    for vaccination_id, name, expires in (
        ("v1", "Rabies 3 year", TODAY + timedelta(days=300)),
        ("v2", "DHPP", None),
        ("v3", "Leptospirosis", TODAY - timedelta(days=1)),
        ("v4", "Bordetella", TODAY + timedelta(days=30)),
    ):
        await deliver(
            uow,
            VaccinationRecorded(
                vaccination_id=vaccination_id,
                patient_id="p1",
                name=name,
                given_on=TODAY - timedelta(days=60),
                expires_on=expires,
                rabies_tag="RT-4471" if vaccination_id == "v1" else None,
            ),
        )
    await deliver(uow, VaccinationRemoved(vaccination_id="v4", patient_id="p1"))
    card = await services.id_card(uow, *rex, TODAY)
    assert [v.name for v in card.vaccinations] == ["DHPP", "Rabies 3 year"]
    pdf = render_id_card(card, TODAY)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in ("Rex", "985112345678901", "Canine", "Happy Paws", "DHPP", "Rabies 3 year", "RT-4471"):
        assert expected in text
    assert "Leptospirosis" not in text
    assert "Bordetella" not in text
