"""`make run`: the whole Pet Portal on this machine, with embedded infrastructure and a demo clinic.

1. Infrastructure, unless given by the environment: Kafka (Tansu, memory-only) on :19092 unless
   KAFKA_BOOTSTRAP_SERVERS is set; PostgreSQL with its data in `.data/pg` unless DATABASE_URL is set (then
   it names a server on which the `petportal_<svc>` databases are created); MongoDB (nx-27017) on :27117
   with its data in `.data/mongo` unless MONGODB_URL is set.
2. Topics and databases are created if missing; every database is migrated and, with the memory-only
   broker, every service's outbox is replayed so a restart loses nothing (both in this process).
3. Every service is served on its port (docs/architecture.md); logs go to `.data/logs/<svc>.log`. A
   service that crashes is restarted with backoff; one that keeps crashing stops the whole run. Beside
   them, the local delivery sinks: a real SMTP server on :1025 keeping every mail in `.data/dev/mail`
   (a Maildir) and a server speaking Twilio's Messages API on :8026 keeping every text in
   `.data/dev/sms.jsonl`; notify sends to them.
4. Once all `/readyz` answer 200, the demo clinic is seeded once (state in `.data/demo.json`).
5. How long each phase took is printed, so a slow start is visible.

Ctrl-C stops the services, then MongoDB, Kafka and PostgreSQL; the next `make run` keeps all data.
`--infra-only` stops after step 1 (plus topics and databases) and waits for Ctrl-C.
`--rebuild-todo` drops the To-Do projection and rebuilds it from the topics (after the replay) before
the services start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import shlex
import signal
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx

from petportal_devkit import devinfra, prepare
from petportal_devkit.supervisor import STACK_ID_VARIABLE, GaveUp, RestartPolicy, Supervisor
from petportal_runtime.catalog import CONSUMERS_STARTED, DATABASE_SERVICES, SERVICES, ServiceSpec

REPO = Path(__file__).resolve().parents[1]

HOST = "127.0.0.1"
RUN_HEADER = "===== make run"
# The gateway serves /metrics on a port of its own (its API port is public).
GATEWAY_METRICS_PORT = 9080
KAFKA_PORT = 19092
MONGO_PORT = 27117
# The local delivery sinks (petportal_devkit.sinks): notify's SMTP server and Twilio API outside production.
SMTP_PORT = 1025
SMS_API_PORT = 8026

CLINIC_ID = "demo-clinic"
CLIENT_ID = "C-1001"
STAFF_EMAIL = "staff@demo-clinic.example"
CLINIC_SMS_NUMBER = "+15005550006"
DEMO_EMAIL = "alex@example.com"
PARENT_PHONE = "+15005550100"
DEMO_RECORDS: dict[str, Any] = {
    "pims": "ezyvet",
    "records": [
        {
            "kind": "contact",
            "client_id": CLIENT_ID,
            "first_name": "Alex",
            "last_name": "Rivera",
            "email": "alex@example.com",
            "phone": PARENT_PHONE,
        },
        {
            "kind": "patient",
            "client_id": CLIENT_ID,
            "patient_id": "P-1",
            "name": "Biscuit",
            "species": "dog",
            "breed": "Beagle",
            "sex": "male neutered",
            "date_of_birth": "2019-04-02",
            "colour": "tricolour",
            "weight_kg": 11.2,
            "microchip": "985112345678901",
        },
        {
            "kind": "patient",
            "client_id": CLIENT_ID,
            "patient_id": "P-2",
            "name": "Mochi",
            "species": "cat",
            "breed": "Domestic shorthair",
            "sex": "female spayed",
            "date_of_birth": "2021-08-15",
            "colour": "grey",
            "weight_kg": 4.1,
        },
        {
            "kind": "program",
            "program_code": "care-plan",
            "name": "Care Plan",
            "call_to_action": "Add a Care Member",
            "offered": True,
        },
    ],
}


class RunError(Exception):
    """A step failed; the message says which and where to look."""


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def walkthrough(demo: Mapping[str, Any], gateway: str) -> str:
    """What to try once everything is up (printed after seeding)."""
    g = gateway
    staff = json.dumps({"email": STAFF_EMAIL, "password": demo.get("staff_password", "<password>")})
    parent = json.dumps({"clinic_id": CLINIC_ID, "client_id": CLIENT_ID})
    token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    last_message = 'python3 -c \'import json,sys; print(json.load(sys.stdin)["messages"][-1]["message_id"])\''
    json_h = "-H 'content-type: application/json'"
    return f"""
Pet Portal is running: open {g} in a browser (sign in with {DEMO_EMAIL} or {PARENT_PHONE};
the code arrives in .data/dev/mail or .data/dev/sms.jsonl). OpenAPI of each service: http://{HOST}:<port>/docs
Demo clinic {CLINIC_ID} (texts from {CLINIC_SMS_NUMBER}):
  staff   {STAFF_EMAIL} / {demo.get("staff_password", "?")}
  parent  {CLIENT_ID} Alex Rivera, {PARENT_PHONE}
Logs: .data/logs/<service>.log · demo credentials: .data/demo.json · Ctrl-C stops everything.
Sent mail: .data/dev/mail (a Maildir: `mutt -f .data/dev/mail`) · sent texts: .data/dev/sms.jsonl

Try it:

  # a clinic staff token
  STAFF=$(curl -s -X POST {g}/clinic/v1/auth/token {json_h} -d {shlex.quote(staff)} | {token})

  # staff sends the parent a message
  curl -s -w '\\n' -X POST {g}/clinic/v1/clients/{CLIENT_ID}/messages -H "authorization: Bearer $STAFF" \\
       {json_h} -d '{{"body": "Biscuit is due for his booster - reply to book a time."}}'

  # a parent token (development only), then the parent's to-do list and conversation
  PARENT=$(curl -s -X POST {g}/api/v1/auth/dev-token {json_h} -d {shlex.quote(parent)} | {token})
  curl -s -w '\\n' {g}/api/v1/todo -H "authorization: Bearer $PARENT"
  curl -s -w '\\n' {g}/api/v1/conversation -H "authorization: Bearer $PARENT"
  curl -s -w '\\n' {g}/api/v1/pets -H "authorization: Bearer $PARENT"

  # viewing changes nothing; reading up to the newest message clears the unread item
  LAST=$(curl -s {g}/api/v1/conversation -H "authorization: Bearer $PARENT" | {last_message})
  curl -s -w '\\n' -X POST {g}/api/v1/conversation/read -H "authorization: Bearer $PARENT" \\
       {json_h} -d "{{\\"up_to\\":\\"$LAST\\"}}"

  # the parent texts STOP to the clinic's number; staff sees the opt-out
  curl -s -w '\\n' -X POST {g}/webhooks/sms/inbound --data-urlencode From={PARENT_PHONE} \\
       --data-urlencode To={CLINIC_SMS_NUMBER} --data-urlencode Body=STOP
  curl -s -w '\\n' {g}/clinic/v1/clients/{CLIENT_ID}/sms-status -H "authorization: Bearer $STAFF"
"""


def _port_busy(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join("    " + line for line in devinfra.tail(path, lines).splitlines())


class Phases:
    """Wall-clock time of each start-up phase, printed once the portal is up."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._mark = self.started
        self.took: dict[str, float] = {}

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.took[phase] = now - self._mark
        self._mark = now

    def summary(self) -> str:
        parts = [f"{phase} {seconds:.1f}s" for phase, seconds in self.took.items()]
        return " · ".join([*parts, f"total {time.monotonic() - self.started:.1f}s"])


class Orchestrator:
    def __init__(self, data_dir: Path, ready_timeout: float, port_offset: int = 0) -> None:
        # An offset moves every port at once, so a second stack (a test, a demo) can run beside one.
        self.ports = {spec.name: spec.port + port_offset for spec in SERVICES}
        self.kafka_port = KAFKA_PORT + port_offset
        self.mongo_port = MONGO_PORT + port_offset
        self.gateway = f"http://{HOST}:{self.ports['gateway']}"
        self.metrics_port = GATEWAY_METRICS_PORT + port_offset
        self.smtp_port = SMTP_PORT + port_offset
        self.sms_api_port = SMS_API_PORT + port_offset
        self.data = data_dir
        self.logs = data_dir / "logs"
        self.ready_timeout = ready_timeout
        self.kafka: devinfra.LocalKafka | None = None
        self.postgres: devinfra.LocalPostgres | None = None
        self.mongo: devinfra.LocalMongo | None = None
        # A caller (a test) may name the stack, to find every process of it afterwards.
        self.supervisor = Supervisor(stack_id=os.environ.get(STACK_ID_VARIABLE), say=say)
        self.log_files: dict[str, IO[bytes]] = {}
        self.env: dict[str, dict[str, str]] = {}
        self.database_urls: dict[ServiceSpec, str] = {}
        self.bootstrap = ""
        self.phases = Phases()

    # --- infrastructure ----------------------------------------------------------------------------

    async def start_infra(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            self.kafka = devinfra.LocalKafka(
                self.kafka_port, log_file=self.logs / "kafka.log", pid_file=self.data / "kafka.pid"
            )
            self.kafka.start()
            bootstrap = self.kafka.bootstrap
            say(f"kafka (tansu, memory-only) on {bootstrap}")
        else:
            say(f"kafka: using KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
        self.bootstrap = bootstrap

        server_url = os.environ.get("DATABASE_URL")
        if not server_url:
            self.postgres = devinfra.LocalPostgres(self.data / "pg")
            self.postgres.start()
            server_url = self.postgres.server_url
            say(f"postgres {server_url} (data in {self.postgres.datadir})")
        else:
            say("postgres: using the server named by DATABASE_URL")

        mongo_url = os.environ.get("MONGODB_URL")
        if not mongo_url:
            self.mongo = devinfra.LocalMongo(
                self.data / "mongo", self.mongo_port, log_file=self.logs / "mongo.log"
            )
            self.mongo.start()
            mongo_url = self.mongo.url
            say(f"mongodb (nx-27017) on {mongo_url} (data in {self.mongo.datadir})")
        else:
            say(f"mongodb: using MONGODB_URL={mongo_url}")

        created, databases = await asyncio.gather(
            devinfra.create_topics(bootstrap),
            asyncio.gather(
                *(devinfra.create_database(server_url, spec.database_name) for spec in DATABASE_SERVICES)
            ),
        )
        say(f"topics ready ({len(created)} created)")
        for spec, new in zip(DATABASE_SERVICES, databases, strict=True):
            if new:
                say(f"created database {spec.database_name}")

        common = {
            **os.environ,
            "ENVIRONMENT": "development",
            "DEV_TOKEN_ENDPOINT_ENABLED": "true",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MONGODB_URL": mongo_url,
            "PYTHONUNBUFFERED": "1",
            **{
                spec.url_variable: f"http://{HOST}:{self.ports[spec.name]}"
                for spec in SERVICES
                if spec.name != "gateway"
            },
        }
        common.pop("DATABASE_URL", None)
        common["SMTP_PORT"] = str(self.smtp_port)
        common["TWILIO_API_BASE"] = f"http://{HOST}:{self.sms_api_port}"
        common["PUBLIC_BASE_URL"] = self.gateway
        if self.local_broker:
            # Tansu makes a consumer wait half the session timeout to join its group; 6 s keeps
            # start-up short without risking spurious rebalances on a busy laptop.
            common.setdefault("KAFKA_SESSION_TIMEOUT_MS", "6000")
        self.env = {spec.name: self.supervisor.tagged(common) for spec in SERVICES}
        for spec in DATABASE_SERVICES:
            url = devinfra.database_url(server_url, spec.database_name)
            self.env[spec.name]["DATABASE_URL"] = url
            self.database_urls[spec] = url
        self.env["gateway"]["METRICS_PORT"] = str(self.metrics_port)
        # The web portal, built by `make run` (make web): served by the gateway at /.
        if (REPO / "web" / "dist" / "index.html").is_file():
            self.env["gateway"]["WEB_DIR"] = str(REPO / "web" / "dist")
        self.phases.done("infrastructure")

    @property
    def local_broker(self) -> bool:
        return self.kafka is not None

    def print_infra_env(self) -> None:
        print("\nInfrastructure is up. Environment for running a service by hand:\n")
        env = self.env["identity"]
        for key in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL"):
            print(f"  export {key}={shlex.quote(env[key])}")
        for spec in DATABASE_SERVICES:
            print(f"  DATABASE_URL={shlex.quote(self.env[spec.name]['DATABASE_URL'])}  # {spec.name}")
        print("\nCtrl-C stops it.", flush=True)

    # --- migrations and replays (in this process) ----------------------------------------------------

    async def migrate(self) -> None:
        took = await prepare.migrate_all(self.database_urls)
        say("databases migrated: " + ", ".join(f"{svc} {t:.1f}s" for svc, t in took.items()))
        self.phases.done("migrations")

    async def replay(self) -> None:
        """The memory-only broker starts empty: republish every outbox (consumers skip what they applied)."""
        counts = await prepare.replay_all(self.database_urls, self.bootstrap)
        say("outboxes replayed: " + ", ".join(f"{svc} {n}" for svc, n in counts.items()))
        self.phases.done("replay")

    # --- service processes --------------------------------------------------------------------------

    def _log(self, svc: str) -> IO[bytes]:
        if svc not in self.log_files:
            fh = (self.logs / f"{svc}.log").open("ab")
            fh.write(f"\n{RUN_HEADER} {datetime.now(UTC).isoformat(timespec='seconds')} =====\n".encode())
            fh.flush()
            self.log_files[svc] = fh
        return self.log_files[svc]

    async def command(self, svc: str, *args: str, secret: bool = False, stdin: str | None = None) -> str:
        """Run `python -m petportal_<svc> ARGS` to completion and return its stdout.

        Output goes to the service's log (stdout only unless `secret`); `stdin` is written to it.
        """
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"petportal_{svc}",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env[svc],
            cwd=REPO,
            start_new_session=True,
        )
        try:
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        log = self._log(svc)
        log.write(f"$ python -m petportal_{svc} {args[0]} …\n".encode() + (b"" if secret else out) + err)
        log.flush()
        if proc.returncode != 0:
            stderr = err.decode(errors="replace")
            tail = "\n".join("    " + line for line in stderr.splitlines()[-25:])
            raise RunError(f"`python -m petportal_{svc} {args[0]}` failed ({proc.returncode}):\n{tail}")
        return out.decode(errors="replace")

    def check_installed(self) -> None:
        missing = [spec.package for spec in SERVICES if importlib.util.find_spec(spec.package) is None]
        if missing:
            raise RunError(f"not installed: {', '.join(missing)} (run `make venv`)")

    def serve(self) -> None:
        ports = {
            **self.ports,
            "gateway metrics": self.metrics_port,
            "smtp sink": self.smtp_port,
            "sms sink": self.sms_api_port,
        }
        busy = [f"{svc}:{port}" for svc, port in ports.items() if _port_busy(port)]
        if busy:
            raise RunError(f"ports already in use: {', '.join(busy)} (another `make run`?)")
        self._log("sinks").flush()
        self.supervisor.spawn(
            "sinks",
            [
                sys.executable,
                "-m",
                "petportal_devkit.sinks",
                "--data-dir",
                str(self.data / "dev"),
                "--smtp-port",
                str(self.smtp_port),
                "--sms-port",
                str(self.sms_api_port),
            ],
            env=self.supervisor.tagged({**os.environ, "PYTHONUNBUFFERED": "1"}),
            log_file=self.logs / "sinks.log",
            cwd=REPO,
            restart=RestartPolicy(),
        )
        for svc, port in self.ports.items():
            self._log(svc).flush()
            self.supervisor.spawn(
                svc,
                [sys.executable, "-m", f"petportal_{svc}", "serve", "--host", HOST, "--port", str(port)],
                env=self.env[svc],
                log_file=self.logs / f"{svc}.log",
                cwd=REPO,
                restart=RestartPolicy(),
            )
        say("services started: " + ", ".join(f"{svc} :{port}" for svc, port in self.ports.items()))

    async def wait_ready(self) -> None:
        pending = dict(self.ports)
        deadline = time.monotonic() + self.ready_timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for svc, port in list(pending.items()):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"http://{HOST}:{port}/readyz")).status_code == 200:
                            del pending[svc]
                if pending and time.monotonic() > deadline:
                    raise RunError(
                        f"not ready after {self.ready_timeout:.0f}s: {', '.join(pending)} (see .data/logs/)"
                    )
                await asyncio.sleep(0.1)
        # Ready is before a service's consumers have joined their groups (they join in the
        # background); the demo's records and the walkthrough need them consuming.
        joining = [spec.name for spec in SERVICES if spec.consumes and spec.name in self.ports]
        while joining:
            joining = [svc for svc in joining if not self.supervisor.children[svc].logged(CONSUMERS_STARTED)]
            if joining and time.monotonic() > deadline:
                raise RunError(f"consumers not started after {self.ready_timeout:.0f}s: {', '.join(joining)}")
            await asyncio.sleep(0.1)
        say("all services ready")
        self.phases.done("services")

    async def supervise(self) -> None:
        """Restart crashed services (with backoff) until one crash-loops; then raise RunError."""
        try:
            await self.supervisor.watch()
        except GaveUp as exc:
            svc = str(exc).split(" ", 1)[0]
            tail = _tail(self.logs / f"{svc}.log")
            raise RunError(f"{exc}; .data/logs/{svc}.log ends with:\n{tail}") from exc

    async def scheduled(self, interval: float = 3600) -> None:
        """What the chart's CronJobs do in production, on a timer here: the PIMS reconciliation (it
        applies complete snapshots of clinics in their nightly hour) every hour."""
        while True:
            await asyncio.sleep(interval)
            try:
                out = (await self.command("sync", "reconcile")).strip()
            except RunError as exc:
                say(f"scheduled reconcile failed: {exc}")
                continue
            if out:
                say(f"reconcile: {out}")

    # --- demo seed ----------------------------------------------------------------------------------

    def _save_demo(self, demo: Mapping[str, Any]) -> None:
        path = self.data / "demo.json"
        path.write_text(json.dumps(demo, indent=2) + "\n")
        path.chmod(0o600)

    async def seed_accounts(self) -> dict[str, Any]:
        """The demo clinic and its staff user, each once; run while the services start (both use the
        databases only)."""
        path = self.data / "demo.json"
        demo: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

        def save() -> None:
            self._save_demo(demo)

        async def clinic() -> None:
            if "api_key" in demo:
                return
            out = await self.command(
                "sync",
                "create-clinic",
                "--clinic-id",
                CLINIC_ID,
                "--name",
                "Demo Veterinary Clinic",
                "--pims",
                "ezyvet",
                "--sms-number",
                CLINIC_SMS_NUMBER,
                secret=True,
            )
            demo["api_key"] = _json_object(out)["api_key"]
            save()
            say("demo clinic created")

        async def staff() -> None:
            if "staff_password" in demo:
                return
            password = secrets.token_urlsafe(12)
            await self.command(
                "identity",
                "create-staff",
                "--clinic-id",
                CLINIC_ID,
                "--email",
                STAFF_EMAIL,
                stdin=password + "\n",
                secret=True,
            )
            demo["staff_email"], demo["staff_password"] = STAFF_EMAIL, password
            save()
            say(f"staff user {STAFF_EMAIL} created")

        await asyncio.gather(clinic(), staff())
        return demo

    async def seed_records(self, demo: dict[str, Any]) -> None:
        """The demo PIMS records, once, through the gateway as a connector would push them."""
        if not demo.get("records_posted"):
            await _post_records(demo["api_key"], self.gateway)
            demo["records_posted"] = True
            self._save_demo(demo)
            say("demo PIMS records posted")
        self.phases.done("seed")

    # --- shutdown -----------------------------------------------------------------------------------

    def stop_services(self, timeout: float = 15) -> None:
        if self.supervisor.children:
            say("stopping services…")
        self.supervisor.stop_all(timeout)

    def stop_infra(self) -> None:
        for name, server in (("mongodb", self.mongo), ("kafka", self.kafka), ("postgres", self.postgres)):
            if server is not None:
                try:
                    server.stop()
                    say(f"{name} stopped")
                except Exception as exc:  # keep stopping the others
                    say(f"{name} did not stop cleanly: {exc}")
        for fh in self.log_files.values():
            fh.close()


def _json_object(output: str) -> dict[str, Any]:
    """The JSON object a CLI printed (the whole output, or its last line that is one)."""
    for candidate in (output, *reversed(output.splitlines())):
        with contextlib.suppress(ValueError):
            value = json.loads(candidate)
            if isinstance(value, dict):
                return value
    raise RunError(f"expected a JSON object from the command, got: {output[:200]!r}")


async def _post_records(api_key: str, gateway: str, attempts: int = 20) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for attempt in range(attempts):
            try:
                response = await client.post(
                    f"{gateway}/pims/v1/records",
                    json=DEMO_RECORDS,
                    headers={"authorization": f"Bearer {api_key}"},
                )
            except httpx.HTTPError as exc:
                problem = str(exc) or type(exc).__name__
            else:
                if response.is_success:
                    rejected = response.json().get("rejected") or []
                    if rejected:
                        say(f"warning: the PIMS batch had rejected records: {rejected}")
                    return
                problem = f"{response.status_code} {response.text[:300]}"
                if response.status_code < 500:
                    break
            if attempt + 1 < attempts:
                await asyncio.sleep(1)
    raise RunError(f"POST /pims/v1/records failed: {problem}")


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    orch = Orchestrator(data_dir, args.ready_timeout, args.port_offset)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            say("already stopping…")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    async def main() -> int:
        if not args.infra_only:
            orch.check_installed()
        await orch.start_infra()
        if args.infra_only:
            orch.print_infra_env()
            await asyncio.Event().wait()  # until Ctrl-C
        await orch.migrate()
        if orch.local_broker:
            await orch.replay()
        if args.rebuild_todo:
            out = (await orch.command("todo", "rebuild")).strip()
            say(f"rebuild todo: {out.splitlines()[-1] if out else 'done'}")
        orch.serve()
        supervising = asyncio.ensure_future(orch.supervise())
        schedule = asyncio.ensure_future(orch.scheduled())
        try:
            accounts = asyncio.ensure_future(orch.seed_accounts())
            ready = asyncio.ensure_future(orch.wait_ready())
            await _first_error(supervising, ready)
            try:
                await orch.seed_records(await accounts)
                demo = await accounts
            except RunError as exc:
                demo = {}
                say(f"demo seed failed (services keep running): {exc}")
            say("started: " + orch.phases.summary())
            print(walkthrough(demo, orch.gateway), flush=True)
            await supervising
        finally:
            supervising.cancel()
            schedule.cancel()
        return 0

    work = asyncio.ensure_future(main())
    stopper = asyncio.ensure_future(stop.wait())
    code = 0
    try:
        await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            code = work.result()
        else:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
    except (RunError, devinfra.InfraError) as exc:
        say(f"error: {exc}")
        code = 1
    except Exception:
        say("error:\n" + traceback.format_exc())
        code = 1
    finally:
        stopper.cancel()
        orch.stop_services()
        orch.stop_infra()
    say("stopped")
    return code


async def _first_error(watcher: asyncio.Future[None], task: asyncio.Future[None]) -> None:
    """Wait for `task`, but fail at once if `watcher` (which runs for ever) fails first."""
    await asyncio.wait([watcher, task], return_when=asyncio.FIRST_COMPLETED)
    if watcher.done():
        task.cancel()
        watcher.result()
    task.result()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--infra-only", action="store_true", help="start infrastructure only; wait for Ctrl-C"
    )
    parser.add_argument(
        "--rebuild-todo",
        action="store_true",
        help="drop the To-Do projection and rebuild it from the topics before the services start",
    )
    parser.add_argument(
        "--port-offset", type=int, default=0, help="add this to every port (gateway 8080, kafka 19092, ...)"
    )
    parser.add_argument("--data-dir", default=str(REPO / ".data"), help="default: .data in the repo root")
    parser.add_argument("--ready-timeout", type=float, default=120, help="seconds to wait for /readyz")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
