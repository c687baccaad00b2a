"""Deliveries' use cases and the dispatcher on the in-memory unit of work, with recording providers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_devkit.testing import passes_when_woken_mid_pass
from petportal_notify.domain.clinics import Clinic
from petportal_notify.domain.consent import Consent
from petportal_notify.domain.delivery import Delivery, Outgoing, ProviderError, RetryPolicy, Status, Template
from petportal_notify.domain.schedule import ReminderPolicy
from petportal_notify.service_layer import deliveries
from petportal_schemas import (
    AppointmentBooked,
    AppointmentBookingRejected,
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentUpserted,
    Envelope,
    Event,
    MessageRead,
    MessageReceived,
    RefillRequestDecided,
    ReminderSent,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
)

pytestmark = pytest.mark.unit

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
POLICY = ReminderPolicy()


def wrap(event: Event, client_id: str = "k1") -> Envelope:
    return Envelope.wrap(event, clinic_id="c1", client_id=client_id, producer="test")


@dataclass
class RecordingProvider:
    sent: list[Outgoing] = field(default_factory=list)
    fail_with: list[ProviderError] = field(default_factory=list)

    async def send(self, message: Outgoing) -> str:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append(message)
        return f"id-{len(self.sent)}"

    async def close(self) -> None:
        pass


@pytest.fixture
def world(repositories: Any) -> Any:
    store = repositories.notify
    store.clinics["c1"] = Clinic("c1", "Happy Paws", "+14155550100", "UTC")
    for client_id, email, phone in (
        ("k1", "ada@example.com", "+14155550101"),
        ("k2", None, "+14155550102"),
        ("k3", "bad address", None),
    ):
        store.phones[("c1", client_id)] = phone
        store.emails[("c1", client_id)] = email
        store.consents[("c1", client_id)] = Consent(clinic_id="c1", client_id=client_id)
    store.pets[("c1", "p1")] = "Biscuit"
    return repositories


@pytest.fixture
def email() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
def sms() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
def dispatcher(
    uow: FakeUnitOfWork[Any], email: RecordingProvider, sms: RecordingProvider
) -> deliveries.Dispatcher:
    return deliveries.Dispatcher(
        lambda: uow,
        {"email": email, "sms": sms},
        link=lambda clinic_id: f"https://portal.example.com/c/{clinic_id}",
        retry=RetryPolicy(max_attempts=3, first_delay=timedelta(seconds=10), jitter=0),
    )


def rows(world: Any) -> list[Delivery]:
    return list(world.deliveries.rows.values())


def message() -> MessageReceived:
    return MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=NOW)


async def test_a_burst_of_staff_messages_is_one_notification_per_channel(uow: Any, world: Any) -> None:
    batch = timedelta(seconds=60)
    first = wrap(message())
    await deliveries.new_message(uow, first, message(), batch=batch, at=NOW)
    for _ in range(4):
        await deliveries.new_message(uow, wrap(message()), message(), batch=batch, at=NOW)
    # The same event again (a redelivery) counts nothing.
    assert not await deliveries.new_message(uow, first, message(), batch=batch, at=NOW)
    queued = rows(world)
    assert sorted(d.channel for d in queued) == ["email", "sms"]
    assert {d.params["count"] for d in queued} == {5}
    assert {d.not_before for d in queued} == {NOW + batch}


async def test_reading_the_messages_first_cancels_the_notification(uow: Any, world: Any) -> None:
    await deliveries.new_message(uow, wrap(message()), message(), batch=timedelta(seconds=60), at=NOW)
    read = MessageRead(conversation_id=uuid.uuid4(), message_ids=[uuid.uuid4()], read_at=NOW)
    await deliveries.messages_read(uow, wrap(read), read)
    assert {d.status for d in rows(world)} == {Status.CANCELLED}


async def test_no_notification_on_a_channel_the_client_turned_off(uow: Any, world: Any) -> None:
    world.notify.consents[("c1", "k1")].set_email(False, "portal")
    await deliveries.new_message(uow, wrap(message()), message(), batch=timedelta(0), at=NOW)
    assert [d.channel for d in rows(world)] == ["sms"]


def answered(outcome: str = "accepted", patient_id: str = "p1") -> AppointmentRequestAnswered:
    return AppointmentRequestAnswered(
        request_id=uuid.uuid4(),
        patient_id=patient_id,
        outcome=outcome,  # type: ignore[arg-type]
        appointment_at=None if outcome == "declined" else datetime(2027, 3, 4, 15, 30, tzinfo=UTC),
        answered_at=NOW,
    )


def decided(outcome: str = "approved") -> RefillRequestDecided:
    return RefillRequestDecided(
        request_id=uuid.uuid4(),
        patient_id="p1",
        prescription_id="rx1",
        outcome=outcome,  # type: ignore[arg-type]
        decided_at=NOW,
    )


async def test_an_answered_request_is_one_notification_per_reachable_channel_sent_once(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, email: RecordingProvider, sms: RecordingProvider
) -> None:
    event = answered("accepted")
    envelope = wrap(event)
    assert await deliveries.request_answered(uow, envelope, event, at=NOW)
    # A redelivery is refused by the inbox; the same answer published again (a replay, another event
    # id) meets the deliveries' keys.
    assert not await deliveries.request_answered(uow, envelope, event, at=NOW)
    assert await deliveries.request_answered(uow, wrap(event), event, at=NOW + timedelta(minutes=1))
    queued = rows(world)
    assert sorted(d.key for d in queued) == [
        f"request_answered:{event.request_id}:accepted:email",
        f"request_answered:{event.request_id}:accepted:sms",
    ]
    assert {(d.template, d.status, d.not_before, d.patient_id) for d in queued} == {
        (Template.REQUEST_ANSWERED, Status.QUEUED, NOW, "p1")
    }

    assert await dispatcher.dispatch_once(NOW) == 2
    said = "Happy Paws accepted your appointment request for Biscuit on Thu 4 Mar at 15:30"
    [mail] = email.sent
    assert (mail.to, mail.subject) == ("ada@example.com", "Your appointment request for Biscuit: accepted")
    assert mail.body.startswith(f"{said}.\n")
    assert "https://portal.example.com/c/c1" in mail.body
    [text] = sms.sent
    assert text.to == "+14155550101"
    assert text.body == f"{said}. Details: https://portal.example.com/c/c1 Reply STOP to opt out."
    assert {d.status for d in rows(world)} == {Status.SENT}
    assert uow.published == []  # not a reminder: no ReminderSent
    assert await dispatcher.dispatch_once(NOW + timedelta(days=1)) == 0
    assert (len(email.sent), len(sms.sent)) == (1, 1)


async def test_an_online_booking_taken_or_refused_by_the_pims_is_told_once_per_channel(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, email: RecordingProvider, sms: RecordingProvider
) -> None:
    booking_id = uuid.uuid4()
    starts_at = datetime(2027, 3, 4, 15, 30, tzinfo=UTC)
    booked = AppointmentBooked(
        booking_id=booking_id,
        slot_id="s1",
        patient_id="p1",
        starts_at=starts_at,
        duration_minutes=30,
        booked_at=NOW,
    )
    assert await deliveries.booking_answered(uow, wrap(booked), booked, at=NOW)
    assert await deliveries.booking_answered(uow, wrap(booked), booked, at=NOW)  # published again
    refused = AppointmentBookingRejected(
        booking_id=uuid.uuid4(),
        patient_id="p1",
        starts_at=starts_at,
        reason="slot_unavailable",
        rejected_at=NOW,
    )
    assert await deliveries.booking_answered(uow, wrap(refused), refused, at=NOW)
    assert sorted(d.key for d in rows(world) if str(booking_id) in d.key) == [
        f"booking_answered:{booking_id}:confirmed:email",
        f"booking_answered:{booking_id}:confirmed:sms",
    ]
    assert await dispatcher.dispatch_once(NOW) == 4
    assert sorted(m.subject for m in email.sent) == [
        "Your booking for Biscuit: confirmed",
        "Your booking for Biscuit: not booked",
    ]
    assert sorted(t.body.split(". Details")[0] for t in sms.sent) == [
        "Happy Paws: Biscuit is booked on Thu 4 Mar at 15:30",
        "Happy Paws: we could not book Biscuit on Thu 4 Mar at 15:30; please pick another time",
    ]


async def test_a_refill_decision_skips_a_channel_the_client_turned_off_and_an_opt_out_suppresses_it(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, email: RecordingProvider, sms: RecordingProvider
) -> None:
    world.notify.consents[("c1", "k1")].set_email(False, "portal")
    event = decided("denied")
    assert await deliveries.refill_decided(uow, wrap(event), event, at=NOW)
    assert await deliveries.refill_decided(uow, wrap(event), event, at=NOW)  # published again
    [row] = rows(world)
    assert (row.key, row.channel, row.template) == (
        f"refill_decided:{event.request_id}:denied:sms",
        "sms",
        Template.REFILL_DECIDED,
    )
    # STOP before it goes: suppressed when it is due, as any other text.
    world.notify.consents[("c1", "k1")].set_sms(False, "sms_keyword")
    await dispatcher.dispatch_once(NOW)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "opted_out")
    assert (email.sent, sms.sent) == ([], [])


async def test_answers_reach_the_channels_a_client_has(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, sms: RecordingProvider
) -> None:
    event = decided("approved")
    await deliveries.refill_decided(uow, wrap(event, "k2"), event, at=NOW)  # a phone, no email
    declined = answered("declined", patient_id="p-unknown")
    await deliveries.request_answered(uow, wrap(declined, "k2"), declined, at=NOW)
    assert sorted((d.template, d.channel) for d in rows(world)) == [
        (Template.REFILL_DECIDED, "sms"),
        (Template.REQUEST_ANSWERED, "sms"),
    ]
    await dispatcher.dispatch_once(NOW)
    assert sorted(m.body.split(". Details")[0] for m in sms.sent) == [
        "Happy Paws approved your refill request for Biscuit",
        "Happy Paws declined your appointment request",  # notify does not know the pet
    ]


async def test_an_unknown_or_erased_client_gets_no_answer(uow: Any, world: Any) -> None:
    await world.notify.erase_client("c1", "k1")
    for client_id in ("k1", "nobody"):
        event, refill = answered(), decided()
        assert await deliveries.request_answered(uow, wrap(event, client_id), event, at=NOW)
        assert await deliveries.refill_decided(uow, wrap(refill, client_id), refill, at=NOW)
    assert rows(world) == []


def reminder(due: date, reminder_id: str = "r1") -> ServiceReminderUpserted:
    return ServiceReminderUpserted(reminder_id=reminder_id, patient_id="p1", service="Rabies", due_on=due)


async def test_a_service_reminder_is_queued_per_slot_and_channel_once(uow: Any, world: Any) -> None:
    event = reminder(date(2027, 3, 30))
    await deliveries.service_reminder(uow, wrap(event), event, policy=POLICY, at=NOW)
    again = reminder(date(2027, 3, 30))  # the PIMS pushes the same reminder again
    await deliveries.service_reminder(uow, wrap(again), again, policy=POLICY, at=NOW)
    queued = rows(world)
    assert len(queued) == 4  # 14 and 3 days before, by email and by SMS
    assert {d.status for d in queued} == {Status.QUEUED}


async def test_a_moved_due_date_cancels_the_old_slots(uow: Any, world: Any) -> None:
    first = reminder(date(2027, 3, 30))
    await deliveries.service_reminder(uow, wrap(first), first, policy=POLICY, at=NOW)
    moved = reminder(date(2027, 4, 30))
    await deliveries.service_reminder(uow, wrap(moved), moved, policy=POLICY, at=NOW)
    by_status: dict[Status, int] = {}
    for d in rows(world):
        by_status[d.status] = by_status.get(d.status, 0) + 1
    assert by_status == {Status.CANCELLED: 4, Status.QUEUED: 4}


async def test_a_booked_service_and_a_cancelled_appointment_are_not_reminded(uow: Any, world: Any) -> None:
    event = reminder(date(2027, 3, 30))
    await deliveries.service_reminder(uow, wrap(event), event, policy=POLICY, at=NOW)
    booked = ServiceReminderCompleted(reminder_id="r1", patient_id="p1", reason="booked")
    await deliveries.service_reminder_closed(uow, wrap(booked), booked)
    visit = AppointmentUpserted(appointment_id="a1", patient_id="p1", starts_at=NOW + timedelta(days=5))
    await deliveries.appointment(uow, wrap(visit), visit, policy=POLICY, at=NOW)
    cancelled = AppointmentCancelled(appointment_id="a1", patient_id="p1")
    await deliveries.appointment_cancelled(uow, wrap(cancelled), cancelled)
    assert {d.status for d in rows(world)} == {Status.CANCELLED}
    assert {d.reason for d in rows(world)} == {"booked", "cancelled"}


async def test_a_completed_appointment_cancels_its_reminders(uow: Any, world: Any) -> None:
    visit = AppointmentUpserted(appointment_id="a1", starts_at=NOW + timedelta(days=5))
    await deliveries.appointment(uow, wrap(visit), visit, policy=POLICY, at=NOW)
    done = AppointmentUpserted(appointment_id="a1", starts_at=NOW + timedelta(days=5), status="completed")
    await deliveries.appointment(uow, wrap(done), done, policy=POLICY, at=NOW)
    assert {d.status for d in rows(world)} == {Status.CANCELLED}


def sign_in(client_id: str = "k1", key: str = "s1") -> Delivery:
    return Delivery(
        key=key,
        clinic_id="c1",
        client_id=client_id,
        channel="sms",
        template=Template.SIGN_IN_CODE,
        params={"code": "123456", "link": "https://p/x"},
        not_before=NOW,
    )


async def test_a_requested_delivery_is_idempotent_and_refused_for_strangers(uow: Any, world: Any) -> None:
    first = await deliveries.request(uow, sign_in())
    again = await deliveries.request(uow, sign_in())
    assert first.id == again.id
    assert len(rows(world)) == 1
    with pytest.raises(deliveries.UnknownRecipient):
        await deliveries.request(uow, sign_in(client_id="nobody"))


async def test_due_reminders_are_sent_and_raise_reminder_sent(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, email: RecordingProvider, sms: RecordingProvider
) -> None:
    event = reminder(date(2027, 3, 4))  # 3 days ahead: the 14-day slot is past, the 3-day one is now
    await deliveries.service_reminder(uow, wrap(event), event, policy=POLICY, at=NOW)
    assert await dispatcher.dispatch_once(NOW) == 2
    assert [m.to for m in email.sent] == ["ada@example.com"]
    assert [(m.to, m.sender) for m in sms.sent] == [("+14155550101", "+14155550100")]
    assert "Biscuit's Rabies is due on Thu 4 Mar 2027" in sms.sent[0].body
    assert {d.status for d in rows(world)} == {Status.SENT}
    sent = [e for e in uow.published if e.event_type == "ReminderSent"]
    assert sorted(ReminderSent.model_validate(e.payload).channel for e in sent) == ["email", "sms"]
    # Nothing is due any more: nothing more is sent.
    assert await dispatcher.dispatch_once(NOW + timedelta(days=1)) == 0
    assert len(sms.sent) == 1


async def test_an_opt_out_before_the_send_suppresses_it(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, sms: RecordingProvider
) -> None:
    await deliveries.request(uow, sign_in())
    world.notify.consents[("c1", "k1")].set_sms(False, "sms_keyword")
    await dispatcher.dispatch_once(NOW)
    assert sms.sent == []
    [row] = rows(world)
    assert (row.status, row.reason, row.params) == (Status.SUPPRESSED, "opted_out", {})


async def test_no_address_is_skipped_with_a_reason(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher
) -> None:
    for client_id, channel in (("k2", "email"), ("k3", "email"), ("k3", "sms")):
        d = sign_in(client_id, key=f"{client_id}-{channel}")
        d.channel = channel  # type: ignore[assignment]
        await deliveries.request(uow, d)
    await dispatcher.dispatch_once(NOW)
    assert sorted((d.client_id, d.status, d.reason) for d in rows(world)) == [
        ("k2", Status.SKIPPED, "no_email"),
        ("k3", Status.SKIPPED, "invalid_email"),
        ("k3", Status.SKIPPED, "no_phone"),
    ]


async def test_provider_errors_are_retried_with_backoff_then_dead_lettered(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, sms: RecordingProvider
) -> None:
    sms.fail_with = [ProviderError("twilio_20500", retryable=True) for _ in range(3)]
    await deliveries.request(uow, sign_in())
    await dispatcher.dispatch_once(NOW)
    [row] = rows(world)
    assert (row.status, row.attempts, row.not_before) == (Status.QUEUED, 1, NOW + timedelta(seconds=10))
    assert await dispatcher.dispatch_once(NOW + timedelta(seconds=5)) == 0  # not yet
    await dispatcher.dispatch_once(NOW + timedelta(seconds=10))
    assert (row.status, row.attempts) == (Status.QUEUED, 2)
    await dispatcher.dispatch_once(NOW + timedelta(minutes=5))
    assert (row.status, row.attempts, row.reason, row.params) == (Status.DEAD, 3, "twilio_20500", {})
    assert sms.sent == []


async def test_a_recovered_provider_sends_on_the_retry(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, sms: RecordingProvider
) -> None:
    sms.fail_with = [ProviderError("twilio_unreachable", retryable=True)]
    await deliveries.request(uow, sign_in())
    await dispatcher.dispatch_once(NOW)
    await dispatcher.dispatch_once(NOW + timedelta(minutes=1))
    [row] = rows(world)
    assert (row.status, row.attempts, row.provider_id) == (Status.SENT, 2, "id-1")
    assert len(sms.sent) == 1


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ProviderError("twilio_21211", retryable=False), Status.FAILED),
        (ProviderError("twilio_ReadTimeout", retryable=True, outcome_unknown=True), Status.UNKNOWN),
    ],
)
async def test_refused_or_unknown_outcomes_are_never_retried(
    uow: Any,
    world: Any,
    dispatcher: deliveries.Dispatcher,
    sms: RecordingProvider,
    error: ProviderError,
    status: Status,
) -> None:
    sms.fail_with = [error]
    await deliveries.request(uow, sign_in())
    await dispatcher.dispatch_once(NOW)
    await dispatcher.dispatch_once(NOW + timedelta(hours=2))
    [row] = rows(world)
    assert (row.status, row.attempts) == (status, 1)
    assert sms.sent == []


async def test_a_dispatcher_that_died_mid_send_leaves_the_outcome_unknown(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher, sms: RecordingProvider
) -> None:
    [delivery] = [await deliveries.request(uow, sign_in())]
    async with uow:  # claimed and marked sending, then the process died
        assert delivery.id is not None
        await uow.repositories.deliveries.mark_sending([delivery.id], NOW + timedelta(minutes=1))
    await dispatcher.dispatch_once(NOW + timedelta(minutes=2))
    [row] = rows(world)
    assert (row.status, row.reason) == (Status.UNKNOWN, "dispatcher_lost")
    assert sms.sent == []


async def test_status_callbacks_move_a_sent_delivery_forward_once(
    uow: Any, world: Any, dispatcher: deliveries.Dispatcher
) -> None:
    await deliveries.request(uow, sign_in())
    await dispatcher.dispatch_once(NOW)
    assert not await deliveries.provider_status(uow, "id-1", "sent", None)
    assert await deliveries.provider_status(uow, "id-1", "undelivered", "30003")
    assert not await deliveries.provider_status(uow, "id-1", "delivered", None)  # late and out of order
    [row] = rows(world)
    assert (row.status, row.reason) == (Status.UNDELIVERED, "twilio_30003")
    assert not await deliveries.provider_status(uow, "SMunknown", "delivered", None)


async def test_a_reminder_links_to_a_sign_in_for_its_client_or_to_the_portal(
    uow: Any, world: Any, email: RecordingProvider, sms: RecordingProvider
) -> None:
    asked: list[list[tuple[str, str]]] = []

    async def links(clients: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        asked.append(list(clients))
        return {
            c: f"https://portal.example.com/sign-in/link#token=for-{c[1]}" for c in clients if c[1] != "k2"
        }

    dispatcher = deliveries.Dispatcher(
        lambda: uow,
        {"email": email, "sms": sms},
        link=lambda c: f"https://portal.example.com/c/{c}",
        reminder_links=links,
    )
    for client_id in ("k1", "k2"):
        event = reminder(date(2027, 3, 4), reminder_id=f"r-{client_id}")
        await deliveries.service_reminder(uow, wrap(event, client_id), event, policy=POLICY, at=NOW)
    await deliveries.request(uow, sign_in())  # not a reminder: no link asked for
    await dispatcher.dispatch_once(NOW)
    bodies = {m.to: m.body for m in sms.sent if "is due" in m.body}
    # signed in, the link opens the pet's page (its reminders; an appointment's confirm and cancel)
    assert "https://portal.example.com/sign-in/link#token=for-k1&next=/pets/p1" in bodies["+14155550101"]
    assert "https://portal.example.com/c/c1 " in bodies["+14155550102"]  # identity had none: the portal
    assert "sign-in/link#token=for-k1" in email.sent[0].body
    assert asked == [[("c1", "k1"), ("c1", "k2")]]  # one request for the round


async def test_a_delivery_queued_during_a_round_is_sent_at_once_not_an_interval_later(
    dispatcher: deliveries.Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher.interval = 60

    def replace_round(one_round: Callable[..., Awaitable[int]]) -> None:
        monkeypatch.setattr(dispatcher, "dispatch_once", one_round)

    # Well within the 60 s interval.
    assert await passes_when_woken_mid_pass(dispatcher.run, dispatcher.wake, replace_round) >= 2
