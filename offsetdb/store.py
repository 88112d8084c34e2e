"""Opening a node's RocksDB: its column families and the lock that makes it single-owner.

The key layout of every column family is documented in :mod:`offsetdb.keys`. What is
verified when (checksums at open and on every read) is in :mod:`offsetdb.integrity` and
docs/integrity.md; the options that make RocksDB verify are set here.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import re
import socket
from dataclasses import dataclass
from typing import IO

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    ChecksumType,
    ColumnFamily,
    DBCompressionType,
    DBRecoveryMode,
    Options,
    Rdict,
    ReadOptions,
)

from offsetdb import close_record, errors, integrity
from offsetdb.keys import U32

COLUMN_FAMILIES = ("log", "data", "index", "txns", "meta")
# On-disk format 2: embedded log records are stored with their CRC (offsetdb.embedded_log),
# from the offset meta "log_checksums_from" names. Format 1 (bare records) is still read,
# and marked 2 when first opened for writing; an older offsetdb refuses format 2 instead
# of taking framed records for undecodable ones and skipping them.
DISK_FORMAT = 2
_READABLE_FORMATS = (1, 2)
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
    # Damage must be found, never read as data (docs/integrity.md). Paranoid checks make
    # a failed background write or a damaged file stop the database instead of being
    # worked around; every SST block carries an XXH3 checksum (RocksDB 9's default,
    # stated so that it stays so), verified on every read (read_options below).
    options.set_paranoid_checks(True)
    table = BlockBasedOptions()
    table.set_checksum_type(ChecksumType.xxh3())
    options.set_block_based_table_factory(table)
    # WAL replay at open. Point-in-time recovery (RocksDB's default) stops quietly at the
    # first damaged record and drops every acknowledged commit after it. Absolute
    # consistency also refuses the torn last record a crash can leave, which was never
    # acknowledged, so a machine could not restart after losing power. Tolerating a
    # corrupted *tail* is the one mode that refuses a damaged record anywhere (checksum
    # mismatch: open fails, naming the WAL) and accepts only an incomplete last record.
    options.set_wal_recovery_mode(DBRecoveryMode.tolerate_corrupted_tail_records())
    return options


def read_options() -> ReadOptions:
    """Options of every read: verify each block's checksum as it is read from a file."""
    options = ReadOptions()
    options.set_verify_checksums(True)
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
    read_only: bool = False

    @property
    def rocks_path(self) -> str:
        """The RocksDB directory inside the data directory."""
        return os.path.join(self.path, "rocksdb")

    def raise_if_damaged(self) -> None:
        """Refuse work once damage was found in this store (see :mod:`offsetdb.integrity`)."""
        integrity.raise_if_damaged(self.rocks_path)

    def handle(self, name: str) -> ColumnFamily:
        """The column family handle for WriteBatch operations."""
        return self.db.get_column_family_handle(name)

    def close(self) -> None:
        """Close RocksDB and release the directory lock.

        RocksDB stays open while any handle (column family, iterator) is referenced, so
        the handles are dropped and collected before the lock is released. Damage that
        RocksDB meets while closing (a background compaction reading a damaged block, say)
        is raised as StorageCorrupted once everything is released.
        """
        damage: errors.Error | None = None
        try:
            self.db.close()
            if not self.read_only:
                close_record.write(self.path, self.rocks_path)
        except Exception as e:
            damage = integrity.from_rocksdb(e, self.rocks_path)
            if damage is None:
                raise
        finally:
            integrity.unregister(self.rocks_path)
            for name in ("log", "data", "index", "txns", "meta", "db"):
                setattr(self, name, None)
            gc.collect()
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
        if damage is not None:
            raise damage


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


def _column_family_of(cfs: dict[str, Rdict], file_number: int) -> str | None:
    """The column family that SST file ``file_number`` belongs to (None if no live one)."""
    pattern = re.compile(rf"^\s*{file_number}:", re.MULTILINE)
    for name, cf in cfs.items():
        if pattern.search(cf.property_value("rocksdb.sstables") or ""):
            return name
    return None


def _open_rocksdb(path: str, options: Options, families: dict[str, Options], read_only: bool) -> Rdict:
    access = AccessType.read_only() if read_only else AccessType.read_write()
    try:
        return Rdict(path, options, column_families=families, access_type=access)
    except Exception as e:
        if "lock hold by current process" not in str(e):
            raise
    # This process closed the store, but an exception's frames (a failed open, a damaged
    # read) still hold a RocksDB handle in a reference cycle: collecting it closes it.
    gc.collect()
    return Rdict(path, options, column_families=families, access_type=access)


def open_store(path: str, read_only: bool = False) -> Store:
    """Open (creating if needed) the RocksDB under ``path``, locked to this process.

    Damage RocksDB finds while opening (a MANIFEST, CURRENT or WAL record that fails its
    checksum, an SST file of the wrong size or with a damaged footer) raises
    StorageCorrupted naming the file. ``read_only`` opens an existing database without
    writing anything to it (``offsetdb check``); the WAL is replayed in memory only.
    """
    if not read_only:
        os.makedirs(path, exist_ok=True)
    elif not os.path.isdir(os.path.join(path, "rocksdb")):
        raise errors.OperationalError(f"{path} holds no offsetdb database", "58P01")
    lock = _acquire_lock(path)
    rocks_path = os.path.join(path, "rocksdb")
    try:
        integrity.register(rocks_path, None)
        # A MANIFEST cut short after a clean close would open quietly, minus its newest
        # files: checked against what the close recorded, before RocksDB reads it.
        close_record.verify(path, rocks_path)
        options = _options()
        families = {cf: _options() for cf in COLUMN_FAMILIES}
        try:
            db = _open_rocksdb(rocks_path, options, families, read_only)
        except Exception as e:
            converted = integrity.from_rocksdb(e, rocks_path, at_open=True)
            if converted is None:
                raise
            raise converted from e
        db.set_read_options(read_options())
        cfs = {cf: db.get_column_family(cf) for cf in COLUMN_FAMILIES}
        for cf in cfs.values():
            cf.set_read_options(read_options())
        integrity.register(rocks_path, lambda number: _column_family_of(cfs, number))
        if not read_only:
            close_record.consume(path)
        stored = integrity.get(cfs["meta"], b"format")
        found = None if stored is None else U32.unpack(stored)[0]
        if found is not None and found not in _READABLE_FORMATS:
            raise errors.OperationalError(
                f"{path} holds on-disk format {found}; this offsetdb reads formats "
                f"{', '.join(map(str, _READABLE_FORMATS))}: upgrade offsetdb to open it"
            )
        if found != DISK_FORMAT and not read_only:
            cfs["meta"].put(b"format", U32.pack(DISK_FORMAT))
    except BaseException:
        integrity.unregister(rocks_path)  # the registry's reference keeps RocksDB open
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        raise
    return Store(path=path, db=db, _lock_file=lock, read_only=read_only, **cfs)
