"""A client's erasure against PostgreSQL and Kafka: every row messaging holds about them goes (their
conversations, messages, photos, feedback, client row and unsent events), the other client's stay, the
confirmation reaches the erasure topic, and a replay of their older events brings nothing back."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from PIL import Image
from sqlalchemy import text

from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientUpserted,
    Envelope,
    Event,
    SmsReceived,
    topics,
)

from .conftest import Messaging, consume, eventually

pytestmark = pytest.mark.integration

TABLES = {"clients", "conversations", "messages", "message_photos", "feedback"}
# Rows of each table about one client (message_photos through their messages, messages through
# their conversations).
ROWS_OF_CLIENT = """
    SELECT (SELECT count(*) FROM clients WHERE clinic_id = :c AND client_id = :k),
           (SELECT count(*) FROM conversations WHERE clinic_id = :c AND client_id = :k),
           (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE c.clinic_id = :c AND c.client_id = :k),
           (SELECT count(*) FROM message_photos p JOIN messages m ON m.id = p.message_id
             JOIN conversations c ON c.id = m.conversation_id WHERE c.clinic_id = :c AND c.client_id = :k),
           (SELECT count(*) FROM feedback WHERE clinic_id = :c AND client_id = :k)
"""


async def publish(m: Messaging, event: Event, client_id: str, **kw: Any) -> Envelope:
    envelope = Envelope.wrap(event, clinic_id=m.clinic_id, client_id=client_id, producer="test", **kw)
    producer = AIOKafkaProducer(bootstrap_servers=m.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
    finally:
        await producer.stop()
    return envelope


async def query(m: Messaging, sql: str, **params: Any) -> list[Any]:
    async with m.runtime.transaction() as session:
        return list((await session.execute(text(sql), params)).all())


def sms(body: str) -> SmsReceived:
    return SmsReceived(text_id=uuid.uuid4(), body=body, received_at=datetime.now(UTC))


async def test_an_erased_clients_data_is_deleted_everywhere_and_a_replay_brings_none_of_it_back(
    messaging: Messaging,
) -> None:
    m = messaging
    tag = uuid.uuid4().hex[:8]
    erased, kept = f"erased-{tag}", f"kept-{tag}"
    # Words only each client's rows hold: what they wrote, what staff wrote to them.
    words = {
        client: [f"{word}-{client}" for word in ("staff", "reply", "caption", "texted", "feedback", "later")]
        for client in (erased, kept)
    }
    jpeg = io.BytesIO()
    Image.new("RGB", (400, 300), "orange").save(jpeg, format="JPEG")

    async def rows_of(client: str) -> tuple[int, ...]:
        [row] = await query(m, ROWS_OF_CLIENT, c=m.clinic_id, k=client)
        return tuple(row)

    async def bodies(client: str) -> list[str]:
        shown = (await m.http.get("/api/v1/conversation", headers=m.parent(client))).json()
        return [msg["body"] for msg in shown["messages"]]

    async def shows(client: str, expected: list[str]) -> bool:
        return await bodies(client) == expected

    # Both clients fill every table: a closed conversation and an active one, staff's and the
    # parent's messages (read, and with a photo), a text from their phone, feedback.
    for client in (erased, kept):
        staff_said, replied, caption, texted, feedback, later = words[client]
        await m.add_client(client)
        sent = await m.http.post(
            f"/clinic/v1/clients/{client}/messages", json={"body": staff_said}, headers=m.staff()
        )
        assert sent.status_code == 201, sent.text
        read = await m.http.post(
            "/api/v1/conversation/read", json={"up_to": sent.json()["message_id"]}, headers=m.parent(client)
        )
        assert read.status_code == 200, read.text
        answer = await m.http.post(
            "/api/v1/conversation/messages", json={"body": replied}, headers=m.parent(client)
        )
        assert answer.status_code == 201, answer.text
        photo = await m.http.post(
            f"/api/v1/conversation/messages/photo?caption={caption}",
            content=jpeg.getvalue(),
            headers={**m.parent(client), "content-type": "image/jpeg"},
        )
        assert photo.status_code == 201, photo.text
        closed = await m.http.post(
            f"/clinic/v1/conversations/{sent.json()['conversation_id']}/close", headers=m.staff()
        )
        assert closed.status_code == 200, closed.text
        await publish(m, sms(texted), client)
        # The text opens the second conversation (the parent saw the closed one until then).
        await eventually(lambda c=client, t=texted: shows(c, [t]))
        given = await m.http.post(
            "/api/v1/feedback", json={"rating": 4, "text": feedback}, headers=m.parent(client)
        )
        assert given.status_code == 201, given.text
        again = await m.http.post(
            "/api/v1/conversation/messages", json={"body": later}, headers=m.parent(client)
        )
        assert again.status_code == 201, again.text

    # clients, conversations (closed + active), messages, photos, feedback
    full = (1, 2, 5, 1, 1)
    assert await rows_of(erased) == await rows_of(kept) == full
    kept_outbox = await query(
        m, "SELECT event_id FROM outbox WHERE key = :key ORDER BY id", key=f"{m.clinic_id}:{kept}"
    )
    assert len(kept_outbox) == 6  # MessageReceived, MessageRead, 3 ClientMessageSent, the text's

    erasure_id = uuid.uuid4()
    request = await publish(m, ClientErasureRequested(erasure_id=erasure_id), erased)

    async def tombstones() -> list[Any]:
        # Of this test's clinic: the topics are the session's, other tests erase clients too.
        return await query(
            m,
            "SELECT clinic_id, client_id, erased_at, erasure_id FROM erased_clients WHERE clinic_id = :c",
            c=m.clinic_id,
        )

    assert await eventually(tombstones) == [(m.clinic_id, erased, request.occurred_at, erasure_id)]

    # No row of any table holds the erased client's id or anything said in their conversations;
    # the tombstone (ids only) and the confirmation in the outbox are the only rows about them.
    tables = {
        name
        for (name,) in await query(
            m, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    assert {*TABLES, "rate_limits", "inbox"} <= tables
    for table in sorted(tables - {"erased_clients", "outbox"}):
        rows = [row for (row,) in await query(m, f'SELECT t::text FROM "{table}" AS t')]
        leaked = [row for row in rows if any(word in row for word in (erased, *words[erased]))]
        assert leaked == [], table
    outbox = await query(m, "SELECT key, event_type, value FROM outbox ORDER BY id")
    theirs = [(event_type, value) for key, event_type, value in outbox if key == f"{m.clinic_id}:{erased}"]
    [(event_type, value)] = theirs
    assert event_type == "ClientDataErased"
    assert Envelope.from_bytes(value).payload == {"erasure_id": str(erasure_id), "service": "messaging"}
    assert not [v for _, _, v in outbox if any(w.encode() in v for w in words[erased])]

    # The other client's rows and events are all there.
    assert await rows_of(erased) == (0, 0, 0, 0, 0)
    assert await rows_of(kept) == full
    assert (
        await query(
            m, "SELECT event_id FROM outbox WHERE key = :key ORDER BY id", key=f"{m.clinic_id}:{kept}"
        )
        == kept_outbox
    )
    assert await bodies(kept) == [words[kept][3], words[kept][5]]
    assert await bodies(erased) == []
    feedback = (await m.http.get("/clinic/v1/feedback", headers=m.staff())).json()["feedback"]
    assert [f["client_id"] for f in feedback] == [kept]
    unknown = await m.http.get(f"/clinic/v1/clients/{erased}/conversation", headers=m.staff())
    assert unknown.status_code == 404

    # The confirmation reaches the erasure topic.
    [(envelope, confirmed)] = await consume(
        m.kafka, topics.ERASURE, m.clinic_id, "ClientDataErased", 1, timeout=30
    )
    assert isinstance(confirmed, ClientDataErased)
    assert (envelope.client_id, envelope.producer, confirmed.erasure_id, confirmed.service) == (
        erased,
        "messaging",
        erasure_id,
        "messaging",
    )

    # A replay of the events that made the data (new ids, occurred before the erasure) creates
    # nothing; events after the erasure, behind them on the same partitions, are applied.
    before = request.occurred_at - timedelta(minutes=5)
    replayed = [
        await publish(m, ClientUpserted(first_name="Ada", last_name="Lovelace"), erased, occurred_at=before),
        await publish(m, sms(words[erased][3]), erased, occurred_at=before),
    ]
    markers = [
        await publish(m, ClientUpserted(first_name="Ada", last_name="Lovelace"), erased),
        await publish(m, sms(f"new-{tag}"), erased),
    ]

    async def applied() -> bool:
        claimed = await query(
            m, "SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)", ids=[e.event_id for e in markers]
        )
        return bool(claimed[0][0] == len(markers))

    assert await eventually(applied)
    refused = await query(
        m, "SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)", ids=[e.event_id for e in replayed]
    )
    assert refused[0][0] == 0
    assert await bodies(erased) == [f"new-{tag}"]
    assert await rows_of(erased) == (1, 1, 1, 0, 0)
