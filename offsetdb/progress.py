"""Progress of long operations (replay, catch-up, bulk load) on a terminal."""

from __future__ import annotations

import sys
import time


class TerminalProgress:
    """One updating line on stderr for long replays: done/total, rate, ETA."""

    def __init__(self, label: str, min_seconds: float = 1.0, unit: str = "records") -> None:
        self._label = label
        self._unit = unit
        self._min_seconds = min_seconds
        self._last = 0.0
        self._shown = False
        self._enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        """Report progress; prints only on a terminal and only for long operations."""
        if not self._enabled or elapsed < self._min_seconds:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and (done < total or total <= 0):
            return
        self._last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        if total <= 0:  # the total is not known: count and rate only
            sys.stderr.write(f"\r{self._label}: {done:,} {self._unit}, {rate:,.0f}/s   ")
        else:
            eta = (total - done) / rate if rate > 0 else 0.0
            sys.stderr.write(
                f"\r{self._label}: {done:,}/{total:,} {self._unit}, {rate:,.0f}/s, ETA {eta:,.0f}s   "
            )
        sys.stderr.flush()
        self._shown = True

    def finish(self) -> None:
        """End the progress line."""
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
