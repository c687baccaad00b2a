"""A parent's text to the clinic's number lands in their conversation, where staff see it; a keyword
never does, and a stranger's text reaches no conversation."""

from __future__ import annotations

import pytest

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e


def test_a_parents_sms_lands_in_their_conversation_and_staff_see_it(stack: Stack) -> None:
    portal = Portal(stack, "e2e-sms", sms_number="+15005550017")  # a clinic number is one clinic's
    phone = "+15005550177"
    assert portal.push(contact("C-7", phone))["accepted"] == 1
    parent = portal.parent_token("C-7")  # identity has the contact: so has notify, soon
    staff = {"authorization": f"Bearer {portal.staff_token()}"}

    def conversations() -> list[dict[str, object]]:
        response = portal.http.get("/clinic/v1/conversations", headers=staff)
        assert response.status_code == 200, response.text
        return list(response.json()["conversations"])

    # notify matches the number once it has the contact (its staff view of the client then exists).
    wait_for(
        lambda: portal.http.get("/clinic/v1/clients/C-7/sms-status", headers=staff).status_code == 200,
        what="notify knows the contact",
    )
    assert portal.text(phone, "Can Rex come in on Friday?").status_code == 200
    [listed] = wait_for(lambda: conversations() or None, what="the parent's text in a conversation")
    assert (listed["client_id"], listed["unread_count"]) == ("C-7", 1)
    view = portal.http.get("/api/v1/conversation", headers={"authorization": f"Bearer {parent}"}).json()
    assert [(m["sender"], m["body"]) for m in view["messages"]] == [("client", "Can Rex come in on Friday?")]
    # Keywords change consent and never reach the conversation; a stranger reaches no one.
    assert portal.text(phone, "STOP").status_code == 200
    assert portal.text("+15005550999", "hello?").status_code == 200
    assert portal.text(phone, "START").status_code == 200
    assert portal.text(phone, "Thanks!").status_code == 200
    wait_for(
        lambda: (
            (
                v := portal.http.get(
                    "/api/v1/conversation", headers={"authorization": f"Bearer {parent}"}
                ).json()
            )
            and len(v["messages"]) == 2
            and v
        ),
        what="the second text",
    )
    final = portal.http.get("/api/v1/conversation", headers={"authorization": f"Bearer {parent}"}).json()
    assert [m["body"] for m in final["messages"]] == ["Can Rex come in on Friday?", "Thanks!"]
