"""Direct online booking through the gateway, with the PIMS's part played by a connector on the
outbound queue: 20 parents race for one slot and exactly one books it; the connector pulls the
booking, acknowledges it and the parent sees it confirmed; a refused booking frees its slot; a
booking the PIMS cannot match is flagged for staff; a parent confirms an appointment."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from .stack import Portal, Stack, wait_for

pytestmark = pytest.mark.e2e

PARENTS = 20


def _at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def test_twenty_parents_one_slot_one_booking_confirmed_by_the_connector(stack: Stack) -> None:
    portal = Portal(
        stack, f"e2e-book-{uuid.uuid4().hex[:6]}", sms_number="+15005550030", timezone="America/Chicago"
    )
    clients = [f"B-{n}" for n in range(PARENTS)]
    tag = uuid.uuid4().hex[:6]
    emails = [f"bo{n}.{tag}@example.com" for n in range(PARENTS)]
    records: list[dict[str, Any]] = [{"kind": "clinic_settings", "booking_mode": "direct"}]
    appointment_at = _at(50)
    for n, client in enumerate(clients):
        records.append(
            {
                "kind": "contact",
                "client_id": client,
                "first_name": "Bo",
                "last_name": f"Oking{n}",
                "email": emails[n],
            }
        )
        records.append(
            {"kind": "patient", "client_id": client, "patient_id": f"BP-{n}", "name": "Rex", "species": "dog"}
        )
    records += [
        {"kind": "slot", "slot_id": "S-RACE", "starts_at": _at(26), "appointment_type": "Exam"},
        {"kind": "slot", "slot_id": "S-NACK", "starts_at": _at(27), "appointment_type": "Exam"},
        {"kind": "slot", "slot_id": "S-FLAG", "starts_at": _at(28), "appointment_type": "Exam"},
        {"kind": "appointment", "client_id": "B-0", "appointment_id": "APT-1", "patient_id": "BP-0",
         "starts_at": appointment_at, "appointment_type": "Dental"},
    ]  # fmt: skip
    assert portal.push(*records)["rejected"] == []
    tokens = [portal.parent_token(client) for client in clients]
    parents = [{"authorization": f"Bearer {token}"} for token in tokens]
    pims = {"authorization": f"Bearer {portal.api_key}"}
    staff = {"authorization": f"Bearer {portal.staff_token()}"}

    slots = portal.http.get(
        "/api/v1/booking/slots", params={"clinic_id": portal.clinic_id}, headers=parents[0]
    )
    assert slots.status_code == 200, slots.text
    assert slots.json()["timezone"] == "America/Chicago"
    assert [s["slot_id"] for s in slots.json()["slots"]] == ["S-RACE", "S-NACK", "S-FLAG"]

    def book(n: int, slot: str = "S-RACE") -> httpx.Response:
        with httpx.Client(base_url=stack.gateway, timeout=30) as http:
            return http.post(
                "/api/v1/booking/bookings",
                json={"clinic_id": portal.clinic_id, "slot_id": slot, "patient_id": f"BP-{n}"},
                headers=parents[n],
            )

    with ThreadPoolExecutor(max_workers=PARENTS) as pool:
        answers = list(pool.map(book, range(PARENTS)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * (PARENTS - 1), [a.text for a in answers]
    [winner] = [n for n, a in enumerate(answers) if a.status_code == 201]
    booking_id = answers[winner].json()["booking_id"]
    assert answers[winner].json()["status"] == "pending"

    # The connector pulls it (with its cursor), acknowledges it; the parent sees it confirmed.
    pulled = portal.http.get("/pims/v1/outbound", headers=pims).json()
    assert [(i["kind"], i["item_id"]) for i in pulled["items"]] == [("booking", booking_id)]
    assert pulled["items"][0]["payload"]["slot_id"] == "S-RACE"
    ack = portal.http.post(
        f"/pims/v1/outbound/{booking_id}/ack", json={"pims_reference": "EZ-77"}, headers=pims
    )
    assert ack.status_code == 200, ack.text
    assert (
        portal.http.post(f"/pims/v1/outbound/{booking_id}/ack", json={}, headers=pims).json()["already"]
        is True
    )
    mine = portal.http.get("/api/v1/booking/bookings", headers=parents[winner]).json()["bookings"]
    assert [(b["booking_id"], b["status"]) for b in mine] == [(booking_id, "confirmed")]
    after = pulled["next_cursor"]
    assert portal.http.get("/pims/v1/outbound", params={"after": after}, headers=pims).json()["items"] == []

    def mail_to(n: int, subject: str) -> list[Any] | None:
        return [m for m in stack.mail() if m["To"] == emails[n] and m["Subject"] == subject] or None

    # The parent is told, through the real notify channel (the local mailbox).
    wait_for(lambda: mail_to(winner, "Your booking for Rex: confirmed"), what="the confirmation email")

    # A refusal frees the slot for the others.
    loser = next(n for n in range(PARENTS) if n != winner)
    refused = book(loser, "S-NACK")
    assert refused.status_code == 201, refused.text
    nack = portal.http.post(
        f"/pims/v1/outbound/{refused.json()['booking_id']}/nack", json={"reason": "pims_error"}, headers=pims
    )
    assert nack.status_code == 200, nack.text
    free = portal.http.get(
        "/api/v1/booking/slots", params={"clinic_id": portal.clinic_id}, headers=parents[0]
    )
    assert [s["slot_id"] for s in free.json()["slots"]] == ["S-NACK", "S-FLAG"]
    states = portal.http.get("/api/v1/booking/bookings", headers=parents[loser]).json()["bookings"]
    assert [b["status"] for b in states] == ["rejected"]
    wait_for(lambda: mail_to(loser, "Your booking for Rex: not booked"), what="the refusal email")

    # The PIMS cannot match the client: flagged for staff, never a silent new record.
    flagged = book(loser, "S-FLAG")
    item = flagged.json()["booking_id"]
    portal.http.post(f"/pims/v1/outbound/{item}/nack", json={"reason": "client_not_matched"}, headers=pims)
    listed = portal.http.get("/clinic/v1/outbound", params={"status": "flagged"}, headers=staff)
    assert listed.status_code == 200, listed.text
    assert [i["item_id"] for i in listed.json()["items"]] == [item]
    states = portal.http.get("/api/v1/booking/bookings", headers=parents[loser]).json()["bookings"]
    assert [b["status"] for b in states] == ["needs_staff", "rejected"]

    # APT-1 is within the week: its parent is asked to confirm it on the To-Do list (in the clinic's
    # time), confirms it, and the item goes; the answer reaches the connector once.
    local = datetime.fromisoformat(appointment_at).astimezone(ZoneInfo("America/Chicago"))
    title = f"Please confirm your appointment on {local:%a} {local.day} {local:%b} at {local:%H:%M}"
    portal.wait_todo(tokens[0], [("appointment_to_confirm", title)], "the appointment to confirm")
    confirm = {"clinic_id": portal.clinic_id, "answer": "confirm"}
    first = portal.http.post("/api/v1/appointments/APT-1/answer", json=confirm, headers=parents[0])
    assert first.status_code == 201, first.text
    again = portal.http.post("/api/v1/appointments/APT-1/answer", json=confirm, headers=parents[0])
    assert again.status_code == 200
    portal.wait_todo(tokens[0], [], "the confirmed appointment off the To-Do list")
    other = portal.http.post("/api/v1/appointments/APT-1/answer", json=confirm, headers=parents[1])
    assert other.status_code == 404
    answers_out = portal.http.get("/pims/v1/outbound", params={"after": after}, headers=pims).json()["items"]
    assert [(i["kind"], i["payload"].get("answer")) for i in answers_out] == [
        ("appointment_answer", "confirm")
    ]
