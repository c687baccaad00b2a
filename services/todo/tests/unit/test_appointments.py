"""Appointments to confirm (sync topic): one item per appointment the PIMS holds as scheduled, starting
within the next week, that the parent has not answered and the clinic lets clients see; whatever the
batching or the number of deliveries of the events."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import (
    AppointmentAnswered,
    AppointmentCancelled,
    AppointmentUpserted,
    ClientErasureRequested,
    ClientRemoved,
    ClinicSettingsChanged,
    Envelope,
    Event,
    FormAssigned,
    PatientDeceased,
    PatientRemoved,
    ServiceReminderUpserted,
)
from petportal_schemas.records import AppointmentVisibility
from petportal_todo.domain import (
    APPOINTMENT_CONFIRM_WINDOW,
    CONSUMED_EVENTS,
    ParentView,
    ScheduledAppointment,
    parent_id,
    project,
    todo_list,
)
from petportal_todo.service_layer.projection import apply_batch

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

# Friday 4 December 2026, 09:00 UTC: "now" for every list below.
NOW = datetime(2026, 12, 4, 9, tzinfo=UTC)
# Thursday 10 December 2026, 15:30 in London (UTC+0 in winter): within the week.
SOON = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)
PARENT = parent_id("clinic-1", "client-1")
Pair = tuple[Envelope, Event]
Item = tuple[str, str, str]


def env(event: Event, at: datetime = NOW - timedelta(days=1)) -> Pair:
    return Envelope.wrap(
        event, clinic_id="clinic-1", client_id="client-1", producer="sync", occurred_at=at
    ), event


def upserted(
    appointment_id: str = "a1",
    starts_at: datetime = SOON,
    status: str = "scheduled",
    patient_id: str | None = "p1",
    **fields: str,
) -> Pair:
    return env(
        AppointmentUpserted(
            appointment_id=appointment_id,
            patient_id=patient_id,
            starts_at=starts_at,
            timezone=fields.pop("timezone", "Europe/London"),
            status=status,
            **fields,
        )
    )


def cancelled(appointment_id: str = "a1", patient_id: str | None = "p1") -> Pair:
    return env(AppointmentCancelled(appointment_id=appointment_id, patient_id=patient_id))


def answered(appointment_id: str = "a1", answer: str = "confirm", patient_id: str | None = "p1") -> Pair:
    return env(
        AppointmentAnswered(
            appointment_id=appointment_id,
            patient_id=patient_id,
            answer=answer,
            answered_at=NOW - timedelta(hours=1),
        )
    )


def settings(**rules: object) -> Pair:
    return env(ClinicSettingsChanged(appointment_visibility=AppointmentVisibility(**rules)))


def title(local: str) -> str:
    return f"Please confirm your appointment on {local}"


async def items(model: FakeReadModel, now: datetime = NOW) -> list[Item]:
    parent, clinic = await model.views("clinic-1", "client-1")
    todo = todo_list(parent, clinic, now=now)
    assert todo.badge == len(todo.items)
    return [(i.kind, i.title, i.href) for i in todo.items]


async def listed(*batches: list[Pair], now: datetime = NOW) -> list[Item]:
    model = FakeReadModel()
    for batch in batches:
        await apply_batch(model, batch)
    return await items(model, now)


def view_of(*batches: list[Pair]) -> ParentView | None:
    current = None
    for batch in batches:
        if change := project(batch).parents.get(PARENT):
            current = change.applied_to(current)
    return current


def test_todo_consumes_the_appointment_events() -> None:
    assert {AppointmentUpserted, AppointmentCancelled, AppointmentAnswered} <= set(CONSUMED_EVENTS)
    assert ClinicSettingsChanged in CONSUMED_EVENTS


async def test_a_scheduled_appointment_within_the_week_asks_for_confirmation() -> None:
    assert await listed([upserted()]) == [
        ("appointment_to_confirm", title("Thu 10 Dec at 15:30"), "/pets/p1")
    ]


@pytest.mark.parametrize(
    ("zone", "local"),
    [
        ("Europe/London", "Thu 10 Dec at 15:30"),
        ("America/New_York", "Thu 10 Dec at 10:30"),
        ("Pacific/Auckland", "Fri 11 Dec at 04:30"),  # the next day there (UTC+13 in summer)
        ("Not/A_Zone", "Thu 10 Dec at 15:30"),  # an unknown zone: UTC rather than no list
    ],
)
async def test_the_time_is_the_clinics_local_time(zone: str, local: str) -> None:
    assert await listed([upserted(timezone=zone)]) == [("appointment_to_confirm", title(local), "/pets/p1")]


async def test_an_appointment_without_a_pet_leads_to_the_pets() -> None:
    assert await listed([upserted(patient_id=None)]) == [
        ("appointment_to_confirm", title("Thu 10 Dec at 15:30"), "/pets")
    ]


@pytest.mark.parametrize("status", ["confirmed", "checked_in", "completed", "no_show"])
async def test_an_appointment_in_another_status_is_not_to_confirm(status: str) -> None:
    assert await listed([upserted(status=status)]) == []
    assert await listed([upserted()], [upserted(status=status)]) == []
    # The PIMS sets it back to scheduled (moved, say): to confirm again.
    assert len(await listed([upserted()], [upserted(status=status)], [upserted()])) == 1


async def test_a_cancelled_appointment_leaves_the_list() -> None:
    assert await listed([upserted()], [cancelled()]) == []
    assert await listed([upserted(), cancelled()]) == []


@pytest.mark.parametrize("answer", ["confirm", "cancel"])
async def test_an_answered_appointment_stays_answered_while_the_pims_still_says_scheduled(
    answer: str,
) -> None:
    model = FakeReadModel()
    await apply_batch(model, [upserted()])
    await apply_batch(model, [answered(answer=answer)])
    assert await items(model) == []
    # The PIMS sends it again, still scheduled (it has not processed the answer yet), moved or not.
    await apply_batch(model, [upserted()])
    await apply_batch(model, [upserted(starts_at=SOON + timedelta(hours=1))])
    assert await items(model) == []
    parent, _ = await model.views("clinic-1", "client-1")
    assert parent is not None
    assert parent.answered_appointment_ids == {"a1"}


@pytest.mark.parametrize("answered_first", [False, True])
def test_an_answer_and_a_resend_in_the_same_batch_leave_nothing_to_confirm(answered_first: bool) -> None:
    batch = [answered(), upserted()] if answered_first else [upserted(), answered()]
    change = project(batch).parents[PARENT]
    assert change.appointments == {}
    assert set(change.appointments_answered) == {"a1"}
    assert change.applied_to(None).appointments_to_confirm(NOW) == ()


@pytest.mark.parametrize("over", [cancelled(), upserted(status="completed"), upserted(status="no_show")])
async def test_an_appointment_over_forgets_its_answer(over: Pair) -> None:
    model = FakeReadModel()
    await apply_batch(model, [upserted(), answered()])
    await apply_batch(model, [over])
    parent, _ = await model.views("clinic-1", "client-1")
    assert parent is not None
    assert parent.answered_appointment_ids == frozenset()
    assert parent.scheduled_appointments == frozenset()


async def test_a_confirmed_appointment_keeps_its_answer() -> None:
    model = FakeReadModel()
    await apply_batch(model, [upserted(), answered()])
    await apply_batch(model, [upserted(status="confirmed")])
    await apply_batch(model, [upserted()])  # a late re-send from before the PIMS confirmed it
    assert await items(model) == []


@pytest.mark.parametrize(
    ("rules", "shown"),
    [
        ({}, {"a1", "a2", "a3", "a4"}),
        ({"hidden_types": ["EUTHANASIA"]}, {"a1", "a3", "a4"}),
        ({"hidden_reasons": ["quality of life consult"]}, {"a1", "a2", "a4"}),
        ({"visible_types": ["exam", "Surgery"]}, {"a1", "a3"}),
        ({"visible_types": []}, set()),
    ],
)
async def test_the_clinics_visibility_rules_hide_appointments(
    rules: dict[str, list[str]], shown: set[str]
) -> None:
    batch = [
        upserted("a1", SOON, appointment_type="Exam"),
        upserted("a2", SOON + timedelta(minutes=1), appointment_type="Euthanasia"),
        upserted(
            "a3", SOON + timedelta(minutes=2), appointment_type="surgery", reason="Quality of life consult"
        ),
        upserted("a4", SOON + timedelta(minutes=3)),  # no type: hidden only when types are restricted
    ]
    for order in ([settings(**rules)], batch), (batch, [settings(**rules)]):  # settings before or after
        model = FakeReadModel()
        for events in order:
            await apply_batch(model, events)
        parent, clinic = await model.views("clinic-1", "client-1")
        assert parent is not None
        assert clinic is not None
        assert {
            a.appointment_id for a in parent.appointments_to_confirm(NOW, clinic.appointment_visibility)
        } == shown
        assert len(await items(model)) == len(shown)


@pytest.mark.parametrize(
    ("starts_in", "shown"),
    [
        (-timedelta(hours=1), False),  # started (or past): nothing to confirm
        (timedelta(0), False),  # starting now
        (timedelta(minutes=1), True),
        (timedelta(days=6, hours=23), True),
        (APPOINTMENT_CONFIRM_WINDOW, True),
        (APPOINTMENT_CONFIRM_WINDOW + timedelta(minutes=1), False),  # later: asked when within the week
        (timedelta(days=30), False),
    ],
)
async def test_only_appointments_in_the_coming_week_are_to_confirm(starts_in: timedelta, shown: bool) -> None:
    assert len(await listed([upserted(starts_at=NOW + starts_in)])) == int(shown)


async def test_the_list_follows_the_clock_without_any_event() -> None:
    model = FakeReadModel()
    await apply_batch(model, [upserted(starts_at=NOW + timedelta(days=10))])
    assert await items(model) == []
    assert len(await items(model, NOW + timedelta(days=4))) == 1
    assert await items(model, NOW + timedelta(days=11)) == []  # past: gone, though still stored


async def test_appointments_come_after_the_forms_soonest_first_before_overdue_services() -> None:
    model = FakeReadModel()
    form = FormAssigned(
        assignment_id=uuid.uuid4(), form_id=uuid.uuid4(), version=1, title="Intake", assigned_at=NOW
    )
    overdue = ServiceReminderUpserted(
        reminder_id="r1", patient_id="p1", service="Rabies", due_on=(NOW - timedelta(days=3)).date()
    )
    await apply_batch(
        model,
        [
            upserted("a2", SOON + timedelta(hours=1), patient_id="p2"),
            env(overdue),
            upserted("a1", SOON),
            env(form),
            upserted("a0", SOON, patient_id=None),  # the same time: by appointment id
        ],
    )
    assert [(kind, href) for kind, _, href in await items(model)] == [
        ("form_pending", f"/forms/{form.assignment_id}"),
        ("appointment_to_confirm", "/pets"),
        ("appointment_to_confirm", "/pets/p1"),
        ("appointment_to_confirm", "/pets/p2"),
        ("overdue_services", "/pets"),
    ]


async def test_a_pets_appointments_leave_with_it_and_all_with_the_client() -> None:
    model = FakeReadModel()
    await apply_batch(
        model, [upserted("a1"), upserted("a2", patient_id="p2"), upserted("a3", patient_id=None)]
    )
    await apply_batch(model, [env(PatientRemoved(patient_id="p1", reason="deleted_in_pims"))])
    assert [href for _, _, href in await items(model)] == ["/pets/p2", "/pets"]  # the same time: by id
    await apply_batch(model, [env(PatientDeceased(patient_id="p2"))])
    assert [href for _, _, href in await items(model)] == ["/pets"]
    await apply_batch(model, [env(ClientRemoved(reason="deleted_in_pims")), upserted("a4", patient_id="p3")])
    assert [href for _, _, href in await items(model)] == ["/pets/p3"]


async def test_a_pet_removed_and_back_in_the_same_batch_keeps_what_came_after() -> None:
    batch = [upserted("a1"), env(PatientRemoved(patient_id="p1", reason="merged")), upserted("a2")]
    assert await listed(batch) == [("appointment_to_confirm", title("Thu 10 Dec at 15:30"), "/pets/p1")]
    change = project(batch).parents[PARENT]
    assert set(change.appointments) == {"a2"}


async def test_an_erased_parents_appointments_go_and_stay_gone() -> None:
    model = FakeReadModel()
    late = upserted("a2")
    await apply_batch(model, [upserted()])
    await apply_batch(model, [env(ClientErasureRequested(erasure_id=uuid.uuid4()), NOW)])
    assert PARENT not in model.parents
    assert (await apply_batch(model, [late])).events[0].ignored_reason == "client erased"
    assert await items(model) == []


def test_an_appointment_moved_to_another_pet_in_a_batch_is_one_item() -> None:
    change = project([upserted(patient_id="p1"), upserted(patient_id="p2")]).parents[PARENT]
    assert set(change.appointments) == {"a1"}
    assert ("p1", "a1") in change.appointments_ended  # the former pet's entry goes
    assert ("p2", "a1") not in change.appointments_ended
    (only,) = change.applied_to(None).appointments_to_confirm(NOW)
    assert only.patient_id == "p2"


async def test_an_appointment_moved_to_another_pet_or_given_one_later_is_one_item() -> None:
    model = FakeReadModel()
    await apply_batch(model, [upserted("a1", patient_id="p1"), upserted("a2", patient_id=None)])
    await apply_batch(model, [upserted("a1", patient_id="p2"), upserted("a2", patient_id="p3")])
    assert [href for _, _, href in await items(model)] == ["/pets/p2", "/pets/p3"]
    # The former pet leaving takes nothing (its entry for a1 is not the appointment's pet any more).
    await apply_batch(model, [env(PatientRemoved(patient_id="p1", reason="deleted_in_pims"))])
    assert [href for _, _, href in await items(model)] == ["/pets/p2", "/pets/p3"]
    await apply_batch(model, [cancelled("a1", "p2"), env(PatientDeceased(patient_id="p3"))])
    assert await items(model) == []


async def test_redelivery_and_a_resent_appointment_change_nothing() -> None:
    model = FakeReadModel()
    event = upserted()
    await apply_batch(model, [event, event])
    assert (await apply_batch(model, [event])).events == []  # the inbox: already applied
    await apply_batch(model, [upserted()])  # the same appointment under a new event id
    assert len(await items(model)) == 1


def test_applying_the_same_change_twice_changes_nothing() -> None:
    change = project(
        [upserted("a1"), upserted("a2", patient_id=None), answered("a3"), cancelled("a4"), answered("a2")]
    ).parents[PARENT]
    once = change.applied_to(None)
    assert [a.appointment_id for a in once.appointments_to_confirm(NOW)] == ["a1"]
    assert change.applied_to(once) == once


def test_any_batching_of_a_clients_events_gives_the_same_list() -> None:
    # One client's events keep their order (one key, one partition); how they are cut into batches,
    # and a batch delivered again, must not matter.
    events = [
        upserted("a1"),
        upserted("a2", patient_id=None),
        answered("a1"),
        upserted("a1"),  # re-sent before the PIMS processed the answer
        upserted("a3", patient_id="p2"),
        env(PatientRemoved(patient_id="p2", reason="deleted_in_pims")),
        upserted("a4", SOON + timedelta(hours=1)),
        upserted("a4", status="confirmed"),
        upserted("a5", SOON + timedelta(hours=2), patient_id="p2"),
        cancelled("a1"),
        upserted("a6", SOON + timedelta(hours=3)),
        answered("a6", "cancel"),
    ]

    def outcome(*batches: list[Pair]) -> tuple[tuple[ScheduledAppointment, ...], frozenset[str]]:
        # What the list shows (a pet's appointment written before the pet left stays stored, hidden).
        view = view_of(*batches)
        assert view is not None
        return view.appointments_to_confirm(NOW), view.answered_appointment_ids

    expected = outcome(events)
    assert [a.appointment_id for a in expected[0]] == ["a2", "a5"]
    assert expected[1] == {"a6"}
    for cuts in itertools.combinations(range(1, len(events)), 3):
        bounds = (0, *cuts, len(events))
        batches = [events[a:b] for a, b in itertools.pairwise(bounds)]
        assert outcome(*batches) == expected
        # The last batch delivered again (its effects committed without its inbox records): the same.
        assert outcome(*batches, batches[-1]) == expected
