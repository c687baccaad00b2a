"""A burst of staff messages reaches the parent as one email, in the local SMTP server's mailbox, and
one text through the local Twilio API, both naming the clinic and linking to the portal; after the
parent turns email off, the next burst is a text only."""

from __future__ import annotations

from typing import Any

import pytest

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e


def test_staff_messages_notify_the_parent_by_email_and_text_once_per_burst(stack: Stack) -> None:
    portal = Portal(stack, "e2e-notify", sms_number="+15005550018")  # a clinic number is one clinic's
    phone = "+15005550188"
    assert portal.push(contact("C-8", phone))["accepted"] == 1
    parent = {"authorization": f"Bearer {portal.parent_token('C-8')}"}
    staff = portal.staff_token()
    wait_for(
        lambda: (
            portal.http.get(
                "/clinic/v1/clients/C-8/sms-status", headers={"authorization": f"Bearer {staff}"}
            ).status_code
            == 200
        ),
        what="notify knows the contact",
    )

    def mail_to(address: str) -> list[Any]:
        return [m for m in stack.mail() if m["To"] == address]

    def texts_to(number: str) -> list[dict[str, Any]]:
        return [t for t in stack.texts() if t["to"] == number]

    for body in ("Biscuit's results are in.", "All normal!", "Call us to book his booster."):
        assert portal.send_message(staff, "C-8", body).status_code == 201
    [mail] = wait_for(lambda: mail_to("c-8@example.com") or None, what="the notification email")
    assert mail["Subject"] == "E2E Clinic: you have 3 new messages"
    assert f"/c/{portal.clinic_id}" in mail.get_content()
    [text] = wait_for(lambda: texts_to(phone) or None, what="the notification text")
    assert text["from"] == portal.sms_number
    assert "you have 3 new messages" in text["body"]

    # The parent turns email off in the portal: the next message is a text only.
    response = portal.http.put(
        "/api/v1/notifications/preferences",
        json={"sms_opted_in": True, "email_opted_in": False},
        headers=parent,
    )
    assert response.status_code == 200, response.text
    assert portal.send_message(staff, "C-8", "One more thing.").status_code == 201
    wait_for(lambda: len(texts_to(phone)) == 2 or None, what="the second text")
    second = texts_to(phone)[1]
    assert "you have 1 new message." in second["body"]
    assert len(mail_to("c-8@example.com")) == 1
