"""The embedded log backend: records in the ``log`` column family of the node's RocksDB.

Appends are one WriteBatch written with ``sync`` (fsync of RocksDB's WAL) by default, so
a returned offset survives power loss; ``synchronous="normal"`` skips the fsync and
survives a crash of the process (``kill -9``) but not of the machine, like SQLite's
``synchronous=NORMAL`` in WAL mode.

Each record is stored *framed*: a CRC-32 of its offset and bytes, then the bytes
(:func:`frame`). RocksDB checksums its blocks too, but only from the moment it writes
them; the frame is computed when the record is appended and checked whenever it is read
back (catch-up, replay, ``offsetdb check``), so a record damaged anywhere on the way, or
found at another offset than its own, is refused instead of applied. A record that fails
its frame is this node's damage (StorageCorrupted, the materializer stops), never a
"record that does not decode", which every node would reject alike and move past.

Databases written before frames existed hold unframed records. The first offset that is
framed is kept in ``meta`` under ``log_checksums_from`` (0 for a log created framed;
written when a log without it is first opened), so which records must carry a frame is
never read from the record itself, where one damaged byte could change the answer.
Records below it are read as they are, checked by RocksDB's block checksums only.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence

from rocksdict import Rdict, WriteBatch, WriteOptions

from offsetdb import errors, integrity
from offsetdb.keys import U32, U64, log_key
from offsetdb.log import LogEntry

_TAIL_BYTES = 32 * 1024 * 1024
CHECKSUMS_FROM_KEY = b"log_checksums_from"  # in meta: the first framed offset
_FRAME = U32.size


def frame(offset: int, record: bytes) -> bytes:
    """The stored form of ``record`` at ``offset``: CRC-32 of offset and record, then record."""
    return U32.pack(zlib.crc32(record, zlib.crc32(log_key(offset)))) + record


def unframe(offset: int, stored: bytes, rocks_dir: str) -> bytes:
    """The record in ``stored`` (read at ``offset``), raising StorageCorrupted if damaged."""
    if len(stored) < _FRAME or U32.unpack_from(stored)[0] != zlib.crc32(
        memoryview(stored)[_FRAME:], zlib.crc32(log_key(offset))
    ):
        raise integrity.damaged(
            rocks_dir,
            f"log record {offset} ({len(stored)} bytes) does not match its checksum",
            column_family="log",
        )
    return stored[_FRAME:]


def checksums_from(meta: Rdict) -> int | None:
    """The first offset stored framed, or None for a log never opened since frames exist."""
    stored = integrity.get(meta, CHECKSUMS_FROM_KEY)
    return None if stored is None else U64.unpack(stored)[0]


class EmbeddedLog:
    """A :class:`~offsetdb.log.Log` kept in a RocksDB column family beside the state.

    ``read_only``: the store is open read-only (``offsetdb check``); nothing is written.
    """

    max_record_bytes: int | None = None  # bounded only by memory

    def __init__(
        self, db: Rdict, column_family: Rdict, sync: bool = True, read_only: bool = False
    ) -> None:
        self._db = db
        self._cf = column_family
        self._handle = db.get_column_family_handle("log")
        self._sync = sync
        self._rocks_dir = db.path()
        self._write_options = WriteOptions()
        self._write_options.sync = False
        self._append_lock = threading.Lock()
        self._appended = threading.Condition(threading.Lock())
        self._closed = False
        self._end = self._recover_end()
        meta = db.get_column_family("meta")
        framed_from = checksums_from(meta)
        if framed_from is None:
            framed_from = self._end  # older records are unframed: see the module doc
            if not read_only:
                meta.put(CHECKSUMS_FROM_KEY, U64.pack(framed_from))
        self._framed_from = framed_from
        # The newest records, kept in memory so that the materializer, which reads each
        # record right after it is appended, need not read it back from RocksDB.
        self._tail: OrderedDict[int, bytes] = OrderedDict()
        self._tail_bytes = 0
        self.appends = 0  # append calls (fsyncs) since open: commits / appends = group size

    def _recover_end(self) -> int:
        it = self._cf.iter()
        it.seek_to_last()
        if not it.valid():
            integrity.check_iterator(it, self._rocks_dir)  # empty, or the last block damaged
            return 0
        return U64.unpack(it.key())[0] + 1

    def append(self, records: Sequence[bytes]) -> list[int]:
        """Append atomically and durably; offsets are dense from 0."""
        with self._append_lock:
            if self._closed:
                raise errors.OperationalError("the log is closed")
            # Nothing is appended to a store known to be damaged: the commit fails whole.
            integrity.raise_if_damaged(self._rocks_dir)
            start = self._end
            batch = WriteBatch(raw_mode=True)
            batch.set_default_column_family(self._handle)
            for i, record in enumerate(records):
                batch.put(log_key(start + i), frame(start + i, record))
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
        framed_from, rocks_dir = self._framed_from, self._rocks_dir
        while offset < end and it.valid():
            if it.key() != log_key(offset):
                break
            stored = it.value()
            record = unframe(offset, stored, rocks_dir) if offset >= framed_from else stored
            entries.append(LogEntry(offset, record))
            offset += 1
            it.next()
        if offset != end:
            if not it.valid():
                integrity.check_iterator(it, rocks_dir)
            raise integrity.damaged(
                rocks_dir,
                f"the log has a hole: offset {offset} is missing, the log ends at {end}",
                column_family="log",
            )
        return entries

    def end_offset(self) -> int:
        """The offset the next append gets."""
        return self._end

    def close(self) -> None:
        """Stop appends and wake readers."""
        with self._appended:
            self._closed = True
            self._appended.notify_all()
