"""`python -m bench [names...] [--quick]`: run the benchmarks, write bench/results/<name>.json, print
a table. Run from the repository root (`make bench`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from . import (
    badge_latency,
    booking_contention,
    gateway_rps,
    pims_freshness,
    reminder_fanout,
    service_startup,
    startup,
    sync_ingest,
    todo_throughput,
)
from .infra import Infra
from .report import RESULTS_DIR, BenchResult, format_table, machine_info, write_result


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: Callable[[Infra, Any], Awaitable[BenchResult]]
    params: Callable[[bool], Any]  # quick -> parameters


def _benchmark(module: Any) -> Benchmark:
    """Every benchmark module has NAME, TITLE, `run(infra, params)` and a Params with `quick()`."""
    return Benchmark(
        module.NAME,
        module.TITLE,
        module.run,
        lambda quick: module.Params.quick() if quick else module.Params(),
    )


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in map(
        _benchmark,
        (
            todo_throughput,
            badge_latency,
            startup,
            service_startup,
            gateway_rps,
            sync_ingest,
            pims_freshness,
            reminder_fanout,
            booking_contention,
        ),
    )
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run_selected(names: Sequence[str], *, quick: bool, infra: Infra) -> list[BenchResult]:
    results: list[BenchResult] = []
    for name in names:
        bench = BENCHMARKS[name]
        params = bench.params(quick)
        log(f"{name}: {bench.title}")
        started = time.perf_counter()
        try:
            result = await bench.run(infra, params)
        except Exception as exc:  # one broken benchmark must not hide the others' results
            result = BenchResult(
                name, bench.title, dict(vars(params)), ok=False, error=f"{type(exc).__name__}: {exc}"
            )
            result.notes.append(traceback.format_exc(limit=8))
            log(f"{name} FAILED: {type(exc).__name__}: {exc}")
        finally:
            infra.stop_benchmark_processes()
        result.duration_s = time.perf_counter() - started
        result.parameters["quick"] = quick
        log(f"{name}: done in {result.duration_s:.1f}s")
        results.append(result)
    return results


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through Infra.__exit__, which stops every child


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks", nargs="*", metavar="NAME", help=f"which to run (default: all): {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller parameters, for a smoke test; results are not written unless --results-dir is given",
    )
    parser.add_argument("--results-dir", type=Path, default=None, help=f"default: {RESULTS_DIR}")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the data and logs of the run")
    args = parser.parse_args(argv)
    names = args.benchmarks or list(BENCHMARKS)
    if unknown := [n for n in names if n not in BENCHMARKS]:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results_dir: Path | None = args.results_dir or (None if args.quick else RESULTS_DIR)

    signal.signal(signal.SIGTERM, _terminate)
    machine = machine_info()
    log(f"{machine['cpu_count']} CPUs, Python {machine['python']}, load {machine['load_average']}")
    started = time.perf_counter()
    failed = True
    infra = Infra(keep=args.keep_workdir)
    log(f"work directory {infra.workdir}")
    try:
        infra.start()
        results = asyncio.run(run_selected(names, quick=args.quick, infra=infra))
        failed = not all(r.ok for r in results)
    finally:
        infra.close(failed=failed)
        if failed or args.keep_workdir:
            log(f"logs kept in {infra.logs}")

    if results_dir is not None:
        for result in results:
            path = write_result(result, machine, results_dir)
            log(f"wrote {path}")
    print()
    print(format_table(results))
    for result in results:
        for note in result.notes:
            if not note.startswith("Traceback"):
                print(f"note ({result.name}): {note}")
    print(f"\ntotal {time.perf_counter() - started:.0f}s; ratios compare with baselines measured in this run")
    return 0 if not failed else 1
