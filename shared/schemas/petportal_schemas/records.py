"""Clinical records from the PIMS, version 1: what `sync` publishes beyond contacts and signalment.

Every event here is published by `sync` on the sync topic, keyed `clinic_id:client_id` so one client's
records stay in order. Times are timezone-aware (UTC on the wire); the clinic's own timezone is in
`ClinicRegistered.timezone` and repeated where a consumer shows or schedules a local time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from . import topics
from .envelope import Event, register
from .events import PimsId

RemovalReason = Literal["deleted_in_pims", "missing_from_snapshot", "merged"]
BookingMode = Literal["none", "request", "direct"]
ShortText = Field(min_length=1, max_length=200)


# --- contacts and patients -------------------------------------------------------------------


@register
class ClientRemoved(Event):
    """The PIMS no longer has this contact (deleted, merged, or missing from the nightly snapshot)."""

    EVENT_TYPE = "ClientRemoved"
    VERSION = 1
    TOPIC = topics.SYNC

    reason: RemovalReason


@register
class PatientRemoved(Event):
    """The PIMS no longer has this pet for this client (deleted, moved to another client, or missing)."""

    EVENT_TYPE = "PatientRemoved"
    VERSION = 1
    TOPIC = topics.SYNC

    patient_id: PimsId
    reason: RemovalReason


@register
class PatientDeceased(Event):
    """The PIMS marked the pet deceased: it leaves the parent's lists, and nothing is sent about it."""

    EVENT_TYPE = "PatientDeceased"
    VERSION = 1
    TOPIC = topics.SYNC

    patient_id: PimsId
    deceased_on: date | None = None


# --- appointments ----------------------------------------------------------------------------


@register
class AppointmentUpserted(Event):
    """An appointment as the PIMS holds it now (booked, moved or changed)."""

    EVENT_TYPE = "AppointmentUpserted"
    VERSION = 1
    TOPIC = topics.SYNC

    appointment_id: PimsId
    patient_id: PimsId | None = None
    starts_at: AwareDatetime
    duration_minutes: int = Field(default=30, ge=1, le=24 * 60)
    timezone: str = Field(default="UTC", max_length=64)  # the clinic's IANA zone, for local times
    appointment_type: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=100)
    status: Literal["scheduled", "confirmed", "checked_in", "completed", "no_show"] = "scheduled"


@register
class AppointmentCancelled(Event):
    """The appointment was cancelled (or deleted) in the PIMS: its reminders are not sent."""

    EVENT_TYPE = "AppointmentCancelled"
    VERSION = 1
    TOPIC = topics.SYNC

    appointment_id: PimsId
    patient_id: PimsId | None = None


# --- service reminders -----------------------------------------------------------------------


@register
class ServiceReminderUpserted(Event):
    """A service due for a pet (vaccine, exam, dental…) as the PIMS holds it now."""

    EVENT_TYPE = "ServiceReminderUpserted"
    VERSION = 1
    TOPIC = topics.SYNC

    reminder_id: PimsId
    patient_id: PimsId
    service: str = ShortText
    service_code: str | None = Field(default=None, max_length=50)
    due_on: date


@register
class ServiceReminderCompleted(Event):
    """The reminder's reason is gone: the service was done, booked, or the reminder deleted in the PIMS.

    From this event on the reminder is neither shown nor sent."""

    EVENT_TYPE = "ServiceReminderCompleted"
    VERSION = 1
    TOPIC = topics.SYNC

    reminder_id: PimsId
    patient_id: PimsId
    reason: Literal["completed", "booked", "deleted"]
    completed_on: date | None = None


# --- vaccinations and medications ------------------------------------------------------------


@register
class VaccinationRecorded(Event):
    """A vaccine given to the pet, as the PIMS holds it now (recorded or corrected)."""

    EVENT_TYPE = "VaccinationRecorded"
    VERSION = 1
    TOPIC = topics.SYNC

    vaccination_id: PimsId
    patient_id: PimsId
    name: str = ShortText
    given_on: date
    expires_on: date | None = None
    lot: str | None = Field(default=None, max_length=50)
    manufacturer: str | None = Field(default=None, max_length=100)
    rabies_tag: str | None = Field(default=None, max_length=50)
    certificate_number: str | None = Field(default=None, max_length=50)


@register
class VaccinationRemoved(Event):
    """A vaccination entered in error was deleted in the PIMS."""

    EVENT_TYPE = "VaccinationRemoved"
    VERSION = 1
    TOPIC = topics.SYNC

    vaccination_id: PimsId
    patient_id: PimsId


@register
class MedicationPrescribed(Event):
    """A prescription for the pet as the PIMS holds it now (new, refilled, or changed)."""

    EVENT_TYPE = "MedicationPrescribed"
    VERSION = 1
    TOPIC = topics.SYNC

    prescription_id: PimsId
    patient_id: PimsId
    name: str = ShortText
    dose: str | None = Field(default=None, max_length=200)  # the label's instructions
    quantity: str | None = Field(default=None, max_length=50)
    refills_remaining: int = Field(default=0, ge=0, le=99)
    prescribed_on: date
    expires_on: date | None = None
    active: bool = True


# --- clinic settings -------------------------------------------------------------------------


class AppointmentVisibility(BaseModel):
    """Which appointments clients may see: none hidden by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Only these types are shown (None: every type). Compared case-insensitively.
    visible_types: list[str] | None = Field(default=None, max_length=100)
    # Appointments with one of these types or reasons are never shown (e.g. "euthanasia").
    hidden_types: list[str] = Field(default_factory=list, max_length=100)
    hidden_reasons: list[str] = Field(default_factory=list, max_length=100)

    def shows(self, appointment_type: str | None, reason: str | None) -> bool:
        """Whether clients may see an appointment of this type and reason (the same rules wherever an
        appointment is shown: pets' appointments, todo's appointments to confirm)."""
        kind = (appointment_type or "").casefold()
        if self.visible_types is not None and kind not in {t.casefold() for t in self.visible_types}:
            return False
        if kind and kind in {t.casefold() for t in self.hidden_types}:
            return False
        reason = (reason or "").casefold()
        return not (reason and reason in {r.casefold() for r in self.hidden_reasons})


@register
class ClinicSettingsChanged(Event):
    """The clinic's portal settings and public contact details, as the clinic (or its PIMS) set them."""

    EVENT_TYPE = "ClinicSettingsChanged"
    VERSION = 1
    TOPIC = topics.SYNC
    CLINIC_WIDE = True

    appointment_visibility: AppointmentVisibility = Field(default_factory=AppointmentVisibility)
    booking_mode: BookingMode = "none"
    live_chat: bool = False
    help_text: str | None = Field(default=None, max_length=1000)
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=300)
    website: str | None = Field(default=None, max_length=300)
    changed_at: datetime | None = None


# Every event of this module: `sync` publishes them all.
PUBLISHED_BY_SYNC: tuple[type[Event], ...] = (
    ClientRemoved,
    PatientRemoved,
    PatientDeceased,
    AppointmentUpserted,
    AppointmentCancelled,
    ServiceReminderUpserted,
    ServiceReminderCompleted,
    VaccinationRecorded,
    VaccinationRemoved,
    MedicationPrescribed,
    ClinicSettingsChanged,
)
