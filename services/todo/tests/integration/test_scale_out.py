"""Two real `todo` replicas in one consumer group split the partitions; SIGKILL one mid-stream and
the other takes its partitions over, with every parent's To-Do list exact."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from petportal_devkit.devinfra import LocalKafka, create_topics, free_port
from petportal_devkit.supervisor import Child, Supervisor
from petportal_devkit.testing import run_sync
from petportal_schemas import Envelope, Event, MessageRead, MessageReceived, SmsOptedIn, SmsOptedOut, topics
from petportal_todo.adapters.mongo import MongoReadModel, make_client
from petportal_todo.bootstrap import SOURCE_TOPICS, group_id
from petportal_todo.service_layer.projection import parent_todo_list

pytestmark = pytest.mark.integration

PARTITIONS = 3  # what create_topics makes, as in `make run`
CLINIC = "clinic-scale"
PARENTS = [f"client-{n:02d}" for n in range(24)]
ROUND_EVERY = 0.1  # seconds between rounds; a round is ~1.6 events per parent
KILL_AFTER = 1000  # events produced before the kill
ALL_PARTITIONS = {(topic, p) for topic in SOURCE_TOPICS for p in range(PARTITIONS)}
TOPIC_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")

Assignment = set[tuple[str, int]]


@pytest.fixture
def kafka_bootstrap(tmp_path: Path) -> Iterator[str]:
    """A broker of its own: a fresh consumer group, and topics holding only this test's events."""
    with LocalKafka(log_file=tmp_path / "kafka.log") as kafka:
        run_sync(create_topics(kafka.bootstrap, partitions=PARTITIONS))
        yield kafka.bootstrap


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = Supervisor(say=print)
    try:
        yield supervisor
    finally:
        supervisor.stop_all(timeout=10)


def assignments(log: Path) -> list[Assignment]:
    """Every partition assignment a replica logged (FastStream logs each one), oldest first."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            message = str(json.loads(line).get("event", ""))
            if "assigned to partitions" in message:
                found.append({(t, int(p)) for t, p in TOPIC_PARTITION.findall(message)})
    return found


async def group_members(bootstrap: str) -> int:
    """How many members the broker counts in todo's consumer group (the local broker's group
    description leaves the assignments out, hence the logs above)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id()])
        (group,) = response.groups
        return len(group[5])  # (error_code, group, state, protocol_type, protocol, members)
    finally:
        await admin.close()


@dataclass
class Parent:
    client_id: str
    conversation: uuid.UUID = field(default_factory=uuid.uuid4)
    unread: list[uuid.UUID] = field(default_factory=list)
    opted_out: bool = False

    def expected(self) -> list[tuple[str, int | None]]:
        items: list[tuple[str, int | None]] = []
        if self.unread:
            items.append(("unread_messages", len(self.unread)))
        if self.opted_out:
            items.append(("sms_opt_in", None))
        return items


class Stream:
    """Rounds of events for every parent (a message each round; reads and SMS consent changes in
    between), keeping what each parent's To-Do list must end up as."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.parents = [Parent(client_id) for client_id in PARENTS]
        self.sent = 0
        self.partitions: dict[str, int] = {}  # client id -> partition (the same on every topic)
        self._clock = datetime.now(UTC)
        self._acks: list[asyncio.Future[Any]] = []

    def _now(self) -> datetime:
        # Strictly increasing: SMS consent is "latest instant wins".
        self._clock += timedelta(milliseconds=1)
        return self._clock

    async def _send(self, parent: Parent, event: Event) -> None:
        envelope = Envelope.wrap(
            event, clinic_id=CLINIC, client_id=parent.client_id, producer="test", occurred_at=self._now()
        )
        ack = await self.producer.send(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
        ack.add_done_callback(lambda f: self.partitions.setdefault(parent.client_id, f.result().partition))
        self._acks.append(ack)
        self.sent += 1

    async def round(self, n: int) -> None:
        for parent in self.parents:
            message = uuid.uuid4()
            await self._send(
                parent,
                MessageReceived(conversation_id=parent.conversation, message_id=message, sent_at=self._now()),
            )
            parent.unread.append(message)
            if n % 3 == 2:
                read, parent.unread = parent.unread[:2], parent.unread[2:]
                await self._send(
                    parent,
                    MessageRead(conversation_id=parent.conversation, message_ids=read, read_at=self._now()),
                )
            if n % 4 == 3:
                consent = SmsOptedIn if parent.opted_out else SmsOptedOut
                await self._send(parent, consent(source="sms_keyword"))
                parent.opted_out = not parent.opted_out

    async def run(self, stop: asyncio.Event) -> int:
        rounds = 0
        while not stop.is_set():
            await self.round(rounds)
            rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ROUND_EVERY)
        await asyncio.gather(*self._acks)
        return rounds


# Above the sum of the waits below (30 + 10 + 30 + 20 + 2 + 30 s); a run takes about 15 s.
@pytest.mark.timeout(150)
async def test_two_replicas_split_the_partitions_and_one_takes_over_when_the_other_is_killed(
    kafka_bootstrap: str, mongo_url: str, supervisor: Supervisor, tmp_path: Path
) -> None:
    started = time.monotonic()
    database = f"todo_scale_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": database,
        "TODO_BATCH_MAX_RECORDS": "50",  # many small transactions: the kill lands between some
        "LOG_LEVEL": "INFO",  # partition assignments are logged at INFO
        "PYTHONUNBUFFERED": "1",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("todo-a", "todo-b")}
    argv = [sys.executable, "-m", "petportal_todo", "serve", "--port"]
    replicas: dict[str, Child] = {
        name: supervisor.spawn(name, [*argv, str(free_port())], env=env, log_file=log)
        for name, log in logs.items()
    }
    read_model = MongoReadModel(make_client(mongo_url), database)

    async def until(what: str, within: float, check: Callable[[], Awaitable[Any]]) -> Any:
        deadline = time.monotonic() + within
        while True:
            for name, child in replicas.items():
                assert child.running, f"{name} exited:\n{logs[name].read_text()[-3000:]}"
            if result := await check():
                return result
            assert time.monotonic() < deadline, f"{what}: not within {within}s"
            await asyncio.sleep(0.1)

    async def split() -> dict[str, Assignment] | None:
        latest = {name: (assignments(log) or [set()])[-1] for name, log in logs.items()}
        a, b = latest.values()
        return latest if a and b and not a & b and a | b == ALL_PARTITIONS else None

    async def lists() -> dict[str, list[tuple[str, int | None]]]:
        todos = await asyncio.gather(*(parent_todo_list(read_model, CLINIC, c) for c in PARENTS))
        return {c: [(i.kind, i.count) for i in t.items] for c, t in zip(PARENTS, todos, strict=True)}

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    stream, stop = Stream(producer), asyncio.Event()
    producing: asyncio.Task[int] | None = None
    try:
        # 1. Both replicas in the group, the partitions split between them.
        owners: dict[str, Assignment] = await until("the replicas splitting the partitions", 30, split)
        assert await group_members(kafka_bootstrap) == 2
        print(f"split after {time.monotonic() - started:.1f}s:")
        for name, owned in owners.items():
            print(f"  {name}: {', '.join(f'{t}[{p}]' for t, p in sorted(owned))}")

        # 2. A steady stream for every parent, over every partition; both replicas apply their part.
        producing = asyncio.create_task(stream.run(stop))

        async def partitions_known() -> bool:
            return len(stream.partitions) == len(PARENTS)

        await until("every parent's partition known", 10, partitions_known)
        assert set(stream.partitions.values()) == set(range(PARTITIONS))  # on messaging and notify
        owner_of = {
            client: next(name for name, owned in owners.items() if (topics.MESSAGING, p) in owned)
            for client, p in stream.partitions.items()
        }

        async def both_applying() -> bool:
            applied = {owner_of[c] for c, items in (await lists()).items() if items}
            return stream.sent >= KILL_AFTER and applied == set(replicas)

        await until("both replicas applying events", 30, both_applying)

        # 3. SIGKILL one replica mid-stream; its partitions move to the other.
        victim, survivor = "todo-b", "todo-a"
        seen = len(assignments(logs[survivor]))
        child = replicas.pop(victim)
        assert child.proc is not None
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait(10)
        killed, sent_at_kill = time.monotonic(), stream.sent

        async def taken_over() -> bool:
            new = assignments(logs[survivor])[seen:]
            return bool(new) and new[-1] == ALL_PARTITIONS

        await until("the survivor owning every partition", 20, taken_over)
        took_over = time.monotonic()
        assert await group_members(kafka_bootstrap) == 1

        # 4. Keep producing a while after the takeover, then stop: every list ends exact.
        await asyncio.sleep(2)
        stop.set()
        rounds = await producing
        expected = {p.client_id: p.expected() for p in stream.parents}

        async def exact() -> bool:
            return await lists() == expected

        try:
            await until("every parent's To-Do list exact", 30, exact)
        except AssertionError:
            current = await lists()
            wrong = {c: (current[c], expected[c]) for c in PARENTS if current[c] != expected[c]}
            raise AssertionError(f"lists differ, (got, expected): {wrong}") from None
        assert await read_model.db["inbox"].count_documents({}) == stream.sent  # each event once
        print(
            f"{stream.sent} events in {rounds} rounds, {sent_at_kill} before the kill; the survivor "
            f"owned every partition {took_over - killed:.1f}s after the SIGKILL; lists exact "
            f"{time.monotonic() - took_over:.1f}s later; {time.monotonic() - started:.1f}s in all"
        )
    finally:
        stop.set()
        if producing is not None and not producing.done():
            producing.cancel()
        await producer.stop()
        await read_model.client.drop_database(database)
        await read_model.close()
