"""A request goes parent → clinic → parent through the gateway: an appointment request and a refill,
each answered by the clinic, each shown on the parent's To-Do list until they have seen it, and each
told to the parent by email through the real notify channel (read from the local mailbox)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .stack import Portal, Stack, wait_for

pytestmark = pytest.mark.e2e


def test_answers_go_back_to_the_parent_and_stay_on_the_todo_list_until_seen(stack: Stack) -> None:
    portal = Portal(stack, f"e2e-req-{uuid.uuid4().hex[:6]}", sms_number="+15005550025")
    email = f"req.{uuid.uuid4().hex[:6]}@example.com"
    assert portal.push(
        {"kind": "contact", "client_id": "R-1", "first_name": "Robin", "last_name": "Reyes", "email": email},
        {"kind": "patient", "client_id": "R-1", "patient_id": "RP-1", "name": "Pickle", "species": "cat"},
        {"kind": "medication", "client_id": "R-1", "prescription_id": "RX-1", "patient_id": "RP-1",
         "name": "Methimazole", "refills_remaining": 2, "prescribed_on": "2026-11-01"},
        {"kind": "medication", "client_id": "R-1", "prescription_id": "RX-2", "patient_id": "RP-1",
         "name": "Gabapentin", "refills_remaining": 0, "prescribed_on": "2026-11-01"},
    )["rejected"] == []  # fmt: skip
    parent = {"authorization": f"Bearer {portal.parent_token('R-1')}"}
    staff = {"authorization": f"Bearer {portal.staff_token()}"}
    wait_for(
        lambda: (
            len(portal.http.get("/api/v1/pets/RP-1/medications", headers=parent).json()["medications"]) == 2
        ),
        what="the medications",
    )

    # A refill: none for a prescription without refills, one pending at a time, approved by the clinic.
    none_left = portal.http.post(
        "/api/v1/refill-requests", json={"patient_id": "RP-1", "prescription_id": "RX-2"}, headers=parent
    )
    assert none_left.status_code == 409, none_left.text
    asked = portal.http.post(
        "/api/v1/refill-requests", json={"patient_id": "RP-1", "prescription_id": "RX-1"}, headers=parent
    )
    assert asked.status_code == 201, asked.text
    again = portal.http.post(
        "/api/v1/refill-requests", json={"patient_id": "RP-1", "prescription_id": "RX-1"}, headers=parent
    )
    assert again.status_code == 409
    refill_id = asked.json()["request_id"]
    pending = portal.http.get(
        "/clinic/v1/refill-requests", params={"status": "pending"}, headers=staff
    ).json()
    assert [r["request_id"] for r in pending["requests"]] == [refill_id]
    denied_without_note = portal.http.post(
        f"/clinic/v1/refill-requests/{refill_id}/decision", json={"decision": "deny"}, headers=staff
    )
    assert denied_without_note.status_code == 422
    approved = portal.http.post(
        f"/clinic/v1/refill-requests/{refill_id}/decision",
        json={"decision": "approve", "note": "Ready to collect tomorrow"},
        headers=staff,
    )
    assert approved.status_code == 200, approved.text

    # An appointment request, accepted with a time.
    soon = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    body = {"patient_id": "RP-1", "clinic_id": portal.clinic_id, "reason": "Check-up"}
    visit = portal.http.post(
        "/api/v1/appointment-requests", json={**body, "preferred_times": [soon.isoformat()]}, headers=parent
    )
    assert visit.status_code == 201, visit.text
    visit_id = visit.json()["request_id"]
    not_yet = portal.http.post(f"/api/v1/appointment-requests/{visit_id}/seen", headers=parent)
    assert not_yet.status_code == 409  # nothing to see before the clinic answers
    accepted = portal.http.post(
        f"/clinic/v1/appointment-requests/{visit_id}/answer",
        json={"decision": "accept", "time": soon.isoformat()},
        headers=staff,
    )
    assert accepted.status_code == 200, accepted.text

    expected = [
        ("refill_decided", "Your refill request was approved"),
        ("request_answered", "Your appointment request was accepted"),
    ]
    todo = portal.wait_todo(parent["authorization"].removeprefix("Bearer "), expected, "both answers")
    assert {i["action"]["href"] for i in todo["items"]} == {"/pets/RP-1"}

    def mail_about(words: str) -> list[Any] | None:
        return [m for m in stack.mail() if m["To"] == email and words in m["Subject"]] or None

    wait_for(lambda: mail_about("refill request for Pickle: approved"), what="the refill email")
    wait_for(lambda: mail_about("appointment request for Pickle: accepted"), what="the appointment email")

    # Seen on the pet page: the items leave the list (seen twice changes nothing).
    for path in (
        f"/api/v1/refill-requests/{refill_id}/seen",
        f"/api/v1/appointment-requests/{visit_id}/seen",
    ):
        assert portal.http.post(path, headers=parent).status_code == 204
        assert portal.http.post(path, headers=parent).status_code == 204
    portal.wait_todo(parent["authorization"].removeprefix("Bearer "), [], "answers seen")
    listed = portal.http.get("/api/v1/refill-requests", headers=parent).json()["requests"]
    assert [(r["status"], r["clinic_note"]) for r in listed] == [("approved", "Ready to collect tomorrow")]
