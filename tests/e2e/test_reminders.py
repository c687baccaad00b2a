"""A service reminder the PIMS pushes goes out by text at the clinic's time (in its allowed hours),
with a sign-in link from identity for that client: it signs them in once, then only pre-fills."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e


def a_zone_at_noon() -> str:
    """An IANA zone where it is about noon now, so the reminder is inside the clinic's allowed hours
    whenever the test runs (Etc/GMT-8 is UTC+8)."""
    offset = 12 - datetime.now(UTC).hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def test_a_due_reminder_texts_a_sign_in_link_that_works_once(stack: Stack) -> None:
    portal = Portal(stack, "e2e-remind", sms_number="+15005550023", timezone=a_zone_at_noon())
    phone = "+14155550123"
    due = date.today() + timedelta(days=2)  # the 3-day lead time has passed: it goes now
    pushed = portal.push(
        contact("C-R", phone),
        {"kind": "patient", "client_id": "C-R", "patient_id": "P-R", "name": "Pickle", "species": "cat"},
        {"kind": "reminder", "client_id": "C-R", "reminder_id": "R-R", "patient_id": "P-R",
         "service": "Feline booster", "due_on": due.isoformat()},
    )  # fmt: skip
    assert pushed["rejected"] == [], pushed

    def text() -> dict[str, Any] | None:
        found = [t for t in stack.texts() if t["to"] == phone and "Feline booster" in t["body"]]
        return found[0] if found else None

    reminder = wait_for(text, what="the reminder text")
    assert "Pickle's Feline booster is due" in reminder["body"]
    token = re.search(r"/sign-in/link#token=([A-Za-z0-9_-]+)&next=/pets/P-R ", reminder["body"])
    assert token, reminder["body"]  # signed in, the portal opens Pickle's page
    first = portal.http.post("/api/v1/auth/sign-in/link", json={"token": token.group(1)})
    assert first.status_code == 200, first.text
    assert first.json()["clients"] == [{"clinic_id": portal.clinic_id, "client_id": "C-R"}]
    again = portal.http.post("/api/v1/auth/sign-in/link", json={"token": token.group(1)})
    assert again.status_code == 400
    prefill = portal.http.post("/api/v1/auth/sign-in/link/prefill", json={"token": token.group(1)})
    assert prefill.json() == {"identifier": "c-r@example.com", "clinic_id": portal.clinic_id}
    # Sent once: a second dispatch round has nothing more for this reminder.
    assert len([t for t in stack.texts() if t["to"] == phone and "Feline booster" in t["body"]]) == 1
