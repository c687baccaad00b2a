"""Each stateful dependency goes away under a steady load and comes back: requests fail fast with 503
while it is gone, nothing acknowledged is lost or applied twice, and everything recovers by itself.

The stack gets its own PostgreSQL, MongoDB and Kafka, so stopping them touches no other test.
PostgreSQL and MongoDB are stopped and started again (their data is on disk); the local Kafka keeps
nothing on disk, so it is frozen (SIGSTOP) and resumed, as a broker behind a broken network would be.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from petportal_devkit.devinfra import LocalMongo, LocalPostgres

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e

DEPENDENCY_TIMEOUT = 1.0  # seconds, given to every service
# A 503 must come within the services' bound (about twice the timeout for a stalled database), plus
# the gateway hop and slack for a loaded 2-core machine.
FAST = 2 * DEPENDENCY_TIMEOUT + 4
OUTAGE = 4.0  # seconds each dependency stays away
RECOVERY = 60.0


@dataclass
class Outcome:
    started: float
    status: int
    elapsed: float


@dataclass
class Load:
    """A steady stream of one kind of request, every `interval` seconds, until stopped."""

    send: Callable[[], httpx.Response]
    interval: float = 0.1
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = self.send().status_code
            except httpx.HTTPError:
                status = 0  # no answer at all
            self.outcomes.append(Outcome(started, status, time.monotonic() - started))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started <= end]


@pytest.fixture
def own_stack() -> Iterator[tuple[Stack, LocalPostgres, LocalMongo]]:
    workdir = Path(tempfile.mkdtemp(prefix="petportal-faults-"))
    postgres = LocalPostgres(workdir / "pg", durable=True).start()
    mongo = LocalMongo(workdir / "mongo", log_file=workdir / "logs" / "mongo.log").start()
    stack = Stack(postgres.server_url, mongo.url, workdir)
    stack.base_env["DEPENDENCY_TIMEOUT_SECONDS"] = str(DEPENDENCY_TIMEOUT)
    try:
        stack.start()
        yield stack, postgres, mongo
    finally:
        if stack.kafka.pid is not None:
            os.kill(stack.kafka.pid, signal.SIGCONT)
        stack.supervisor.stop_all(timeout=15)
        stack.kafka.stop()
        mongo.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(3 * (OUTAGE + RECOVERY) + 2 * RECOVERY + 60)
def test_postgres_mongodb_and_kafka_outages_answer_503_fast_lose_nothing_and_heal(
    own_stack: tuple[Stack, LocalPostgres, LocalMongo],
) -> None:
    stack, postgres, mongo = own_stack
    portal = Portal(stack, "faults-clinic")
    portal.push(contact("C-1", "+15005550181"))
    staff, parent = portal.staff_token(), portal.parent_token("C-1")
    staff_headers = {"authorization": f"Bearer {staff}"}
    parent_headers = {"authorization": f"Bearer {parent}"}
    bodies = iter(range(1_000_000))
    # One client per load: httpx clients are not shared across threads.
    writer_http = httpx.Client(base_url=stack.gateway, timeout=30)
    reader_http = httpx.Client(base_url=stack.gateway, timeout=30)
    writes = Load(
        lambda: writer_http.post(
            "/clinic/v1/clients/C-1/messages", json={"body": f"note {next(bodies)}"}, headers=staff_headers
        )
    )
    reads = Load(lambda: reader_http.get("/api/v1/todo", headers=parent_headers))
    writes.start()
    reads.start()
    outages: dict[str, tuple[float, float]] = {}

    def outage(name: str, stop: Callable[[], object], resume: Callable[[], object]) -> None:
        began = time.monotonic()
        stop()
        time.sleep(OUTAGE)
        resume()
        outages[name] = (began, time.monotonic())
        # Heals by itself: a write and a read succeed again, with no service restarted.
        wait_for(lambda: writes.outcomes[-1].status == 201, timeout=RECOVERY, what=f"writes after {name}")
        wait_for(lambda: reads.outcomes[-1].status == 200, timeout=RECOVERY, what=f"reads after {name}")

    try:
        wait_for(lambda: len(writes.outcomes) > 10 and len(reads.outcomes) > 10, what="the load running")
        outage("postgres", postgres.stop, postgres.start)
        outage("mongodb", mongo.stop, mongo.start)
        assert stack.kafka.pid is not None
        kafka_pid = stack.kafka.pid
        outage(
            "kafka", lambda: os.kill(kafka_pid, signal.SIGSTOP), lambda: os.kill(kafka_pid, signal.SIGCONT)
        )
    finally:
        writes.stop()
        reads.stop()

    everything = writes.outcomes + reads.outcomes
    odd = [
        (kind, round(o.started - writes.outcomes[0].started, 2), o.status)
        for kind, load in (("write", writes), ("read", reads))
        for o in load.outcomes
        if o.status not in (200, 201, 503)
    ]
    assert not odd, (
        odd,
        {k: [round(t - writes.outcomes[0].started, 2) for t in v] for k, v in outages.items()},
    )
    slow = [o for o in everything if o.status == 503 and o.elapsed > FAST]
    assert not slow, f"503s slower than {FAST}s: {[round(o.elapsed, 2) for o in slow]}"
    # Each outage was seen, and answered 503: writes need PostgreSQL, reads need MongoDB.
    pg_began, pg_ended = outages["postgres"]
    assert any(o.status == 503 for o in writes.between(pg_began, pg_ended))
    mongo_began, mongo_ended = outages["mongodb"]
    assert any(o.status == 503 for o in reads.between(mongo_began, mongo_ended))
    # A frozen broker stops no request: writes go to the outbox, reads to the read model.
    kafka_began, kafka_ended = outages["kafka"]
    assert all(o.status == 201 for o in writes.between(kafka_began + 0.5, kafka_ended - 0.5))

    # Nothing acknowledged is lost and nothing is counted twice: every 201 is one unread message.
    acknowledged = sum(o.status == 201 for o in writes.outcomes)
    assert acknowledged > 0

    def unread() -> int:
        items = portal.todo(parent)["items"]
        return next((int(i["count"]) for i in items if i["kind"] == "unread_messages"), 0)

    wait_for(lambda: unread() == acknowledged, timeout=RECOVERY, what=f"{acknowledged} unread messages")
    time.sleep(2)  # late duplicates would show now
    assert unread() == acknowledged
