"""`make run` (devtools/run.py) on embedded infrastructure: seeds once, stops cleanly, keeps every list."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .stack import wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PORTS = (8080, 8081, 8082, 8083, 8084, 8085, 8086, 9080, 19092, 27117)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _port_offset() -> int:
    for _ in range(50):
        offset = random.randrange(20_000, 30_000, 10)
        if all(_free(port + offset) for port in PORTS):
            return offset
    raise RuntimeError("no free block of ports")


class MakeRun:
    def __init__(self, data_dir: Path, offset: int) -> None:
        self.data_dir, self.offset = data_dir, offset
        self.gateway = f"http://127.0.0.1:{8080 + offset}"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL")
        }
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        self.output = data_dir / "make-run.out"

    def start(self) -> None:
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "devtools/run.py",
                    "--data-dir",
                    str(self.data_dir),
                    "--port-offset",
                    str(self.offset),
                ],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        marker = self.output.read_text().count("Pet Portal is running") + 1

        def running() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited:\n{self.output.read_text()[-4000:]}")
            return self.output.read_text().count("Pet Portal is running") >= marker

        wait_for(running, timeout=240, what="make run ready")

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it to the whole process group."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(90)


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
            token = http.post(
                "/api/v1/auth/dev-token", json={"clinic_id": "demo-clinic", "client_id": "C-1001"}
            ).json()["access_token"]
            return dict(http.get("/api/v1/todo", headers={"authorization": f"Bearer {token}"}).json())

        before = wait_for(lambda: (t := todo())["badge"] == 2 and t, what="demo list with the message")
        titles = sorted(item["title"] for item in before["items"])  # type: ignore[attr-defined]
        assert titles == ["Add a Care Member", "You have 1 unread message"]
        assert run.stop() == 0, run.tail()

        run.start()  # the broker kept nothing: every outbox is replayed, inboxes drop the repeats
        assert wait_for(lambda: todo() == before, what="the same list after a restart")
        pets = http.get(
            "/api/v1/pets",
            headers={
                "authorization": "Bearer "
                + http.post(
                    "/api/v1/auth/dev-token", json={"clinic_id": "demo-clinic", "client_id": "C-1001"}
                ).json()["access_token"]
            },
        ).json()
        assert [p["name"] for p in pets["pets"]] == ["Biscuit", "Mochi"]
        assert run.stop() == 0, run.tail()
        out = run.output.read_text()
        assert out.count("demo clinic created") == 1  # seeded once
        assert out.count("[run] stopped") == 2
    finally:
        if run.proc is not None and run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
