"""Small, dependency-free statistics for latency samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linear interpolation; NaN when empty."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """count, mean, p50/p90/p95/p99 and max of samples given in seconds, reported in milliseconds."""
    values = sorted(s * 1000 for s in samples_s)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean_ms": round(sum(values) / len(values), 3),
        "p50_ms": round(percentile(values, 50), 3),
        "p90_ms": round(percentile(values, 90), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(values[-1], 3),
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline rounded to 3 decimals; None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0 or math.isnan(value) or math.isnan(baseline):
        return None
    return round(value / baseline, 3)
