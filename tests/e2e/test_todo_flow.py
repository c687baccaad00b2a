"""The To-Do list end to end: real services, real broker, real PostgreSQL and MongoDB, over HTTP."""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

import httpx
import pytest

from .stack import CLINIC_NUMBER, Stack, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


class Portal:
    """What the portal front end, clinic staff, a PIMS connector and the SMS provider send to the gateway."""

    def __init__(self, stack: Stack, clinic_id: str) -> None:
        self.http = httpx.Client(base_url=stack.gateway, timeout=10)
        self.clinic_id = clinic_id
        self.api_key = stack.create_clinic(clinic_id)
        self.staff_email = f"staff@{clinic_id}.example"
        stack.create_staff(clinic_id, self.staff_email, PASSWORD)

    def push(self, *records: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            "/pims/v1/records",
            json={"pims": "ezyvet", "records": list(records)},
            headers={"authorization": f"Bearer {self.api_key}"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def staff_token(self) -> str:
        response = self.http.post(
            "/clinic/v1/auth/token", json={"email": self.staff_email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def parent_token(self, client_id: str) -> str:
        def issue() -> str | None:
            response = self.http.post(
                "/api/v1/auth/dev-token", json={"clinic_id": self.clinic_id, "client_id": client_id}
            )
            return response.json()["access_token"] if response.status_code == 200 else None

        # identity learns the contact from the ClientUpserted event sync published.
        return str(wait_for(issue, what=f"a token for {client_id}"))

    def send_message(self, staff: str, client_id: str, body: str) -> httpx.Response:
        return self.http.post(
            f"/clinic/v1/clients/{client_id}/messages",
            json={"body": body},
            headers={"authorization": f"Bearer {staff}"},
        )

    def todo(self, parent: str) -> dict[str, Any]:
        response = self.http.get("/api/v1/todo", headers={"authorization": f"Bearer {parent}"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_todo(self, parent: str, expected: list[tuple[str, str]], what: str) -> dict[str, Any]:
        """Poll until the list holds exactly `expected` (kind, title) items, and check the badge."""

        def matches() -> dict[str, Any] | None:
            todo = self.todo(parent)
            items = sorted((i["kind"], i["title"]) for i in todo["items"])
            return todo if items == sorted(expected) else None

        todo: dict[str, Any] = wait_for(matches, what=what)
        assert todo["badge"] == len(expected)
        return todo

    def text(self, phone: str, body: str) -> httpx.Response:
        return self.http.post(
            "/webhooks/sms/inbound", data={"From": phone, "To": CLINIC_NUMBER, "Body": body}
        )


def contact(client_id: str, phone: str) -> dict[str, Any]:
    return {
        "kind": "contact",
        "client_id": client_id,
        "first_name": "Alex",
        "last_name": "Rivera",
        "email": f"{client_id.lower()}@example.com",
        "phone": phone,
    }


CARE_PLAN = {
    "kind": "program",
    "program_code": "care-plan",
    "name": "Care Plan",
    "call_to_action": "Add a Care Member",
    "offered": True,
}


def test_the_todo_list_follows_messages_consent_and_programs(stack: Stack) -> None:
    portal = Portal(stack, "e2e-clinic")
    accepted = portal.push(
        contact("C-1", "+15005550101"),
        contact("C-2", "+15005550102"),
        {"kind": "contact", "client_id": "C-3", "first_name": "No"},
    )
    assert accepted["accepted"] == 2
    assert [r["index"] for r in accepted["rejected"]] == [2]  # the bad record only; the rest applied

    staff = portal.staff_token()
    parent = portal.parent_token("C-1")
    other_parent = portal.parent_token("C-2")
    assert portal.todo(parent) == {"badge": 0, "items": []}

    # a staff message → "You have 1 unread message", badge 1
    assert portal.send_message(staff, "C-1", "Biscuit is due for his booster").status_code == 201
    todo = portal.wait_todo(parent, [("unread_messages", "You have 1 unread message")], "1 unread message")
    assert todo["items"][0]["count"] == 1
    assert portal.send_message(staff, "C-1", "Please call us to book").status_code == 201
    portal.wait_todo(parent, [("unread_messages", "You have 2 unread messages")], "2 unread messages")

    # bad input: empty body → 422 with the field; unknown client → 404; parents cannot use staff routes
    empty = portal.send_message(staff, "C-1", "")
    assert empty.status_code == 422
    assert "body" in empty.text
    assert portal.send_message(staff, "C-404", "hello").status_code == 404
    assert portal.send_message(parent, "C-1", "hello").status_code == 403

    # the other parent sees none of it
    assert portal.todo(other_parent) == {"badge": 0, "items": []}
    other_view = portal.http.get("/api/v1/conversation", headers={"authorization": f"Bearer {other_parent}"})
    assert other_view.json()["messages"] == []

    # reading the conversation clears the item
    conversation = portal.http.get("/api/v1/conversation", headers={"authorization": f"Bearer {parent}"})
    assert conversation.status_code == 200
    assert [m["body"] for m in conversation.json()["messages"]] == [
        "Biscuit is due for his booster",
        "Please call us to book",
    ]
    portal.wait_todo(parent, [], "unread item gone after reading")

    # STOP → "Opt into receiving texts"; START → gone
    assert portal.text("+1 500-555-0101", "STOP").status_code == 200
    portal.wait_todo(parent, [("sms_opt_in", "Opt into receiving texts")], "opt-in item after STOP")
    assert portal.text("+15005550101", " start ").status_code == 200
    portal.wait_todo(parent, [], "opt-in item gone after START")

    # the clinic offers a program → CTA for clients not enrolled; enrolment → gone for that client only
    portal.push(CARE_PLAN)
    portal.wait_todo(parent, [("program_cta", "Add a Care Member")], "program CTA")
    portal.push({"kind": "enrolment", "client_id": "C-1", "program_code": "care-plan"})
    portal.wait_todo(parent, [], "CTA gone after enrolment")
    portal.wait_todo(other_parent, [("program_cta", "Add a Care Member")], "CTA still there for C-2")

    # the home screen composes the list
    home = portal.http.get("/api/v1/home", headers={"authorization": f"Bearer {other_parent}"})
    assert home.status_code == 200
    assert home.json()["todo"]["badge"] == 1

    # no token, no list
    assert portal.http.get("/api/v1/todo").status_code == 401


def test_killing_todo_mid_stream_and_rebuilding_keep_every_count_exact(stack: Stack) -> None:
    portal = Portal(stack, "e2e-crash")
    clients = [f"K-{i}" for i in range(4)]
    portal.push(*(contact(c, f"+1500555020{i}") for i, c in enumerate(clients)))
    staff = portal.staff_token()
    parents = {c: portal.parent_token(c) for c in clients}
    per_client = 15

    def send_all(client_id: str) -> list[int]:
        return [
            portal.send_message(staff, client_id, f"message {n} {uuid.uuid4()}").status_code
            for n in range(per_client)
        ]

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        sending = [pool.submit(send_all, c) for c in clients]
        # kill -9 the projection while the stream is flowing, then start it again
        wait_for(lambda: portal.todo(parents[clients[0]])["badge"] == 1, what="first events applied")
        stack.kill("todo")
        assert all(code == 201 for f in sending for code in f.result())
    stack.serve("todo")
    stack.wait_ready("todo")

    expected = [("unread_messages", f"You have {per_client} unread messages")]
    before = {c: portal.wait_todo(parents[c], expected, f"exact count for {c}") for c in clients}

    # drop the projection and rebuild it from the topics: the same lists
    stack.kill("todo")
    stack.cli("todo", "rebuild")
    stack.serve("todo")
    stack.wait_ready("todo")
    after = {c: portal.todo(parents[c]) for c in clients}
    assert after == before
