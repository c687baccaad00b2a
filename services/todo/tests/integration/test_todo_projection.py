"""todo against a real Kafka broker and a real MongoDB (nx-27017), through the real ASGI app."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from petportal_runtime.auth import StaffPrincipal
from petportal_schemas import (
    AppointmentRequestAnswered,
    ClientEnrolledInProgram,
    MessageRead,
    MessageReceived,
    ProgramOffered,
    RefillRequestDecided,
    RefillRequested,
    RequestAnswerSeen,
    SmsOptedIn,
    SmsOptedOut,
    topics,
)
from petportal_todo.bootstrap import make_read_model, make_replayer
from petportal_todo.service_layer.projection import rebuild
from petportal_todo.settings import TodoSettings

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def ids() -> tuple[str, str]:
    return f"clinic-{uuid.uuid4().hex[:8]}", f"client-{uuid.uuid4().hex[:8]}"


def message(conversation: uuid.UUID) -> MessageReceived:
    return MessageReceived(conversation_id=conversation, message_id=uuid.uuid4(), sent_at=NOW)


async def todo_of(running: Any, keys: Any, clinic_id: str, client_id: str) -> dict[str, Any]:
    response = await running.http.get("/api/v1/todo", headers=keys.parent_headers(clinic_id, client_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # The Get Help Now options ride along (tests/unit/test_help_options.py); these tests read the list.
    assert body.pop("help") == {"live_chat": False, "booking_mode": None}
    return body


async def test_events_build_the_parents_todo_list(
    start_todo: Any, publish: Any, keys: Any, wait_for: Callable[..., Awaitable[Any]]
) -> None:
    clinic_id, client_id = ids()
    conversation = uuid.uuid4()
    async with start_todo() as todo:
        assert (await todo_of(todo, keys, clinic_id, client_id)) == {"badge": 0, "items": []}

        await publish(
            ProgramOffered(program_code="care", name="Care", call_to_action="Add a Care Member"), clinic_id
        )
        sent = [message(conversation) for _ in range(3)]
        for event in sent:
            await publish(event, clinic_id, client_id)
        read = MessageRead(conversation_id=conversation, message_ids=[sent[0].message_id], read_at=NOW)
        await publish(read, clinic_id, client_id)
        await publish(SmsOptedOut(source="sms_keyword", keyword="STOP"), clinic_id, client_id)

        expected = {
            "badge": 3,
            "items": [
                {
                    "kind": "unread_messages",
                    "title": "You have 2 unread messages",
                    "count": 2,
                    "action": {"href": "/conversation"},
                },
                {
                    "kind": "sms_opt_in",
                    "title": "Opt into receiving texts",
                    "action": {"href": "/notifications/preferences"},
                },
                {"kind": "program_cta", "title": "Add a Care Member", "action": {"href": "/programs/care"}},
            ],
        }
        # Three topics, so no order between them: wait for the whole expected list.
        await wait_for(
            lambda: todo_of(todo, keys, clinic_id, client_id), lambda b: b == expected, what="the full list"
        )

        # Another parent of the clinic, with no events of their own, still sees the clinic's program.
        neighbour = await todo_of(todo, keys, clinic_id, "someone-else")
        assert neighbour["badge"] == 1
        assert neighbour["items"][0]["kind"] == "program_cta"

        await publish(ClientEnrolledInProgram(program_code="care"), clinic_id, client_id)
        await publish(SmsOptedIn(source="portal"), clinic_id, client_id)
        body = await wait_for(
            lambda: todo_of(todo, keys, clinic_id, client_id),
            lambda b: kinds(b) == ["unread_messages"],
            what="only the messages item",
        )
        assert body["items"][0]["count"] == 2

        # Only a parent's token gives a To-Do list.
        assert (await todo.http.get("/api/v1/todo")).status_code == 401
        staff = keys.token(StaffPrincipal(sub="staff-1", role="staff", clinic_id=clinic_id))
        forbidden = await todo.http.get("/api/v1/todo", headers={"Authorization": f"Bearer {staff}"})
        assert forbidden.status_code == 403

        ready = await todo.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["mongodb"] == "ok"
        metrics = (await todo.http.get("/metrics")).text
        assert "petportal_todo_freshness_seconds_bucket" in metrics
        assert "petportal_todo_events_applied" in metrics


async def test_duplicate_delivery_is_counted_once(
    start_todo: Any,
    publish: Any,
    producer: AIOKafkaProducer,
    send: Any,
    keys: Any,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    clinic_id, client_id = ids()
    async with start_todo() as todo:
        inbox = todo.service.read_model.db["inbox"]

        async def applied(envelope: Any) -> bool:
            return await inbox.find_one({"_id": str(envelope.event_id)}) is not None

        first = await publish(message(uuid.uuid4()), clinic_id, client_id)
        await send(producer, first)  # the very same envelope, delivered again
        # A marker behind both on the same topic and partition: once it is applied, so are they.
        marker = await publish(message(uuid.uuid4()), clinic_id, client_id)
        await wait_for(lambda: applied(marker), bool, what="marker applied")
        body = await todo_of(todo, keys, clinic_id, client_id)
        assert body["items"][0]["title"] == "You have 2 unread messages"

        # The same envelope again, later (a separate batch): still counted once.
        await send(producer, first)
        marker = await publish(message(uuid.uuid4()), clinic_id, client_id)
        await wait_for(lambda: applied(marker), bool, what="second marker applied")
        assert (await todo_of(todo, keys, clinic_id, client_id))["items"][0]["count"] == 3


async def test_malformed_message_is_dead_lettered_and_later_events_apply(
    start_todo: Any,
    publish: Any,
    producer: AIOKafkaProducer,
    keys: Any,
    kafka_bootstrap: str,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    clinic_id, client_id = ids()
    key = f"{clinic_id}:{client_id}".encode()
    async with start_todo() as todo:
        await producer.send_and_wait(topics.MESSAGING, b'{"event_type": "MessageReceived"', key=key)
        await publish(message(uuid.uuid4()), clinic_id, client_id)
        body = await wait_for(
            lambda: todo_of(todo, keys, clinic_id, client_id), lambda b: b["badge"] == 1, what="valid event"
        )
        assert body["items"][0]["count"] == 1

        dead = await wait_for(
            lambda: dead_letters(kafka_bootstrap, key), lambda found: len(found) > 0, what="dead letter"
        )
        headers = dead[0]
        assert headers["consumer"] == todo.consumer
        assert headers["source_topic"] == topics.MESSAGING
        assert headers["reason"].startswith("invalid envelope")


async def dead_letters(bootstrap: str, key: bytes) -> list[dict[str, str]]:
    """Headers of the dead letters with `key`, read from the beginning of the dead-letter topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topics.DEADLETTER, p)
            for p in consumer.partitions_for_topic(topics.DEADLETTER) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [{k: v.decode() for k, v in r.headers} for r in records if r.key == key]
        return found
    finally:
        await consumer.stop()


async def test_rebuild_gives_the_same_lists_and_moves_the_group(
    start_todo: Any,
    publish: Any,
    keys: Any,
    todo_settings: TodoSettings,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    clinic_id, client_id = ids()
    other_client = f"client-{uuid.uuid4().hex[:8]}"
    consumer = f"todo-rebuild-{uuid.uuid4().hex[:8]}"
    async with start_todo(consumer) as todo:
        await publish(
            ProgramOffered(program_code="dental", name="Dental", call_to_action="Join Dental"), clinic_id
        )
        for _ in range(4):
            await publish(message(uuid.uuid4()), clinic_id, client_id)
        await publish(message(uuid.uuid4()), clinic_id, other_client)
        await publish(SmsOptedOut(source="portal"), clinic_id, other_client, occurred_at=NOW)
        await publish(
            SmsOptedIn(source="portal"), clinic_id, other_client, occurred_at=NOW - timedelta(hours=1)
        )
        await publish(ClientEnrolledInProgram(program_code="dental"), clinic_id, other_client)
        before = await wait_for(
            lambda: both(todo, keys, clinic_id, client_id, other_client),
            lambda lists: (
                kinds(lists[0]) == ["unread_messages", "program_cta"]
                and kinds(lists[1]) == ["unread_messages", "sms_opt_in"]
            ),  # the stale opt-in did not win
            what="both lists",
        )
        assert before[0]["items"][0]["count"] == 4

    read_model = make_read_model(todo_settings)
    try:
        await read_model.db["parents"].insert_one(
            {"_id": "stale:doc", "clinic_id": "stale", "client_id": "doc"}
        )
        replayer = make_replayer(todo_settings, consumer)
        applied = await rebuild(read_model, replayer)
        assert applied >= 9
        assert await read_model.db["parents"].find_one({"_id": "stale:doc"}) is None
    finally:
        await read_model.close()

    committer = AIOKafkaConsumer(
        bootstrap_servers=todo_settings.kafka_bootstrap_servers,
        group_id=f"petportal-{consumer}",
        enable_auto_commit=False,
    )
    await committer.start()
    try:
        for tp, end in replayer.end_offsets.items():
            assert await committer.committed(tp) == end
    finally:
        await committer.stop()

    async with start_todo(consumer) as todo:
        after = await both(todo, keys, clinic_id, client_id, other_client)
        assert after == before
        # The service resumes after the rebuild's offsets: a new event applies on top, once.
        await publish(message(uuid.uuid4()), clinic_id, client_id)
        body = await wait_for(
            lambda: todo_of(todo, keys, clinic_id, client_id),
            lambda b: b["items"][0]["count"] == 5,
            what="5 unread",
        )
        assert body["badge"] == 2


def kinds(todo: dict[str, Any]) -> list[str]:
    return [item["kind"] for item in todo["items"]]


async def both(todo: Any, keys: Any, clinic_id: str, a: str, b: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return await todo_of(todo, keys, clinic_id, a), await todo_of(todo, keys, clinic_id, b)


async def test_query_text_the_portal_refuses_is_422(start_todo: Any, keys: Any) -> None:
    clinic_id, client_id = ids()
    async with start_todo() as todo:
        mine = keys.parent_headers(clinic_id, client_id)
        for query in ("x=%00", "x=%07", "%00=1"):
            response = await todo.http.get(f"/api/v1/todo?{query}", headers=mine)
            assert response.status_code == 422, query
            assert response.json()["detail"][0]["loc"][0] == "query"
        too_big = await todo.http.request("GET", "/api/v1/todo", content=b"x" * 20_000, headers=mine)
        assert too_big.status_code == 413
        assert (await todo.http.get("/api/v1/todo?x=%E2%98%83", headers=mine)).status_code == 200


async def test_the_clinics_answers_are_on_the_list_until_seen_and_a_rebuild_keeps_them(
    start_todo: Any,
    publish: Any,
    keys: Any,
    todo_settings: TodoSettings,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    clinic_id, client_id = ids()
    consumer = f"todo-answers-{uuid.uuid4().hex[:8]}"
    accepted, denied, seen_early, unrelated = (uuid.uuid4() for _ in range(4))

    def seen(request_id: uuid.UUID, kind: str = "appointment") -> RequestAnswerSeen:
        return RequestAnswerSeen(request_id=request_id, kind=kind, seen_at=NOW)

    async with start_todo(consumer) as todo:
        await publish(
            AppointmentRequestAnswered(
                request_id=accepted,
                patient_id="pet-1",
                outcome="accepted",
                appointment_at=NOW + timedelta(days=2),
                answered_at=NOW,
            ),
            clinic_id,
            client_id,
        )
        await publish(
            RefillRequestDecided(
                request_id=denied,
                patient_id="pet-2",
                prescription_id="rx-1",
                outcome="denied",
                decided_at=NOW + timedelta(seconds=1),
            ),
            clinic_id,
            client_id,
        )
        # Seen before todo gets the answer: it never shows.
        await publish(seen(seen_early), clinic_id, client_id)
        await publish(
            AppointmentRequestAnswered(
                request_id=seen_early, patient_id="pet-1", outcome="declined", answered_at=NOW
            ),
            clinic_id,
            client_id,
        )
        # The parent's own refill request is nothing for them to do (skipped, no dead letter).
        await publish(
            RefillRequested(
                request_id=unrelated, patient_id="pet-2", prescription_id="rx-1", requested_at=NOW
            ),
            clinic_id,
            client_id,
        )
        expected: dict[str, Any] = {
            "badge": 2,
            "items": [
                {
                    "kind": "request_answered",
                    "title": "Your appointment request was accepted",
                    "action": {"href": "/pets/pet-1"},
                },
                {
                    "kind": "refill_decided",
                    "title": "Your refill request was denied",
                    "action": {"href": "/pets/pet-2"},
                },
            ],
        }
        inbox = todo.service.read_model.db["inbox"]
        last = await publish(seen(uuid.uuid4(), "refill"), clinic_id, client_id)  # behind all of them

        async def all_applied() -> bool:
            return await inbox.find_one({"_id": str(last.event_id)}) is not None

        await wait_for(all_applied, bool, what="the pets events applied")
        assert await todo_of(todo, keys, clinic_id, client_id) == expected

        await publish(seen(accepted), clinic_id, client_id)
        body = await wait_for(
            lambda: todo_of(todo, keys, clinic_id, client_id),
            lambda b: b["badge"] == 1,
            what="the seen answer gone",
        )
        assert body["items"] == expected["items"][1:]

    read_model = make_read_model(todo_settings)
    try:
        await rebuild(read_model, make_replayer(todo_settings, consumer))
    finally:
        await read_model.close()
    async with start_todo(consumer) as todo:
        assert (await todo_of(todo, keys, clinic_id, client_id))["items"] == expected["items"][1:]
