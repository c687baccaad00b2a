"""A parent signs in with the email, then the mobile number (written another way), on their clinic's
contact record: the code comes through the real notify channels (read from the local mailbox and the
SMS sink), and the session works through the gateway."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e


def test_a_parent_signs_in_with_a_code_by_email_and_by_text(stack: Stack) -> None:
    portal = Portal(stack, "e2e-sign-in", sms_number="+15005550019")  # a clinic number is one clinic's
    phone = "+14155550199"
    assert portal.push(contact("C-9", phone))["accepted"] == 1

    def start(identifier: str) -> Any:
        response = portal.http.post("/api/v1/auth/sign-in", json={"identifier": identifier})
        assert response.status_code == 202, response.text
        return response.json()["challenge_id"]

    def code_in(text: str) -> str:
        found = re.search(r"\b(\d{6})\b", text)
        assert found, text
        return found.group(1)

    # The contact reaches identity and notify through Kafka; until then nothing is sent.
    portal.parent_token("C-9")  # identity has it
    staff = {"authorization": f"Bearer {portal.staff_token()}"}
    wait_for(
        lambda: portal.http.get("/clinic/v1/clients/C-9/sms-status", headers=staff).status_code == 200,
        what="notify knows the contact",
    )
    challenge = start("C-9@Example.com")
    [latest] = wait_for(
        lambda: (
            [m for m in stack.mail() if m["To"] == "c-9@example.com" and "sign-in code" in m["Subject"]]
            or None
        ),
        what="the sign-in code in the mailbox",
    )
    code = code_in(latest["Subject"])
    session = portal.http.post("/api/v1/auth/sign-in/verify", json={"challenge_id": challenge, "code": code})
    assert session.status_code == 200, session.text
    token = session.json()["access_token"]
    assert [c["clinic_id"] for c in session.json()["clients"]] == [portal.clinic_id]
    account = portal.http.get("/api/v1/account", headers={"authorization": f"Bearer {token}"})
    assert account.status_code == 200, account.text
    assert account.json()["phone"] == phone

    # By text, the number written as people write it.
    challenge = start("(415) 555-0199")
    [text] = wait_for(
        lambda: [t for t in stack.texts() if t["to"] == phone and "sign-in code" in t["body"]] or None,
        what="the code by text",
    )
    by_text = portal.http.post(
        "/api/v1/auth/sign-in/verify", json={"challenge_id": challenge, "code": code_in(text["body"])}
    )
    assert by_text.status_code == 200, by_text.text
    refreshed = portal.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": by_text.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
