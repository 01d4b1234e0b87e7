"""Timing statistics and the printed table."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def percentile(samples: list[float], pct: float) -> float:
    """The pct-th percentile by linear interpolation between closest ranks (like numpy's
    default), computed here so the harness needs nothing beyond the standard library."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# A workload gets `runs` timed runs, unless they would take longer than this: then it stops at
# the budget (but never below MIN_RUNS), so one pathological path cannot stretch the whole run
# past ~10 minutes. The table's n column shows how many runs a row had.
BUDGET_SECONDS = 15.0
MIN_RUNS = 10


def time_runs(
    fn: Callable[[], object], *, runs: int, warmup: int = 3, budget: float = BUDGET_SECONDS
) -> list[float]:
    """Call fn warmup times untimed, then up to `runs` times; milliseconds per call."""
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        if time.perf_counter() - start > 1:
            break  # a slow path is warm after one run
    samples: list[float] = []
    began = time.perf_counter()
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        if len(samples) >= MIN_RUNS and time.perf_counter() - began > budget:
            break
    return samples


def time_pair(
    django: Callable[[], object] | None,
    floor: Callable[[], object],
    *,
    runs: int,
    warmup: int = 3,
    budget: float = BUDGET_SECONDS,
) -> tuple[list[float], list[float]]:
    """Time a Django path and its floor alternately, so both see the same cache and the same
    noise from the rest of the machine (timing one after the other favours the second)."""
    fns = [fn for fn in (floor, django) if fn is not None]
    for fn in fns:
        time_runs(fn, runs=0, warmup=warmup)
    samples: dict[int, list[float]] = {id(fn): [] for fn in fns}
    began = time.perf_counter()
    for index in range(runs):
        for fn in fns:
            start = time.perf_counter()
            fn()
            samples[id(fn)].append((time.perf_counter() - start) * 1000)
        if index >= MIN_RUNS - 1 and time.perf_counter() - began > 2 * budget:
            break
    return (samples[id(django)] if django else []), samples[id(floor)]


@dataclass
class Row:
    workload: str
    samples: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    target: str = ""
    # "p95" rows compare the p95 with target_ms; "rate" rows compare a throughput figure.
    target_ms: float | None = None
    rate: float | None = None  # requests/s or rows/s for throughput rows
    rate_target: float | None = None
    note: str = ""
    status: str | None = None  # overrides PASS/MISS ("not built yet", "error")
    # A load tool's own percentiles (ms by percentile, and how many requests they cover), for
    # rows whose individual samples stay in the tool (wrk).
    percentiles: dict[float, float] | None = None
    count: int | None = None

    def latency(self, pct: float) -> float | None:
        if self.percentiles is not None:
            return self.percentiles.get(pct)
        return percentile(self.samples, pct) if self.samples else None

    @property
    def verdict(self) -> str:
        if self.status:
            return self.status
        if self.rate_target is not None and self.rate is not None:
            return "PASS" if self.rate >= self.rate_target else "MISS"
        if self.target_ms is not None and self.latency(95) is not None:
            return "PASS" if self.latency(95) <= self.target_ms else "MISS"
        return "-"


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


COLUMNS = [
    ("workload", 42, "<"),
    ("n", 5, ">"),
    ("median", 8, ">"),
    ("p95", 8, ">"),
    ("p99", 8, ">"),
    ("raw med", 8, ">"),
    ("raw p95", 8, ">"),
    ("ratio", 6, ">"),
    ("target", 14, "<"),
    ("result", 13, "<"),
]


def format_table(rows: list[Row]) -> str:
    def line(values):
        return "  ".join(
            f"{value!s:{align}{width}}"
            for value, (_, width, align) in zip(values, COLUMNS, strict=True)
        ).rstrip()

    out = [line([name for name, _, _ in COLUMNS])]
    out.append("  ".join("-" * width for _, width, _ in COLUMNS))
    notes = []
    for row in rows:
        p95 = row.latency(95)
        floor_p95 = percentile(row.floor, 95) if row.floor else None
        count = row.count if row.percentiles is not None else len(row.samples)
        values = [
            row.workload,
            count or "-",
            _ms(row.latency(50)),
            _ms(p95),
            _ms(row.latency(99)),
            _ms(percentile(row.floor, 50)) if row.floor else "-",
            _ms(floor_p95),
            f"{p95 / floor_p95:.1f}x" if p95 and floor_p95 else "-",
            row.target,
            row.verdict,
        ]
        out.append(line(values))
        if row.note:
            notes.append(f"  {row.workload}: {row.note}")
    text = "\n".join(out)
    if notes:
        text += "\n\nnotes (times in ms; ratio = Django p95 / raw-SQL p95):\n" + "\n".join(notes)
    return text
