"""A pet's clinical records as the parent sees them: which appointments, reminders, vaccines and
medications show, by the product's rules and the clinic's settings (no I/O)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from petportal_schemas import (
    AppointmentUpserted,
    ClinicSettingsChanged,
    MedicationPrescribed,
    ServiceReminderUpserted,
    VaccinationRecorded,
)
from petportal_schemas.pims import Capability, CapabilityMissing, supports

RecordKind = Literal["appointment", "reminder", "vaccination", "medication"]

# Reminders due further ahead than this are not shown yet (overdue ones always are).
REMINDER_HORIZON_MONTHS = 6
# Appointments with these statuses are past or off the calendar.
_NOT_UPCOMING = frozenset({"completed", "no_show", "checked_in"})


@dataclass(frozen=True)
class Clinic:
    clinic_id: str
    name: str | None = None
    pims: str = "other"
    timezone: str = "UTC"
    settings: ClinicSettingsChanged = field(default_factory=ClinicSettingsChanged)

    def require(self, capability: Capability) -> None:
        """`CapabilityMissing` when the clinic's PIMS does not provide this."""
        if not supports(self.pims, capability):
            raise CapabilityMissing(self.pims, capability)

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


@dataclass(frozen=True)
class PetRecord:
    """One clinical record of a pet, as the last event about it left it (`active` False once it ended:
    an appointment cancelled, a reminder done, a vaccination deleted)."""

    kind: RecordKind
    record_id: str
    patient_id: str | None
    payload: dict[str, Any]
    active: bool = True


@dataclass(frozen=True)
class Appointment:
    appointment: AppointmentUpserted
    local_start: datetime  # in the clinic's timezone


@dataclass(frozen=True)
class Reminder:
    reminder: ServiceReminderUpserted
    overdue: bool


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def visible(appointment: AppointmentUpserted, settings: ClinicSettingsChanged) -> bool:
    """Whether the clinic lets clients see this appointment (types and reasons case-insensitively)."""
    return settings.appointment_visibility.shows(appointment.appointment_type, appointment.reason)


def upcoming_appointments(records: Iterable[PetRecord], clinic: Clinic, now: datetime) -> list[Appointment]:
    """Appointments from now on that the clinic lets clients see, soonest first, in local time."""
    shown = []
    for record in records:
        if record.kind != "appointment" or not record.active:
            continue
        appointment = AppointmentUpserted.model_validate(record.payload)
        ends = appointment.starts_at + timedelta(minutes=appointment.duration_minutes)
        if ends < now or appointment.status in _NOT_UPCOMING or not visible(appointment, clinic.settings):
            continue
        shown.append(Appointment(appointment, appointment.starts_at.astimezone(clinic.zone)))
    return sorted(shown, key=lambda a: (a.appointment.starts_at, a.appointment.appointment_id))


def due_reminders(records: Iterable[PetRecord], today: date) -> list[Reminder]:
    """Services due: not done or booked, due within the next six months, overdue ones included."""
    horizon = add_months(today, REMINDER_HORIZON_MONTHS)
    shown = []
    for record in records:
        if record.kind != "reminder" or not record.active:
            continue
        reminder = ServiceReminderUpserted.model_validate(record.payload)
        if reminder.due_on <= horizon:
            shown.append(Reminder(reminder, overdue=reminder.due_on < today))
    return sorted(shown, key=lambda r: (r.reminder.due_on, r.reminder.service))


def current_vaccinations(records: Iterable[PetRecord], today: date) -> list[VaccinationRecorded]:
    """Vaccinations in force (not expired), the latest of each vaccine, by name."""
    latest: dict[str, VaccinationRecorded] = {}
    for record in records:
        if record.kind != "vaccination" or not record.active:
            continue
        vaccination = VaccinationRecorded.model_validate(record.payload)
        if vaccination.expires_on is not None and vaccination.expires_on < today:
            continue
        key = vaccination.name.casefold()
        if key not in latest or latest[key].given_on < vaccination.given_on:
            latest[key] = vaccination
    return sorted(latest.values(), key=lambda v: v.name.casefold())


def current_medications(records: Iterable[PetRecord], today: date) -> list[MedicationPrescribed]:
    """Active prescriptions that have not expired, newest first."""
    shown = []
    for record in records:
        if record.kind != "medication" or not record.active:
            continue
        medication = MedicationPrescribed.model_validate(record.payload)
        if medication.active and (medication.expires_on is None or medication.expires_on >= today):
            shown.append(medication)
    return sorted(shown, key=lambda m: (m.prescribed_on, m.prescription_id), reverse=True)
