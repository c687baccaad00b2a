"""PIMS records as connectors send them, validated one at a time.

Limits mirror the event contracts, so a record that validates here always makes a valid event. A
record holding text or numbers the portal does not accept (petportal_runtime.text) is rejected with
each such field; a rejected record is kept as JSON text that can always be stored (`record_text`).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)

from petportal_runtime.phone import DEFAULT_REGION, normalise_phone
from petportal_runtime.text import FORBIDDEN_CHARACTERS, escape_text, value_problems
from petportal_schemas.envelope import ID_PATTERN
from petportal_schemas.records import AppointmentVisibility, BookingMode


def _blank_to_none(value: Any) -> Any:
    """PIMS exports write missing values as empty strings."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _phone(value: str, info: ValidationInfo) -> str:
    region = (info.context or {}).get("phone_region", DEFAULT_REGION)
    return normalise_phone(value, region)


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("date of birth is in the future")
    return value


Blank = BeforeValidator(_blank_to_none)
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Text30 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
PimsId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN)]
ProgramCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Phone = Annotated[str, AfterValidator(_phone)]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Weight = Annotated[float, Field(gt=0, lt=2000)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Text1000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
# The PIMS's own version of the record: a row version (integer) or its modified-at time. A record
# older than the one stored changes nothing; without one, the last record sent wins.
Version = Annotated[int | AwareDatetime | None, Blank]


def version_key(version: int | datetime | None) -> int | None:
    """A version as one comparable integer (a modified-at time in microseconds since the epoch)."""
    if version is None or isinstance(version, int):
        return version
    delta = version.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactRecord(_Record):
    kind: Literal["contact"]
    client_id: PimsId
    first_name: Text100
    last_name: Text100
    email: Annotated[Email | None, Blank] = None
    phone: Annotated[Phone | None, Blank] = None
    version: Version = None


class ContactRemovedRecord(_Record):
    """The PIMS deleted (or merged away) the contact: the client's portal access and pets go."""

    kind: Literal["contact_removed"]
    client_id: PimsId
    version: Version = None


class PatientRecord(_Record):
    kind: Literal["patient"]
    client_id: PimsId
    patient_id: PimsId
    name: Text100
    species: Text50
    breed: Annotated[Text100 | None, Blank] = None
    sex: Annotated[Text30 | None, Blank] = None
    date_of_birth: Annotated[date | None, Blank, AfterValidator(_not_in_future)] = None
    colour: Annotated[Text50 | None, Blank] = None
    weight_kg: Annotated[Weight | None, Blank] = None
    microchip: Annotated[Text30 | None, Blank] = None
    deceased: bool = False
    deceased_on: Annotated[date | None, Blank] = None
    version: Version = None


class PatientRemovedRecord(_Record):
    kind: Literal["patient_removed"]
    client_id: PimsId
    patient_id: PimsId
    version: Version = None


class AppointmentRecord(_Record):
    kind: Literal["appointment"]
    client_id: PimsId
    appointment_id: PimsId
    patient_id: Annotated[PimsId | None, Blank] = None
    starts_at: AwareDatetime
    duration_minutes: int = Field(default=30, ge=1, le=24 * 60)
    appointment_type: Annotated[Text100 | None, Blank] = None
    reason: Annotated[Text200 | None, Blank] = None
    provider: Annotated[Text100 | None, Blank] = None
    status: Literal["scheduled", "confirmed", "checked_in", "completed", "no_show", "cancelled"] = "scheduled"
    version: Version = None


class ReminderRecord(_Record):
    """A service due for a pet. `booked`, `completed` and `deleted` end it: it is no longer shown or sent."""

    kind: Literal["reminder"]
    client_id: PimsId
    reminder_id: PimsId
    patient_id: PimsId
    service: Text200
    service_code: Annotated[Text50 | None, Blank] = None
    due_on: date
    status: Literal["due", "booked", "completed", "deleted"] = "due"
    version: Version = None


class VaccinationRecord(_Record):
    kind: Literal["vaccination"]
    client_id: PimsId
    vaccination_id: PimsId
    patient_id: PimsId
    name: Text200
    given_on: date
    expires_on: Annotated[date | None, Blank] = None
    lot: Annotated[Text50 | None, Blank] = None
    manufacturer: Annotated[Text100 | None, Blank] = None
    rabies_tag: Annotated[Text50 | None, Blank] = None
    certificate_number: Annotated[Text50 | None, Blank] = None
    deleted: bool = False
    version: Version = None


class MedicationRecord(_Record):
    kind: Literal["medication"]
    client_id: PimsId
    prescription_id: PimsId
    patient_id: PimsId
    name: Text200
    dose: Annotated[Text200 | None, Blank] = None
    quantity: Annotated[Text50 | None, Blank] = None
    refills_remaining: int = Field(default=0, ge=0, le=99)
    prescribed_on: date
    expires_on: Annotated[date | None, Blank] = None
    active: bool = True
    version: Version = None


class ClinicSettingsRecord(_Record):
    """The clinic's portal settings and public contact details (one per clinic)."""

    kind: Literal["clinic_settings"]
    appointment_visibility: AppointmentVisibility = Field(default_factory=AppointmentVisibility)
    booking_mode: BookingMode = "none"
    live_chat: bool = False
    help_text: Annotated[Text1000 | None, Blank] = None
    phone: Annotated[Text30 | None, Blank] = None
    email: Annotated[Email | None, Blank] = None
    address: Annotated[Text300 | None, Blank] = None
    website: Annotated[Text300 | None, Blank] = None
    version: Version = None


class SlotRecord(_Record):
    """A time the clinic offers for online booking (clinic-wide). `open` while the PIMS has it free;
    `booked` or `removed` once it has not. The portal holds and books only open slots."""

    kind: Literal["slot"]
    slot_id: PimsId
    starts_at: AwareDatetime
    duration_minutes: int = Field(default=30, ge=1, le=24 * 60)
    appointment_type: Annotated[Text100 | None, Blank] = None
    provider: Annotated[Text100 | None, Blank] = None
    status: Literal["open", "booked", "removed"] = "open"
    version: Version = None


class ProgramRecord(_Record):
    kind: Literal["program"]
    program_code: ProgramCode
    name: Text100
    call_to_action: Text100
    offered: bool


class EnrolmentRecord(_Record):
    kind: Literal["enrolment"]
    client_id: PimsId
    program_code: ProgramCode


# Clinical records kept as one JSON state each, keyed by kind and PIMS id (see domain.batch).
ClinicalRecord = AppointmentRecord | ReminderRecord | VaccinationRecord | MedicationRecord
PimsRecord = (
    ContactRecord
    | ContactRemovedRecord
    | PatientRecord
    | PatientRemovedRecord
    | ProgramRecord
    | EnrolmentRecord
    | AppointmentRecord
    | ReminderRecord
    | VaccinationRecord
    | MedicationRecord
    | ClinicSettingsRecord
    | SlotRecord
)
KINDS = (
    "contact",
    "contact_removed",
    "patient",
    "patient_removed",
    "program",
    "enrolment",
    "appointment",
    "reminder",
    "vaccination",
    "medication",
    "clinic_settings",
    "slot",
)

_record_adapter: TypeAdapter[PimsRecord] = TypeAdapter(Annotated[PimsRecord, Field(discriminator="kind")])


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class Rejection:
    index: int
    kind: str | None
    errors: tuple[FieldError, ...]


@dataclass(frozen=True)
class StoredRejection:
    """A rejected record as kept: `raw` is its `record_text`, `errors` its field errors."""

    id: uuid.UUID
    received_at: datetime
    index: int
    kind: str | None
    raw: str
    errors: list[dict[str, str]]
    source: str = "canonical"  # or the PIMS whose own shape the record is in


def record_kind(raw: Any) -> str | None:
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return escape_text(kind)[:50] if isinstance(kind, str) else None


def _field(loc: Any) -> str:
    return escape_text(".".join(str(part) for part in loc)) or "<record>"


def field_errors(exc: ValidationError, kind: str | None = None) -> tuple[FieldError, ...]:
    errors = []
    for err in exc.errors():
        loc = list(err["loc"])
        if loc and loc[0] == kind:  # the discriminated union puts the tag first
            loc = loc[1:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field, message = "kind", f"kind must be one of: {', '.join(KINDS)}"
        else:
            # Messages may quote the input (email-validator does): refused characters are escaped.
            field, message = _field(loc), escape_text(err["msg"].removeprefix("Value error, "))
        errors.append(FieldError(field, message))
    return tuple(errors)


_SCALARS = (str, int, bool, type(None))


def _plainly_acceptable(raw: Any) -> bool:
    """True for a flat JSON object of strings, integers, booleans, nulls and finite numbers with no
    refused character in a key or string: what most records are, for which `value_problems` (a walk
    that names each problem's place) would find nothing. False means "look closer", not "refused"."""
    if type(raw) is not dict:
        return False
    texts = []
    for key, value in raw.items():
        if type(key) is not str:
            return False
        texts.append(key)
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind not in _SCALARS:
            return False
    # One scan of all the record's text (line feeds are accepted, so they may join it).
    return FORBIDDEN_CHARACTERS.search("\n".join(texts)) is None


def validate_record(raw: Any, index: int, *, phone_region: str = DEFAULT_REGION) -> PimsRecord | Rejection:
    if not _plainly_acceptable(raw) and (problems := list(value_problems(raw))):
        return Rejection(index, record_kind(raw), tuple(FieldError(_field(p.loc), p.msg) for p in problems))
    try:
        return _record_adapter.validate_python(raw, context={"phone_region": phone_region})
    except ValidationError as exc:
        kind = record_kind(raw)
        return Rejection(index, kind, field_errors(exc, kind))


def record_text(raw: Any) -> str:
    """A record as the connector sent it, as JSON text that any database stores: ASCII only, so NUL,
    lone surrogates and every non-ASCII character are \\u escapes, and NaN or Infinity stay as
    those words."""
    return json.dumps(raw, ensure_ascii=True)
