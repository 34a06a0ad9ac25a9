"""Percentiles (nearest rank on the sorted samples) and CDF points for plots."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50/p90/p99/p99.9, max (None when there are no samples, so JSON stays valid)."""
    ordered = sorted(values)
    out: dict[str, float | int | None] = {"count": len(ordered)}
    if not ordered:
        out.update({"mean": None, **{name: None for name, _ in PERCENTILES}, "max": None})
        return out
    out["mean"] = round(sum(ordered) / len(ordered), 3)
    for name, pct in PERCENTILES:
        out[name] = round(percentile(ordered, pct), 3)
    out["max"] = round(ordered[-1], 3)
    return out


def cdf_points(values: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """(value, fraction at or below) at up to `points` evenly spaced ranks, for plotting."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return []
    step = max(1, n // points)
    out = [(ordered[i], (i + 1) / n) for i in range(0, n, step)]
    if out[-1][1] != 1.0:
        out.append((ordered[-1], 1.0))
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 3)
