"""`make test`'s pytest part: each layer in turn (unit, contract, integration, e2e), then a summary.

Layers run fastest first so a broken domain rule fails in seconds; an empty layer (pytest exit 5) is
reported, not failed. Extra arguments go to every pytest run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

LAYERS = ("unit", "contract", "integration", "e2e")
REPO = Path(__file__).resolve().parents[1]
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


def main(argv: list[str]) -> int:
    totals: dict[str, int] = {}
    rows: list[str] = []
    worst = 0
    for layer in LAYERS:
        print(f"\n===== {layer} tests =====", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", layer, *argv],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        last = ""
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last = line.strip()
        code = proc.wait()
        counts = {
            kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in COUNTS.findall(last)
        }
        counts.pop("deselected", None)
        for kind, n in counts.items():
            totals[kind] = totals.get(kind, 0) + n
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no tests"
        rows.append(f"  {layer:<12} {summary}  ({time.monotonic() - started:.0f}s)")
        if code not in (0, 5):
            worst = code
    print("\n===== test layers =====")
    print("\n".join(rows))
    print(
        f"tests: {totals.get('passed', 0)} passed, {totals.get('failed', 0) + totals.get('error', 0)} failed"
        + (f", {totals['skipped']} skipped" if totals.get("skipped") else "")
    )
    return worst


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
