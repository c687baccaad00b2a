"""Every Pet Portal process started for real on loopback ports, for end-to-end tests.

The stack gets its own Kafka broker, its own databases on the test PostgreSQL server and its own
MongoDB database, so it never meets other tests' consumer groups or a developer's `make run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from petportal_runtime.devinfra import (
    LocalKafka,
    create_database,
    create_topics,
    database_url,
    drop_database,
    free_port,
)
from petportal_runtime.testing import run_sync

SERVICES = ("identity", "pets", "messaging", "todo", "sync", "notify", "gateway")
DB_SERVICES = ("identity", "pets", "messaging", "sync", "notify")
CLINIC_NUMBER = "+15005550006"


def wait_for(check: Callable[[], Any], *, timeout: float = 30, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout}s; last seen: {last!r}")


class Stack:
    def __init__(self, postgres_server_url: str, mongo_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.postgres_server_url = postgres_server_url
        self.suffix = uuid.uuid4().hex[:8]
        self.kafka = LocalKafka(log_file=self.logs / "kafka.log")
        self.ports = {svc: free_port() for svc in SERVICES}
        self.metrics_port = free_port()  # the gateway's
        self.databases = {svc: f"e2e_{self.suffix}_{svc}" for svc in DB_SERVICES}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.base_env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DEV_TOKEN_ENDPOINT_ENABLED": "true",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "MONGODB_URL": mongo_url,
            "MONGODB_DATABASE": f"e2e_{self.suffix}_todo",
            "DEV_KEY_DIR": str(workdir / "keys"),
            "PYTHONUNBUFFERED": "1",
            **{f"{svc.upper()}_URL": self.url(svc) for svc in SERVICES if svc != "gateway"},
        }
        self.base_env.pop("DATABASE_URL", None)
        self.base_env.pop("KAFKA_BOOTSTRAP_SERVERS", None)

    def url(self, svc: str) -> str:
        return f"http://127.0.0.1:{self.ports[svc]}"

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    def env(self, svc: str) -> dict[str, str]:
        env = {**self.base_env, "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap}
        if svc in self.databases:
            env["DATABASE_URL"] = database_url(self.postgres_server_url, self.databases[svc])
        if svc == "gateway":
            env["METRICS_PORT"] = str(self.metrics_port)
        return env

    def cli(self, svc: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", f"petportal_{svc}", *args],
            env=self.env(svc),
            capture_output=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"petportal_{svc} {args[0]} failed:\n{result.stderr.decode()[-3000:]}")
        return result.stdout.decode()

    def start(self) -> None:
        self.kafka.start()
        run_sync(create_topics(self.kafka.bootstrap))
        for name in self.databases.values():
            run_sync(create_database(self.postgres_server_url, name))
        for svc in DB_SERVICES:
            self.cli(svc, "migrate")
        for svc in SERVICES:
            self.serve(svc)
        for svc in SERVICES:
            self.wait_ready(svc)

    def serve(self, svc: str) -> None:
        log = (self.logs / f"{svc}.log").open("ab")
        self.procs[svc] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"petportal_{svc}",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[svc]),
            ],
            env=self.env(svc),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def wait_ready(self, svc: str, timeout: float = 60) -> None:
        def ready() -> bool:
            proc = self.procs[svc]
            if proc.poll() is not None:
                raise RuntimeError(f"{svc} exited ({proc.returncode}):\n{self.log_tail(svc)}")
            return httpx.get(f"{self.url(svc)}/readyz", timeout=2).status_code == 200

        wait_for(ready, timeout=timeout, what=f"{svc} ready")

    def kill(self, svc: str) -> None:
        proc = self.procs.pop(svc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def log_tail(self, svc: str, chars: int = 4000) -> str:
        path = self.logs / f"{svc}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        self.kafka.stop()
        for name in self.databases.values():
            run_sync(drop_database(self.postgres_server_url, name))

    # --- the demo clinic, through the same commands and APIs a real clinic uses ---------------------

    def create_clinic(self, clinic_id: str) -> str:
        out = self.cli(
            "sync",
            "create-clinic",
            "--clinic-id",
            clinic_id,
            "--name",
            "E2E Clinic",
            "--pims",
            "ezyvet",
            "--sms-number",
            CLINIC_NUMBER,
        )
        return str(json.loads(out.strip().splitlines()[-1])["api_key"])

    def create_staff(self, clinic_id: str, email: str, password: str) -> None:
        self.cli(
            "identity", "create-staff", "--clinic-id", clinic_id, "--email", email, "--password", password
        )
