"""Measuring: the result record, percentiles, and the progress line on a terminal."""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Result:
    """One workload measured on one engine.

    ``throughput`` is ``ops`` per second of ``seconds`` (wall time of the timed part),
    except for scans, where it counts table rows scanned per second. The latencies are
    of one operation as ``latency_of`` says (a commit, a select, a batch, a query).
    ``check`` is a value both engines must agree on (a count), compared in the report,
    and ``expected``, when set, the value it must have (``contention``: twice the commits);
    ``point`` names the point of a curve the result is (``"hot_keys=100"``): results
    compare with the baseline's at the same point;
    ``error`` is set, and the numbers are zero, when the workload failed; ``skipped``
    says why a workload does not apply to an engine (the numbers are zero then too).
    ``details`` holds further figures of the workload (e.g. the minimum and maximum).
    """

    workload: str
    engine: str
    unit: str
    ops: int = 0
    seconds: float = 0.0
    throughput: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    latency_of: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    check: Any = None
    expected: Any = None
    point: str | None = None
    retries: int = 0
    error: str | None = None
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ascending values, interpolating linearly.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not sorted_values:
        return 0.0
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def latency_summary(latencies_s: list[float]) -> tuple[float, float]:
    """The p50 and p99 of latencies given in seconds, in milliseconds."""
    ordered = sorted(latencies_s)
    return percentile(ordered, 50) * 1000.0, percentile(ordered, 99) * 1000.0


class Progress:
    """One updating line on stderr, ``label: done/total unit, rate/s, ETA``.

    It prints only when the stream is a terminal, at most five times a second, and
    clears itself when closed; elsewhere it is silent.
    """

    def __init__(self, label: str, total: int, unit: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._start = time.perf_counter()
        self._last = 0.0
        self._width = 0

    def update(self, done: int) -> None:
        """Show that ``done`` of ``total`` are finished."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        eta_text = f"{eta:,.0f}s" if math.isfinite(eta) else "?"
        line = f"{self.label}: {done:,}/{self.total:,} {self.unit}, {rate:,.0f}/s, ETA {eta_text}"
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()

    def close(self) -> None:
        """Erase the line."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def run_connected_threads(
    threads: int,
    connect: Callable[[], Any],
    body: Callable[[int, Any], None],
    label: str,
    total: int,
    done: Callable[[], int],
) -> float:
    """Run ``body(index, connection)`` on ``threads`` threads, each with a connection of its own.

    The threads start together at a barrier once every connection is open (opening is
    not timed); meanwhile a :class:`Progress` line shows ``done()`` of ``total``
    commits. The first failure of any thread is raised once all have ended; otherwise
    the result is the wall time from the barrier until the last thread ended.
    """
    finished = [0.0] * threads
    failures: list[BaseException] = []
    started: list[float] = []  # set as the barrier opens, before any thread runs on
    ready = threading.Barrier(threads + 1, action=lambda: started.append(time.perf_counter()))

    def worker(index: int) -> None:
        try:
            conn = connect()
        except BaseException as exc:  # noqa: BLE001 - reported as the workload's error
            failures.append(exc)
            ready.abort()
            return
        try:
            ready.wait()
            body(index, conn)
        except threading.BrokenBarrierError:
            pass  # another thread could not connect: its error is the one reported
        except BaseException as exc:  # noqa: BLE001 - reported as the workload's error
            failures.append(exc)
        finally:
            finished[index] = time.perf_counter()
            conn.close()

    workers = [
        threading.Thread(target=worker, args=(i,), name=f"{label}-{i}") for i in range(threads)
    ]
    for thread in workers:
        thread.start()
    progress = Progress(label, total, "commits")
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait()
        for thread in workers:
            while thread.is_alive():
                thread.join(0.2)
                progress.update(done())
    finally:
        progress.close()
        for thread in workers:
            thread.join()
    if failures:
        raise failures[0]
    return max(finished) - started[0]
