"""A real `python -m petportal_todo serve` SIGKILLed mid-stream, then restarted: counts stay exact."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from petportal_devkit.devinfra import LocalKafka, create_topics, free_port
from petportal_devkit.testing import run_sync
from petportal_schemas import Envelope, MessageRead, MessageReceived
from petportal_todo.adapters.mongo import make_client

pytestmark = pytest.mark.integration

EVENTS = 10_000


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "petportal_todo", "serve", "--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def kafka_bootstrap() -> Iterator[str]:
    """A broker of its own: the inbox count below must see only this test's events."""
    with LocalKafka() as kafka:
        run_sync(create_topics(kafka.bootstrap))
        yield kafka.bootstrap


async def test_sigkill_mid_stream_then_restart_leaves_the_count_exact(
    kafka_bootstrap: str, mongo_url: str, tmp_path: Path
) -> None:
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:8]}", "client-1"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        now = datetime.now(UTC)
        sends = []
        first_message = uuid.uuid4()
        for n in range(EVENTS):
            envelope = Envelope.wrap(
                MessageReceived(
                    conversation_id=uuid.uuid4(),
                    message_id=first_message if n == 0 else uuid.uuid4(),
                    sent_at=now,
                ),
                clinic_id=clinic_id,
                client_id=client_id,
                producer="test",
            )
            sends.append(await producer.send(envelope.topic, envelope.to_bytes(), key=envelope.key.encode()))
        # The marker: behind every message on the same topic and partition (same key).
        marker = Envelope.wrap(
            MessageRead(conversation_id=uuid.uuid4(), message_ids=[first_message], read_at=now),
            clinic_id=clinic_id,
            client_id=client_id,
            producer="test",
        )
        sends.append(await producer.send(marker.topic, marker.to_bytes(), key=marker.key.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    database = f"todo_crash_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": database,
        "TODO_BATCH_MAX_RECORDS": "50",
        "LOG_LEVEL": "WARNING",
    }
    client = make_client(mongo_url)
    parents = client[database]["parents"]

    async def unread() -> tuple[int, bool]:
        doc = await parents.find_one({"_id": f"{clinic_id}:{client_id}"}) or {}
        done = await client[database]["inbox"].find_one({"_id": str(marker.event_id)}) is not None
        return len(doc.get("unread_message_ids", ())), done

    log = tmp_path / "todo.log"
    first = serve(env, log)
    try:
        deadline = time.monotonic() + 60
        while (await unread())[0] == 0:
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "nothing applied"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = (await unread())[0]

        second = serve(env, log)
        try:
            deadline = time.monotonic() + 120
            while not (await unread())[1]:  # the marker is behind every message on the partition
                assert second.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"stuck at {await unread()}"
                await asyncio.sleep(0.1)
            final = (await unread())[0]
            inbox = await client[database]["inbox"].count_documents({})
            print(f"killed at {at_kill}; final {final}; inbox {inbox}")
            assert (final, inbox) == (EVENTS - 1, EVENTS + 1), log.read_text()[-5000:]
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
        await client.drop_database(database)
        await client.close()
    print(f"killed at {at_kill}/{EVENTS} applied")
