"""The one process supervisor of `make run`, the end-to-end stack and the benchmarks.

Every child runs in its own process group (a terminal's Ctrl-C reaches only the supervisor, which
stops children in order), carries the stack's id in `PETPORTAL_STACK_ID` (so a test can prove that
no process of its stack is left), and is killed by the kernel if the supervising thread dies
without stopping it (Linux `PR_SET_PDEATHSIG`): a test killed by a timeout leaves nothing running.

`Supervisor.watch()` restarts a child that exits on its own, with exponential backoff, and gives up
after `RestartPolicy.max_crashes` crashes within `RestartPolicy.window` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

STACK_ID_VARIABLE = "PETPORTAL_STACK_ID"
_PR_SET_PDEATHSIG = 1
_libc: Any = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec_fn that asks the kernel to send `sig` to the child when its parent thread exits."""
    if _libc is None:
        return None
    prctl = _libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def start_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = subprocess.STDOUT,
    cwd: Path | str | None = None,
    death_signal: int = signal.SIGKILL,
    user: tuple[int, int] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session that dies with us; the only place a long-lived child is made."""
    extra: dict[str, Any] = {}
    if user is not None:
        extra = {"user": user[0], "group": user[1], "extra_groups": []}
    return subprocess.Popen(  # noqa: S603  (argv from our own code)
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent(death_signal),
        **extra,
    )


def stop_process(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """`sig` to the child's whole process group, SIGKILL to the group after `timeout` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    # Whatever is left in the group (grandchildren) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def processes_of_stack(stack_id: str) -> list[int]:
    """Pids of live processes (not zombies) whose environment carries `stack_id`."""
    needle = f"{STACK_ID_VARIABLE}={stack_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


class GaveUp(RuntimeError):
    """A child crashed too often to keep restarting it."""


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 5
    window: float = 60.0  # seconds in which max_crashes means "crash loop"
    first_delay: float = 0.5
    max_delay: float = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    cwd: Path | None
    restart: RestartPolicy | None
    stop_signal: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None
    log_offset: int = 0  # the log file's size when this start of the child began

    def logged(self, line: str) -> bool:
        """Whether the child has logged `line` since it was last started."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(self.log_offset)
                return line.encode() in log.read()
        except FileNotFoundError:
            return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class Supervisor:
    def __init__(self, *, stack_id: str | None = None, say: Callable[[str], None] = print) -> None:
        self.stack_id = stack_id or uuid.uuid4().hex
        self.children: dict[str, Child] = {}
        self._say = say

    def tagged(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` plus this stack's id (give it to every process of the stack, CLI commands too)."""
        return {**env, STACK_ID_VARIABLE: self.stack_id}

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_file: Path,
        cwd: Path | None = None,
        restart: RestartPolicy | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Child:
        child = Child(name, list(argv), self.tagged(env), log_file, cwd, restart, stop_signal)
        self.children[name] = child
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        child.log_file.parent.mkdir(parents=True, exist_ok=True)
        with child.log_file.open("ab") as log:
            child.log_offset = log.seek(0, os.SEEK_END)
            child.proc = start_process(child.argv, env=child.env, stdout=log, cwd=child.cwd)
        child.started_at = time.monotonic()
        child.restart_at = None

    def exited(self) -> list[Child]:
        """Children that exited on their own (and are not waiting for a restart)."""
        return [c for c in self.children.values() if c.proc is not None and c.proc.poll() is not None]

    def poll(self, now: float | None = None) -> list[str]:
        """One supervision step: schedule restarts of crashed children, start those that are due.

        Returns what happened, one line per event. Raises GaveUp for a child in a crash loop or one
        without a restart policy.
        """
        now = time.monotonic() if now is None else now
        events: list[str] = []
        for child in self.children.values():
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                child.proc = None
                policy = child.restart
                if policy is None:
                    raise GaveUp(f"{child.name} exited with code {code}")
                child.crashes = [t for t in child.crashes if now - t < policy.window] + [now]
                if len(child.crashes) >= policy.max_crashes:
                    raise GaveUp(
                        f"{child.name} crashed {len(child.crashes)} times in {policy.window:.0f}s "
                        f"(last exit code {code}); not restarting it"
                    )
                delay = min(policy.max_delay, policy.first_delay * 2 ** (len(child.crashes) - 1))
                child.restart_at = now + delay
                events.append(f"{child.name} exited with code {code}; restarting in {delay:.1f}s")
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                self._start(child)
                events.append(f"{child.name} restarted (pid {child.pid})")
        return events

    async def watch(self, interval: float = 0.2) -> None:
        """Supervise until cancelled; raises GaveUp."""
        while True:
            for event in self.poll():
                self._say(event)
            await asyncio.sleep(interval)

    def stop(self, name: str, timeout: float = 15) -> None:
        child = self.children.pop(name)
        if child.proc is not None:
            stop_process(child.proc, sig=child.stop_signal, timeout=timeout)

    def stop_all(self, timeout: float = 15) -> None:
        """Signal every child at once, then wait for all (SIGKILL those still running at `timeout`)."""
        children = list(self.children.values())
        self.children.clear()
        for child in children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, child.stop_signal)
        deadline = time.monotonic() + timeout
        for child in children:
            if child.proc is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            if child.proc.poll() is None:
                self._say(f"{child.name} did not stop in {timeout:.0f}s; killing it")
            stop_process(child.proc, sig=signal.SIGKILL, timeout=5)
