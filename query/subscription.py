"""``conn.subscribe()``: a node's change feed as a Python iterator.

The feed itself (:class:`~offsetdb.materializers.changes.ChangeFeed`) follows the log
behind the materializer; a :class:`Subscription` gives it a log reader of its own and
keeps the database open until it is closed, even past its connection's ``close()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

from offsetdb import errors
from offsetdb.materializers.changes import ChangeFeed, Item, SnapshotResume

if TYPE_CHECKING:
    from offsetdb.query.database import Database


class Subscription:
    """Committed changes, in commit order: an iterator of transactions and progress marks.

    Items are :class:`~offsetdb.materializers.changes.SnapshotChunk` (when a snapshot was
    asked for; first), :class:`~offsetdb.materializers.changes.CommittedTransaction` and
    :class:`~offsetdb.materializers.changes.Progress`. Iteration ends when ``timeout``
    seconds pass with nothing delivered (never, with ``timeout=None``), or at
    :meth:`close`. ``position`` is the offset to pass as ``from_offset`` to resume.
    """

    def __init__(
        self,
        database: Database,
        tables: Collection[str] | None,
        *,
        from_offset: int | None,
        snapshot: bool,
        timeout: float | None,
        progress_interval: float,
        snapshot_progress: Callable[[int, int, float], None] | None = None,
        resume: SnapshotResume | None = None,
    ) -> None:
        if isinstance(tables, str):
            tables = [tables]
        if from_offset is not None and from_offset < -1:
            raise errors.InterfaceError(f"from_offset must be -1 or later, not {from_offset}")
        if timeout is not None and timeout < 0:
            raise errors.InterfaceError("timeout must be a number of seconds, or None")
        if progress_interval <= 0:
            raise errors.InterfaceError("progress_interval must be a positive number of seconds")
        self._timeout = timeout
        database.retain()
        self._database: Database | None = database
        self._reader = database.log_reader()
        try:
            materializer = database.materializer
            if resume is not None:
                start, take_snapshot = resume.offset + 1, False
            elif from_offset is None:
                start, take_snapshot = materializer.applied_offset + 1, snapshot
            else:
                start, take_snapshot = from_offset + 1, False
            self._feed = ChangeFeed(
                materializer,
                database.store,
                self._reader,
                None if tables is None else list(tables),
                start,
                snapshot=take_snapshot,
                resume=resume,
                progress_interval=progress_interval,
                snapshot_progress=snapshot_progress,
            )
        except BaseException:
            self.close()
            raise

    @property
    def position(self) -> int | None:
        """The newest offset whose changes are all delivered: resume with it as ``from_offset``.

        None while the snapshot is being delivered.
        """
        return self._feed.position

    @property
    def feed(self) -> ChangeFeed:
        """The change feed underneath (for the publisher, which polls it)."""
        self._check_open()
        return self._feed

    def __iter__(self) -> Iterator[Item]:
        idle_since = time.monotonic()
        while self._database is not None:
            wait = None
            if self._timeout is not None:
                wait = self._timeout - (time.monotonic() - idle_since)
                if wait <= 0:
                    return
            item = self._feed.poll(wait)
            if item is None:
                continue  # the loop ends at the timeout
            yield item
            idle_since = time.monotonic()

    def poll(self, timeout: float | None) -> Item | None:
        """The next item, or None when ``timeout`` seconds passed without one."""
        self._check_open()
        return self._feed.poll(timeout)

    def close(self) -> None:
        """Stop following; releases the log reader and the database."""
        database, self._database = self._database, None
        if database is None:
            return
        feed = getattr(self, "_feed", None)
        if feed is not None:
            feed.close()
        if self._reader is not database.log:
            self._reader.close()
        database.release()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._database is None:
            raise errors.InterfaceError("the subscription is closed")
