from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from twilio.request_validator import RequestValidator

from petportal_schemas import SmsOptedIn, SmsOptedOut

from .conftest import NotifyFactory, NotifyUnderTest, Sinks

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def national(e164: str) -> str:
    """+15551234567 written as a US subscriber would: (555) 123-4567."""
    digits = e164.removeprefix("+1")
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


async def test_stop_opts_out_every_client_with_that_phone_once(notify: NotifyUnderTest, sinks: Sinks) -> None:
    n = notify
    response = await n.sms(
        "  Stop ", from_number=national(n.shared_phone), to_number=national(n.clinic_number)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "Paws &amp; Claws: you are unsubscribed" in response.text

    assert await n.opted_out("k1")
    assert await n.opted_out("k2")
    assert not await n.opted_out("k3")  # another phone
    events = await n.outbox_events("SmsOptedOut")
    assert sorted(e.client_id or "" for e in events) == ["k1", "k2"]

    # Idempotent: STOPALL while already out changes nothing and publishes nothing, but still confirms.
    again = await n.sms("STOPALL", from_number=n.shared_phone)
    assert again.status_code == 200
    assert "unsubscribed" in again.text
    assert len(await n.outbox_events("SmsOptedOut")) == 2

    published = await n.published("SmsOptedOut", 2)
    assert sorted(env.client_id or "" for env, _ in published) == ["k1", "k2"]
    for envelope, event in published:
        assert isinstance(event, SmsOptedOut)
        assert (event.source, event.keyword, envelope.producer) == ("sms_keyword", "STOP", "notify")

    delivery = await n.send_sign_in_code("k1")
    assert (delivery["status"], delivery["reason"]) == ("suppressed", "opted_out")
    assert sinks.texts(n.shared_phone) == []


async def test_start_opts_back_in(notify: NotifyUnderTest, sinks: Sinks) -> None:
    n = notify
    await n.sms("STOP", from_number=n.own_phone)
    assert await n.opted_out("k3")
    response = await n.sms("unstop", from_number=n.own_phone)
    assert response.status_code == 200
    assert "subscribed to text messages again" in response.text
    assert not await n.opted_out("k3")
    assert len(await n.outbox_events("SmsOptedIn")) == 1
    # Already in: YES changes nothing.
    await n.sms("YES", from_number=n.own_phone)
    assert len(await n.outbox_events("SmsOptedIn")) == 1

    [(envelope, event)] = await n.published("SmsOptedIn", 1)
    assert isinstance(event, SmsOptedIn)
    assert (envelope.client_id, event.source, event.keyword) == ("k3", "sms_keyword", "UNSTOP")

    delivery = await n.send_sign_in_code("k3")
    assert delivery["status"] == "sent"
    [text] = sinks.texts(n.own_phone)
    assert text["from"] == n.clinic_number
    assert "123456" in text["body"]


async def test_help_replies_without_changing_anything(notify: NotifyUnderTest) -> None:
    n = notify
    response = await n.sms("help", from_number=n.own_phone)
    assert response.status_code == 200
    assert "Reply STOP to unsubscribe" in response.text
    assert not await n.opted_out("k3")
    assert await n.outbox_events() == []


async def test_ordinary_message_is_accepted_and_recorded(notify: NotifyUnderTest) -> None:
    n = notify
    response = await n.sms("Please stop by at 5, Rex is limping", from_number=n.own_phone)
    assert response.status_code == 200
    assert response.text.endswith("<Response></Response>")
    assert not await n.opted_out("k3")
    # Not a keyword: no consent event, and the text goes to k3's conversation.
    [received] = await n.outbox_events()
    assert (received.event_type, received.client_id) == ("SmsReceived", "k3")
    assert received.payload["body"] == "Please stop by at 5, Rex is limping"
    recorded = await n.scalar(
        "SELECT count(*) FROM inbound_sms WHERE clinic_id = :c AND keyword IS NULL AND matched_clients = 1",
        c=n.clinic_id,
    )
    assert recorded == 1


async def test_unknown_clinic_number_is_404(notify: NotifyUnderTest) -> None:
    response = await notify.sms("STOP", from_number=notify.own_phone, to_number="+15550000001")
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown clinic number"
    response = await notify.sms("STOP", from_number=notify.own_phone, to_number="not a number")
    assert response.status_code == 404


async def test_unknown_sender_gets_the_same_reply_and_changes_nothing(notify: NotifyUnderTest) -> None:
    n = notify
    known = await n.sms("HELP", from_number=n.own_phone)
    unknown = await n.sms("STOP", from_number="+15550000002")
    assert unknown.status_code == 200
    assert "unsubscribed" in unknown.text
    assert (await n.sms("HELP", from_number="+15550000002")).text == known.text
    assert await n.outbox_events() == []
    assert not any([await n.opted_out(k) for k in ("k1", "k2", "k3", "k4")])


async def test_missing_fields_are_422(notify: NotifyUnderTest) -> None:
    response = await notify.http.post(
        "/webhooks/sms/inbound",
        content=b"From=%2B15550100001&Body=STOP",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "To"]


async def test_twilios_signature_is_required_when_an_auth_token_is_configured(
    running_notify: NotifyFactory,
) -> None:
    async with running_notify(secret="twilio-auth-token") as n:
        unsigned = await n.sms("STOP", from_number=n.own_phone, signature=None)
        assert unsigned.status_code == 403
        forged = await n.sms("STOP", from_number=n.own_phone, signature="c2lnbmVkIGJ5IG5vYm9keQ==")
        assert forged.status_code == 403
        # Signed over the URL notify was reached at (not the public one Twilio calls): refused too.
        form = {"From": n.own_phone, "To": n.clinic_number, "Body": "STOP"}
        internal = RequestValidator("twilio-auth-token").compute_signature(
            "http://notify/webhooks/sms/inbound", form
        )
        assert (await n.sms("STOP", from_number=n.own_phone, signature=internal)).status_code == 403
        assert not await n.opted_out("k3")
        assert await n.outbox_events() == []

        signed = await n.sms("STOP", from_number=n.own_phone)
        assert signed.status_code == 200
        assert await n.opted_out("k3")


async def test_webhook_fields_the_portal_refuses_are_client_errors_and_change_nothing(
    notify: NotifyUnderTest,
) -> None:
    n = notify
    sender, clinic = quote(n.own_phone), quote(n.clinic_number)

    def form(body: str = "STOP", sender: str = sender) -> bytes:
        return f"From={sender}&To={clinic}&Body={body}".encode()

    cases: list[tuple[bytes, dict[str, str], int, list[Any]]] = [
        (form("STOP%00"), FORM, 422, ["body", "Body"]),
        (form(sender=sender + "%00"), FORM, 422, ["body", "From"]),
        (form("ST%1BOP"), FORM, 422, ["body", "Body"]),
        (form("%ED%A0%80"), FORM, 422, ["body"]),  # a surrogate, UTF-8 encoded: not UTF-8
        (form("%FF"), FORM, 422, ["body"]),
        (form() + b"\xff", FORM, 422, ["body"]),
        (form("x" * 17_000), FORM, 413, []),
        (b"=&&==%%%&From", FORM, 422, ["body", "From"]),
        (form("STOP%00"), {}, 422, ["body", "Body"]),  # no media type: the route's own parsing
        (form("STOP%00"), {"Content-Type": "text/plain"}, 422, ["body", "Body"]),
    ]
    for content, headers, status, loc in cases:
        response = await n.http.post("/webhooks/sms/inbound", content=content, headers=headers)
        assert response.status_code == status, (content[:60], response.text)
        if loc:
            assert response.json()["detail"][0]["loc"] == loc
            assert "input" not in response.text
    assert not await n.opted_out("k3")
    assert await n.outbox_events() == []
    assert await n.scalar("SELECT count(*) FROM inbound_sms WHERE clinic_id = :c", c=n.clinic_id) == 0

    status_url = "/clinic/v1/clients/k%003/sms-status"
    assert (await n.http.get(status_url, headers=n.staff())).json()["detail"][0]["loc"] == [
        "path",
        "client_id",
    ]
    preferences = "/api/v1/notifications/preferences"
    for body in (b'{"sms_opted_in": NaN, "email_opted_in": true}', b'{"sms_opted_in": "\\ud800"}'):
        response = await n.http.put(
            preferences, content=body, headers={**n.parent("k3"), "Content-Type": "application/json"}
        )
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"] == ["body", "sms_opted_in"]
    assert await n.outbox_events() == []


async def test_a_text_from_an_unknown_number_is_kept_for_staff(notify: NotifyUnderTest) -> None:
    n = notify
    stranger = "+14155550142"
    assert (await n.sms("Is this the vet? My cat is sick", from_number=stranger)).text.endswith(
        "<Response></Response>"
    )
    assert (await n.sms("please call me", from_number=n.own_phone)).status_code == 200
    unmatched = await n.http.get("/clinic/v1/inbound-texts?unmatched=true", headers=n.staff())
    assert unmatched.status_code == 200
    assert [(t["from_number"], t["body"], t["matched_clients"]) for t in unmatched.json()["texts"]] == [
        (stranger, "Is this the vet? My cat is sick", 0)
    ]
    everything = (await n.http.get("/clinic/v1/inbound-texts", headers=n.staff())).json()["texts"]
    assert [t["body"] for t in everything] == ["please call me", "Is this the vet? My cat is sick"]
    other_clinic = await n.http.get("/clinic/v1/inbound-texts", headers=n.staff("another-clinic"))
    assert other_clinic.json()["texts"] == []
    assert (await n.http.get("/clinic/v1/inbound-texts", headers=n.parent("k3"))).status_code == 403
