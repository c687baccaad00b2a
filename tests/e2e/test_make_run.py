"""`make run` (devtools/run.py) on embedded infrastructure: seeds once, stops cleanly, keeps every list,
heals a crashed service, and leaves no process behind even when it is killed outright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from petportal_devkit.devinfra import free_port_offset
from petportal_devkit.supervisor import STACK_ID_VARIABLE, processes_of_stack, start_process
from petportal_runtime.catalog import SERVICES

from .stack import wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# The services, the gateway's metrics, Kafka, MongoDB and the delivery sinks (SMTP, the SMS API).
PORTS = (*(spec.port for spec in SERVICES), 9080, 19092, 27117, 1025, 8026)
READY_WITHIN = 150  # seconds; a restart takes about 10 s on an idle 2-core machine
STOP_WITHIN = 60


def _port_offset() -> int:
    return free_port_offset(PORTS)


class MakeRun:
    """devtools/run.py as a child of the test: it gets SIGTERM (and stops its stack) if the test dies."""

    def __init__(self, data_dir: Path, offset: int) -> None:
        self.data_dir, self.offset = data_dir, offset
        self.gateway = f"http://127.0.0.1:{8080 + offset}"
        self.stack_id = uuid.uuid4().hex
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL")
        }
        self.env[STACK_ID_VARIABLE] = self.stack_id
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        self.output = data_dir / "make-run.out"

    def start(self) -> None:
        with self.output.open("ab") as out:
            argv = [sys.executable, "devtools/run.py", "--data-dir", str(self.data_dir)]
            self.proc = start_process(
                [*argv, "--port-offset", str(self.offset)],
                env=self.env,
                stdout=out,
                cwd=REPO,
                death_signal=signal.SIGTERM,
            )
        self.wait_output("Pet Portal is running", self.output.read_text().count("Pet Portal is running") + 1)

    def wait_output(self, text: str, count: int, within: float = READY_WITHIN) -> None:
        def seen() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited:\n{self.tail()}")
            return self.output.read_text().count(text) >= count

        wait_for(seen, timeout=within, what=f"{text!r} x{count} in make run's output")

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it to the whole process group."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(STOP_WITHIN)

    def ensure_gone(self) -> None:
        """Finalizer: SIGTERM (run.py stops its stack), then SIGKILL; every child dies with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _parent_token(http: httpx.Client) -> str:
    response = http.post("/api/v1/auth/dev-token", json={"clinic_id": "demo-clinic", "client_id": "C-1001"})
    return str(response.json()["access_token"])


@pytest.mark.timeout(3 * READY_WITHIN + 2 * STOP_WITHIN + 120)
def test_make_run_seeds_the_demo_once_and_a_restart_keeps_every_list(tmp_path: Path) -> None:
    run = MakeRun(tmp_path / "data", _port_offset())
    http = httpx.Client(base_url=run.gateway, timeout=10)
    try:
        run.start()
        demo = json.loads((tmp_path / "data" / "demo.json").read_text())
        staff = http.post(
            "/clinic/v1/auth/token", json={"email": demo["staff_email"], "password": demo["staff_password"]}
        ).json()
        sent = http.post(
            "/clinic/v1/clients/C-1001/messages",
            json={"body": "Hello from the clinic"},
            headers={"authorization": f"Bearer {staff['access_token']}"},
        )
        assert sent.status_code == 201, (sent.text, run.tail())

        def todo() -> dict[str, object]:
            headers = {"authorization": f"Bearer {_parent_token(http)}"}
            return dict(http.get("/api/v1/todo", headers=headers).json())

        before = wait_for(lambda: (t := todo())["badge"] == 2 and t, what="demo list with the message")
        titles = sorted(item["title"] for item in before["items"])  # type: ignore[attr-defined]
        assert titles == ["Add a Care Member", "You have 1 unread message"]
        assert run.stop() == 0, run.tail()

        run.start()  # the broker kept nothing: every outbox is replayed, inboxes drop the repeats
        assert wait_for(lambda: todo() == before, what="the same list after a restart")
        pets = http.get("/api/v1/pets", headers={"authorization": f"Bearer {_parent_token(http)}"}).json()
        assert [p["name"] for p in pets["pets"]] == ["Biscuit", "Mochi"]

        # A service killed outright is restarted by make run, and the counts stay exact.
        todo_pids = [
            pid
            for pid in processes_of_stack(run.stack_id)
            if b"petportal_todo\0serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(todo_pids) == 1, todo_pids
        os.kill(todo_pids[0], signal.SIGKILL)
        run.wait_output("todo restarted", 1, within=60)
        assert wait_for(lambda: todo() == before, timeout=READY_WITHIN, what="the same list after the crash")

        assert run.stop() == 0, run.tail()
        out = run.output.read_text()
        assert out.count("demo clinic created") == 1  # seeded once
        assert out.count("[run] stopped") == 2
        assert out.count("[run] started: infrastructure") == 2  # the phase timings
    finally:
        run.ensure_gone()
    assert wait_for(lambda: not processes_of_stack(run.stack_id), timeout=30, what="no process left")


@pytest.mark.timeout(READY_WITHIN + 120)
def test_make_run_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    """As when a test runner's timeout kills it: no chance to clean up, and still nothing survives."""
    run = MakeRun(tmp_path / "data", _port_offset())
    try:
        run.start()
        started = processes_of_stack(run.stack_id)
        # run.py, seven services, Tansu, nx-27017 and PostgreSQL (with its own helper processes).
        assert len(started) >= 11, started
        assert run.proc is not None
        run.proc.kill()
        run.proc.wait(10)
        deadline = time.monotonic() + 30
        while (left := processes_of_stack(run.stack_id)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
    finally:
        run.ensure_gone()
