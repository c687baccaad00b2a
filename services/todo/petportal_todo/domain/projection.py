"""How events change the read model, coalesced per document so a batch is one write per document.

`project` folds a batch of (not yet applied) events into one change per parent and per clinic. Each
change has `applied_to(view)`, the meaning of the change; the MongoDB adapter writes the same thing
with update operators ($inc, $max, $addToSet, $set/$unset), which commute with changes of other
batches except where Kafka already orders them (one key, one partition).

Erasure (docs/erasure.md): `ClientErasureRequested` deletes the parent's document and leaves a
tombstone, the request's time. An event about the parent that occurred at or before the tombstone is
ignored (recorded, changes nothing), in this batch and in every later one, replays included. Within
a batch, what was folded for the parent before the request is dropped, and what comes after it
(and occurred after it) makes a fresh document.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cache

from petportal_schemas import (
    AppointmentAnswered,
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentUpserted,
    ClientEnrolledInProgram,
    ClientErasureRequested,
    ClientRemoved,
    ClinicSettingsChanged,
    Envelope,
    Event,
    FormAssigned,
    FormSubmitted,
    MessageRead,
    MessageReceived,
    PatientDeceased,
    PatientRemoved,
    ProgramOffered,
    ProgramWithdrawn,
    RefillRequestDecided,
    RequestAnswerSeen,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    SmsOptedIn,
    SmsOptedOut,
)
from petportal_schemas.records import AppointmentVisibility

from .model import (
    AnswerOutcome,
    ClinicView,
    ParentView,
    PendingForm,
    Program,
    RequestAnswer,
    RequestKind,
    ScheduledAppointment,
    parent_id,
)

CONSUMED_EVENTS: tuple[type[Event], ...] = (
    MessageReceived,
    MessageRead,
    SmsOptedOut,
    SmsOptedIn,
    ProgramOffered,
    ProgramWithdrawn,
    ClinicSettingsChanged,
    ClientEnrolledInProgram,
    ServiceReminderUpserted,
    ServiceReminderCompleted,
    PatientRemoved,
    PatientDeceased,
    ClientRemoved,
    ClientErasureRequested,
    AppointmentRequestAnswered,
    RefillRequestDecided,
    RequestAnswerSeen,
    FormAssigned,
    FormSubmitted,
    AppointmentUpserted,
    AppointmentCancelled,
    AppointmentAnswered,
)

# The appointment is over (or gone): the PIMS will not send it as scheduled again, so the parent's
# answer to it no longer needs remembering.
_APPOINTMENT_OVER = frozenset({"completed", "no_show"})

_CLINIC_WIDE: tuple[type[Event], ...] = (ProgramOffered, ProgramWithdrawn, ClinicSettingsChanged)


@cache
def _is_a(kind: type[Event], classes: type[Event] | tuple[type[Event], ...]) -> bool:
    """issubclass, remembered: an isinstance check that fails costs an ABC lookup on pydantic models,
    and the fold makes several for every event."""
    return issubclass(kind, classes)


# The `ignored` reason of an event about an erased parent that occurred before the erasure (or was
# followed by it in its batch).
ERASED = "client erased"


def _utc(moment: datetime) -> datetime:
    # Producers send aware timestamps; a naive one is taken as UTC rather than failing comparisons.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _later(current: datetime | None, candidate: datetime) -> datetime:
    candidate = _utc(candidate)
    return candidate if current is None or candidate > _utc(current) else current


@dataclass
class ParentChange:
    clinic_id: str
    client_id: str
    # Disjoint after folding: a message received and read in the same batch is in neither.
    received: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    sms_opted_out_at: datetime | None = None
    sms_opted_in_at: datetime | None = None
    enrolled: set[str] = field(default_factory=set)
    # Service reminders: (patient, reminder) → due date while open; ended ones; pets that left (all
    # their reminders go); the client removed (every reminder goes). Applied in that order: gone
    # first, then ended, then due, which is the batch's order because the fold drops what a later
    # event overrides.
    reminders_due: dict[tuple[str, str], date] = field(default_factory=dict)
    reminders_ended: set[tuple[str, str]] = field(default_factory=set)
    patients_gone: set[str] = field(default_factory=set)
    client_gone: bool = False
    # Answers to the parent's requests, by request id, and the requests whose answer was seen (→ the
    # latest seen_at). Disjoint after folding: an answer seen in the same batch is only seen. Answers
    # go with their pet or client (patients_gone, client_gone: applied first, like the reminders);
    # seen ids stay (harmless, and they keep a late or replayed answer off the list).
    answers: dict[str, RequestAnswer] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)
    # Forms assigned, by assignment id, and those completed (→ the latest submitted_at). Disjoint after
    # folding, like the answers: a form submitted in the same batch is only completed, and a completed
    # id hides a late or replayed assignment. Forms go with the client (client_gone), not with a pet.
    forms: dict[str, PendingForm] = field(default_factory=dict)
    forms_completed: dict[str, datetime] = field(default_factory=dict)
    # Appointments to confirm: the scheduled ones by appointment id (written with their pet's entry
    # (patient, appointment id), see ParentView), and the (patient of the event, appointment id) of
    # those no longer scheduled (cancelled, in another status, or answered): their appointment and
    # that pet's entry go, except what this change writes again (another pet's entry stays apart).
    # Answered ids (→ the latest answered_at) are marks like the seen ones: a scheduled appointment of
    # the same batch is not written, and the mark hides a re-send while the PIMS has not processed the
    # answer. `answered_forgotten`: the marks dropped because the appointment is over (cancelled,
    # completed, no-show); disjoint from `appointments_answered`. A pet leaving takes its entries
    # (patients_gone), the client every appointment and entry (client_gone); the marks stay.
    appointments: dict[str, ScheduledAppointment] = field(default_factory=dict)
    appointments_ended: set[tuple[str | None, str]] = field(default_factory=set)
    appointments_answered: dict[str, datetime] = field(default_factory=dict)
    answered_forgotten: set[str] = field(default_factory=set)
    # The parent was erased at this time, in this batch: their document is deleted first (and the
    # tombstone written), and the rest of this change starts a fresh one.
    erased_at: datetime | None = None

    @property
    def parent_id(self) -> str:
        return parent_id(self.clinic_id, self.client_id)

    @property
    def deletes_document(self) -> bool:
        """An erasure with nothing after it: the document is deleted and none is written."""
        return self.erased_at is not None and not (
            self.received
            or self.read
            or self.sms_opted_out_at
            or self.sms_opted_in_at
            or self.enrolled
            or self.reminders_due
            or self.reminders_ended
            or self.patients_gone
            or self.client_gone
            or self.answers
            or self.seen
            or self.forms
            or self.forms_completed
            or self.appointments
            or self.appointments_ended
            or self.appointments_answered
            or self.answered_forgotten
        )

    def applied_to(self, view: ParentView | None) -> ParentView:
        """The parent's view after this change (an empty one when it only deletes the document)."""
        if self.erased_at is not None:
            view = None
        view = view or ParentView(self.clinic_id, self.client_id)
        out_at, in_at = view.sms_opted_out_at, view.sms_opted_in_at
        if self.sms_opted_out_at is not None:
            out_at = _later(out_at, self.sms_opted_out_at)
        if self.sms_opted_in_at is not None:
            in_at = _later(in_at, self.sms_opted_in_at)
        answers = {
            a.request_id: a
            for a in (() if self.client_gone else view.request_answers)
            if a.patient_id not in self.patients_gone
        } | self.answers
        forms = {f.assignment_id: f for f in (() if self.client_gone else view.assigned_forms)} | self.forms
        ended_ids = {appointment_id for _, appointment_id in self.appointments_ended}
        appointments = {
            a.appointment_id: a
            for a in (() if self.client_gone else view.scheduled_appointments)
            if a.appointment_id not in ended_ids
        } | self.appointments
        pet_appointments = {
            entry
            for entry in (() if self.client_gone else view.pet_appointment_ids)
            if entry[0] not in self.patients_gone and entry not in self.appointments_ended
        } | {(a.patient_id, a.appointment_id) for a in self.appointments.values() if a.patient_id is not None}
        return replace(
            view,
            unread_message_ids=(view.unread_message_ids - self.read) | self.received,
            sms_opted_out_at=out_at,
            sms_opted_in_at=in_at,
            enrolled_programs=view.enrolled_programs | self.enrolled,
            due_reminders=frozenset(
                {
                    r
                    for r in (() if self.client_gone else view.due_reminders)
                    if r[0] not in self.patients_gone and r[:2] not in self.reminders_ended
                }
                | {(patient, reminder, due) for (patient, reminder), due in self.reminders_due.items()}
            ),
            request_answers=frozenset(answers.values()),
            seen_request_ids=view.seen_request_ids.union(self.seen),
            assigned_forms=frozenset(forms.values()),
            completed_form_ids=view.completed_form_ids.union(self.forms_completed),
            scheduled_appointments=frozenset(appointments.values()),
            pet_appointment_ids=frozenset(pet_appointments),
            answered_appointment_ids=(view.answered_appointment_ids - self.answered_forgotten).union(
                self.appointments_answered
            ),
        )


@dataclass
class ClinicChange:
    clinic_id: str
    offered: dict[str, Program] = field(default_factory=dict)
    withdrawn: set[str] = field(default_factory=set)
    # The clinic's latest settings in the batch (clinic-wide events of one clinic share a partition,
    # so batches arrive in order).
    booking_mode: str | None = None
    live_chat: bool | None = None
    appointment_visibility: AppointmentVisibility | None = None

    def applied_to(self, view: ClinicView | None) -> ClinicView:
        programs = {p.code: p for p in (view.offered_programs if view else ())}
        for code in self.withdrawn:
            programs.pop(code, None)
        programs.update(self.offered)
        return ClinicView(
            self.clinic_id,
            tuple(sorted(programs.values(), key=lambda p: p.code)),
            booking_mode=self.booking_mode
            if self.booking_mode is not None
            else (view.booking_mode if view else None),
            live_chat=self.live_chat if self.live_chat is not None else (view.live_chat if view else False),
            appointment_visibility=self.appointment_visibility
            if self.appointment_visibility is not None
            else (view.appointment_visibility if view else AppointmentVisibility()),
        )


@dataclass(frozen=True)
class AppliedEvent:
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    # Set when the event was valid but names no client although it concerns one; it is recorded as
    # handled (so it is not retried forever) but changes nothing.
    ignored_reason: str | None = None


@dataclass
class ProjectionChanges:
    parents: dict[str, ParentChange] = field(default_factory=dict)
    clinics: dict[str, ClinicChange] = field(default_factory=dict)
    events: list[AppliedEvent] = field(default_factory=list)

    def parent(self, clinic_id: str, client_id: str) -> ParentChange:
        key = parent_id(clinic_id, client_id)
        if key not in self.parents:
            self.parents[key] = ParentChange(clinic_id, client_id)
        return self.parents[key]

    def clinic(self, clinic_id: str) -> ClinicChange:
        if clinic_id not in self.clinics:
            self.clinics[clinic_id] = ClinicChange(clinic_id)
        return self.clinics[clinic_id]


def unique_events(
    batch: Sequence[tuple[Envelope, Event]], already_applied: set[str], keys: Sequence[str] | None = None
) -> list[tuple[Envelope, Event]]:
    """The batch without events applied before or repeated in the batch, in batch order. `keys`: the
    batch's event ids as strings, when the caller has them already."""
    seen = set(already_applied)
    fresh = []
    for index, (envelope, event) in enumerate(batch):
        key = keys[index] if keys is not None else str(envelope.event_id)
        if key not in seen:
            seen.add(key)
            fresh.append((envelope, event))
    return fresh


def project(
    batch: Sequence[tuple[Envelope, Event]], erased: Mapping[str, datetime] | None = None
) -> ProjectionChanges:
    """Fold events (each applied once, per-key order kept) into one change per document.

    `erased`: the tombstones of the batch's parents (parent id → erasure time), as stored before the
    batch; an erasure in the batch moves its parent's forward.
    """
    changes = ProjectionChanges()
    tombstones = {key: _utc(at) for key, at in (erased or {}).items()}
    # Per parent, the events folded into its change since the batch began or its last erasure.
    folded: dict[str, list[int]] = {}
    for envelope, event in batch:
        occurred_at = _utc(envelope.occurred_at)
        key = None if envelope.client_id is None else parent_id(envelope.clinic_id, envelope.client_id)
        ignored: str | None
        if key is not None and key in tombstones and occurred_at <= tombstones[key]:
            ignored = ERASED
        elif (
            key is not None and envelope.client_id is not None and _is_a(type(event), ClientErasureRequested)
        ):
            tombstones[key] = occurred_at
            for index in folded.pop(key, []):  # erased with the document: recorded as ignored
                changes.events[index] = replace(changes.events[index], ignored_reason=ERASED)
            changes.parents[key] = ParentChange(envelope.clinic_id, envelope.client_id, erased_at=occurred_at)
            ignored = None
        else:
            ignored = _fold(changes, envelope, event)
            if key is not None and ignored is None and not _is_a(type(event), _CLINIC_WIDE):
                folded.setdefault(key, []).append(len(changes.events))
        changes.events.append(AppliedEvent(envelope.event_id, envelope.event_type, occurred_at, ignored))
    return changes


def erasure_requests(
    batch: Sequence[tuple[Envelope, Event]],
) -> list[tuple[Envelope, ClientErasureRequested]]:
    """The batch's erasure requests about a client, each once, in batch order."""
    seen: set[uuid.UUID] = set()
    found = []
    for envelope, event in batch:
        if (
            isinstance(event, ClientErasureRequested)
            and envelope.client_id is not None
            and envelope.event_id not in seen
        ):
            seen.add(envelope.event_id)
            found.append((envelope, event))
    return found


def _fold(changes: ProjectionChanges, envelope: Envelope, event: Event) -> str | None:
    """Apply one event to `changes`; the reason when it has to be ignored."""
    clinic_id = envelope.clinic_id
    if _is_a(type(event), _CLINIC_WIDE):
        clinic = changes.clinic(clinic_id)
        if isinstance(event, ProgramOffered):
            clinic.offered[event.program_code] = Program(event.program_code, event.name, event.call_to_action)
            clinic.withdrawn.discard(event.program_code)
        elif isinstance(event, ProgramWithdrawn):
            clinic.offered.pop(event.program_code, None)
            clinic.withdrawn.add(event.program_code)
        elif isinstance(event, ClinicSettingsChanged):
            clinic.booking_mode, clinic.live_chat = event.booking_mode, event.live_chat
            clinic.appointment_visibility = event.appointment_visibility
        return None
    if not _is_a(type(event), CONSUMED_EVENTS):
        return f"{envelope.event_type} is not projected"
    if envelope.client_id is None:
        return f"{envelope.event_type} without client_id"
    parent = changes.parent(clinic_id, envelope.client_id)
    if isinstance(event, MessageReceived):
        parent.received.add(str(event.message_id))
    elif isinstance(event, MessageRead):
        for message_id in map(str, event.message_ids):
            if message_id in parent.received:
                parent.received.discard(message_id)
            else:
                parent.read.add(message_id)
    elif isinstance(event, SmsOptedOut):
        parent.sms_opted_out_at = _later(parent.sms_opted_out_at, envelope.occurred_at)
    elif isinstance(event, SmsOptedIn):
        parent.sms_opted_in_at = _later(parent.sms_opted_in_at, envelope.occurred_at)
    elif isinstance(event, ClientEnrolledInProgram):
        parent.enrolled.add(event.program_code)
    elif isinstance(event, ServiceReminderUpserted):
        parent.reminders_due[(event.patient_id, event.reminder_id)] = event.due_on
        parent.reminders_ended.discard((event.patient_id, event.reminder_id))
    elif isinstance(event, ServiceReminderCompleted):
        parent.reminders_due.pop((event.patient_id, event.reminder_id), None)
        parent.reminders_ended.add((event.patient_id, event.reminder_id))
    elif isinstance(event, AppointmentRequestAnswered):
        _answered(
            parent, str(event.request_id), event.patient_id, "appointment", event.outcome, event.answered_at
        )
    elif isinstance(event, RefillRequestDecided):
        _answered(parent, str(event.request_id), event.patient_id, "refill", event.outcome, event.decided_at)
    elif isinstance(event, RequestAnswerSeen):
        request_id = str(event.request_id)
        parent.seen[request_id] = _later(parent.seen.get(request_id), event.seen_at)
        parent.answers.pop(request_id, None)
    elif isinstance(event, FormAssigned):
        assignment_id = str(event.assignment_id)
        if assignment_id not in parent.forms_completed:
            parent.forms[assignment_id] = PendingForm(assignment_id, event.title, _utc(event.assigned_at))
    elif isinstance(event, FormSubmitted):
        assignment_id = str(event.assignment_id)
        parent.forms_completed[assignment_id] = _later(
            parent.forms_completed.get(assignment_id), event.submitted_at
        )
        parent.forms.pop(assignment_id, None)
    elif isinstance(event, AppointmentUpserted):
        if event.status == "scheduled":
            _scheduled(parent, event)
        else:
            over = event.status in _APPOINTMENT_OVER
            _unscheduled(parent, event.appointment_id, event.patient_id, over=over)
    elif isinstance(event, AppointmentCancelled):
        _unscheduled(parent, event.appointment_id, event.patient_id, over=True)
    elif isinstance(event, AppointmentAnswered):
        _unscheduled(parent, event.appointment_id, event.patient_id, over=False)
        appointment_id = event.appointment_id
        parent.appointments_answered[appointment_id] = _later(
            parent.appointments_answered.get(appointment_id), event.answered_at
        )
        parent.answered_forgotten.discard(appointment_id)
    elif isinstance(event, PatientRemoved | PatientDeceased):
        parent.patients_gone.add(event.patient_id)
        parent.reminders_due = {k: v for k, v in parent.reminders_due.items() if k[0] != event.patient_id}
        parent.reminders_ended = {k for k in parent.reminders_ended if k[0] != event.patient_id}
        parent.answers = {k: a for k, a in parent.answers.items() if a.patient_id != event.patient_id}
        for appointment in [a for a in parent.appointments.values() if a.patient_id == event.patient_id]:
            _unscheduled(parent, appointment.appointment_id, event.patient_id, over=False)
    elif isinstance(event, ClientRemoved):
        parent.client_gone = True
        parent.patients_gone.clear()
        parent.reminders_due.clear()
        parent.reminders_ended.clear()
        parent.answers.clear()
        parent.forms.clear()
        parent.appointments.clear()
        parent.appointments_ended.clear()
    return None


def _scheduled(parent: ParentChange, event: AppointmentUpserted) -> None:
    """A scheduled appointment: it waits for the parent's confirmation, unless they answered it in this
    batch (an earlier answer's mark hides it on read)."""
    appointment_id = event.appointment_id
    if appointment_id in parent.appointments_answered:
        return
    _unscheduled(parent, appointment_id, event.patient_id, over=False)
    parent.appointments_ended.discard((event.patient_id, appointment_id))
    parent.appointments[appointment_id] = ScheduledAppointment(
        appointment_id,
        event.patient_id,
        _utc(event.starts_at),
        event.timezone,
        event.appointment_type,
        event.reason,
    )


def _unscheduled(parent: ParentChange, appointment_id: str, patient_id: str | None, *, over: bool) -> None:
    """The appointment no longer waits for the parent's confirmation: it goes, with its entry under the
    event's pet (and under another one if it was scheduled there earlier in this batch). `over`: it is
    over, and its answered mark goes too."""
    parent.appointments_ended.add((patient_id, appointment_id))
    if (earlier := parent.appointments.pop(appointment_id, None)) is not None:
        parent.appointments_ended.add((earlier.patient_id, appointment_id))
    if over:
        parent.appointments_answered.pop(appointment_id, None)
        parent.answered_forgotten.add(appointment_id)


def _answered(
    parent: ParentChange,
    request_id: str,
    patient_id: str,
    kind: RequestKind,
    outcome: AnswerOutcome,
    answered_at: datetime,
) -> None:
    """An answer to one request (pets answers each once). Already seen in this batch: nothing to show,
    and the seen id (kept) hides it whatever arrives later."""
    if request_id not in parent.seen:
        parent.answers[request_id] = RequestAnswer(request_id, patient_id, kind, outcome, _utc(answered_at))
