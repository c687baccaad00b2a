"""Benchmark results: machine description, the JSON written to bench/results/, the printed table."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the printed table: a measured figure, the baseline it is compared with, the ratio."""

    metric: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    better: Literal["higher", "lower", ""] = ""  # which way the ratio should go


@dataclass
class BenchResult:
    name: str
    title: str
    parameters: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float | None] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = True
    error: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    duration_s: float = 0.0
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        mem_total_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration, ValueError):
        mem_total_kb = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "cpu_model": _cpu_model(),
        "memory_mb": mem_total_kb // 1024 if mem_total_kb else None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git_commit(),
        "argv": sys.argv,
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_result(result: BenchResult, machine: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": result.name,
        "title": result.title,
        "ok": result.ok,
        "error": result.error,
        "machine": machine,
        "started_at": result.started_at,
        "duration_s": round(result.duration_s, 1),
        "load_average_before": [round(x, 2) for x in result.load_before],
        "parameters": result.parameters,
        "ratios": result.ratios,
        "table": [asdict(row) for row in result.rows],
        "results": result.results,
        "notes": result.notes,
    }
    path = directory / f"{result.name}.json"
    path.write_text(json.dumps(_clean(document), indent=2, sort_keys=False, default=str) + "\n")
    return path


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(results: list[BenchResult]) -> str:
    header = ("benchmark", "metric", "value", "unit", "baseline", "baseline value", "ratio", "better")
    lines: list[tuple[str, ...]] = []
    for result in results:
        if not result.ok:
            lines.append((result.name, f"FAILED: {(result.error or '')[:70]}", "", "", "", "", "", ""))
            continue
        for row in result.rows:
            lines.append(
                (
                    result.name,
                    row.metric,
                    _fmt(row.value),
                    row.unit,
                    row.baseline,
                    _fmt(row.baseline_value) if row.baseline else "",
                    f"{row.ratio:.3f}" if row.ratio is not None else ("-" if row.baseline else ""),
                    row.better if row.baseline else "",
                )
            )
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    numeric = {2, 5, 6}

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    out = [render(header), render(tuple("-" * w for w in widths))]
    out += [render(line) for line in lines]
    return "\n".join(out)
