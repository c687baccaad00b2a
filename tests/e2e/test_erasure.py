"""A parent erases their portal data: confirmed with a fresh code from the real mailbox; every service
confirms; then no PostgreSQL row and no MongoDB document of the stack holds their name, email, phone
number or message text. Replaying every event about them (new event ids, as after the inboxes were
purged) and rebuilding todo from the topics bring none of it back, while what the PIMS sends
afterwards opens a new, empty account."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import MongoClient

from petportal_devkit.devinfra import database_url
from petportal_devkit.testing import run_sync
from petportal_schemas import Envelope, topics

from .stack import Portal, Stack, wait_for

pytestmark = pytest.mark.e2e

CLIENT = "E-1"
OTHER = "E-2"


def _code(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


async def _postgres_rows(stack: Stack) -> list[tuple[str, str]]:
    """(service.table, the row as text) for every row of every table of every service database."""
    rows: list[tuple[str, str]] = []
    for service, database in stack.databases.items():
        url = database_url(stack.postgres_server_url, database).replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(url)
        try:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
            for (table,) in tables:
                for record in await conn.fetch(f'SELECT * FROM "{table}"'):
                    values = [
                        v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in record.values()
                    ]
                    rows.append((f"{service}.{table}", " ".join(values)))
        finally:
            await conn.close()
    return rows


def _mongo_documents(stack: Stack) -> list[tuple[str, str]]:
    client: MongoClient[dict[str, Any]] = MongoClient(stack.base_env["MONGODB_URL"], tz_aware=True)
    try:
        db = client[stack.base_env["MONGODB_DATABASE"]]
        return [
            (f"todo.{name}", json.dumps(doc, default=str))
            for name in db.list_collection_names()
            for doc in db[name].find()
        ]
    finally:
        client.close()


def _holding(stack: Stack, secrets: list[str]) -> list[str]:
    found = [*run_sync(_postgres_rows(stack)), *_mongo_documents(stack)]
    return sorted({where for where, text in found for s in secrets if s.lower() in text.lower()})


async def _events_about(bootstrap: str, clinic_id: str, client_id: str) -> list[Envelope]:
    """Every event on the topics about one client, read from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the metadata of every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in (topics.MESSAGING, topics.NOTIFY, topics.SYNC, topics.IDENTITY)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Envelope] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    envelope = Envelope.model_validate_json(record.value)
                    if (envelope.clinic_id, envelope.client_id) == (clinic_id, client_id):
                        found.append(envelope)
        return found
    finally:
        await consumer.stop()


async def _publish(bootstrap: str, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
    finally:
        await producer.stop()


def test_an_erased_parent_leaves_nothing_behind_and_a_replay_brings_nothing_back(stack: Stack) -> None:
    portal = Portal(stack, f"e2e-erase-{uuid.uuid4().hex[:6]}", sms_number="+15005550024")
    tag = uuid.uuid4().hex[:8]
    surname, email, phone = f"Quistgaard{tag}", f"zeb.{tag}@example.com", "+14155550124"
    secrets = [surname, email, phone, f"ear drops {tag}", f"reply {tag}", f"feedback {tag}"]
    portal.push(
        {"kind": "contact", "client_id": CLIENT, "first_name": "Zebulon", "last_name": surname,
         "email": email, "phone": phone},
        {"kind": "contact", "client_id": OTHER, "first_name": "Other", "last_name": f"Keeper{tag}",
         "email": f"keep.{tag}@example.com", "phone": "+14155550125"},
        {"kind": "patient", "client_id": CLIENT, "patient_id": "EP-1", "name": f"Biscuit{tag}",
         "species": "dog"},
    )  # fmt: skip
    staff = portal.staff_token()
    staff_headers = {"authorization": f"Bearer {staff}"}
    portal.parent_token(CLIENT)  # identity has the contact
    wait_for(
        lambda: (
            portal.http.get(f"/clinic/v1/clients/{CLIENT}/sms-status", headers=staff_headers).status_code
            == 200
        ),
        what="notify knows the contact",
    )
    assert portal.send_message(staff, CLIENT, f"ear drops {tag}, twice a day").status_code == 201
    assert portal.send_message(staff, OTHER, f"keep this {tag}").status_code == 201

    # The parent signs in for real, replies, gives feedback and texts STOP.
    start = portal.http.post("/api/v1/auth/sign-in", json={"identifier": email})
    assert start.status_code == 202, start.text
    [mail] = wait_for(
        lambda: [m for m in stack.mail() if m["To"] == email and "sign-in code" in m["Subject"]] or None,
        what="the sign-in code",
    )
    session = portal.http.post(
        "/api/v1/auth/sign-in/verify",
        json={"challenge_id": start.json()["challenge_id"], "code": _code(mail["Subject"])},
    )
    assert session.status_code == 200, session.text
    parent = {"authorization": f"Bearer {session.json()['access_token']}"}
    reply = portal.http.post("/api/v1/conversation/messages", json={"body": f"reply {tag}"}, headers=parent)
    assert reply.status_code == 201, reply.text
    feedback = portal.http.post(
        "/api/v1/feedback", json={"rating": 4, "text": f"feedback {tag}"}, headers=parent
    )
    assert feedback.status_code == 201, feedback.text
    assert portal.text(phone, "STOP").status_code == 200
    wait_for(
        lambda: portal.http.get(f"/clinic/v1/clients/{CLIENT}/sms-status", headers=staff_headers).json()[
            "sms_opt_out_indicator"
        ],
        what="the opt-out recorded",
    )
    # The replay below needs these on the topics before the erasure, which deletes what a service
    # has not relayed yet (nothing unsent about an erased client leaves it).
    replayed_types = {"ClientUpserted", "MessageReceived", "SmsOptedOut"}

    def published() -> set[str]:
        events = run_sync(_events_about(stack.kafka.bootstrap, portal.clinic_id, CLIENT))
        return {e.event_type for e in events}

    wait_for(lambda: replayed_types <= published(), what="the client's events on the topics")
    assert _holding(stack, secrets), "the data to erase is in the stores before the erasure"

    # Erase, confirmed with a fresh code.
    asked = portal.http.post("/api/v1/account/erasure", headers=parent)
    assert asked.status_code == 202, asked.text
    [mail] = wait_for(
        lambda: [m for m in stack.mail() if m["To"] == email and "erase" in m["Subject"]] or None,
        what="the erasure code",
    )
    confirmed = portal.http.post(
        "/api/v1/account/erasure/confirm",
        json={"challenge_id": asked.json()["challenge_id"], "code": _code(mail["Subject"])},
        headers=parent,
    )
    assert confirmed.status_code == 202, confirmed.text
    status_url = f"/api/v1/erasures/{confirmed.json()['erasure_id']}"
    done = wait_for(
        lambda: (s := portal.http.get(status_url).json())["status"] == "complete" and s,
        timeout=90,
        what="every service confirmed the erasure",
    )
    assert done["waiting_for"] == []
    refreshed = portal.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": session.json()["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert _holding(stack, secrets) == []
    assert _holding(stack, [f"Keeper{tag}", f"keep this {tag}"]), "the other client is untouched"

    # Replay every event about the client (new ids: as if the inboxes had been purged)...
    bootstrap = stack.kafka.bootstrap
    old = [
        e for e in run_sync(_events_about(bootstrap, portal.clinic_id, CLIENT))
        if e.event_type not in ("ClientErasureRequested", "ClientDataErased")
    ]  # fmt: skip
    assert replayed_types <= {e.event_type for e in old}
    run_sync(_publish(bootstrap, [e.model_copy(update={"event_id": uuid.uuid4()}) for e in old]))
    # ...then the PIMS sends the client again: a new, empty account (after the replays, in each
    # partition, so once it shows, the replays before it were consumed).
    new_tag = uuid.uuid4().hex[:8]
    portal.push(
        {"kind": "contact", "client_id": CLIENT, "first_name": "Zebulon", "last_name": f"Anew{new_tag}",
         "email": f"anew.{new_tag}@example.com", "phone": "+14155550126"},
    )  # fmt: skip
    token = portal.parent_token(CLIENT)
    account = wait_for(
        lambda: (
            (a := portal.http.get("/api/v1/account", headers={"authorization": f"Bearer {token}"}))
            .json()
            .get("last_name")
            == f"Anew{new_tag}"
            and a.json()
        ),
        what="the new contact",
    )
    assert account["email"] == f"anew.{new_tag}@example.com"
    assert portal.send_message(staff, CLIENT, f"welcome back {new_tag}").status_code == 201
    portal.wait_todo(token, [("unread_messages", "You have 1 unread message")], "only the new message")
    conversation = portal.http.get("/api/v1/conversation", headers={"authorization": f"Bearer {token}"})
    assert conversation.status_code == 200, conversation.text
    assert [m["body"] for m in conversation.json()["messages"]] == [f"welcome back {new_tag}"]
    assert _holding(stack, secrets) == []

    # Rebuild todo from every topic: still nothing of the erased client, and the same new list.
    stack.kill("todo")
    stack.cli("todo", "rebuild")
    stack.serve("todo")
    stack.wait_ready("todo")
    portal.wait_todo(
        token, [("unread_messages", "You have 1 unread message")], "the same list after a rebuild"
    )
    assert _holding(stack, secrets) == []


def test_the_erasure_topic_exists(stack: Stack) -> None:
    async def listed() -> set[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka.bootstrap)
        await consumer.start()
        try:
            return set(await consumer.topics())
        finally:
            await consumer.stop()

    assert topics.ERASURE in asyncio.run(listed())
