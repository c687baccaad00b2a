from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text

from petportal_messaging.adapters.repository import MessagingRepository
from petportal_messaging.service_layer.services import get_or_open_conversation
from petportal_runtime.tables import outbox
from petportal_schemas import Envelope, MessageRead, MessageReceived

from .conftest import Messaging, eventually

pytestmark = pytest.mark.integration


async def outbox_events(m: Messaging, event_type: str) -> list[dict[str, Any]]:
    async with m.runtime.transaction() as session:
        rows = (
            await session.execute(
                select(outbox.c.value).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
            )
        ).all()
    return [Envelope.from_bytes(r.value).payload for r in rows]


async def send(m: Messaging, client_id: str, body: str) -> dict[str, Any]:
    response = await m.http.post(
        f"/clinic/v1/clients/{client_id}/messages", json={"body": body}, headers=m.staff()
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_staff_message_reaches_the_parent_and_publishes_message_received(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    sent = await send(m, "k1", "Rex is ready for pick-up")

    response = await m.http.get("/api/v1/conversation", headers=m.parent("k1"))
    assert response.status_code == 200
    body = response.json()
    assert body["conversation_id"] == sent["conversation_id"]
    [message] = body["messages"]
    assert message["message_id"] == sent["message_id"]
    assert message["sender"] == "staff"
    assert message["body"] == "Rex is ready for pick-up"
    assert message["read_at"] is None  # viewing is not reading
    assert await outbox_events(m, "MessageRead") == []

    [(envelope, event)] = await m.published("MessageReceived", 1)
    assert isinstance(event, MessageReceived)
    assert (envelope.clinic_id, envelope.client_id, envelope.producer) == (m.clinic_id, "k1", "messaging")
    assert str(event.message_id) == sent["message_id"]
    assert str(event.conversation_id) == sent["conversation_id"]


async def test_unknown_client_is_404_and_publishes_nothing(messaging: Messaging) -> None:
    m = messaging
    response = await m.http.post("/clinic/v1/clients/nobody/messages", json={"body": "hi"}, headers=m.staff())
    assert response.status_code == 404
    assert response.json()["detail"] == "no client nobody at this clinic"
    response = await m.http.get("/clinic/v1/clients/nobody/conversation", headers=m.staff())
    assert response.status_code == 404
    assert await outbox_events(m, "MessageReceived") == []


async def test_staff_of_another_clinic_cannot_reach_the_client(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    other = m.staff(clinic_id="another-clinic")
    response = await m.http.post("/clinic/v1/clients/k1/messages", json={"body": "hi"}, headers=other)
    assert response.status_code == 404
    response = await m.http.get("/clinic/v1/clients/k1/conversation", headers=other)
    assert response.status_code == 404


async def test_auth_and_validation(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    url = "/clinic/v1/clients/k1/messages"
    assert (await m.http.post(url, json={"body": "hi"})).status_code == 401
    assert (await m.http.post(url, json={"body": "hi"}, headers=m.parent("k1"))).status_code == 403
    assert (await m.http.get("/api/v1/conversation", headers=m.staff())).status_code == 403
    for bad in ({"body": ""}, {"body": "   "}, {"body": "x" * 5001}, {}, {"body": "hi", "extra": 1}):
        response = await m.http.post(url, json=bad, headers=m.staff())
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][0] == "body"
    assert (await m.http.post(url, json={"body": "x" * 5000}, headers=m.staff())).status_code == 201


async def test_concurrent_sends_share_one_active_conversation(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    results = await asyncio.gather(*(send(m, "k1", f"message {i}") for i in range(12)))
    assert len({r["conversation_id"] for r in results}) == 1
    async with m.runtime.transaction() as session:
        active = (
            await session.execute(text("SELECT count(*) FROM conversations WHERE status = 'active'"))
        ).scalar_one()
    assert active == 1
    staff_view = (await m.http.get("/clinic/v1/clients/k1/conversation", headers=m.staff())).json()
    assert len(staff_view["messages"]) == 12


async def test_losing_the_insert_race_rereads_the_winners_conversation(messaging: Messaging) -> None:
    """Transaction A opens the conversation; B, started before A commits, blocks on the partial unique
    index, gets the unique violation when A commits, and re-reads A's conversation."""
    m = messaging
    async with m.runtime.transaction() as a:
        mine = await get_or_open_conversation(MessagingRepository(a), m.clinic_id, "k1")

        async def in_b() -> uuid.UUID:
            async with m.runtime.transaction() as b:
                return (await get_or_open_conversation(MessagingRepository(b), m.clinic_id, "k1")).id

        b_task = asyncio.create_task(in_b())

        async def b_is_waiting_on_a() -> bool:
            async with m.runtime.transaction() as probe:
                waiting = (
                    await probe.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO conversations%'"
                        )
                    )
                ).scalar_one()
            return bool(waiting)

        await eventually(b_is_waiting_on_a, within=10, interval=0.02)
    assert await asyncio.wait_for(b_task, 10) == mine.id


async def read_up_to(m: Messaging, client_id: str, message_id: str, **kw: Any) -> Any:
    return await m.http.post(
        "/api/v1/conversation/read", json={"up_to": message_id}, headers=m.parent(client_id, **kw)
    )


async def test_reading_marks_each_staff_message_read_exactly_once(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    sent = [await send(m, "k1", f"note {i}") for i in range(5)]
    sent_ids = {s["message_id"] for s in sent}

    # Viewing, however often, reads nothing.
    for _ in range(3):
        view = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
        assert all(msg["read_at"] is None for msg in view["messages"])
    assert await outbox_events(m, "MessageRead") == []

    # Up to the third message: the first three, once, whatever the concurrency.
    responses = await asyncio.gather(*(read_up_to(m, "k1", sent[2]["message_id"]) for _ in range(8)))
    assert all(r.status_code == 200 for r in responses)
    marked = [i for r in responses for i in r.json()["message_ids"]]
    assert sorted(marked) == sorted(s["message_id"] for s in sent[:3])
    view = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
    assert [msg["read_at"] is not None for msg in view["messages"]] == [True, True, True, False, False]

    # Up to the last one: the remaining two; a repeat changes nothing and publishes nothing.
    assert len((await read_up_to(m, "k1", sent[4]["message_id"])).json()["message_ids"]) == 2
    repeat = await read_up_to(m, "k1", sent[4]["message_id"])
    assert repeat.json() == {"message_ids": [], "read_at": None}
    read_events = await outbox_events(m, "MessageRead")
    read_ids = [i for payload in read_events for i in payload["message_ids"]]
    assert sorted(read_ids) == sorted(sent_ids)  # every message once, none twice

    # A new message is read (and reported) on its own.
    new = await send(m, "k1", "one more")
    await read_up_to(m, "k1", new["message_id"])
    latest = (await outbox_events(m, "MessageRead"))[-1]
    assert latest["message_ids"] == [new["message_id"]]

    published = await m.published("MessageRead", len(read_events) + 1)
    on_kafka = [str(i) for _, e in published if isinstance(e, MessageRead) for i in e.message_ids]
    assert sorted(on_kafka) == sorted([*sent_ids, new["message_id"]])
    assert all(env.client_id == "k1" for env, _ in published)


async def test_reading_refuses_malformed_and_foreign_message_ids(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    mine = await send(m, "k1", "mine")
    headers = {**m.parent("k1"), "Content-Type": "application/json"}
    for content, loc in [
        (b'{"up_to": "not-a-uuid"}', ["body", "up_to"]),
        (b'{"up_to": 7}', ["body", "up_to"]),
        (b'{"up_to": "\\u0000"}', ["body", "up_to"]),
        (b'{"up_to": "\\ud800"}', ["body", "up_to"]),
        (b"{}", ["body", "up_to"]),
        (b'{"up_to": "' + mine["message_id"].encode() + b'", "extra": 1}', ["body", "extra"]),
    ]:
        response = await m.http.post("/api/v1/conversation/read", content=content, headers=headers)
        assert response.status_code == 422, (content, response.text)
        assert response.json()["detail"][0]["loc"] == loc
    huge = json.dumps({"up_to": "x" * 70_000}).encode()
    assert (await m.http.post("/api/v1/conversation/read", content=huge, headers=headers)).status_code == 413
    nobodys = str(uuid.uuid4())
    unknown = await read_up_to(m, "k1", nobodys)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"detail": f"no message {nobodys} in this conversation"},
    )
    assert (
        await m.http.post("/api/v1/conversation/read", json={"up_to": mine["message_id"]})
    ).status_code == 401
    assert (
        await m.http.post("/api/v1/conversation/read", json={"up_to": mine["message_id"]}, headers=m.staff())
    ).status_code == 403
    assert await outbox_events(m, "MessageRead") == []


async def test_a_parent_only_sees_their_own_conversation(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("alice")
    await m.add_client("bob")
    sent = await send(m, "alice", "for Alice only")

    bob = (await m.http.get("/api/v1/conversation", headers=m.parent("bob"))).json()
    assert bob == {"conversation_id": None, "messages": []}
    # Same client id at another clinic is another parent.
    stranger = await m.http.get("/api/v1/conversation", headers=m.parent("alice", clinic_id="other-clinic"))
    assert stranger.json() == {"conversation_id": None, "messages": []}
    # Neither can read Alice's message: it is not in their conversation.
    assert (await read_up_to(m, "bob", sent["message_id"])).status_code == 404
    assert (await read_up_to(m, "alice", sent["message_id"], clinic_id="other-clinic")).status_code == 404
    staff_view = (await m.http.get("/clinic/v1/clients/alice/conversation", headers=m.staff())).json()
    assert staff_view["messages"][0]["read_at"] is None
    assert await outbox_events(m, "MessageRead") == []

    alice = (await m.http.get("/api/v1/conversation", headers=m.parent("alice"))).json()
    assert [msg["body"] for msg in alice["messages"]] == ["for Alice only"]


async def test_history_stays_readable_and_a_new_conversation_opens_after_close(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    first = await send(m, "k1", "old thread")
    async with m.runtime.transaction() as session:
        await session.execute(text("UPDATE conversations SET status = 'closed'"))
    second = await send(m, "k1", "new thread")
    assert second["conversation_id"] != first["conversation_id"]
    async with m.runtime.transaction() as session:
        counts = (await session.execute(select(func.count()).select_from(text("messages")))).scalar_one()
    assert counts == 2
    parent = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
    assert parent["conversation_id"] == second["conversation_id"]
    assert [msg["body"] for msg in parent["messages"]] == ["new thread"]


async def test_the_parent_replies_in_the_portal(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    await m.add_client("k2")
    staff = await send(m, "k1", "Rex is ready")
    response = await m.http.post(
        "/api/v1/conversation/messages", json={"body": "Thanks!"}, headers=m.parent("k1")
    )
    assert response.status_code == 201, response.text
    reply = response.json()
    assert reply["conversation_id"] == staff["conversation_id"]
    view = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
    assert [(msg["sender"], msg["body"]) for msg in view["messages"]] == [
        ("staff", "Rex is ready"),
        ("client", "Thanks!"),
    ]
    # Never MessageReceived for the parent's own message: ClientMessageSent.
    assert len(await outbox_events(m, "MessageReceived")) == 1
    [(envelope, event)] = await m.published("ClientMessageSent", 1)
    assert (envelope.client_id, str(event.message_id)) == ("k1", reply["message_id"])  # type: ignore[attr-defined]

    # Another parent's first message opens their own conversation; Kafka and the clinic see both.
    other = await m.http.post("/api/v1/conversation/messages", json={"body": "Hi"}, headers=m.parent("k2"))
    assert other.status_code == 201
    assert other.json()["conversation_id"] != staff["conversation_id"]
    # A parent messaging doesn't know (yet) is 404; staff cannot use the parent's route.
    unknown = await m.http.post("/api/v1/conversation/messages", json={"body": "Hi"}, headers=m.parent("k9"))
    assert unknown.status_code == 404
    forbidden = await m.http.post("/api/v1/conversation/messages", json={"body": "Hi"}, headers=m.staff())
    assert forbidden.status_code == 403


async def test_parent_replies_the_portal_refuses_are_client_errors_and_store_nothing(
    messaging: Messaging,
) -> None:
    m = messaging
    await m.add_client("k1")
    headers = {**m.parent("k1"), "Content-Type": "application/json"}
    cases: list[tuple[bytes, int]] = [
        (b'{"body": "Call us\\u0000"}', 422),
        (b'{"body": "Rex \\ud83d"}', 422),
        (b'{"body": "   "}', 422),
        (b'{"body": ""}', 422),
        (json.dumps({"body": "x" * 5001}).encode(), 422),
        (json.dumps({"body": "x" * 70_000}).encode(), 413),
        (b'{"body": "hi", "sender": "staff"}', 422),
        (b'{"body": "caf\xe9"}', 400),
    ]
    for content, status in cases:
        response = await m.http.post("/api/v1/conversation/messages", content=content, headers=headers)
        assert response.status_code == status, (content[:40], response.text)
        assert '"input"' not in response.text  # never echoed
    assert (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()["messages"] == []
    assert await outbox_events(m, "ClientMessageSent") == []


async def reply(m: Messaging, client_id: str, body: str) -> dict[str, Any]:
    response = await m.http.post(
        "/api/v1/conversation/messages", json={"body": body}, headers=m.parent(client_id)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_staff_list_their_clinics_conversations_with_unread_counts(messaging: Messaging) -> None:
    m = messaging
    for client in ("k1", "k2", "k3"):
        await m.add_client(client)
    await m.add_client("k1", clinic_id="other-clinic")
    await send(m, "k1", "hello k1")
    await reply(m, "k2", "one")
    await reply(m, "k2", "two")
    await reply(m, "k3", "three")
    await reply(m, "k1", "thanks")
    other = await m.http.post(
        "/api/v1/conversation/messages", json={"body": "x"}, headers=m.parent("k1", "other-clinic")
    )
    assert other.status_code == 201

    first = (await m.http.get("/clinic/v1/conversations?limit=2", headers=m.staff())).json()
    assert [(c["client_id"], c["unread_count"], c["status"]) for c in first["conversations"]] == [
        ("k1", 1, "active"),
        ("k3", 1, "active"),
    ]
    assert first["next_offset"] == 2
    rest = (await m.http.get("/clinic/v1/conversations?limit=2&offset=2", headers=m.staff())).json()
    assert [(c["client_id"], c["unread_count"]) for c in rest["conversations"]] == [("k2", 2)]
    assert rest["next_offset"] is None
    assert other.json()["conversation_id"] not in {
        c["conversation_id"] for c in first["conversations"] + rest["conversations"]
    }

    for query in ("limit=0", "limit=101", "offset=-1", "offset=10001", "limit=x", "limit=%00", "limit=1e999"):
        response = await m.http.get(f"/clinic/v1/conversations?{query}", headers=m.staff())
        assert response.status_code == 422, (query, response.text)
    assert (await m.http.get("/clinic/v1/conversations")).status_code == 401
    assert (await m.http.get("/clinic/v1/conversations", headers=m.parent("k1"))).status_code == 403


async def test_staff_read_one_conversation_in_pages_read_its_client_messages_and_close_it(
    messaging: Messaging,
) -> None:
    m = messaging
    await m.add_client("k1")
    await m.add_client("k2")
    asked = await reply(m, "k1", "Is Rex ready?")
    await send(m, "k1", "Yes")
    thanks = await reply(m, "k1", "Thanks")
    theirs = await reply(m, "k2", "not k1's")
    conversation_id = asked["conversation_id"]
    url = f"/clinic/v1/conversations/{conversation_id}"

    page = (await m.http.get(f"{url}?limit=2", headers=m.staff())).json()
    assert [msg["body"] for msg in page["messages"]] == ["Thanks", "Yes"]
    assert (page["client_id"], page["unread_count"], page["next_offset"]) == ("k1", 2, 2)
    older = (await m.http.get(f"{url}?limit=2&offset=2", headers=m.staff())).json()
    assert ([msg["body"] for msg in older["messages"]], older["next_offset"]) == (["Is Rex ready?"], None)

    # Viewing changed nothing; reading up to the newest client message marks both, once.
    assert (await m.http.get(url, headers=m.staff())).json()["unread_count"] == 2
    foreign = await m.http.post(f"{url}/read", json={"up_to": theirs["message_id"]}, headers=m.staff())
    assert foreign.status_code == 404
    read = await m.http.post(f"{url}/read", json={"up_to": thanks["message_id"]}, headers=m.staff())
    assert sorted(read.json()["message_ids"]) == sorted([asked["message_id"], thanks["message_id"]])
    again = await m.http.post(f"{url}/read", json={"up_to": thanks["message_id"]}, headers=m.staff())
    assert again.json() == {"message_ids": [], "read_at": None}
    assert (await m.http.get(url, headers=m.staff())).json()["unread_count"] == 0
    # Staff reading the client's messages does not touch the parent's unread ones.
    assert await outbox_events(m, "MessageRead") == []

    # Another clinic's staff see none of it.
    for method, path in (("GET", url), ("POST", f"{url}/close")):
        assert (await m.http.request(method, path, headers=m.staff("other-clinic"))).status_code == 404
    assert (
        await m.http.post(
            f"{url}/read", json={"up_to": thanks["message_id"]}, headers=m.staff("other-clinic")
        )
    ).status_code == 404

    closed = await m.http.post(f"{url}/close", headers=m.staff())
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["closed_at"] is not None) == ("closed", True)
    assert (await m.http.post(f"{url}/close", headers=m.staff())).json() == closed.json()
    # The parent still sees the closed conversation until the next message opens a new one.
    assert (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()[
        "conversation_id"
    ] == conversation_id
    new = await reply(m, "k1", "One more question")
    assert new["conversation_id"] != conversation_id
    assert len((await m.http.get(url, headers=m.staff())).json()["messages"]) == 3
    assert (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()[
        "conversation_id"
    ] == new["conversation_id"]


async def test_staff_conversation_routes_refuse_bad_ids_with_specific_client_errors(
    messaging: Messaging,
) -> None:
    m = messaging
    await m.add_client("k1")
    sent = await reply(m, "k1", "hello")
    good = sent["conversation_id"]
    for bad in ("not-a-uuid", "%00", "%ED%A0%80", "x" * 5000):
        response = await m.http.get(f"/clinic/v1/conversations/{bad}", headers=m.staff())
        assert response.status_code == 422, (bad[:20], response.text)
        assert response.json()["detail"][0]["loc"] == ["path", "conversation_id"]
    unknown = uuid.uuid4()
    response = await m.http.post(f"/clinic/v1/conversations/{unknown}/close", headers=m.staff())
    assert (response.status_code, response.json()) == (
        404,
        {"detail": f"no conversation {unknown} at this clinic"},
    )
    headers = {**m.staff(), "Content-Type": "application/json"}
    for content in (b'{"up_to": "nope"}', b'{"up_to": "\\u0000"}', b"{}", b'{"up_to": null}'):
        response = await m.http.post(
            f"/clinic/v1/conversations/{good}/read", content=content, headers=headers
        )
        assert response.status_code == 422, (content, response.text)


async def test_a_close_racing_messages_leaves_one_active_conversation_and_nothing_after_the_close(
    messaging: Messaging,
) -> None:
    m = messaging
    await m.add_client("k1")
    first = await send(m, "k1", "opening")
    close = m.http.post(f"/clinic/v1/conversations/{first['conversation_id']}/close", headers=m.staff())
    sends = [
        m.http.post("/clinic/v1/clients/k1/messages", json={"body": f"n{i}"}, headers=m.staff())
        for i in range(8)
    ]
    responses = await asyncio.gather(close, *sends)
    assert all(r.status_code in (200, 201) for r in responses)
    async with m.runtime.transaction() as session:
        active = (
            await session.execute(text("SELECT count(*) FROM conversations WHERE status = 'active'"))
        ).scalar_one()
        late = (
            await session.execute(
                text(
                    "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    "WHERE c.status = 'closed' AND m.sent_at > c.closed_at"
                )
            )
        ).scalar_one()
        total = (await session.execute(text("SELECT count(*) FROM messages"))).scalar_one()
    assert active <= 1  # none if the close came last
    assert (late, total) == (0, 9)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def test_message_bodies_the_portal_refuses_are_client_errors_and_store_nothing(
    messaging: Messaging,
) -> None:
    m = messaging
    await m.add_client("k1")
    url = "/clinic/v1/clients/k1/messages"
    json_headers = {**m.staff(), "Content-Type": "application/json"}
    cases: list[tuple[bytes, int, list[Any] | None]] = [
        (b'{"body": "Call us\\u0000"}', 422, ["body", "body"]),
        (b'{"body": "Rex \\ud83d"}', 422, ["body", "body"]),
        (b'{"body": "\\u001b[2J"}', 422, ["body", "body"]),
        (b'{"body": NaN}', 422, ["body", "body"]),
        (b'{"body": -Infinity}', 422, ["body", "body"]),
        (b'{"body": "hi", "x": 1e999}', 422, ["body", "x"]),
        (b'{"body": ' + nested(40) + b"}", 422, None),
        (b'{"body": ' + nested(5000) + b"}", 400, None),
        (b'{"body": "caf\xe9"}', 400, None),
        (json.dumps({"body": "x" * 70_000}).encode(), 413, None),
    ]
    for content, status, loc in cases:
        response = await m.http.post(url, content=content, headers=json_headers)
        assert response.status_code == status, (content[:40], response.text)
        if loc is not None:
            assert response.json()["detail"][0]["loc"] == loc
            assert "input" not in response.text
    plain = await m.http.post(
        url, content=b'{"body": "hi"}', headers={**m.staff(), "Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    path = await m.http.post("/clinic/v1/clients/k%001/messages", json={"body": "hi"}, headers=m.staff())
    assert path.json()["detail"][0]["loc"] == ["path", "client_id"]
    query = await m.http.get("/api/v1/conversation?page=%00", headers=m.parent("k1"))
    assert query.json()["detail"][0]["loc"] == ["query", "page"]
    assert (await m.http.get("/clinic/v1/clients/k1/conversation", headers=m.staff())).json()[
        "messages"
    ] == []

    # Tab, newline, carriage return and any other character are text.
    body = "Line 1\r\nLine 2\tTabbed — 🐕 \u2028 \x7f"
    assert (await m.http.post(url, json={"body": body}, headers=m.staff())).status_code == 201
    [message] = (await m.http.get("/clinic/v1/clients/k1/conversation", headers=m.staff())).json()["messages"]
    assert message["body"] == body


async def test_a_clients_text_joins_their_conversation_once_and_staff_see_it_unread(
    messaging: Messaging,
) -> None:
    import uuid as uuid_module
    from datetime import UTC, datetime

    from petportal_schemas import SmsReceived

    m = messaging
    await m.add_client("k1")
    await send(m, "k1", "Rex is due for his booster")
    from aiokafka import AIOKafkaProducer

    text = SmsReceived(text_id=uuid_module.uuid4(), body="Can we come Friday?", received_at=datetime.now(UTC))
    envelope = Envelope.wrap(text, clinic_id=m.clinic_id, client_id="k1", producer="notify")
    producer = AIOKafkaProducer(bootstrap_servers=m.kafka)
    await producer.start()
    try:
        for _ in range(2):  # the same event delivered twice: appended once
            await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
    finally:
        await producer.stop()
    found = await m.published("ClientMessageSent", 1)
    assert [envelope.client_id for envelope, _ in found] == ["k1"], [e.event_id for e, _ in found]

    async def conversation(count: int) -> list[tuple[str, str]] | None:
        body = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
        shown = [(msg["sender"], msg["body"]) for msg in body["messages"]]
        return shown if len(shown) == count else None

    assert await eventually(lambda: conversation(2)) == [
        ("staff", "Rex is due for his booster"),
        ("client", "Can we come Friday?"),
    ]
    listed = (await m.http.get("/clinic/v1/conversations", headers=m.staff())).json()["conversations"]
    assert [(c["client_id"], c["unread_count"]) for c in listed] == [("k1", 1)]
    # A second text, after a while: still one conversation, and nothing doubled.
    later = SmsReceived(text_id=uuid_module.uuid4(), body="Or Saturday", received_at=datetime.now(UTC))
    await m.publish(later, "k1")
    assert (await eventually(lambda: conversation(3)))[-1] == ("client", "Or Saturday")
