"""When reminders go out (lead times, the clinic's timezone, allowed hours, catch-up) and what every
message says."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from petportal_notify.domain.delivery import (
    ClinicProfile,
    Contact,
    Delivery,
    RetryPolicy,
    Status,
    Template,
    decide,
)
from petportal_notify.domain.schedule import ReminderPolicy, appointment_slots, service_slots
from petportal_notify.domain.templates import STOP_LINE, render

pytestmark = pytest.mark.unit

POLICY = ReminderPolicy()
NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_service_reminders_go_14_and_3_days_before_at_10_local() -> None:
    slots = service_slots(date(2027, 3, 20), NY, utc(2027, 1, 1), POLICY)
    # 10:00 in New York: 15:00 UTC before DST (6 March), 14:00 after (17 March).
    assert [(s.lead, s.at) for s in slots] == [("14d", utc(2027, 3, 6, 15)), ("3d", utc(2027, 3, 17, 14))]


def test_a_passed_lead_time_is_dropped_while_a_later_one_remains() -> None:
    slots = service_slots(date(2027, 3, 20), "UTC", utc(2027, 3, 10), POLICY)
    assert [s.lead for s in slots] == ["3d"]


def test_the_last_passed_lead_time_catches_up_once_while_the_service_is_still_ahead() -> None:
    # Learnt of 2 days before the due date, at 23:00: sent at the next allowed moment (09:00).
    slots = service_slots(date(2027, 3, 20), "UTC", utc(2027, 3, 18, 23), POLICY)
    assert [(s.lead, s.at) for s in slots] == [("3d", utc(2027, 3, 19, 9))]
    # Past the due date: nothing.
    assert service_slots(date(2027, 3, 20), "UTC", utc(2027, 3, 21, 9), POLICY) == []


def test_appointment_reminders_move_earlier_into_allowed_hours() -> None:
    starts = datetime(2027, 5, 10, 8, 30, tzinfo=UTC)  # 08:30: two hours before is 06:30
    slots = appointment_slots(starts, "UTC", utc(2027, 5, 1), POLICY)
    # 06:30 and 08:30 two days before are outside 09:00-20:00: the evening before each, instead.
    assert [(s.lead, s.at) for s in slots] == [("48h", utc(2027, 5, 7, 20)), ("2h", utc(2027, 5, 9, 20))]
    for slot in slots:
        assert time(9) <= slot.at.time() <= time(20)
        assert slot.at < starts


def test_two_lead_times_on_one_moment_make_one_reminder() -> None:
    policy = ReminderPolicy(appointment_hours=(14, 13))  # 10:00 appointment: 20:00 and 21:00 → 20:00
    slots = appointment_slots(utc(2027, 5, 10, 10), "UTC", utc(2027, 5, 1), policy)
    assert len(slots) == 1


def test_an_unknown_timezone_falls_back_to_utc() -> None:
    assert service_slots(date(2027, 3, 20), "Mars/Olympus", utc(2027, 1, 1), POLICY)[0].at == utc(
        2027, 3, 6, 10
    )


CLINIC = ClinicProfile(
    "c1", "Happy Paws", "+14155550100", NY, help_text="Call us any time.", phone="555-0100"
)


def test_sms_texts_name_the_clinic_the_portal_and_how_to_stop() -> None:
    text = render(
        Template.SERVICE_REMINDER,
        "sms",
        CLINIC,
        {"service": "Rabies booster", "due_on": "2027-03-20", "pet_name": "Biscuit"},
        "https://portal.example.com/c/c1",
    )
    assert text.subject is None
    assert text.body == (
        "Happy Paws: Biscuit's Rabies booster is due on Sat 20 Mar 2027. "
        f"Book or view: https://portal.example.com/c/c1 {STOP_LINE}"
    )
    assert len(text.body) <= 2 * 153


def test_appointment_times_are_in_the_clinics_timezone() -> None:
    text = render(
        Template.APPOINTMENT_REMINDER,
        "email",
        CLINIC,
        {"starts_at": "2027-05-10T14:30:00+00:00"},
        "https://p/c/c1",
    )
    assert "on Mon 10 May at 10:30" in text.body  # EDT
    assert text.subject == "Appointment reminder: Your pet, on Mon 10 May at 10:30"
    assert "Call us any time." in text.body
    assert "555-0100" in text.body
    assert "turn email notifications off" in text.body


def test_new_messages_count_and_sign_in_codes() -> None:
    one = render(Template.NEW_MESSAGES, "sms", CLINIC, {"count": 1}, "https://p")
    five = render(Template.NEW_MESSAGES, "email", CLINIC, {"count": 5}, "https://p")
    assert "you have 1 new message. Read and reply: https://p" in one.body
    assert five.subject == "Happy Paws: you have 5 new messages"
    code = render(
        Template.SIGN_IN_CODE, "email", CLINIC, {"code": "482913", "link": "https://p/x"}, "https://p"
    )
    assert "482913" in (code.subject or "")
    assert "482913" in code.body
    assert "turn email notifications off" not in code.body  # not a notification one can turn off


def test_values_are_substituted_not_evaluated() -> None:
    text = render(
        Template.SERVICE_REMINDER,
        "sms",
        CLINIC,
        {"service": "$clinic_name ${code}", "due_on": "2027-01-01"},
        "x",
    )
    assert "$clinic_name ${code}" in text.body


DEC_10 = "2026-12-10T20:30:00+00:00"  # 15:30 in New York (EST)


@pytest.mark.parametrize(
    ("template", "params", "answer", "subject"),
    [
        (
            Template.REQUEST_ANSWERED,
            {"outcome": "accepted", "appointment_at": DEC_10, "pet_name": "Rex"},
            "accepted your appointment request for Rex on Thu 10 Dec at 15:30",
            "Your appointment request for Rex: accepted",
        ),
        (
            Template.REQUEST_ANSWERED,
            {"outcome": "proposed", "appointment_at": DEC_10, "pet_name": "Rex"},
            "proposed another time for your appointment request for Rex: Thu 10 Dec at 15:30",
            "Your appointment request for Rex: another time proposed",
        ),
        (
            Template.REQUEST_ANSWERED,
            {"outcome": "declined", "pet_name": "Rex"},
            "declined your appointment request for Rex",
            "Your appointment request for Rex: declined",
        ),
        (  # notify does not know the pet: no name, and never "Your pet"
            Template.REQUEST_ANSWERED,
            {"outcome": "accepted", "appointment_at": DEC_10},
            "accepted your appointment request on Thu 10 Dec at 15:30",
            "Your appointment request: accepted",
        ),
        (
            Template.REFILL_DECIDED,
            {"outcome": "approved", "pet_name": "Rex"},
            "approved your refill request for Rex",
            "Your refill request for Rex: approved",
        ),
        (
            Template.REFILL_DECIDED,
            {"outcome": "denied", "pet_name": "Rex"},
            "denied your refill request for Rex",
            "Your refill request for Rex: denied",
        ),
        (
            Template.REFILL_DECIDED,
            {"outcome": "denied"},
            "denied your refill request",
            "Your refill request: denied",
        ),
    ],
)
def test_answers_to_requests_say_what_the_clinic_did(
    template: Template, params: dict[str, str], answer: str, subject: str
) -> None:
    link = "https://portal.example.com/c/c1"
    sms = render(template, "sms", CLINIC, params, link)
    assert sms.subject is None
    assert sms.body == f"Happy Paws {answer}. Details: {link} {STOP_LINE}"
    assert len(sms.body) <= 2 * 153

    email = render(template, "email", CLINIC, params, link)
    assert email.subject == subject
    assert email.body.startswith(f"Happy Paws {answer}.\n\nSee the clinic's answer in the portal:\n{link}\n")
    assert "Call us any time." in email.body
    assert "turn email notifications off" in email.body
    assert "$" not in sms.body + email.body


def delivery(channel: str = "sms") -> Delivery:
    return Delivery("k", "c1", "k1", channel, Template.NEW_MESSAGES, {}, utc(2027, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("channel", "contact", "expected"),
    [
        ("sms", None, (Status.SKIPPED, "unknown_client")),
        ("sms", Contact("a@b.co", "+14155550101", True, False), (Status.SUPPRESSED, "opted_out")),
        ("email", Contact("a@b.co", "+14155550101", False, True), (Status.SUPPRESSED, "opted_out")),
        ("sms", Contact("a@b.co", None, True, True), (Status.SKIPPED, "no_phone")),
        ("email", Contact(None, "+14155550101", True, True), (Status.SKIPPED, "no_email")),
        ("email", Contact("not an address", None, True, True), (Status.SKIPPED, "invalid_email")),
        ("email", Contact("a@b.co", None, True, True), (Status.SENDING, None)),
        ("sms", Contact(None, "+14155550101", False, True), (Status.SENDING, None)),
    ],
)
def test_the_send_decision(
    channel: str, contact: Contact | None, expected: tuple[Status, str | None]
) -> None:
    assert decide(delivery(channel), contact) == expected


def test_retries_back_off_with_jitter_and_give_up() -> None:
    policy = RetryPolicy(
        max_attempts=4,
        first_delay=timedelta(seconds=10),
        max_delay=timedelta(seconds=60),
        rng=random.Random(1),
    )
    delays = [policy.delay(n).total_seconds() for n in range(1, 6)]
    for got, base in zip(delays, [10, 20, 40, 60, 60], strict=True):
        assert base * 0.8 <= got <= base * 1.2
    assert not policy.gives_up(3)
    assert policy.gives_up(4)
