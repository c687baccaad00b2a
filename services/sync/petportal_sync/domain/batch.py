"""What a batch of valid records changes, given what the clinic's data is now (no I/O).

Records are applied kind by kind — contacts, programs, patients, enrolments — so a patient or an
enrolment may come in the same batch as the contact or program it refers to. A record that changes
nothing produces no event, so connectors re-sending the same data do not flood the topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from petportal_schemas import (
    ClientEnrolledInProgram,
    ClientUpserted,
    Event,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
)

from .records import (
    ContactRecord,
    EnrolmentRecord,
    FieldError,
    PatientRecord,
    PimsRecord,
    ProgramRecord,
    Rejection,
    field_errors,
)

State = dict[str, Any]


@dataclass
class ClinicData:
    """The stored rows a batch refers to (only those), keyed by their PIMS ids."""

    contacts: dict[str, State] = field(default_factory=dict)
    patients: dict[str, State] = field(default_factory=dict)
    programs: dict[str, State] = field(default_factory=dict)
    enrolments: set[tuple[str, str]] = field(default_factory=set)


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
    events: list[PendingEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    accepted: int = 0


def contact_state(record: ContactRecord) -> State:
    return record.model_dump(exclude={"kind", "client_id"})


def patient_state(record: PatientRecord) -> State:
    return record.model_dump(exclude={"kind", "patient_id"})


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


_ORDER: dict[type[Any], int] = {ContactRecord: 0, ProgramRecord: 1, PatientRecord: 2, EnrolmentRecord: 3}


def plan_batch(records: list[tuple[int, PimsRecord]], data: ClinicData) -> BatchPlan:
    plan = BatchPlan()
    contacts = dict(data.contacts)
    programs = dict(data.programs)
    patients = dict(data.patients)
    enrolments = set(data.enrolments)

    def reject(index: int, kind: str, field_name: str, message: str) -> None:
        plan.rejections.append(Rejection(index, kind, (FieldError(field_name, message),)))

    for index, record in sorted(records, key=lambda item: (_ORDER[type(item[1])], item[0])):
        try:
            match record:
                case ContactRecord():
                    new = contact_state(record)
                    if has_changed(contacts.get(record.client_id), new):
                        event: Event = ClientUpserted(**new)
                        contacts[record.client_id] = plan.contacts[record.client_id] = new
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
                    if has_changed(patients.get(record.patient_id), new):
                        event = PatientUpserted(
                            patient_id=record.patient_id,
                            **{k: v for k, v in new.items() if k != "client_id"},
                        )
                        patients[record.patient_id] = plan.patients[record.patient_id] = new
                        plan.events.append(PendingEvent(event, record.client_id))
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
        except ValidationError as exc:  # a record that cannot make a valid event
            plan.rejections.append(Rejection(index, record.kind, field_errors(exc)))
            continue
        plan.accepted += 1
    plan.rejections.sort(key=lambda r: r.index)
    return plan


def _unknown_client(client_id: str) -> str:
    return f"unknown client {client_id}: send its contact record first (in this batch or an earlier one)"
