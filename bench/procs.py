"""Child processes started by the benchmarks (services, baseline consumers, the bare app, the load
generator): started by the dev kit's supervisor (own process group, killed if the benchmark dies),
logs to a file, readiness over HTTP, SIGTERM then SIGKILL to the group on stop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

from petportal_devkit.devinfra import tail
from petportal_devkit.supervisor import start_process, stop_process

from .report import REPO_ROOT


class ChildFailed(RuntimeError):
    """A child process exited early or never became ready."""


def python_env(extra: Mapping[str, str], *, python_path: Sequence[Path] = ()) -> dict[str, str]:
    """The current environment plus `extra`, with `python_path` in front of PYTHONPATH.

    OTEL_EXPORTER_OTLP_ENDPOINT is removed so no child exports traces during a benchmark.
    """
    env = {k: v for k, v in os.environ.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"}
    paths = [str(p) for p in (REPO_ROOT, *python_path)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


class ChildProcess:
    """`python -m <module> <args>` in its own session, stdout+stderr to `log_file`."""

    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        log_file: Path,
        stdout_file: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [sys.executable, "-m", module, *args]
        self.env = dict(env)
        self.log_file = log_file
        self.stdout_file = stdout_file
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def start(self) -> Self:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        self._files.append(log)
        out = log
        if self.stdout_file is not None:
            out = self.stdout_file.open("wb")
            self._files.append(out)
        self._proc = start_process(self.argv, env=self.env, stdout=out, stderr=log, cwd=REPO_ROOT)
        self.started_at = time.perf_counter()
        return self

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            raise ChildFailed(f"{self.name} exited with code {code}; last log lines:\n{tail(self.log_file)}")

    async def wait_http_ok(self, url: str, *, timeout: float = 60, poll: float = 0.1) -> float:
        """Poll `url` every `poll` seconds until it answers 200; the seconds it took since start()."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            while True:
                self.check_alive()
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return time.perf_counter() - self.started_at
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ChildFailed(
                        f"{self.name} not ready at {url} after {timeout:.0f}s; last log lines:\n"
                        f"{tail(self.log_file)}"
                    )
                await asyncio.sleep(poll)

    async def wait_logged(self, line: str, *, timeout: float = 60, poll: float = 0.1) -> float:
        """Wait until the process has logged `line`; the seconds it took since start()."""
        deadline = time.monotonic() + timeout
        while line not in self.log_file.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ChildFailed(f"{self.name}: no {line!r} in {timeout:.0f}s; log:\n{tail(self.log_file)}")
            await asyncio.sleep(poll)
        return time.perf_counter() - self.started_at

    async def wait_exit(self, timeout: float) -> int:
        """Wait (without blocking the loop) for the process to exit by itself; kill it after `timeout`."""
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.running:
            self.stop()
            raise ChildFailed(f"{self.name} did not finish within {timeout:.0f}s")
        code = self.returncode
        self._close_files()
        return code if code is not None else -1

    def stdout_json(self) -> Any:
        if self.stdout_file is None:
            raise ValueError("no stdout file")
        text = self.stdout_file.read_text().strip()
        if not text:
            raise ChildFailed(f"{self.name} printed nothing; last log lines:\n{tail(self.log_file)}")
        return json.loads(text.splitlines()[-1])

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to our child's process group, SIGKILL after `timeout` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=timeout)
        self._close_files()

    def _close_files(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a (live) process has used, from /proc; None if unavailable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")" that ends the command name: state is field 0, utime 11, stime 12.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by named processes between two snapshots."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self.pids = dict(pids)

    def snapshot(self) -> dict[str, float | None]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    @staticmethod
    def delta(
        before: Mapping[str, float | None], after: Mapping[str, float | None]
    ) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, start in before.items():
            end = after.get(name)
            out[name] = round(end - start, 3) if start is not None and end is not None else None
        return out
