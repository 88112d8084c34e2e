"""Garbage collection of row versions no snapshot can read any more.

The *horizon* is the oldest snapshot still allowed: the newest applied offset minus
``history_retention``, and never above the snapshot of an open transaction (they pin
theirs in :class:`SnapshotRegistry`). Below the horizon only the newest version of each
row is needed, and not even that when it is a tombstone. A transaction that asks to read
below the horizon is refused (72000) rather than shown a history with holes.

Collection runs on a background thread once enough versions were superseded, so it never
holds up the apply path; it only deletes versions below the horizon, which the
materializer never writes again, so the two need no lock between them.
"""

from __future__ import annotations

import threading
from collections import Counter

from rocksdict import WriteBatch

from offsetdb import errors
from offsetdb.keys import prefix_end, table_prefix
from offsetdb.materializers import mvcc
from offsetdb.store import Store


class SnapshotRegistry:
    """Snapshots pinned by open transactions, so collection leaves them intact."""

    def __init__(self) -> None:
        self._pins: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.horizon = -1  # every offset below this may have been collected

    def pin(self, snapshot: int) -> None:
        """Keep ``snapshot`` readable until :meth:`unpin`; 72000 if already collected."""
        with self._lock:
            if snapshot < self.horizon:
                raise errors.SnapshotTooOld(
                    f"snapshot at offset {snapshot} is older than the retained history "
                    f"(versions below offset {self.horizon} were garbage-collected)"
                )
            self._pins[snapshot] += 1

    def unpin(self, snapshot: int) -> None:
        """Release one pin of ``snapshot``."""
        with self._lock:
            self._pins[snapshot] -= 1
            if self._pins[snapshot] <= 0:
                del self._pins[snapshot]

    def advance(self, wanted: int) -> int:
        """Move the horizon up to ``wanted``, but not past a pinned snapshot."""
        with self._lock:
            oldest = min(self._pins) if self._pins else wanted
            self.horizon = max(self.horizon, min(wanted, oldest))
            return self.horizon


class GarbageCollector:
    """Collects superseded versions in the background when enough accumulate."""

    def __init__(self, store: Store, registry: SnapshotRegistry, retention: int, threshold: int = 50_000) -> None:
        self._store = store
        self._registry = registry
        self.retention = retention
        self._threshold = threshold
        self._superseded = 0
        self._dirty: set[int] = set()
        self._dropped: dict[int, int] = {}  # table id -> offset of its DROP
        self._running = threading.Lock()
        self._data_cf = store.handle("data")
        self._index_cf = store.handle("index")

    def note_writes(self, table_id: int, superseded: int) -> None:
        """The materializer applied ``superseded`` updates or deletes to ``table_id``."""
        if superseded:
            self._superseded += superseded
            self._dirty.add(table_id)

    def note_drop(self, table_id: int, offset: int) -> None:
        """Table ``table_id`` was dropped at ``offset``: its rows go once below the horizon."""
        self._dropped[table_id] = offset
        self._superseded += self._threshold  # worth a pass soon

    def maybe_collect(self, applied_offset: int) -> None:
        """Start a collection pass in the background if enough garbage accumulated."""
        if self._superseded < self._threshold or self._running.locked():
            return
        self._superseded = 0
        tables, self._dirty = self._dirty, set()
        horizon = self._registry.advance(applied_offset - self.retention)
        threading.Thread(
            target=self.collect, args=(horizon, tables), name="offsetdb-gc", daemon=True
        ).start()

    def wait_idle(self) -> None:
        """Wait for a running collection pass to finish."""
        with self._running:
            pass

    def collect(self, horizon: int, tables: set[int] | None = None) -> int:
        """Delete versions invisible at and above ``horizon``; returns how many."""
        if horizon < 0:
            return 0
        with self._running:
            data, index = self._store.data, self._store.index
            deleted = 0
            prefixes = None if tables is None else [table_prefix(t) for t in sorted(tables)]

            def delete(cf_handle: object) -> object:
                def write(keys: list[bytes]) -> None:
                    batch = WriteBatch(raw_mode=True)
                    for key in keys:
                        batch.delete(key, cf_handle)  # type: ignore[arg-type]
                    self._store.db.write(batch)

                return write

            deleted += mvcc.collect_garbage(data, horizon, delete(self._data_cf), prefixes)
            deleted += mvcc.collect_garbage(index, horizon, delete(self._index_cf), prefixes)
            for table_id, dropped_at in list(self._dropped.items()):
                if dropped_at <= horizon:
                    start = table_prefix(table_id)
                    end = prefix_end(start)
                    assert end is not None
                    batch = WriteBatch(raw_mode=True)
                    batch.delete_range(start, end, self._data_cf)
                    batch.delete_range(start, end, self._index_cf)
                    self._store.db.write(batch)
                    del self._dropped[table_id]
            return deleted
