"""Reporting: the results table with ratios and targets, and the JSON file.

Targets are information for the reader, never a pass/fail of the run: the bench prints
whether each is met and exits 0 all the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.engines import BASELINE
from bench.measure import Result


@dataclass(frozen=True)
class Target:
    """A goal for offsetdb on one workload: a minimum throughput, maybe a p99 bound."""

    min_throughput: float
    max_p99_ms: float | None
    text: str

    def met(self, result: Result) -> bool:
        """Tell whether ``result`` reaches this target."""
        if result.error is not None or result.throughput < self.min_throughput:
            return False
        return self.max_p99_ms is None or result.p99_ms < self.max_p99_ms


TARGET_ENGINE = "offsetdb"
TARGETS: dict[str, Target] = {
    "bulk_load": Target(100_000, None, ">= 100k rows/s"),
    "autocommit_1t": Target(5_000, 5.0, ">= 5k commits/s, p99 < 5 ms"),
    "autocommit_mt": Target(5_000, 5.0, ">= 5k commits/s, p99 < 5 ms"),
    "point_select": Target(50_000, 1.0, ">= 50k selects/s, p99 < 1 ms"),
}


# Workloads measured as a curve (one result per point), shown in a table of their own.
CONTENTION = "contention"


def ratio(results: Sequence[Result], result: Result) -> float | None:
    """``result``'s throughput over the baseline engine's on the same workload and point."""
    if result.engine == BASELINE or result.error is not None or result.skipped is not None:
        return None
    for other in results:
        same_workload = (
            other.workload == result.workload
            and other.point == result.point
            and other.engine == BASELINE
        )
        if same_workload and other.error is None and other.throughput > 0:
            return result.throughput / other.throughput
    return None


def _name(result: Result) -> str:
    return result.workload if result.point is None else f"{result.workload} ({result.point})"


def check_mismatches(results: Sequence[Result]) -> list[str]:
    """Where a checked answer (a count, an average, a sum) is not what it must be.

    Engines must agree on each workload (and point); a result with an ``expected``
    value (which may differ between engines, as their sizes may) must equal that instead.
    """
    problems = []
    by_workload: dict[tuple[str, str | None], list[Result]] = {}
    for result in results:
        if result.error is not None or result.check is None:
            continue
        if result.expected is None:
            by_workload.setdefault((result.workload, result.point), []).append(result)
        elif not _same(result.check, result.expected):
            problems.append(
                f"{_name(result)}: {result.engine} gave {result.check!r}, "
                f"expected {result.expected!r}"
            )
    for group in by_workload.values():
        first = group[0]
        for other in group[1:]:
            if not _same(first.check, other.check):
                problems.append(
                    f"{_name(first)}: {first.engine} gave {first.check!r}, "
                    f"{other.engine} gave {other.check!r}"
                )
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _workload_label(result: Result) -> str:
    threads = result.params.get("threads")
    return (
        f"{result.workload} ({threads} thr)"
        if result.workload == "autocommit_mt" and threads is not None
        else result.workload
    )


def _align(headers: Sequence[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [
        max([len(h)] + [len(row[c]) for row in rows if len(row[c]) < 60])
        for c, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[c]) if c in right else cell.ljust(widths[c])
            for c, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    return "\n".join(out) + "\n"


def render_table(results: Sequence[Result]) -> str:
    """The results as an aligned text table, one row per workload and engine.

    The ``contention`` curve is left to :func:`render_contention_table`; with nothing
    else to show, the table is empty.
    """
    results = [r for r in results if r.workload != CONTENTION]
    if not results:
        return ""
    headers = [
        "workload",
        "engine",
        "throughput",
        "p50 ms",
        "p99 ms",
        f"vs {BASELINE}",
        "target",
        "met",
    ]
    right = {2, 3, 4, 5}
    rows: list[list[str]] = []
    for result in results:
        target = TARGETS.get(result.workload) if result.engine == TARGET_ENGINE else None
        if result.error is not None or result.skipped is not None:
            rows.append(
                [
                    _workload_label(result),
                    result.engine,
                    f"ERROR: {result.error}" if result.error is not None else str(result.skipped),
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        r = ratio(results, result)
        rows.append(
            [
                _workload_label(result),
                result.engine,
                f"{result.throughput:,.0f} {result.unit}",
                f"{result.p50_ms:.3f}",
                f"{result.p99_ms:.3f}",
                "" if r is None else f"{r:.2f}x",
                target.text if target else "",
                ("yes" if target.met(result) else "no") if target else "",
            ]
        )
    return _align(headers, rows, right)


def render_contention_table(results: Sequence[Result]) -> str:
    """The ``contention`` curve: one row per hot-key count and engine, empty if none.

    Rows are grouped by hot-key count, largest first as run, engines in run order.
    """
    curve = [r for r in results if r.workload == CONTENTION]
    if not curve:
        return ""
    points = list(dict.fromkeys(r.point for r in curve))
    curve.sort(key=lambda r: points.index(r.point))
    headers = [
        "hot keys",
        "engine",
        "commits/s",
        "aborts",
        "attempts",
        "abort rate",
        "p50 ms",
        "p99 ms",
        f"vs {BASELINE}",
    ]
    rows: list[list[str]] = []
    for result in curve:
        hot = result.params.get("hot_keys")
        hot_text = f"{hot:,}" if isinstance(hot, int) else str(result.point)
        if result.error is not None or result.skipped is not None:
            problem = f"ERROR: {result.error}" if result.error is not None else str(result.skipped)
            rows.append([hot_text, result.engine, problem] + [""] * 6)
            continue
        details = result.details
        r = ratio(results, result)
        rows.append(
            [
                hot_text,
                result.engine,
                f"{result.throughput:,.0f}",
                f"{details['aborts']:,}",
                f"{details['attempts']:,}",
                f"{details['abort_rate']:.1%}",
                f"{result.p50_ms:.3f}",
                f"{result.p99_ms:.3f}",
                "" if r is None else f"{r:.2f}x",
            ]
        )
    sized = {r.engine: r.params["commits"] for r in curve if "commits" in r.params}
    threads = next((r.params["threads"] for r in curve if "threads" in r.params), None)
    if len(set(sized.values())) == 1:
        sizes = f"{next(iter(sized.values())):,}"
    else:
        sizes = ", ".join(f"{commits:,} on {engine}" for engine, commits in sized.items())
    title = f"contention: {threads} threads; commits per point: {sizes}" if sized else ""
    begins = dict.fromkeys(
        f"{r.engine} {r.params['begin']}, retried on {r.params['retry_on']}"
        for r in curve
        if "begin" in r.params
    )
    out = (title + "\n" if title else "") + _align(headers, rows, {0, 2, 3, 4, 5, 6, 7, 8})
    if begins:
        out += "transactions: " + "; ".join(begins) + "\n"
    return out


def render_notes(results: Sequence[Result]) -> str:
    """What each latency measures, and any disagreement between engines."""
    seen: dict[str, str] = {}
    for result in results:
        if result.latency_of and result.workload not in seen:
            seen[result.workload] = result.latency_of
    lines = ["latency is per:"] + [f"  {w}: {what}" for w, what in seen.items()]
    retried = [r for r in results if r.retries and r.workload != CONTENTION]  # in its table
    for result in retried:
        lines.append(f"{result.workload} on {result.engine}: {result.retries} retried operations")
    mismatches = check_mismatches(results)
    if mismatches:
        lines.append("WARNING: the engines disagree:")
        lines += [f"  {m}" for m in mismatches]
    return "\n".join(lines) + "\n"


def to_json(results: Sequence[Result], meta: dict[str, Any]) -> dict[str, Any]:
    """The whole run as a JSON-ready dict: settings, results, ratios, targets."""
    comparisons = []
    targets = []
    for result in results:
        r = ratio(results, result)
        if r is not None:
            comparisons.append(
                {
                    "workload": result.workload,
                    "point": result.point,
                    "engine": result.engine,
                    "baseline": BASELINE,
                    "throughput_ratio": r,
                }
            )
        target = TARGETS.get(result.workload)
        if target is not None and result.engine == TARGET_ENGINE:
            targets.append(
                {
                    "workload": result.workload,
                    "engine": result.engine,
                    "target": target.text,
                    "min_throughput": target.min_throughput,
                    "max_p99_ms": target.max_p99_ms,
                    "met": target.met(result),
                }
            )
    return {
        "meta": meta,
        "results": [asdict(result) for result in results],
        "comparisons": comparisons,
        "targets": targets,
        "check_mismatches": check_mismatches(results),
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
