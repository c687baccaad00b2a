"""The process supervisor with real processes: restarts with backoff, gives up on a crash loop, stops
whole process groups, and children die with a parent that is killed outright."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from petportal_devkit.supervisor import (
    STACK_ID_VARIABLE,
    GaveUp,
    RestartPolicy,
    Supervisor,
    processes_of_stack,
    start_process,
)
from petportal_devkit.testing import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def supervisor():  # type: ignore[no-untyped-def]
    sup = Supervisor(say=lambda _line: None)
    yield sup
    sup.stop_all(timeout=5)
    assert wait_for(lambda: not processes_of_stack(sup.stack_id))


def _poll_until_given_up(supervisor: Supervisor, within: float = 30) -> tuple[list[str], GaveUp]:
    events: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            events += supervisor.poll()
        except GaveUp as exc:
            return events, exc
        time.sleep(0.01)
    raise AssertionError(f"never gave up; events: {events}")


def test_a_crashed_child_is_restarted_with_growing_delays_then_given_up(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    supervisor.spawn(
        "crashy",
        [sys.executable, "-c", "raise SystemExit(3)"],
        env=os.environ,
        log_file=tmp_path / "c.log",
        restart=RestartPolicy(max_crashes=3, window=60, first_delay=0.2, max_delay=1),
    )
    events, gave_up = _poll_until_given_up(supervisor)
    assert [e.split(" (pid")[0] for e in events] == [
        "crashy exited with code 3; restarting in 0.2s",
        "crashy restarted",
        "crashy exited with code 3; restarting in 0.4s",
        "crashy restarted",
    ]
    assert "crashy crashed 3 times in 60s (last exit code 3)" in str(gave_up)


def test_crashes_outside_the_window_do_not_count(supervisor: Supervisor, tmp_path: Path) -> None:
    supervisor.spawn(
        "crashy",
        [sys.executable, "-c", "raise SystemExit(1)"],
        env=os.environ,
        log_file=tmp_path / "c.log",
        restart=RestartPolicy(max_crashes=2, window=0.05, first_delay=0.1, max_delay=0.1),
    )
    deadline = time.monotonic() + 5
    restarts = 0
    while time.monotonic() < deadline and restarts < 3:
        restarts += sum("restarted" in e for e in supervisor.poll())
        time.sleep(0.01)
    assert restarts == 3  # each crash is alone in its 50 ms window: never a crash loop


def test_a_child_without_a_restart_policy_that_exits_is_reported(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    supervisor.spawn("once", [sys.executable, "-c", "pass"], env=os.environ, log_file=tmp_path / "o.log")
    with pytest.raises(GaveUp, match="once exited with code 0"):
        wait_for(lambda: supervisor.poll() or None, timeout=10)


def test_stop_all_stops_children_and_their_grandchildren(supervisor: Supervisor, tmp_path: Path) -> None:
    supervisor.spawn(
        "tree", ["sh", "-c", "sleep 300 & sleep 300"], env=os.environ, log_file=tmp_path / "t.log"
    )
    assert wait_for(lambda: len(processes_of_stack(supervisor.stack_id)) >= 3)  # sh and two sleeps
    supervisor.stop_all(timeout=5)
    assert wait_for(lambda: not processes_of_stack(supervisor.stack_id), timeout=10)


def test_children_die_with_a_parent_that_is_killed_outright(tmp_path: Path) -> None:
    stack_id = f"test-{os.getpid()}-{time.monotonic_ns()}"
    parent_code = textwrap.dedent(
        """
        import os, sys, time
        from petportal_devkit.supervisor import start_process
        start_process(["sleep", "300"], env=os.environ)
        print("started", flush=True)
        time.sleep(300)
        """
    )
    env = {**os.environ, STACK_ID_VARIABLE: stack_id}
    parent = start_process(
        [sys.executable, "-c", parent_code], env=env, stdout=(tmp_path / "p.out").open("wb")
    )
    try:
        wait_for(lambda: (tmp_path / "p.out").read_text().startswith("started"))
        assert len(processes_of_stack(stack_id)) == 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_for(lambda: not processes_of_stack(stack_id), timeout=10)
    finally:
        for pid in processes_of_stack(stack_id):
            os.kill(pid, signal.SIGKILL)


def test_logged_sees_only_what_this_start_of_the_child_wrote(supervisor: Supervisor, tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("ready\n")  # an earlier run's line in the same file
    say = [sys.executable, "-c", "import sys, time; print('waiting', flush=True); time.sleep(60)"]
    child = supervisor.spawn("svc", say, env=os.environ, log_file=log)
    assert wait_for(lambda: child.logged("waiting"))
    assert not child.logged("ready")
