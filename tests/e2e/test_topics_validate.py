"""Every message the running services put on the topics validates against the exported JSON Schemas.

The test makes its own traffic through the gateway (one clinic of its own), so it passes alone as
well as after the other end-to-end tests; it checks every record on the topics, theirs included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer

from petportal_devkit.testing import run_sync
from petportal_schemas import topics

from .stack import CARE_PLAN, Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "jsonschema"
CLINIC = "e2e-topics"
# Its own texting number: a clinic number belongs to one clinic, and other tests use CLINIC_NUMBER.
SMS_NUMBER = "+15005550009"
PHONE = "+15005550301"
EXPECTED = {
    "ClinicRegistered",
    "ClientUpserted",
    "ProgramOffered",
    "ClientEnrolledInProgram",
    "MessageReceived",
    "MessageRead",
    "ClientMessageSent",
    "SmsOptedOut",
    "SmsOptedIn",
}


def _publish_one_of_each(stack: Stack) -> None:
    portal = Portal(stack, CLINIC, SMS_NUMBER)  # ClinicRegistered
    portal.push(contact("T-1", PHONE), CARE_PLAN)  # ClientUpserted, ProgramOffered
    portal.push({"kind": "enrolment", "client_id": "T-1", "program_code": "care-plan"})
    staff, parent = portal.staff_token(), portal.parent_token("T-1")
    assert portal.send_message(staff, "T-1", "Biscuit is due for his booster").status_code == 201
    auth = {"authorization": f"Bearer {parent}"}
    conversation = portal.http.get("/api/v1/conversation", headers=auth)
    assert conversation.status_code == 200, conversation.text
    last = conversation.json()["messages"][-1]["message_id"]
    read = portal.http.post("/api/v1/conversation/read", json={"up_to": last}, headers=auth)
    assert read.status_code == 200, read.text  # MessageRead
    reply = portal.http.post("/api/v1/conversation/messages", json={"body": "Thanks!"}, headers=auth)
    assert reply.status_code == 201, reply.text  # ClientMessageSent

    def opted_out() -> bool | None:
        response = portal.http.get(
            "/clinic/v1/clients/T-1/sms-status", headers={"authorization": f"Bearer {staff}"}
        )
        return response.json()["sms_opt_out_indicator"] if response.status_code == 200 else None

    # notify learns the contact and the clinic's number from sync's events, in no fixed order.
    wait_for(lambda: opted_out() is False, what="notify knows T-1")
    wait_for(lambda: portal.text(PHONE, "STOP").status_code == 200, what="notify knows the clinic number")
    wait_for(opted_out, what="T-1 opted out")
    assert portal.text(PHONE, "START").status_code == 200


async def _records_until(bootstrap: str, done: Callable[[list[Any]], bool], within: float) -> list[Any]:
    """Every record on the services' topics, read until `done(records)` and the topics are drained."""
    consumer = AIOKafkaConsumer(
        topics.MESSAGING,
        topics.NOTIFY,
        topics.SYNC,
        topics.IDENTITY,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            records += [r for rs in batch.values() for r in rs]
            if not batch and done(records):
                break
    finally:
        await consumer.stop()
    return records


def _types_of_clinic(records: list[Any]) -> set[str]:
    return {
        json.loads(r.value)["event_type"]
        for r in records
        if (r.key or b"").decode().split(":", 1)[0] == CLINIC
    }


def test_every_published_message_matches_its_json_schema(stack: Stack) -> None:
    _publish_one_of_each(stack)
    records = run_sync(
        _records_until(stack.kafka.bootstrap, lambda rs: _types_of_clinic(rs) >= EXPECTED, within=60)
    )
    assert _types_of_clinic(records) >= EXPECTED, f"published for {CLINIC}: {_types_of_clinic(records)}"

    envelope_schema = json.loads((SCHEMAS / "Envelope.json").read_text())
    for record in records:
        message = json.loads(record.value)
        jsonschema.validate(message, envelope_schema)
        schema = json.loads(
            (SCHEMAS / f"{message['event_type']}.v{message['event_version']}.json").read_text()
        )
        jsonschema.validate(message["payload"], schema)
        assert record.topic == schema["x-topic"]
