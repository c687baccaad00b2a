"""`make run` start-up: a first run (empty data directory, after install) and restarts, to ready.

Each is timed from spawning devtools/run.py to its "Pet Portal is running" line, with the phase
timings it prints (infrastructure, migrations, replay, services, seed). Beside them, in the same
run: the resident memory of every service process, and the baseline of how long one bare Python
process takes to import the web stack and answer HTTP (uvicorn + a plain ASGI app), which bounds
from below what seven service processes on this machine's cores can do.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from petportal_devkit.devinfra import free_port, free_port_offset
from petportal_devkit.supervisor import STACK_ID_VARIABLE, processes_of_stack, start_process, stop_process
from petportal_runtime.catalog import SERVICES

from .infra import Infra
from .report import REPO_ROOT, BenchResult, Row

NAME = "make_run_startup"
TITLE = "make run: first run and restart to ready, memory per service"
READY_LINE = "Pet Portal is running"
PHASES = re.compile(r"\[run\] started: (.*)")
BARE_APP = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class Params:
    restarts: int = 3
    bare_starts: int = 5
    timeout_s: float = 180

    @classmethod
    def quick(cls) -> Params:
        return cls(restarts=1, bare_starts=2)


def _phases(text: str) -> dict[str, float]:
    found = PHASES.findall(text)
    if not found:
        return {}
    return {
        name: float(seconds.rstrip("s"))
        for name, seconds in (part.rsplit(" ", 1) for part in found[-1].split(" · "))
    }


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class MakeRun:
    def __init__(self, data_dir: Path, offset: int, log: Path) -> None:
        self.data_dir, self.offset, self.log = data_dir, offset, log
        self.stack_id = uuid.uuid4().hex
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL", "OTEL_EXPORTER_OTLP_ENDPOINT")
        }
        self.env[STACK_ID_VARIABLE] = self.stack_id

    async def start(self, timeout: float) -> tuple[float, dict[str, float]]:
        """Seconds from spawn to ready, and the phases run.py printed."""
        seen = self.log.read_text().count(READY_LINE) if self.log.exists() else 0
        started = time.perf_counter()
        with self.log.open("ab") as out:
            argv = [sys.executable, "devtools/run.py", "--data-dir", str(self.data_dir)]
            self.proc = start_process(
                [*argv, "--port-offset", str(self.offset)],
                env=self.env,
                stdout=out,
                cwd=REPO_ROOT,
                death_signal=signal.SIGTERM,
            )
        while self.log.read_text().count(READY_LINE) <= seen:
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited:\n{self.log.read_text()[-3000:]}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"make run not ready after {timeout:.0f}s")
            await asyncio.sleep(0.05)
        return time.perf_counter() - started, _phases(self.log.read_text())

    def service_memory(self) -> dict[str, float | None]:
        memory: dict[str, float | None] = {}
        for pid in processes_of_stack(self.stack_id):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for spec in SERVICES:
                if spec.package.encode() in argv and b"serve" in argv:
                    memory[spec.name] = rss_mb(pid)
        return memory

    def stop(self) -> None:
        stop_process(self.proc, sig=signal.SIGINT, timeout=60)


async def bare_start() -> float:
    port = free_port()
    started = time.perf_counter()
    proc = start_process([sys.executable, "-c", BARE_APP, str(port)], env=os.environ)
    try:
        async with httpx.AsyncClient(timeout=1, trust_env=False) as client:
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    await asyncio.sleep(0.02)
    finally:
        stop_process(proc, timeout=5)


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, dict(vars(params)))
    workdir = Path(tempfile.mkdtemp(prefix="startup-", dir=infra.workdir))
    bare = [await bare_start() for _ in range(params.bare_starts)]
    bare_s = statistics.median(bare)

    ports = [spec.port for spec in SERVICES] + [19092, 27117]
    run_ = MakeRun(workdir / "data", offset=free_port_offset(ports), log=infra.logs / "make-run.out")
    restarts: list[float] = []
    try:
        first_s, first_phases = await run_.start(params.timeout_s)
        memory = run_.service_memory()
        run_.stop()
        restart_phases: list[dict[str, float]] = []
        for _ in range(params.restarts):
            seconds, phases = await run_.start(params.timeout_s)
            restarts.append(seconds)
            restart_phases.append(phases)
            run_.stop()
    finally:
        if getattr(run_, "proc", None) is not None and run_.proc.poll() is None:
            run_.stop()
    restart_s = statistics.median(restarts)
    services_s = statistics.median(p.get("services", 0.0) for p in restart_phases)
    per_service_floor = bare_s * len(SERVICES) / (os.cpu_count() or 1)

    result.results = {
        "first_run_to_ready_s": round(first_s, 2),
        "first_run_phases_s": first_phases,
        "restart_to_ready_s": [round(s, 2) for s in restarts],
        "restart_to_ready_median_s": round(restart_s, 2),
        "restart_phases_s": restart_phases,
        "bare_uvicorn_start_to_http_s": [round(s, 3) for s in bare],
        "service_rss_mb": {k: round(v, 1) if v is not None else None for k, v in sorted(memory.items())},
    }
    result.ratios = {
        "services_phase_vs_seven_bare_starts_on_these_cores": round(per_service_floor / services_s, 3)
        if services_s
        else None,
    }
    biggest = max((v for v in memory.values() if v is not None), default=None)
    result.rows = [
        Row("first run → ready (after install)", first_s, "s", better="lower"),
        Row("restart → ready (median)", restart_s, "s", better="lower"),
        Row(
            "services phase of a restart",
            services_s,
            "s",
            baseline="7 bare uvicorn starts on these cores",
            baseline_value=per_service_floor,
            ratio=result.ratios["services_phase_vs_seven_bare_starts_on_these_cores"],
            better="higher",
        ),
        Row("largest service RSS", biggest, "MB", better="lower"),
    ]
    result.notes.append("targets (issue): restart ≤ 15 s, first run ≤ 30 s, each service ≤ 120 MB")
    return result
