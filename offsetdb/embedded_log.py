"""The embedded log backend: records in the ``log`` column family of the node's RocksDB.

Appends are one WriteBatch written with ``sync`` (fsync of RocksDB's WAL) by default, so
a returned offset survives power loss; ``synchronous="normal"`` skips the fsync and
survives a crash of the process (``kill -9``) but not of the machine, like SQLite's
``synchronous=NORMAL`` in WAL mode.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from rocksdict import Rdict, WriteBatch, WriteOptions

from offsetdb import errors
from offsetdb.keys import U64, log_key
from offsetdb.log import LogEntry

_TAIL_BYTES = 32 * 1024 * 1024


class EmbeddedLog:
    """A :class:`~offsetdb.log.Log` kept in a RocksDB column family beside the state."""

    max_record_bytes: int | None = None  # bounded only by memory

    def __init__(self, db: Rdict, column_family: Rdict, sync: bool = True) -> None:
        self._db = db
        self._cf = column_family
        self._handle = db.get_column_family_handle("log")
        self._sync = sync
        self._write_options = WriteOptions()
        self._write_options.sync = False
        self._append_lock = threading.Lock()
        self._appended = threading.Condition(threading.Lock())
        self._closed = False
        self._end = self._recover_end()
        # The newest records, kept in memory so that the materializer, which reads each
        # record right after it is appended, need not read it back from RocksDB.
        self._tail: OrderedDict[int, bytes] = OrderedDict()
        self._tail_bytes = 0
        self.appends = 0  # append calls (fsyncs) since open: commits / appends = group size

    def _recover_end(self) -> int:
        it = self._cf.iter()
        it.seek_to_last()
        return U64.unpack(it.key())[0] + 1 if it.valid() else 0

    def append(self, records: Sequence[bytes]) -> list[int]:
        """Append atomically and durably; offsets are dense from 0."""
        with self._append_lock:
            if self._closed:
                raise errors.OperationalError("the log is closed")
            start = self._end
            batch = WriteBatch(raw_mode=True)
            batch.set_default_column_family(self._handle)
            for i, record in enumerate(records):
                batch.put(log_key(start + i), record)
            self._db.write(batch, self._write_options)
            if self._sync:
                # rocksdict holds the GIL through a write with sync=True, which would stall
                # every other thread for the whole fsync; flush_wal releases it, so other
                # committers queue up for the next group commit meanwhile.
                self._db.flush_wal(True)
            with self._appended:
                for i, record in enumerate(records):
                    self._tail[start + i] = record
                    self._tail_bytes += len(record)
                while self._tail_bytes > _TAIL_BYTES and len(self._tail) > 1:
                    self._tail_bytes -= len(self._tail.popitem(last=False)[1])
                self._end = start + len(records)
                self.appends += 1
                self._appended.notify_all()
        return list(range(start, start + len(records)))

    def read(self, start: int, max_records: int, timeout: float) -> list[LogEntry]:
        """Records from ``start`` on, waiting up to ``timeout`` for the first."""
        if start >= self._end and timeout > 0:
            with self._appended:
                self._appended.wait_for(lambda: self._end > start or self._closed, timeout)
        end = min(self._end, start + max_records)
        if start >= end:
            return []
        tail = self._tail
        if start in tail and end - 1 in tail:
            try:
                return [LogEntry(offset, tail[offset]) for offset in range(start, end)]
            except KeyError:
                pass  # evicted meanwhile by a concurrent append: read from RocksDB
        it = self._cf.iter()
        it.seek(log_key(start))
        entries = []
        offset = start
        while offset < end and it.valid():
            entries.append(LogEntry(offset, it.value()))
            offset += 1
            it.next()
        if offset != end:
            raise errors.InternalError(f"log has a hole: offset {offset} is missing")
        return entries

    def end_offset(self) -> int:
        """The offset the next append gets."""
        return self._end

    def close(self) -> None:
        """Stop appends and wake readers."""
        with self._appended:
            self._closed = True
            self._appended.notify_all()
