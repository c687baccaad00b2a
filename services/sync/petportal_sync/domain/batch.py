"""What a batch of valid records changes, given what the clinic's data is now (no I/O).

Records are applied kind by kind — contacts, clinic settings, programs, patients, enrolments, then
clinical records, and removals last — so a record may come in the same batch as the contact, pet or
program it refers to. A record that changes nothing produces no event, so connectors re-sending the
same data do not flood the topics; a record older than the stored one (by the PIMS's `version`)
changes nothing either, whatever order the PIMS's changes arrive in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from petportal_schemas import (
    AppointmentCancelled,
    AppointmentUpserted,
    ClientEnrolledInProgram,
    ClientRemoved,
    ClientUpserted,
    ClinicSettingsChanged,
    Event,
    MedicationPrescribed,
    PatientDeceased,
    PatientRemoved,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    VaccinationRecorded,
    VaccinationRemoved,
)

from .records import (
    AppointmentRecord,
    ClinicalRecord,
    ClinicSettingsRecord,
    ContactRecord,
    ContactRemovedRecord,
    EnrolmentRecord,
    FieldError,
    MedicationRecord,
    PatientRecord,
    PatientRemovedRecord,
    PimsRecord,
    ProgramRecord,
    Rejection,
    ReminderRecord,
    SlotRecord,
    VaccinationRecord,
    field_errors,
    version_key,
)

State = dict[str, Any]
RecordKey = tuple[str, str]  # (kind, PIMS id) of a clinical record; ("clinic_settings", "clinic")

SETTINGS_KEY: RecordKey = ("clinic_settings", "clinic")


@dataclass(frozen=True)
class StoredRecord:
    """A clinical record (or the clinic's settings) as stored: its JSON state and PIMS version."""

    client_id: str | None
    state: State
    version: int | None = None


@dataclass
class ClinicData:
    """The stored rows a batch refers to (only those), keyed by their PIMS ids."""

    contacts: dict[str, State] = field(default_factory=dict)
    patients: dict[str, State] = field(default_factory=dict)
    programs: dict[str, State] = field(default_factory=dict)
    enrolments: set[tuple[str, str]] = field(default_factory=set)
    records: dict[RecordKey, StoredRecord] = field(default_factory=dict)
    # The PIMS versions of stored contacts and patients ("contact"/"patient", id), where known.
    versions: dict[RecordKey, int] = field(default_factory=dict)
    timezone: str = "UTC"


@dataclass
class PendingEvent:
    event: Event
    client_id: str | None


@dataclass
class BatchPlan:
    contacts: dict[str, State] = field(default_factory=dict)
    patients: dict[str, State] = field(default_factory=dict)
    programs: dict[str, State] = field(default_factory=dict)
    enrolments: list[tuple[str, str]] = field(default_factory=list)
    records: dict[RecordKey, StoredRecord] = field(default_factory=dict)
    versions: dict[RecordKey, int] = field(default_factory=dict)
    removed_contacts: list[str] = field(default_factory=list)
    removed_patients: list[str] = field(default_factory=list)
    # Bookable slots: written with their version check in the database (no event: sync serves them).
    slots: list[SlotRecord] = field(default_factory=list)
    events: list[PendingEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    accepted: int = 0


def contact_state(record: ContactRecord) -> State:
    return record.model_dump(exclude={"kind", "client_id", "version"})


def patient_state(record: PatientRecord) -> State:
    return record.model_dump(exclude={"kind", "patient_id", "version"})


def record_key(record: ClinicalRecord) -> RecordKey:
    match record:
        case AppointmentRecord():
            return ("appointment", record.appointment_id)
        case ReminderRecord():
            return ("reminder", record.reminder_id)
        case VaccinationRecord():
            return ("vaccination", record.vaccination_id)
        case MedicationRecord():
            return ("medication", record.prescription_id)


def record_state(record: ClinicalRecord | ClinicSettingsRecord) -> State:
    """What is stored and compared: JSON values, as they come back from the database."""
    return record.model_dump(mode="json", exclude={"kind", "version", "client_id"})


@dataclass
class References:
    """What a batch's records refer to: the stored rows `plan_batch` needs to see (`ClinicData`).
    Clinical records as (key, client_id); the clinic's settings as (SETTINGS_KEY, None)."""

    client_ids: set[str] = field(default_factory=set)
    patient_ids: set[str] = field(default_factory=set)
    program_codes: set[str] = field(default_factory=set)
    enrolments: set[tuple[str, str]] = field(default_factory=set)
    records: set[tuple[RecordKey, str | None]] = field(default_factory=set)


def references(records: list[PimsRecord]) -> References:
    """One pass over the records (a batch holds thousands: one type test each, not one a set)."""
    refs = References()
    for record in records:
        match record:
            case AppointmentRecord() | ReminderRecord() | VaccinationRecord() | MedicationRecord():
                refs.client_ids.add(record.client_id)
                if record.patient_id is not None:
                    refs.patient_ids.add(record.patient_id)
                refs.records.add((record_key(record), record.client_id))
            case ContactRecord() | ContactRemovedRecord():
                refs.client_ids.add(record.client_id)
            case PatientRecord() | PatientRemovedRecord():
                refs.client_ids.add(record.client_id)
                refs.patient_ids.add(record.patient_id)
            case EnrolmentRecord():
                refs.client_ids.add(record.client_id)
                refs.program_codes.add(record.program_code)
                refs.enrolments.add((record.client_id, record.program_code))
            case ProgramRecord():
                refs.program_codes.add(record.program_code)
            case ClinicSettingsRecord():
                refs.records.add((SETTINGS_KEY, None))
    return refs


def is_stale(stored: int | None, new: int | None) -> bool:
    """An older PIMS version than the one stored: a change that was overtaken, so it is ignored."""
    return stored is not None and new is not None and new < stored


def clinical_events(record: ClinicalRecord, previous: State | None, timezone: str) -> list[Event]:
    """The events of a changed clinical record, given its previous state (None: never seen)."""
    match record:
        case AppointmentRecord(status="cancelled"):
            if previous is None or previous["status"] == "cancelled":
                return []
            return [AppointmentCancelled(appointment_id=record.appointment_id, patient_id=record.patient_id)]
        case AppointmentRecord():
            fields = record.model_dump(exclude={"kind", "client_id", "version"})
            return [AppointmentUpserted(**fields, timezone=timezone)]
        case ReminderRecord(status="due"):
            fields = record.model_dump(exclude={"kind", "client_id", "version", "status"})
            return [ServiceReminderUpserted(**fields)]
        case ReminderRecord(status=status):
            if previous is None or previous["status"] != "due":
                return []
            return [
                ServiceReminderCompleted(
                    reminder_id=record.reminder_id,
                    patient_id=record.patient_id,
                    reason=status,
                )
            ]
        case VaccinationRecord(deleted=True):
            if previous is None or previous["deleted"]:
                return []
            return [VaccinationRemoved(vaccination_id=record.vaccination_id, patient_id=record.patient_id)]
        case VaccinationRecord():
            return [
                VaccinationRecorded(**record.model_dump(exclude={"kind", "client_id", "version", "deleted"}))
            ]
        case MedicationRecord():
            return [MedicationPrescribed(**record.model_dump(exclude={"kind", "client_id", "version"}))]


def program_state(record: ProgramRecord) -> State:
    return record.model_dump(exclude={"kind", "program_code"})


def has_changed(current: State | None, new: State) -> bool:
    return current is None or any(current.get(key) != value for key, value in new.items())


def program_events(code: str, current: State | None, new: State) -> list[Event]:
    """Offered when it becomes offered or its offer changes; withdrawn when it stops being offered."""
    was_offered = bool(current and current["offered"])
    if new["offered"]:
        if was_offered and not has_changed(current, new):
            return []
        return [ProgramOffered(program_code=code, name=new["name"], call_to_action=new["call_to_action"])]
    return [ProgramWithdrawn(program_code=code)] if was_offered else []


_ORDER: dict[type[Any], int] = {
    ContactRecord: 0,
    ClinicSettingsRecord: 1,
    ProgramRecord: 1,
    SlotRecord: 1,
    PatientRecord: 2,
    EnrolmentRecord: 3,
    AppointmentRecord: 4,
    ReminderRecord: 4,
    VaccinationRecord: 4,
    MedicationRecord: 4,
    PatientRemovedRecord: 5,
    ContactRemovedRecord: 6,
}


def plan_batch(records: list[tuple[int, PimsRecord]], data: ClinicData) -> BatchPlan:
    plan = BatchPlan()
    for _ in plan_steps(records, data, plan, every=max(1, len(records))):
        pass
    return plan


def plan_steps(
    records: list[tuple[int, PimsRecord]], data: ClinicData, plan: BatchPlan, every: int
) -> Iterator[None]:
    """`plan_batch` a step at a time: fills `plan`, pausing (a yield) after every `every` records, so
    that the caller can let others run in between."""
    contacts = dict(data.contacts)
    programs = dict(data.programs)
    patients = dict(data.patients)
    enrolments = set(data.enrolments)
    known = dict(data.records)
    versions = dict(data.versions)

    def reject(index: int, kind: str, field_name: str, message: str) -> None:
        plan.rejections.append(Rejection(index, kind, (FieldError(field_name, message),)))

    ordered = sorted(records, key=lambda item: (_ORDER[type(item[1])], item[0]))
    for done, (index, record) in enumerate(ordered):
        if done and done % every == 0:
            yield
        try:
            match record:
                case ContactRecord():
                    new = contact_state(record)
                    version = version_key(record.version)
                    if is_stale(versions.get(("contact", record.client_id)), version):
                        pass
                    elif has_changed(contacts.get(record.client_id), new):
                        event: Event = ClientUpserted(**new)
                        contacts[record.client_id] = plan.contacts[record.client_id] = new
                        _set_version(plan, versions, ("contact", record.client_id), version)
                        plan.events.append(PendingEvent(event, record.client_id))
                case ProgramRecord():
                    new = program_state(record)
                    current = programs.get(record.program_code)
                    for event in program_events(record.program_code, current, new):
                        plan.events.append(PendingEvent(event, None))
                    if has_changed(current, new):
                        programs[record.program_code] = plan.programs[record.program_code] = new
                case PatientRecord():
                    if record.client_id not in contacts:
                        reject(index, record.kind, "client_id", _unknown_client(record.client_id))
                        continue
                    new = patient_state(record)
                    version = version_key(record.version)
                    current = patients.get(record.patient_id)
                    if is_stale(versions.get(("patient", record.patient_id)), version):
                        pass
                    elif has_changed(current, new):
                        signalment = {k: v for k, v in new.items() if k not in _NOT_SIGNALMENT}
                        if current is None or any(current.get(k) != v for k, v in signalment.items()):
                            event = PatientUpserted(patient_id=record.patient_id, **signalment)
                            plan.events.append(PendingEvent(event, record.client_id))
                        if record.deceased and not (current and current.get("deceased")):
                            event = PatientDeceased(
                                patient_id=record.patient_id, deceased_on=record.deceased_on
                            )
                            plan.events.append(PendingEvent(event, record.client_id))
                        patients[record.patient_id] = plan.patients[record.patient_id] = new
                        _set_version(plan, versions, ("patient", record.patient_id), version)
                case EnrolmentRecord():
                    if record.client_id not in contacts:
                        reject(index, record.kind, "client_id", _unknown_client(record.client_id))
                        continue
                    program = programs.get(record.program_code)
                    if program is None or not program["offered"]:
                        reject(
                            index,
                            record.kind,
                            "program_code",
                            f"program {record.program_code} is not offered by this clinic",
                        )
                        continue
                    key = (record.client_id, record.program_code)
                    if key not in enrolments:
                        enrolments.add(key)
                        plan.enrolments.append(key)
                        event = ClientEnrolledInProgram(program_code=record.program_code)
                        plan.events.append(PendingEvent(event, record.client_id))
                case ClinicSettingsRecord():
                    new = record_state(record)
                    stored = known.get(SETTINGS_KEY)
                    version = version_key(record.version)
                    if stored is not None and is_stale(stored.version, version):
                        pass
                    elif stored is None or has_changed(stored.state, new):
                        event = ClinicSettingsChanged(**record.model_dump(exclude={"kind", "version"}))
                        known[SETTINGS_KEY] = plan.records[SETTINGS_KEY] = StoredRecord(None, new, version)
                        plan.events.append(PendingEvent(event, None))
                case AppointmentRecord() | ReminderRecord() | VaccinationRecord() | MedicationRecord():
                    problem = _unknown_reference(record, contacts, patients)
                    if problem is not None:
                        reject(index, record.kind, *problem)
                        continue
                    key = record_key(record)
                    new = record_state(record)
                    stored = known.get(key)
                    version = version_key(record.version)
                    if stored is not None and is_stale(stored.version, version):
                        pass
                    elif (
                        stored is None
                        or stored.client_id != record.client_id
                        or has_changed(stored.state, new)
                    ):
                        for event in clinical_events(record, stored.state if stored else None, data.timezone):
                            plan.events.append(PendingEvent(event, record.client_id))
                        known[key] = plan.records[key] = StoredRecord(record.client_id, new, version)
                case SlotRecord():
                    plan.slots.append(record)
                case PatientRemovedRecord():
                    current = patients.get(record.patient_id)
                    if current is not None and current["client_id"] == record.client_id:
                        del patients[record.patient_id]
                        plan.patients.pop(record.patient_id, None)
                        plan.removed_patients.append(record.patient_id)
                        event = PatientRemoved(patient_id=record.patient_id, reason="deleted_in_pims")
                        plan.events.append(PendingEvent(event, record.client_id))
                case ContactRemovedRecord():
                    if record.client_id in contacts:
                        del contacts[record.client_id]
                        plan.contacts.pop(record.client_id, None)
                        plan.removed_contacts.append(record.client_id)
                        event = ClientRemoved(reason="deleted_in_pims")
                        plan.events.append(PendingEvent(event, record.client_id))
        except ValidationError as exc:  # a record that cannot make a valid event
            plan.rejections.append(Rejection(index, record.kind, field_errors(exc)))
            continue
        plan.accepted += 1
    plan.rejections.sort(key=lambda r: r.index)


# Patient fields that are not signalment: they change the pet's standing, not its ID card.
_NOT_SIGNALMENT = frozenset({"client_id", "deceased", "deceased_on"})


def _set_version(
    plan: BatchPlan, versions: dict[RecordKey, int], key: RecordKey, version: int | None
) -> None:
    if version is not None:
        versions[key] = plan.versions[key] = version


def _unknown_reference(
    record: ClinicalRecord, contacts: dict[str, State], patients: dict[str, State]
) -> tuple[str, str] | None:
    """(field, reason) when the record names a client or pet the clinic's data does not hold."""
    if record.client_id not in contacts:
        return "client_id", _unknown_client(record.client_id)
    patient_id = record.patient_id
    if patient_id is not None and (patients.get(patient_id) or {}).get("client_id") != record.client_id:
        return (
            "patient_id",
            f"unknown patient {patient_id} of client {record.client_id}: send its patient record first",
        )
    return None


def _unknown_client(client_id: str) -> str:
    return f"unknown client {client_id}: send its contact record first (in this batch or an earlier one)"
