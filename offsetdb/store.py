"""Opening a node's RocksDB: its column families and the lock that makes it single-owner.

The key layout of every column family is documented in :mod:`offsetdb.keys`.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import socket
from dataclasses import dataclass
from typing import IO

from rocksdict import ColumnFamily, DBCompressionType, Options, Rdict

from offsetdb import errors
from offsetdb.keys import U32

COLUMN_FAMILIES = ("log", "data", "index", "txns", "meta")
DISK_FORMAT = 1
_LOCK_FILE = "offsetdb.lock"


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.increase_parallelism(2)
    # LZ4 costs a fraction of Snappy's CPU to compress at a similar ratio, and on a small
    # machine compaction competes with the Python threads for the same cores.
    options.set_compression_type(DBCompressionType.lz4())
    options.set_write_buffer_size(128 * 1024 * 1024)
    return options


@dataclass
class Store:
    """An open RocksDB with offsetdb's column families."""

    path: str
    db: Rdict
    log: Rdict
    data: Rdict
    index: Rdict
    txns: Rdict
    meta: Rdict
    _lock_file: IO[str]

    def handle(self, name: str) -> ColumnFamily:
        """The column family handle for WriteBatch operations."""
        return self.db.get_column_family_handle(name)

    def close(self) -> None:
        """Close RocksDB and release the directory lock.

        RocksDB stays open while any handle (column family, iterator) is referenced, so
        the handles are dropped and collected before the lock is released.
        """
        self.db.close()
        for name in ("log", "data", "index", "txns", "meta", "db"):
            setattr(self, name, None)
        gc.collect()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


def _acquire_lock(path: str) -> IO[str]:
    lock_path = os.path.join(path, _LOCK_FILE)
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown process"
        handle.close()
        raise errors.ObjectInUse(
            f'database directory "{path}" is already open by another process ({holder}); '
            "close it there, or connect through that process"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    handle.flush()
    return handle


def open_store(path: str) -> Store:
    """Open (creating if needed) the RocksDB under ``path``, locked to this process."""
    os.makedirs(path, exist_ok=True)
    lock = _acquire_lock(path)
    try:
        options = _options()
        rocks_path = os.path.join(path, "rocksdb")
        db = Rdict(rocks_path, options, column_families={cf: _options() for cf in COLUMN_FAMILIES})
        cfs = {cf: db.get_column_family(cf) for cf in COLUMN_FAMILIES}
        stored = cfs["meta"].get(b"format")
        if stored is None:
            cfs["meta"].put(b"format", U32.pack(DISK_FORMAT))
        elif U32.unpack(stored)[0] != DISK_FORMAT:
            raise errors.OperationalError(
                f"{path} holds on-disk format {U32.unpack(stored)[0]}; this offsetdb reads "
                f"format {DISK_FORMAT}"
            )
    except BaseException:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        raise
    return Store(path=path, db=db, _lock_file=lock, **cfs)
