from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from petportal_todo.domain import ClinicView, ParentView, Program, RequestAnswer, todo_list
from petportal_todo.domain.model import unread_title

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CARE = Program("care", "Care Plan", "Add a Care Member")
DENTAL = Program("dental", "Dental Club", "Join the Dental Club")


def parent(**kw: object) -> ParentView:
    return ParentView("clinic-1", "client-1", **kw)  # type: ignore[arg-type]


def test_a_parent_with_nothing_has_an_empty_list_and_badge_zero() -> None:
    assert todo_list(None, None).items == ()
    assert todo_list(None, None).badge == 0
    assert todo_list(parent(), ClinicView("clinic-1")).badge == 0


@pytest.mark.parametrize(
    ("count", "title"), [(1, "You have 1 unread message"), (2, "You have 2 unread messages")]
)
def test_unread_title_is_pluralised(count: int, title: str) -> None:
    assert unread_title(count) == title


def test_unread_messages_item_counts_and_links_to_the_conversation() -> None:
    todo = todo_list(parent(unread_message_ids=frozenset({"m1", "m2", "m3"})), None)
    assert todo.badge == 1
    (item,) = todo.items
    assert (item.kind, item.title, item.count, item.href) == (
        "unread_messages",
        "You have 3 unread messages",
        3,
        "/conversation",
    )


def test_no_unread_item_at_zero() -> None:
    view = parent(unread_message_ids=frozenset())
    assert view.unread == 0
    assert todo_list(view, None).items == ()


def test_opted_out_parent_is_asked_to_opt_in() -> None:
    todo = todo_list(parent(sms_opted_out_at=T0), None)
    assert [(i.kind, i.title) for i in todo.items] == [("sms_opt_in", "Opt into receiving texts")]


def test_opt_state_follows_the_latest_timestamps_not_arrival_order() -> None:
    assert parent(sms_opted_out_at=T0, sms_opted_in_at=T0 + timedelta(seconds=1)).sms_opted_out is False
    assert parent(sms_opted_out_at=T0 + timedelta(seconds=1), sms_opted_in_at=T0).sms_opted_out is True
    assert parent(sms_opted_out_at=T0, sms_opted_in_at=T0).sms_opted_out is False
    assert parent(sms_opted_in_at=T0).sms_opted_out is False


def test_one_cta_per_offered_program_not_enrolled_in_sorted_by_code() -> None:
    clinic = ClinicView("clinic-1", (DENTAL, CARE))
    todo = todo_list(parent(), clinic)
    assert [(i.kind, i.title, i.href) for i in todo.items] == [
        ("program_cta", "Add a Care Member", "/programs/care"),
        ("program_cta", "Join the Dental Club", "/programs/dental"),
    ]
    enrolled = todo_list(parent(enrolled_programs=frozenset({"care"})), clinic)
    assert [i.title for i in enrolled.items] == ["Join the Dental Club"]


def test_a_new_parent_still_sees_the_clinic_programs() -> None:
    assert [i.title for i in todo_list(None, ClinicView("clinic-1", (CARE,))).items] == ["Add a Care Member"]


def test_full_list_is_in_stable_order_and_badge_counts_items() -> None:
    todo = todo_list(
        parent(
            unread_message_ids=frozenset({"m1"}), sms_opted_out_at=T0, enrolled_programs=frozenset({"dental"})
        ),
        ClinicView("clinic-1", (DENTAL, CARE)),
    )
    assert [i.kind for i in todo.items] == ["unread_messages", "sms_opt_in", "program_cta"]
    assert todo.items[0].title == "You have 1 unread message"
    assert todo.badge == 3


def test_overdue_services_are_one_item_counting_every_pets_overdue_reminders() -> None:
    from datetime import date

    today = date(2026, 6, 10)
    due = frozenset({("p1", "r1", date(2026, 6, 1)), ("p2", "r2", date(2026, 6, 9)), ("p1", "r3", today)})
    todo = todo_list(parent(due_reminders=due, unread_message_ids=frozenset({"m1"})), None, today)
    assert [(i.kind, i.title, i.count, i.href) for i in todo.items] == [
        ("unread_messages", "You have 1 unread message", 1, "/conversation"),
        ("overdue_services", "2 services are overdue", 2, "/pets"),
    ]
    assert (
        todo_list(parent(due_reminders=due), None, date(2026, 6, 2)).items[0].title == "1 service is overdue"
    )
    assert todo_list(parent(due_reminders=due), None, date(2026, 6, 1)).badge == 0  # due today is not overdue


def answer(
    request_id: str, kind: str, outcome: str, at: datetime = T0, patient_id: str = "p1"
) -> RequestAnswer:
    return RequestAnswer(request_id, patient_id, kind, outcome, at)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "outcome", "item_kind", "title"),
    [
        ("appointment", "accepted", "request_answered", "Your appointment request was accepted"),
        (
            "appointment",
            "proposed",
            "request_answered",
            "Your clinic proposed another time for your appointment request",
        ),
        ("appointment", "declined", "request_answered", "Your appointment request was declined"),
        ("refill", "approved", "refill_decided", "Your refill request was approved"),
        ("refill", "denied", "refill_decided", "Your refill request was denied"),
    ],
)
def test_an_answered_request_is_an_item_leading_to_its_pet(
    kind: str, outcome: str, item_kind: str, title: str
) -> None:
    todo = todo_list(parent(request_answers=frozenset({answer("r1", kind, outcome, patient_id="p.7")})), None)
    assert [(i.kind, i.title, i.href, i.count) for i in todo.items] == [(item_kind, title, "/pets/p.7", None)]
    assert todo.badge == 1


def test_a_seen_answer_is_not_on_the_list_whichever_came_first() -> None:
    answers = frozenset({answer("r1", "appointment", "accepted"), answer("r2", "refill", "denied")})
    assert [
        i.kind
        for i in todo_list(parent(request_answers=answers, seen_request_ids=frozenset({"r1"})), None).items
    ] == ["refill_decided"]
    # Seen, not answered yet (the events came in the other order): nothing, and nothing when it comes.
    assert todo_list(parent(seen_request_ids=frozenset({"r3"})), None).badge == 0


def test_each_answer_is_an_item_in_a_stable_order_between_messages_and_overdue_services() -> None:
    from datetime import date

    today = date(2026, 6, 10)
    answers = frozenset(
        {
            answer("r-b", "refill", "approved", T0, "p2"),
            answer("r-c", "appointment", "declined", T0 + timedelta(hours=1)),
            answer("r-a", "appointment", "accepted", T0 + timedelta(hours=1), "p2"),  # same time: by id
            answer("r-d", "appointment", "proposed", T0 - timedelta(days=1)),
        }
    )
    todo = todo_list(
        parent(
            unread_message_ids=frozenset({"m1"}),
            request_answers=answers,
            due_reminders=frozenset({("p1", "x", date(2026, 6, 1))}),
            sms_opted_out_at=T0,
        ),
        ClinicView("clinic-1", (CARE,)),
        today,
    )
    assert [(i.kind, i.href) for i in todo.items] == [
        ("unread_messages", "/conversation"),
        ("request_answered", "/pets/p1"),  # r-d, the oldest answer
        ("request_answered", "/pets/p2"),  # r-a
        ("request_answered", "/pets/p1"),  # r-c
        ("refill_decided", "/pets/p2"),
        ("overdue_services", "/pets"),
        ("sms_opt_in", "/notifications/preferences"),
        ("program_cta", "/programs/care"),
    ]
    assert todo.items[1].title == "Your clinic proposed another time for your appointment request"
    assert todo.badge == 8
