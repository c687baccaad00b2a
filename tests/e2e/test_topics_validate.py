"""Every message the running services put on the topics validates against the exported JSON Schemas."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer

from petportal_devkit.testing import run_sync
from petportal_schemas import topics

from .stack import Stack

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "jsonschema"


async def _all_records(bootstrap: str) -> list[Any]:
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
        while batch := await consumer.getmany(timeout_ms=1500):
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return records


def test_every_published_message_matches_its_json_schema(stack: Stack) -> None:
    # The stack is shared by the e2e session and this file runs after the flow tests: the topics hold
    # everything the services published there.
    envelope_schema = json.loads((SCHEMAS / "Envelope.json").read_text())
    records = run_sync(asyncio.wait_for(_all_records(stack.kafka.bootstrap), 60))
    assert records, "the e2e stack published nothing"
    seen = set()
    for record in records:
        message = json.loads(record.value)
        jsonschema.validate(message, envelope_schema)
        name = f"{message['event_type']}.v{message['event_version']}.json"
        jsonschema.validate(message["payload"], json.loads((SCHEMAS / name).read_text()))
        assert record.topic == json.loads((SCHEMAS / name).read_text())["x-topic"]
        seen.add(message["event_type"])
    assert {
        "MessageReceived",
        "MessageRead",
        "SmsOptedOut",
        "SmsOptedIn",
        "ClientUpserted",
        "ProgramOffered",
        "ClientEnrolledInProgram",
        "ClinicRegistered",
    } <= seen
