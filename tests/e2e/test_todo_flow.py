"""The To-Do list end to end: real services, real broker, real PostgreSQL and MongoDB, over HTTP."""

from __future__ import annotations

import concurrent.futures
import uuid

import pytest

from .stack import CARE_PLAN, Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e


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

    # viewing the conversation changes nothing; reading it (an explicit POST) clears the item
    auth = {"authorization": f"Bearer {parent}"}
    conversation = portal.http.get("/api/v1/conversation", headers=auth)
    assert conversation.status_code == 200
    messages = conversation.json()["messages"]
    assert [m["body"] for m in messages] == ["Biscuit is due for his booster", "Please call us to book"]
    assert portal.todo(parent)["items"][0]["count"] == 2  # still unread
    other_auth = {"authorization": f"Bearer {other_parent}"}
    foreign = portal.http.post(
        "/api/v1/conversation/read", json={"up_to": messages[0]["message_id"]}, headers=other_auth
    )
    assert foreign.status_code == 404
    read = portal.http.post(
        "/api/v1/conversation/read", json={"up_to": messages[-1]["message_id"]}, headers=auth
    )
    assert read.status_code == 200
    assert len(read.json()["message_ids"]) == 2
    portal.wait_todo(parent, [], "unread item gone after reading")

    # the parent replies: never unread for them; staff see it unread in their list, through the gateway
    staff_auth = {"authorization": f"Bearer {staff}"}
    sent = portal.http.post(
        "/api/v1/conversation/messages", json={"body": "Booked for Tuesday"}, headers=auth
    )
    assert sent.status_code == 201
    listing = portal.http.get("/clinic/v1/conversations", headers=staff_auth)
    assert listing.status_code == 200
    [line] = [c for c in listing.json()["conversations"] if c["client_id"] == "C-1"]
    assert (line["conversation_id"], line["unread_count"]) == (sent.json()["conversation_id"], 1)
    assert portal.http.get("/clinic/v1/conversations", headers=auth).status_code == 403
    # the reply was not counted: the next staff message (after it on the same partition) makes it 1
    answer = portal.send_message(staff, "C-1", "See you then")
    assert answer.status_code == 201
    portal.wait_todo(
        parent, [("unread_messages", "You have 1 unread message")], "only the staff message unread"
    )
    up_to = {"up_to": answer.json()["message_id"]}
    assert portal.http.post("/api/v1/conversation/read", json=up_to, headers=auth).status_code == 200
    portal.wait_todo(parent, [], "unread item gone again")

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
