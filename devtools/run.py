"""`make run`: the whole Pet Portal on this machine, with embedded infrastructure and a demo clinic.

1. Infrastructure, unless given by the environment: Kafka (Tansu, memory-only) on :19092 unless
   KAFKA_BOOTSTRAP_SERVERS is set; PostgreSQL with its data in `.data/pg` unless DATABASE_URL is set (then
   it names a server on which the `petportal_<svc>` databases are created); MongoDB (nx-27017) on :27117
   with its data in `.data/mongo` unless MONGODB_URL is set.
2. Topics and databases are created if missing; `python -m petportal_<svc> migrate` for every service;
   with the memory-only broker, `replay` republishes every service's outbox so a restart loses nothing.
3. Every service is served on its port (docs/architecture.md); logs go to `.data/logs/<svc>.log`.
4. Once all `/readyz` answer 200, the demo clinic is seeded once (state in `.data/demo.json`).

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

REPO = Path(__file__).resolve().parents[1]
try:
    from petportal_runtime import devinfra
except ModuleNotFoundError:  # runtime not installed (yet): use the source tree
    sys.path.insert(0, str(REPO / "shared" / "runtime"))
    from petportal_runtime import devinfra

HOST = "127.0.0.1"
PORTS = {
    "gateway": 8080,
    "identity": 8081,
    "pets": 8082,
    "messaging": 8083,
    "todo": 8084,
    "sync": 8085,
    "notify": 8086,
}
# Services with a PostgreSQL database of their own (todo keeps its read model in MongoDB).
DB_SERVICES = ("identity", "pets", "messaging", "sync", "notify")
# The gateway serves /metrics on a port of its own (its API port is public).
GATEWAY_METRICS_PORT = 9080
KAFKA_PORT = 19092
MONGO_PORT = 27117

CLINIC_ID = "demo-clinic"
CLIENT_ID = "C-1001"
STAFF_EMAIL = "staff@demo-clinic.example"
CLINIC_SMS_NUMBER = "+15005550006"
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
    json_h = "-H 'content-type: application/json'"
    return f"""
Pet Portal is running: gateway {g}  (OpenAPI of each service: http://{HOST}:<port>/docs)
Demo clinic {CLINIC_ID} (texts from {CLINIC_SMS_NUMBER}):
  staff   {STAFF_EMAIL} / {demo.get("staff_password", "?")}
  parent  {CLIENT_ID} Alex Rivera, {PARENT_PHONE}
Logs: .data/logs/<service>.log · demo credentials: .data/demo.json · Ctrl-C stops everything.

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
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


class Orchestrator:
    def __init__(self, data_dir: Path, ready_timeout: float, port_offset: int = 0) -> None:
        # An offset moves every port at once, so a second stack (a test, a demo) can run beside one.
        self.ports = {svc: port + port_offset for svc, port in PORTS.items()}
        self.kafka_port = KAFKA_PORT + port_offset
        self.mongo_port = MONGO_PORT + port_offset
        self.gateway = f"http://{HOST}:{self.ports['gateway']}"
        self.metrics_port = GATEWAY_METRICS_PORT + port_offset
        self.data = data_dir
        self.logs = data_dir / "logs"
        self.ready_timeout = ready_timeout
        self.kafka: devinfra.LocalKafka | None = None
        self.postgres: devinfra.LocalPostgres | None = None
        self.mongo: devinfra.LocalMongo | None = None
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.log_files: dict[str, IO[bytes]] = {}
        self.env: dict[str, dict[str, str]] = {}

    # --- infrastructure ----------------------------------------------------------------------------

    async def start_infra(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
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

        created = await devinfra.create_topics(bootstrap)
        say(f"topics ready ({len(created)} created)")
        for svc in DB_SERVICES:
            if await devinfra.create_database(server_url, f"petportal_{svc}"):
                say(f"created database petportal_{svc}")
        say(f"infrastructure ready in {time.monotonic() - t0:.1f}s")

        common = {
            **os.environ,
            "ENVIRONMENT": "development",
            "DEV_TOKEN_ENDPOINT_ENABLED": "true",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MONGODB_URL": mongo_url,
            "PYTHONUNBUFFERED": "1",
            **{
                f"{svc.upper()}_URL": f"http://{HOST}:{port}"
                for svc, port in self.ports.items()
                if svc != "gateway"
            },
        }
        common.pop("DATABASE_URL", None)
        if self.local_broker:
            # Tansu makes a consumer wait half the session timeout to join its group; 6 s keeps
            # start-up short without risking spurious rebalances on a busy laptop.
            common.setdefault("KAFKA_SESSION_TIMEOUT_MS", "6000")
        self.env = {svc: dict(common) for svc in self.ports}
        for svc in DB_SERVICES:
            self.env[svc]["DATABASE_URL"] = devinfra.database_url(server_url, f"petportal_{svc}")
        self.env["gateway"]["METRICS_PORT"] = str(self.metrics_port)

    @property
    def local_broker(self) -> bool:
        return self.kafka is not None

    def print_infra_env(self) -> None:
        print("\nInfrastructure is up. Environment for running a service by hand:\n")
        env = self.env["identity"]
        for key in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL"):
            print(f"  export {key}={shlex.quote(env[key])}")
        for svc in DB_SERVICES:
            print(f"  DATABASE_URL={shlex.quote(self.env[svc]['DATABASE_URL'])}  # {svc}")
        print("\nCtrl-C stops it.", flush=True)

    # --- service processes --------------------------------------------------------------------------

    def _log(self, svc: str) -> IO[bytes]:
        if svc not in self.log_files:
            fh = (self.logs / f"{svc}.log").open("ab")
            fh.write(f"\n===== make run {datetime.now(UTC).isoformat(timespec='seconds')} =====\n".encode())
            fh.flush()
            self.log_files[svc] = fh
        return self.log_files[svc]

    async def command(self, svc: str, *args: str, secret: bool = False, optional: bool = False) -> str | None:
        """Run `python -m petportal_<svc> ARGS` to completion and return its stdout.

        Output goes to the service's log (stdout only unless `secret`). With `optional`, a service
        whose CLI has no such command is skipped (None).
        """
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"petportal_{svc}",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env[svc],
            cwd=REPO,
            start_new_session=True,
        )
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        log = self._log(svc)
        log.write(f"$ python -m petportal_{svc} {args[0]} …\n".encode() + (b"" if secret else out) + err)
        log.flush()
        stderr = err.decode(errors="replace")
        if optional and proc.returncode == 2 and f"invalid choice: '{args[0]}'" in stderr:
            return None
        if proc.returncode != 0:
            tail = "\n".join("    " + line for line in stderr.splitlines()[-25:])
            raise RunError(f"`python -m petportal_{svc} {args[0]}` failed ({proc.returncode}):\n{tail}")
        return out.decode(errors="replace")

    def check_installed(self) -> None:
        missing = [svc for svc in self.ports if importlib.util.find_spec(f"petportal_{svc}") is None]
        if missing:
            names = ", ".join(f"petportal_{svc}" for svc in missing)
            raise RunError(f"not installed: {names} (run `make venv`)")

    async def _each(self, command: str) -> None:
        """`command` for every service that has a database, in parallel; prints what each said."""
        outputs = await asyncio.gather(*(self.command(svc, command, optional=True) for svc in DB_SERVICES))
        for svc, out in zip(DB_SERVICES, outputs, strict=True):
            last = out.strip().splitlines()[-1] if out and out.strip() else "done"
            say(f"{command} {svc}: {last}" if out is not None else f"{command} {svc}: (no such command)")

    async def migrate(self) -> None:
        await self._each("migrate")

    async def replay(self) -> None:
        """The memory-only broker starts empty: republish every outbox (consumers skip what they applied)."""
        await self._each("replay")

    async def serve(self) -> None:
        ports = {**self.ports, "gateway metrics": self.metrics_port}
        busy = [f"{svc}:{port}" for svc, port in ports.items() if _port_busy(port)]
        if busy:
            raise RunError(f"ports already in use: {', '.join(busy)} (another `make run`?)")
        for svc, port in self.ports.items():
            log = self._log(svc)
            self.procs[svc] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                f"petportal_{svc}",
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env[svc],
                cwd=REPO,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the services in order
            )
        say("services started: " + ", ".join(f"{svc} :{port}" for svc, port in self.ports.items()))

    def _check_running(self) -> None:
        for svc, proc in self.procs.items():
            if proc.returncode is not None:
                raise RunError(
                    f"{svc} exited with code {proc.returncode}; .data/logs/{svc}.log ends with:\n"
                    + _tail(self.logs / f"{svc}.log")
                )

    async def wait_ready(self) -> None:
        pending = dict(self.ports)
        deadline = time.monotonic() + self.ready_timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                self._check_running()
                for svc, port in list(pending.items()):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"http://{HOST}:{port}/readyz")).status_code == 200:
                            del pending[svc]
                if pending and time.monotonic() > deadline:
                    raise RunError(
                        f"not ready after {self.ready_timeout:.0f}s: {', '.join(pending)} (see .data/logs/)"
                    )
                await asyncio.sleep(0.25)
        say("all services ready")

    async def watch(self) -> None:
        """Return (with an error) when a service exits on its own."""
        waits = {asyncio.ensure_future(proc.wait()): svc for svc, proc in self.procs.items()}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        self._check_running()

    # --- demo seed ----------------------------------------------------------------------------------

    async def seed(self) -> dict[str, Any]:
        """Create the demo clinic, its staff user and its PIMS records, each step once."""
        path = self.data / "demo.json"
        demo: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

        def save() -> None:
            path.write_text(json.dumps(demo, indent=2) + "\n")
            path.chmod(0o600)

        if "api_key" not in demo:
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
            demo["api_key"] = _json_object(out or "")["api_key"]
            save()
            say("demo clinic created")
        if "staff_password" not in demo:
            password = secrets.token_urlsafe(12)
            await self.command(
                "identity",
                "create-staff",
                "--clinic-id",
                CLINIC_ID,
                "--email",
                STAFF_EMAIL,
                "--password",
                password,
                secret=True,
            )
            demo["staff_email"], demo["staff_password"] = STAFF_EMAIL, password
            save()
            say(f"staff user {STAFF_EMAIL} created")
        if not demo.get("records_posted"):
            await _post_records(demo["api_key"], self.gateway)
            demo["records_posted"] = True
            save()
            say("demo PIMS records posted")
        return demo

    # --- shutdown -----------------------------------------------------------------------------------

    async def stop_services(self, timeout: float = 15) -> None:
        running = {svc: p for svc, p in self.procs.items() if p.returncode is None}
        for proc in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        if running:
            say("stopping services…")
            _, late = await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in running.values()], timeout=timeout
            )
            for svc, proc in running.items():
                if proc.returncode is None:
                    say(f"{svc} did not stop in {timeout:.0f}s; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            for task in late:
                await task

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
            out = (await orch.command("todo", "rebuild") or "").strip()
            say(f"rebuild todo: {out.splitlines()[-1] if out else 'done'}")
        await orch.serve()
        await orch.wait_ready()
        try:
            demo = await orch.seed()
        except RunError as exc:
            demo = {}
            say(f"demo seed failed (services keep running): {exc}")
        print(walkthrough(demo, orch.gateway), flush=True)
        await orch.watch()
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
        await orch.stop_services()
        orch.stop_infra()
    say("stopped")
    return code


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
