"""What the read model knows about a parent and a clinic, and the To-Do list derived from it.

The list is never stored: it is computed on read from one parent document and one clinic document,
so a clinic-wide change (a program offered to every client) is one write, not a fan-out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from petportal_schemas.records import AppointmentVisibility

TodoKind = Literal[
    "unread_messages",
    "request_answered",
    "refill_decided",
    "form_pending",
    "appointment_to_confirm",
    "overdue_services",
    "sms_opt_in",
    "program_cta",
]
# What a parent asked the clinic through the portal (petportal_schemas.requests.RequestKind).
RequestKind = Literal["appointment", "refill"]
# An appointment request is accepted, declined or met with another time; a refill approved or denied.
AnswerOutcome = Literal["accepted", "declined", "proposed", "approved", "denied"]

# Portal pages the items lead to (the app maps them to screens).
CONVERSATION_HREF = "/conversation"
NOTIFICATION_PREFERENCES_HREF = "/notifications/preferences"
PROGRAM_HREF = "/programs/{code}"
PETS_HREF = "/pets"
# One pet's page: its appointment requests and refills with the clinic's answers.
PET_HREF = "/pets/{patient_id}"
# A clinic form to fill in.
FORM_HREF = "/forms/{assignment_id}"

# How far ahead an appointment waiting for the parent's confirmation is on the list: from now (it has
# not started yet) to a week from now. Further ahead, the parent is asked when it comes within a week
# (the list is computed on read, so it appears then without any event).
APPOINTMENT_CONFIRM_WINDOW = timedelta(days=7)

# A service reminder still open: (patient_id, reminder_id, due on).
DueReminder = tuple[str, str, date]


@dataclass(frozen=True)
class Program:
    code: str
    name: str
    call_to_action: str


@dataclass(frozen=True)
class RequestAnswer:
    """The clinic's answer to one of the parent's requests (each request is answered once, by pets):
    an appointment request's outcome accepted / declined / proposed, a refill's approved / denied."""

    request_id: str
    patient_id: str
    kind: RequestKind
    outcome: AnswerOutcome
    answered_at: datetime


@dataclass(frozen=True)
class PendingForm:
    """A clinic form assigned to the parent (FormAssigned), to fill in until they submit it."""

    assignment_id: str
    title: str
    assigned_at: datetime


@dataclass(frozen=True)
class ScheduledAppointment:
    """An appointment the PIMS holds as "scheduled": it waits for the parent's confirmation.

    Its type and reason are kept for the clinic's visibility rules, applied on read (a clinic may
    hide some appointments from clients); `timezone` is the clinic's IANA zone, for the local time.
    """

    appointment_id: str
    patient_id: str | None
    starts_at: datetime
    timezone: str = "UTC"
    appointment_type: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ParentView:
    """One parent (a client of one clinic) as the projection holds it.

    `unread_message_ids` holds the messages received and not yet read. A set, not a running count:
    applying an event twice changes nothing, so the count stays exact even if a store commits an
    effect without its inbox record (and the event is redelivered). SMS consent is kept as the time
    of the latest opt-out and the latest opt-in, so an event that arrives late (after a newer one)
    cannot flip the state back.

    Answers to the parent's requests are kept with the ids of the requests whose answer the parent has
    seen, two sets: an answer is on the list while its request is not among the seen ones, whatever
    the order the two events arrive in (a seen request stays seen: a replayed answer cannot bring it
    back). Forms likewise: the forms assigned, and the ids of those completed (submitted), two sets.
    Appointments to confirm likewise: the scheduled appointments, and the ids of those the parent
    answered (confirmed or asked to cancel), so that the PIMS sending the appointment again still
    "scheduled" (before it has processed the answer) does not ask the parent again. An appointment
    of a pet is shown only while that pet has it among its entries (`pet_appointment_ids`): a pet
    leaving removes its entries in one write without knowing their ids, and an appointment the PIMS
    moves to another pet (or gives a pet) is one appointment whatever entry the former pet kept.
    """

    clinic_id: str
    client_id: str
    unread_message_ids: frozenset[str] = frozenset()
    sms_opted_out_at: datetime | None = None
    sms_opted_in_at: datetime | None = None
    enrolled_programs: frozenset[str] = frozenset()
    # Service reminders neither done nor booked (ServiceReminderUpserted until ...Completed).
    due_reminders: frozenset[DueReminder] = frozenset()
    # Answers to the parent's requests (seen or not), and the requests whose answer they have seen.
    request_answers: frozenset[RequestAnswer] = frozenset()
    seen_request_ids: frozenset[str] = frozenset()
    # Forms assigned to the parent (completed or not), and the assignments they have completed.
    assigned_forms: frozenset[PendingForm] = frozenset()
    completed_form_ids: frozenset[str] = frozenset()
    # Appointments the PIMS holds as scheduled (answered or not; one per id), the pets' entries
    # (patient, appointment id), and the appointments the parent answered.
    scheduled_appointments: frozenset[ScheduledAppointment] = frozenset()
    pet_appointment_ids: frozenset[tuple[str, str]] = frozenset()
    answered_appointment_ids: frozenset[str] = frozenset()

    @property
    def parent_id(self) -> str:
        return parent_id(self.clinic_id, self.client_id)

    @property
    def unread(self) -> int:
        return len(self.unread_message_ids)

    @property
    def unseen_answers(self) -> tuple[RequestAnswer, ...]:
        """The answers the parent has not seen yet, oldest first (then by request id: a stable order)."""
        return tuple(
            sorted(
                (a for a in self.request_answers if a.request_id not in self.seen_request_ids),
                key=lambda a: (a.answered_at, a.request_id),
            )
        )

    @property
    def pending_forms(self) -> tuple[PendingForm, ...]:
        """The forms still to fill in, oldest assignment first (then by id: a stable order)."""
        return tuple(
            sorted(
                (f for f in self.assigned_forms if f.assignment_id not in self.completed_form_ids),
                key=lambda f: (f.assigned_at, f.assignment_id),
            )
        )

    def appointments_to_confirm(
        self, now: datetime, visibility: AppointmentVisibility | None = None
    ) -> tuple[ScheduledAppointment, ...]:
        """The scheduled appointments the parent has not answered, of no pet or of a pet they still have,
        that start after `now` and within APPOINTMENT_CONFIRM_WINDOW, and that the clinic lets clients
        see; soonest first (then by id)."""
        rules = visibility or AppointmentVisibility()
        return tuple(
            sorted(
                (
                    a
                    for a in self.scheduled_appointments
                    if a.appointment_id not in self.answered_appointment_ids
                    and (a.patient_id is None or (a.patient_id, a.appointment_id) in self.pet_appointment_ids)
                    and now < a.starts_at <= now + APPOINTMENT_CONFIRM_WINDOW
                    and rules.shows(a.appointment_type, a.reason)
                ),
                key=lambda a: (a.starts_at, a.appointment_id),
            )
        )

    def overdue(self, today: date) -> int:
        return sum(1 for _, _, due_on in self.due_reminders if due_on < today)

    @property
    def sms_opted_out(self) -> bool:
        if self.sms_opted_out_at is None:
            return False
        # On a tie the parent keeps receiving texts only if they opted in: opting in is the later intent
        # we cannot order, and a missed opt-in is visible to them (the item asks them to opt in again).
        return self.sms_opted_in_at is None or self.sms_opted_out_at > self.sms_opted_in_at


@dataclass(frozen=True)
class ClinicView:
    clinic_id: str
    offered_programs: tuple[Program, ...] = ()
    # From the clinic's settings (ClinicSettingsChanged); None: the clinic never sent any.
    booking_mode: str | None = None
    live_chat: bool = False
    # Which appointments clients may see (none hidden until the clinic says otherwise).
    appointment_visibility: AppointmentVisibility = field(default_factory=AppointmentVisibility)


@dataclass(frozen=True)
class HelpOptions:
    """What Get Help Now may offer this parent: Care Plan live chat only to a member of one of the
    clinic's programs (its care plans) at a clinic with live chat on; booking as the clinic set it
    ("none", "request", "direct"; None when it never said)."""

    live_chat: bool = False
    booking_mode: str | None = None


def help_options(parent: ParentView | None, clinic: ClinicView | None) -> HelpOptions:
    if clinic is None:
        return HelpOptions()
    member = parent is not None and bool(parent.enrolled_programs)
    return HelpOptions(live_chat=clinic.live_chat and member, booking_mode=clinic.booking_mode)


@dataclass(frozen=True)
class TodoItem:
    kind: TodoKind
    title: str
    href: str
    count: int | None = None


@dataclass(frozen=True)
class TodoList:
    items: tuple[TodoItem, ...] = field(default_factory=tuple)

    @property
    def badge(self) -> int:
        return len(self.items)


def parent_id(clinic_id: str, client_id: str) -> str:
    # Both ids match ID_PATTERN ([A-Za-z0-9._-]), so ":" cannot occur inside either.
    return f"{clinic_id}:{client_id}"


def unread_title(count: int) -> str:
    return f"You have {count} unread message{'' if count == 1 else 's'}"


def overdue_title(count: int) -> str:
    return f"{count} service{' is' if count == 1 else 's are'} overdue"


APPOINTMENT_ANSWER_TITLES = {
    "accepted": "Your appointment request was accepted",
    "proposed": "Your clinic proposed another time for your appointment request",
    "declined": "Your appointment request was declined",
}
REFILL_DECISION_TITLES = {
    "approved": "Your refill request was approved",
    "denied": "Your refill request was denied",
}


def answer_item(answer: RequestAnswer) -> TodoItem:
    """One item per answered request, leading to the pet's page (where the request and its answer are)."""
    href = PET_HREF.format(patient_id=answer.patient_id)
    if answer.kind == "appointment":
        return TodoItem("request_answered", APPOINTMENT_ANSWER_TITLES[answer.outcome], href)
    return TodoItem("refill_decided", REFILL_DECISION_TITLES[answer.outcome], href)


def form_item(form: PendingForm) -> TodoItem:
    """One item per form to fill in, leading to the form."""
    return TodoItem(
        "form_pending", f"Please fill in: {form.title}", FORM_HREF.format(assignment_id=form.assignment_id)
    )


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _zone(name: str) -> tzinfo:
    # The clinic's IANA zone as the PIMS connector sent it; an unknown one shows UTC rather than failing.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def appointment_item(appointment: ScheduledAppointment) -> TodoItem:
    """One item per appointment to confirm, its start in the clinic's local time, leading to the pet's
    page (where the parent confirms or cancels it), or to the pets when it is not about one pet."""
    local = appointment.starts_at.astimezone(_zone(appointment.timezone))
    when = f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} at {local:%H:%M}"
    href = PET_HREF.format(patient_id=appointment.patient_id) if appointment.patient_id else PETS_HREF
    return TodoItem("appointment_to_confirm", f"Please confirm your appointment on {when}", href)


def todo_list(
    parent: ParentView | None,
    clinic: ClinicView | None,
    today: date | None = None,
    now: datetime | None = None,
) -> TodoList:
    """The parent's To-Do list, in a stable order: messages, the clinic's answers to appointment
    requests, then to refill requests (one item per request, oldest answer first), the clinic's forms
    to fill in (oldest first), appointments to confirm (soonest first), overdue services, texts, then
    programs by code. Overdue services are one item for all the parent's pets (the badge counts things
    to do, and the pet pages list them), counted on `today` (by default `now`'s date in UTC).
    Appointments to confirm are those starting after `now` (by default the current time) and within
    APPOINTMENT_CONFIRM_WINDOW, that the clinic lets clients see.

    A parent the projection has not heard of yet has nothing to do except the clinic's programs.
    """
    items: list[TodoItem] = []
    if parent is not None and parent.unread > 0:
        items.append(
            TodoItem("unread_messages", unread_title(parent.unread), CONVERSATION_HREF, count=parent.unread)
        )
    if parent is not None:
        answers = [answer_item(a) for a in parent.unseen_answers]
        items += [i for i in answers if i.kind == "request_answered"]
        items += [i for i in answers if i.kind == "refill_decided"]
        items += [form_item(f) for f in parent.pending_forms]
    now = now or datetime.now(UTC)
    if parent is not None:
        visibility = clinic.appointment_visibility if clinic is not None else None
        items += [appointment_item(a) for a in parent.appointments_to_confirm(now, visibility)]
    overdue = parent.overdue(today or now.astimezone(UTC).date()) if parent is not None else 0
    if overdue:
        items.append(TodoItem("overdue_services", overdue_title(overdue), PETS_HREF, count=overdue))
    if parent is not None and parent.sms_opted_out:
        items.append(TodoItem("sms_opt_in", "Opt into receiving texts", NOTIFICATION_PREFERENCES_HREF))
    enrolled = parent.enrolled_programs if parent is not None else frozenset()
    if clinic is not None:
        for program in sorted(clinic.offered_programs, key=lambda p: p.code):
            if program.code not in enrolled:
                items.append(
                    TodoItem("program_cta", program.call_to_action, PROGRAM_HREF.format(code=program.code))
                )
    return TodoList(tuple(items))
