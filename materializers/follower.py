"""Following a shared log: the thread that keeps a node's replica up to date.

On the embedded backend the committing thread applies the log itself, since nothing
else appends. On Kafka other nodes append too, so each node runs one follower thread
that reads the log as records arrive and applies them in order; sessions wait on the
materializer for the offsets they need (their commit, a sync marker, a peer's commit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from offsetdb import errors

logger = logging.getLogger(__name__)


class Applier(Protocol):
    """What the follower drives: :class:`~offsetdb.materializers.applier.Materializer`."""

    def poll(self, timeout: float, max_records: int = 1000) -> int:
        """Apply what the log holds past the applied offset, waiting up to ``timeout``."""
        ...


class LogFollower:
    """A daemon thread applying the log as it grows, until :meth:`stop`."""

    def __init__(self, applier: Applier, name: str, poll_timeout: float = 0.1) -> None:
        self._applier = applier
        self._poll_timeout = poll_timeout
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start following."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._applier.poll(self._poll_timeout)
            except errors.ConnectionFailure as e:
                # The broker is away: keep trying; sessions time out on their own.
                logger.warning("following the log: %s", e)
                self._stopping.wait(1.0)
            except BaseException as e:
                # Not retryable (the materializer stopped, the log was truncated): the
                # materializer reports it to every session from now on.
                logger.error("stopped following the log: %s", e)
                self.error = e
                return

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one poll)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10 + self._poll_timeout)


class SharedLog(Protocol):
    """What catching up needs to know of the log besides reading it."""

    at_end: bool

    def end_hint(self) -> int:
        """The log's end as the broker reports it; for progress displays only."""
        ...


def catch_up_at_open(
    applier: Applier,
    log: SharedLog,
    applied: Callable[[], int],
    progress: Callable[[int, int, float], None],
    idle_timeout: float,
) -> None:
    """Apply until the reader meets the log's end, reporting progress: a node's first step.

    The end it meets is a moment's end, not a guarantee that a commit made elsewhere
    just before is included: ``sync()`` gives that. ``applied()`` is the next offset to
    apply. Raises ConnectionFailure when nothing arrives for ``idle_timeout`` seconds.
    """
    started = last_arrival = time.monotonic()
    first = applied()
    end = log.end_hint()
    while not log.at_end:
        if applier.poll(0.5):
            last_arrival = time.monotonic()
        elif time.monotonic() - last_arrival > idle_timeout:
            raise errors.ConnectionFailure(
                f"the log stopped delivering records for {idle_timeout:g}s while this node "
                f"was catching up (applied up to offset {applied() - 1})"
            )
        done = applied()
        if done >= end:
            end = log.end_hint()
        progress(done - first, max(end, done) - first, time.monotonic() - started)
