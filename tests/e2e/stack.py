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
from pathlib import Path
from typing import Any

import httpx

from petportal_devkit import prepare
from petportal_devkit.devinfra import (
    LocalKafka,
    create_database,
    create_topics,
    database_url,
    drop_database,
    free_port,
)
from petportal_devkit.supervisor import Supervisor
from petportal_devkit.testing import run_sync, wait_for
from petportal_runtime.catalog import BY_NAME, CONSUMERS_STARTED, DATABASE_SERVICES, SERVICES

CLINIC_NUMBER = "+15005550006"
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"  # built by `make test` (make web)


class Stack:
    def __init__(self, postgres_server_url: str, mongo_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.postgres_server_url = postgres_server_url
        self.suffix = uuid.uuid4().hex[:8]
        self.kafka = LocalKafka(log_file=self.logs / "kafka.log")
        self.ports = {spec.name: free_port() for spec in SERVICES}
        self.metrics_port = free_port()  # the gateway's
        self.smtp_port, self.sms_api_port = free_port(), free_port()  # the delivery sinks
        self.databases = {spec.name: f"e2e_{self.suffix}_{spec.name}" for spec in DATABASE_SERVICES}
        self.supervisor = Supervisor()
        self.base_env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DEV_TOKEN_ENDPOINT_ENABLED": "true",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            # Every test of the session polls through one gateway from one address: its per-IP limit
            # (tested on its own in the gateway's tests) would otherwise answer 429 to later tests.
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "MONGODB_URL": mongo_url,
            "SMTP_PORT": str(self.smtp_port),
            # A burst of staff messages within 3 s is one notification (60 s by default).
            "NOTIFICATION_BATCH_SECONDS": "3",
            "TWILIO_API_BASE": f"http://127.0.0.1:{self.sms_api_port}",
            "MONGODB_DATABASE": f"e2e_{self.suffix}_todo",
            "DEV_KEY_DIR": str(workdir / "keys"),
            "PYTHONUNBUFFERED": "1",
            **{spec.url_variable: self.url(spec.name) for spec in SERVICES if spec.name != "gateway"},
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
            if WEB_DIST.joinpath("index.html").is_file():
                env["WEB_DIR"] = str(WEB_DIST)
        return self.supervisor.tagged(env)

    def cli(self, svc: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", f"petportal_{svc}", *args],
            env=self.env(svc),
            capture_output=True,
            timeout=90,
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
        run_sync(
            prepare.migrate_all(
                {
                    spec: database_url(self.postgres_server_url, self.databases[spec.name])
                    for spec in DATABASE_SERVICES
                }
            )
        )
        self.supervisor.spawn(
            "sinks",
            [
                sys.executable,
                "-m",
                "petportal_devkit.sinks",
                "--data-dir",
                str(self.workdir / "sinks"),
                "--smtp-port",
                str(self.smtp_port),
                "--sms-port",
                str(self.sms_api_port),
            ],
            env=self.supervisor.tagged(self.base_env),
            log_file=self.logs / "sinks.log",
        )
        for spec in SERVICES:
            self.serve(spec.name)
        deadline = time.monotonic() + 90
        for spec in SERVICES:
            self.wait_ready(spec.name, timeout=max(1.0, deadline - time.monotonic()))

    def serve(self, svc: str) -> None:
        """Start one service (no restarts: tests kill services on purpose)."""
        argv = [sys.executable, "-m", f"petportal_{svc}", "serve", "--host", "127.0.0.1"]
        self.supervisor.spawn(
            svc, [*argv, "--port", str(self.ports[svc])], env=self.env(svc), log_file=self.logs / f"{svc}.log"
        )

    def wait_ready(self, svc: str, timeout: float = 60) -> None:
        def ready() -> bool:
            child = self.supervisor.children[svc]
            if not child.running:
                code = child.proc.returncode if child.proc else None
                raise RuntimeError(f"{svc} exited ({code}):\n{self.log_tail(svc)}")
            return httpx.get(f"{self.url(svc)}/readyz", timeout=2).status_code == 200

        deadline = time.monotonic() + timeout
        wait_for(ready, timeout=timeout, what=f"{svc} ready")
        if BY_NAME[svc].consumes:
            # A service is ready before its consumers have joined their groups; the tests publish and
            # then wait for what they published, some through rate-limited endpoints.
            child = self.supervisor.children[svc]
            wait_for(
                lambda: child.logged(CONSUMERS_STARTED),
                timeout=max(1.0, deadline - time.monotonic()),
                what=f"{svc} consumers started",
            )

    def kill(self, svc: str) -> None:
        child = self.supervisor.children.pop(svc)
        assert child.proc is not None
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait(10)

    def mail(self) -> list[Any]:
        """Every mail the SMTP sink took, oldest first."""
        from petportal_devkit.sinks import DevMailbox

        path = self.workdir / "sinks" / "mail"
        return DevMailbox.read(path) if path.exists() else []

    def texts(self) -> list[dict[str, Any]]:
        """Every text the SMS sink took, oldest first."""
        path = self.workdir / "sinks" / "sms.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log_tail(self, svc: str, chars: int = 4000) -> str:
        path = self.logs / f"{svc}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        self.supervisor.stop_all(timeout=15)
        self.kafka.stop()
        for name in self.databases.values():
            run_sync(drop_database(self.postgres_server_url, name))

    # --- the demo clinic, through the same commands and APIs a real clinic uses ---------------------

    def create_clinic(
        self, clinic_id: str, sms_number: str = CLINIC_NUMBER, pims: str = "ezyvet", timezone: str = "UTC"
    ) -> str:
        out = self.cli(
            "sync",
            "create-clinic",
            "--clinic-id",
            clinic_id,
            "--name",
            "E2E Clinic",
            "--pims",
            pims,
            "--sms-number",
            sms_number,
            "--timezone",
            timezone,
        )
        return str(json.loads(out.strip().splitlines()[-1])["api_key"])

    def create_staff(self, clinic_id: str, email: str, password: str) -> None:
        self.cli(
            "identity", "create-staff", "--clinic-id", clinic_id, "--email", email, "--password", password
        )


PASSWORD = "correct horse battery staple"


class Portal:
    """What the portal front end, clinic staff, a PIMS connector and the SMS provider send to the gateway."""

    def __init__(
        self,
        stack: Stack,
        clinic_id: str,
        sms_number: str = CLINIC_NUMBER,
        pims: str = "ezyvet",
        timezone: str = "UTC",
    ) -> None:
        self.http = httpx.Client(base_url=stack.gateway, timeout=10)
        self.clinic_id = clinic_id
        self.sms_number = sms_number
        self.api_key = stack.create_clinic(clinic_id, sms_number, pims, timezone)
        self.staff_email = f"staff@{clinic_id}.example"
        stack.create_staff(clinic_id, self.staff_email, PASSWORD)

    def push(self, *records: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            "/pims/v1/records",
            json={"pims": "ezyvet", "records": list(records)},
            headers={"authorization": f"Bearer {self.api_key}"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def staff_token(self) -> str:
        response = self.http.post(
            "/clinic/v1/auth/token", json={"email": self.staff_email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def parent_token(self, client_id: str) -> str:
        def issue() -> str | None:
            response = self.http.post(
                "/api/v1/auth/dev-token", json={"clinic_id": self.clinic_id, "client_id": client_id}
            )
            return response.json()["access_token"] if response.status_code == 200 else None

        # identity learns the contact from the ClientUpserted event sync published.
        return str(wait_for(issue, what=f"a token for {client_id}"))

    def send_message(self, staff: str, client_id: str, body: str) -> httpx.Response:
        return self.http.post(
            f"/clinic/v1/clients/{client_id}/messages",
            json={"body": body},
            headers={"authorization": f"Bearer {staff}"},
        )

    def todo(self, parent: str) -> dict[str, Any]:
        """The parent's To-Do list (badge and items; the Get Help Now options it carries are checked
        for their shape and left out)."""
        response = self.http.get("/api/v1/todo", headers={"authorization": f"Bearer {parent}"})
        assert response.status_code == 200, response.text
        body = dict(response.json())
        assert set(body.pop("help")) == {"live_chat", "booking_mode"}
        return body

    def wait_todo(self, parent: str, expected: list[tuple[str, str]], what: str) -> dict[str, Any]:
        """Poll until the list holds exactly `expected` (kind, title) items, and check the badge."""

        def matches() -> dict[str, Any] | None:
            todo = self.todo(parent)
            items = sorted((i["kind"], i["title"]) for i in todo["items"])
            return todo if items == sorted(expected) else None

        todo: dict[str, Any] = wait_for(matches, what=what)
        assert todo["badge"] == len(expected)
        return todo

    def text(self, phone: str, body: str) -> httpx.Response:
        return self.http.post(
            "/webhooks/sms/inbound", data={"From": phone, "To": self.sms_number, "Body": body}
        )


def contact(client_id: str, phone: str) -> dict[str, Any]:
    return {
        "kind": "contact",
        "client_id": client_id,
        "first_name": "Alex",
        "last_name": "Rivera",
        "email": f"{client_id.lower()}@example.com",
        "phone": phone,
    }


CARE_PLAN = {
    "kind": "program",
    "program_code": "care-plan",
    "name": "Care Plan",
    "call_to_action": "Add a Care Member",
    "offered": True,
}
