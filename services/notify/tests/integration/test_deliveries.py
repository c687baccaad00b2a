"""Deliveries on the real database, broker and sinks: a staff burst is one email and one text, a due
reminder goes once (across a restart) and raises ReminderSent, a booked one does not, a provider
outage is retried then dead-lettered, status callbacks are verified, and a STOP in the middle of
1,000 queued texts stops every later one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from petportal_devkit.testing import eventually
from petportal_notify.domain.delivery import Delivery, Template
from petportal_notify.service_layer import deliveries
from petportal_runtime.internal import internal_headers
from petportal_schemas import (
    AppointmentRequestAnswered,
    ClientUpserted,
    Envelope,
    MessageReceived,
    PatientUpserted,
    RefillRequestDecided,
    ReminderSent,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    topics,
)

from .conftest import PUBLIC_BASE_URL, NotifyFactory, NotifyUnderTest, Sinks, consume

pytestmark = pytest.mark.integration


async def with_email(n: NotifyUnderTest, client_id: str, address: str, phone: str) -> None:
    event = ClientUpserted(first_name="Ada", last_name="Lovelace", email=address, phone=phone)
    await n.publish(Envelope.wrap(event, clinic_id=n.clinic_id, client_id=client_id, producer="sync"))

    async def applied() -> bool:
        return bool(
            await n.scalar(
                "SELECT count(*) FROM contacts WHERE clinic_id = :c AND client_id = :k AND email = :e",
                c=n.clinic_id,
                k=client_id,
                e=address,
            )
        )

    await eventually(applied)


async def statuses(n: NotifyUnderTest, client_id: str) -> list[dict[str, Any]]:
    response = await n.http.get("/clinic/v1/deliveries", params={"client_id": client_id}, headers=n.staff())
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


async def test_a_burst_of_staff_messages_is_one_email_and_one_text(
    running_notify: NotifyFactory, sinks: Sinks
) -> None:
    async with running_notify(notification_batch_seconds=0) as n:
        await with_email(n, "k3", "ada@example.com", n.own_phone)
        conversation = uuid.uuid4()
        burst = [
            Envelope.wrap(
                MessageReceived(
                    conversation_id=conversation, message_id=uuid.uuid4(), sent_at=datetime.now(UTC)
                ),
                clinic_id=n.clinic_id,
                client_id="k3",
                producer="messaging",
            )
            for _ in range(5)
        ]
        await n.publish(*burst)

        async def counted() -> bool:
            total = await n.scalar(
                "SELECT coalesce(max((params->>'count')::int), 0) FROM deliveries WHERE clinic_id = :c",
                c=n.clinic_id,
            )
            return bool(total == 5)

        await eventually(counted)
        await n.notify.dispatcher.dispatch_once()
        [mail] = [m for m in sinks.mailbox.messages() if m["To"] == "ada@example.com"]
        assert mail["Subject"] == "Paws & Claws: you have 5 new messages"
        assert f"{PUBLIC_BASE_URL}/c/{n.clinic_id}" in mail.get_content()
        assert "Paws & Claws" in mail["From"]
        [text] = sinks.texts(n.own_phone)
        assert "you have 5 new messages" in text["body"]
        assert text["body"].endswith("Reply STOP to opt out.")
        assert {d["status"] for d in await statuses(n, "k3")} == {"sent"}


async def test_answers_to_requests_are_one_email_and_one_text_each_never_twice(
    notify: NotifyUnderTest, sinks: Sinks
) -> None:
    n = notify
    await with_email(n, "k3", "grace@example.com", n.own_phone)
    pet = PatientUpserted(patient_id="p-9", name="Rex", species="dog")
    await n.publish(Envelope.wrap(pet, clinic_id=n.clinic_id, client_id="k3", producer="sync"))
    now = datetime.now(UTC)
    answer = AppointmentRequestAnswered(
        request_id=uuid.uuid4(),
        patient_id="p-9",
        outcome="accepted",
        appointment_at=datetime(2030, 12, 10, 15, 30, tzinfo=UTC),  # the clinic's timezone is UTC
        answered_at=now,
    )
    refill = RefillRequestDecided(
        request_id=uuid.uuid4(), patient_id="p-9", prescription_id="rx-1", outcome="approved", decided_at=now
    )

    def from_pets(event: AppointmentRequestAnswered | RefillRequestDecided) -> Envelope:
        return Envelope.wrap(event, clinic_id=n.clinic_id, client_id="k3", producer="pets")

    answered = from_pets(answer)
    assert answered.topic == topics.PETS
    # Redelivered, and published again under another event id (a replay); then the refill decision,
    # on the same partition, so once it is applied so are those before it.
    await n.publish(answered, answered, from_pets(answer), from_pets(refill))

    async def applied() -> bool:
        pets = await n.scalar("SELECT count(*) FROM patients WHERE clinic_id = :c", c=n.clinic_id)
        refills = await n.scalar(
            "SELECT count(*) FROM deliveries WHERE clinic_id = :c AND template = 'refill_decided'",
            c=n.clinic_id,
        )
        return bool(pets == 1 and refills == 2)

    await eventually(applied)
    keys = await n.rows("SELECT key FROM deliveries WHERE clinic_id = :c ORDER BY key", c=n.clinic_id)
    assert [k for (k,) in keys] == [
        f"refill_decided:{refill.request_id}:approved:email",
        f"refill_decided:{refill.request_id}:approved:sms",
        f"request_answered:{answer.request_id}:accepted:email",
        f"request_answered:{answer.request_id}:accepted:sms",
    ]

    await n.notify.dispatcher.dispatch_once()
    await n.notify.dispatcher.dispatch_once(now + timedelta(days=1))  # nothing more is due
    link = f"{PUBLIC_BASE_URL}/c/{n.clinic_id}"
    accepted = "Paws & Claws accepted your appointment request for Rex on Tue 10 Dec at 15:30"
    approved = "Paws & Claws approved your refill request for Rex"
    assert len([m for m in sinks.mailbox.messages() if m["To"] == "grace@example.com"]) == 2
    mails = {
        m["Subject"]: m.get_content() for m in sinks.mailbox.messages() if m["To"] == "grace@example.com"
    }
    assert sorted(mails) == [
        "Your appointment request for Rex: accepted",
        "Your refill request for Rex: approved",
    ]
    assert mails["Your appointment request for Rex: accepted"].startswith(f"{accepted}.\n")
    assert all(link in body for body in mails.values())
    texts = sorted(t["body"] for t in sinks.texts(n.own_phone))
    assert texts == [
        f"{accepted}. Details: {link} Reply STOP to opt out.",
        f"{approved}. Details: {link} Reply STOP to opt out.",
    ]
    assert {d["status"] for d in await statuses(n, "k3")} == {"sent"}


async def test_a_due_reminder_is_sent_once_across_a_restart_and_raises_reminder_sent(
    running_notify: NotifyFactory, sinks: Sinks
) -> None:
    async with running_notify() as n:
        due = date.today() + timedelta(days=2)  # the 3-day lead time has passed: it goes now
        reminder = ServiceReminderUpserted(
            reminder_id="r-1", patient_id="p-1", service="Rabies booster", due_on=due
        )
        envelope = Envelope.wrap(reminder, clinic_id=n.clinic_id, client_id="k3", producer="sync")
        await n.publish(envelope)

        async def queued() -> bool:
            return bool(
                await n.scalar("SELECT count(*) FROM deliveries WHERE subject_id = 'r-1'", c=n.clinic_id)
            )

        await eventually(queued)
        # Allowed hours are the clinic's (UTC here): move now into them so the test runs at any hour.
        noon = datetime.now(UTC).replace(hour=12) + timedelta(days=1)
        await n.notify.dispatcher.dispatch_once(noon)
        assert len(sinks.texts(n.own_phone)) == 1
        assert "Rabies booster is due" in sinks.texts(n.own_phone)[0]["body"]
        database = n.url
    # The service restarts on the same database; the PIMS pushes the same reminder again.
    async with running_notify(database=database, seed=False) as again:
        again.clinic_id = n.clinic_id
        await again.publish(Envelope.wrap(reminder, clinic_id=n.clinic_id, client_id="k3", producer="sync"))
        await asyncio.sleep(0.5)
        await again.notify.dispatcher.dispatch_once(noon + timedelta(days=1))
        assert len(sinks.texts(n.own_phone)) == 1
        [(env, event)] = await consume(again.kafka, topics.NOTIFY, n.clinic_id, "ReminderSent", 1, 20)
        assert isinstance(event, ReminderSent)
        assert (env.client_id, event.reminder_id, event.channel, event.kind) == (
            "k3",
            "r-1",
            "sms",
            "service",
        )


async def test_a_booked_services_reminder_is_not_sent(notify: NotifyUnderTest, sinks: Sinks) -> None:
    n = notify
    due = date.today() + timedelta(days=2)
    reminder = ServiceReminderUpserted(reminder_id="r-2", patient_id="p-1", service="Dental", due_on=due)
    booked = ServiceReminderCompleted(reminder_id="r-2", patient_id="p-1", reason="booked")
    await n.publish(
        Envelope.wrap(reminder, clinic_id=n.clinic_id, client_id="k3", producer="sync"),
        Envelope.wrap(booked, clinic_id=n.clinic_id, client_id="k3", producer="sync"),
    )

    async def cancelled() -> bool:
        return bool(
            await n.scalar(
                "SELECT count(*) FROM deliveries WHERE subject_id = 'r-2' AND status = 'cancelled'"
            )
        )

    await eventually(cancelled)
    await n.notify.dispatcher.dispatch_once(datetime.now(UTC).replace(hour=12) + timedelta(days=1))
    assert sinks.texts(n.own_phone) == []
    assert [(d["status"], d["reason"]) for d in await statuses(n, "k3")] == [("cancelled", "booked")]


async def test_a_provider_outage_is_retried_then_dead_lettered(
    running_notify: NotifyFactory, sinks: Sinks
) -> None:
    async with running_notify(delivery_max_attempts=2, delivery_first_retry_seconds=0.01) as n:
        sinks.sms_app.state.fail_next = 2
        first = await n.send_sign_in_code("k3")
        assert (first["status"], first["attempts"], first["reason"]) == ("queued", 1, "twilio_20500")
        await asyncio.sleep(0.05)
        await n.notify.dispatcher.dispatch_once()
        [dead] = await statuses(n, "k3")
        assert (dead["status"], dead["attempts"], dead["reason"]) == ("dead", 2, "twilio_20500")
        assert sinks.texts(n.own_phone) == []
        # The provider is back; a new request goes through, the dead one stays dead.
        assert (await n.send_sign_in_code("k3"))["status"] == "sent"
        assert len(sinks.texts(n.own_phone)) == 1


async def test_an_invalid_number_is_refused_for_good(notify: NotifyUnderTest, sinks: Sinks) -> None:
    n = notify
    event = ClientUpserted(
        first_name="Ada", last_name="Lovelace", phone="+15005550004"
    )  # Twilio: unsubscribed
    await n.publish(Envelope.wrap(event, clinic_id=n.clinic_id, client_id="k5", producer="sync"))

    async def known() -> bool:
        return bool(
            await n.scalar(
                "SELECT count(*) FROM contacts WHERE client_id = 'k5' AND clinic_id = :c", c=n.clinic_id
            )
        )

    await eventually(known)
    delivery = await n.send_sign_in_code("k5")
    assert (delivery["status"], delivery["reason"]) == ("failed", "twilio_21610")


async def test_status_callbacks_are_verified_and_recorded(notify: NotifyUnderTest, sinks: Sinks) -> None:
    n = notify
    await n.send_sign_in_code("k3")
    [text] = sinks.texts(n.own_phone)
    form = {"MessageSid": text["sid"], "MessageStatus": "delivered", "AccountSid": text["account_sid"]}
    url = PUBLIC_BASE_URL + "/webhooks/sms/status"
    signature = RequestValidator(sinks.token).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = str(__import__("httpx").QueryParams(form)).encode()
    # notify without an auth token accepts it unsigned; this one is signed as Twilio signs it.
    ok = await n.http.post(
        "/webhooks/sms/status", content=body, headers={**headers, "X-Twilio-Signature": signature}
    )
    assert ok.status_code == 204, ok.text
    [delivery] = await statuses(n, "k3")
    assert delivery["status"] == "delivered"


async def test_a_wrongly_signed_status_callback_is_refused(running_notify: NotifyFactory) -> None:
    async with running_notify(secret="twilio-auth-token") as n:
        form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
        body = str(__import__("httpx").QueryParams(form)).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bm9wZQ=="}
        assert (await n.http.post("/webhooks/sms/status", content=body, headers=headers)).status_code == 403
        right = RequestValidator("twilio-auth-token").compute_signature(
            PUBLIC_BASE_URL + "/webhooks/sms/status", form
        )
        headers["X-Twilio-Signature"] = right
        assert (await n.http.post("/webhooks/sms/status", content=body, headers=headers)).status_code == 204


async def test_the_internal_delivery_api_is_for_services_only_and_idempotent(notify: NotifyUnderTest) -> None:
    n = notify
    request = {
        "key": "sign-in-abc",
        "clinic_id": n.clinic_id,
        "client_id": "k3",
        "channel": "email",
        "template": "sign_in_code",
        "params": {"code": "654321", "link": "https://portal.example.com/sign-in/link#token=x"},
    }
    assert (await n.http.post("/internal/v1/deliveries", json=request)).status_code == 401
    headers = internal_headers(n.notify.settings)
    first = await n.http.post("/internal/v1/deliveries", json=request, headers=headers)
    again = await n.http.post("/internal/v1/deliveries", json=request, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert "654321" not in first.text  # a code is never echoed
    stranger = await n.http.post(
        "/internal/v1/deliveries", json={**request, "client_id": "nobody"}, headers=headers
    )
    assert stranger.status_code == 404
    bad = await n.http.post(
        "/internal/v1/deliveries",
        json={**request, "params": {"code": "12\x0034", "link": "x"}},
        headers=headers,
    )
    assert bad.status_code == 422


async def test_a_stop_in_the_middle_of_1000_queued_texts_stops_every_later_one(
    running_notify: NotifyFactory, sinks: Sinks
) -> None:
    async with running_notify(dispatch_batch=25, send_concurrency=5) as n:
        start = datetime.now(UTC) - timedelta(hours=1)
        uow = n.notify.unit_of_work()
        async with uow:
            for i in range(1000):
                await uow.repositories.deliveries.add(
                    Delivery(
                        key=f"race-{i}",
                        clinic_id=n.clinic_id,
                        client_id="k3",
                        channel="sms",
                        template=Template.SERVICE_REMINDER,
                        params={"service": "Rabies", "due_on": date.today().isoformat()},
                        not_before=start + timedelta(milliseconds=i),  # claimed in this order
                    )
                )
        dispatching = asyncio.ensure_future(_dispatch_until_done(n))
        while len(sinks.texts(n.own_phone)) < 200:
            await asyncio.sleep(0.01)
        stop = await n.sms("STOP", from_number=n.own_phone)
        assert stop.status_code == 200
        await asyncio.wait_for(dispatching, 300)

        rows = await n.rows(
            "SELECT key, status FROM deliveries WHERE clinic_id = :c AND key LIKE 'race-%'", c=n.clinic_id
        )
        order = {f"race-{i}": i for i in range(1000)}
        sent = sorted(order[key] for key, status in rows if status == "sent")
        suppressed = sorted(order[key] for key, status in rows if status == "suppressed")
        assert len(sent) + len(suppressed) == 1000
        assert 200 <= len(sent) < 1000
        assert max(sent) < min(suppressed)  # none sent after the first one the STOP suppressed
        assert len(sinks.texts(n.own_phone)) == len(sent)  # and nothing sent that is not recorded


async def _dispatch_until_done(n: NotifyUnderTest) -> None:
    dispatcher: deliveries.Dispatcher = n.notify.dispatcher
    while await dispatcher.dispatch_once():
        pass


async def test_a_provider_that_is_not_listening_is_worth_another_attempt() -> None:
    from petportal_devkit.devinfra import free_port
    from petportal_notify.adapters.channels import SmtpEmail, TwilioSms
    from petportal_notify.domain.delivery import Outgoing, ProviderError

    message = Outgoing(1, "email", "ada@example.com", None, "subject", "body")
    closed = free_port()
    for provider in (
        SmtpEmail(host="127.0.0.1", port=closed, mail_from="no-reply@example.com", timeout=5),
        TwilioSms(
            api_base=f"http://127.0.0.1:{closed}",
            account_sid="AC" + "0" * 32,
            auth_token="t",
            status_callback=None,
        ),
    ):
        with pytest.raises(ProviderError) as refused:
            await provider.send(
                Outgoing(1, "sms", "+14155550101", "+14155550100", None, "body")
                if isinstance(provider, TwilioSms)
                else message
            )
        assert refused.value.retryable
        assert not refused.value.outcome_unknown
        await provider.close()
