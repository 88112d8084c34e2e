r"""Multi-version rows in RocksDB: every write is a new version keyed by its offset.

Versions of a row sit next to each other, newest first (``table | key | ~offset``, see
:mod:`offsetdb.keys`)::

    t=7 | (id=1) | ~42  -> live  {id: 1, balance: 90}     <- newest, written at offset 42
    t=7 | (id=1) | ~17  -> live  {id: 1, balance: 100}
    t=7 | (id=2) | ~30  -> tombstone                        <- deleted at offset 30
    t=7 | (id=2) | ~12  -> live  {id: 2, balance: 5}

A read at snapshot ``S`` sees, for each key, the newest version written at an offset
``<= S``; a tombstone there means "no row". Versions are only ever added by the
materializer, in log order, and a snapshot is only handed out once every version at or
below it is written, so reads at ``S`` never change. Superseded versions older than
the oldest snapshot still allowed are removed by :func:`collect_garbage`.

Every read checks where its RocksDB iterator stopped (:mod:`offsetdb.integrity`): an
iterator meeting a damaged block stops as if at the end, and only its status tells the
two apart, so a read of damaged data raises StorageCorrupted instead of returning less.

Values: ``b"\x01" + marshal(row in primitive form, format 2)`` for a live row, ``b"\x00"`` for a
tombstone. Unique-constraint entries in the ``index`` column family are versioned the
same way, with the row's primary key as value.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterator
from typing import Any, cast

from rocksdict import Rdict

from offsetdb import integrity
from offsetdb.keys import MAX_U64, U64, inverted, prefix_end
from offsetdb.store import read_options

LIVE = b"\x01"
TOMBSTONE = b"\x00"

Version = tuple[int, bytes | None]  # (offset written, value without marker; None: deleted)


# marshal format 2 has no back-references, so equal rows always encode to equal bytes
# (later formats share repeated objects by identity, which varies between processes).
MARSHAL_VERSION = 2


def dumps(value: Any) -> bytes:
    """Deterministic ``marshal`` encoding of a primitive value (row, dict, tuple)."""
    return marshal.dumps(value, MARSHAL_VERSION)


def encode_row(row: tuple[Any, ...]) -> bytes:
    """A live version's value: the row in primitive form."""
    return LIVE + marshal.dumps(row, MARSHAL_VERSION)


class PointReader:
    """Point lookups of versions through one RocksDB iterator, reused for every lookup.

    A RocksDB iterator reads the database as it was when the iterator was created. That
    is exactly right for MVCC reads at a snapshot ``S`` taken before it (every version
    at or below ``S`` is already written and never changes), and for certification at
    ``C`` when created after ``C - 1`` was applied; reusing it saves creating one per
    lookup. It pins the files it reads, so holders keep it only for one transaction or
    one record.
    """

    __slots__ = ("_cf", "_it", "_default")

    def __init__(self, cf: Rdict, snapshot: int = MAX_U64) -> None:
        self._cf = cf
        self._it = cf.iter()
        # Snapshot -1 (the empty database) sees nothing: seek past every version.
        self._default = inverted(snapshot) if snapshot >= 0 else b"\xff" * 9

    def _seek(self, prefix: bytes, snapshot: int | None) -> tuple[bytes, bytes] | None:
        """(full key, value) of the newest version of ``prefix`` visible, or None."""
        it = self._it
        it.seek(prefix + (self._default if snapshot is None else inverted(snapshot)))
        if not it.valid():
            integrity.check_iterator(it, self._cf)  # the end, or a damaged block?
            return None
        found = it.key()
        if len(found) != len(prefix) + 8 or not found.startswith(prefix):
            return None
        return found, it.value()

    def latest(self, prefix: bytes, snapshot: int | None = None) -> Version | None:
        """The newest version of entry ``prefix`` (``table | key``) at or below the snapshot.

        Returns ``(offset, value)`` with value None for a tombstone, or None if no version.
        """
        hit = self._seek(prefix, snapshot)
        if hit is None:
            return None
        found, value = hit
        offset = MAX_U64 - U64.unpack(found[-8:])[0]
        return offset, (None if value[:1] == TOMBSTONE else value[1:])

    def live(self, prefix: bytes, snapshot: int | None = None) -> bytes | None:
        """The value (without its marker) of the entry visible at the snapshot, or None."""
        hit = self._seek(prefix, snapshot)
        if hit is None or hit[1][:1] == TOMBSTONE:
            return None
        return hit[1][1:]


def scan_live(
    cf: Rdict, table_prefix: bytes, snapshot: int, lo: bytes = b"", hi: bytes | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` of every entry under ``table_prefix`` visible at ``snapshot``.

    In key order; ``key`` is without the table prefix and version suffix, ``value``
    without its marker. ``lo``/``hi`` bound the keys (inclusive/exclusive).
    """
    options = read_options()
    upper = table_prefix + hi if hi is not None else prefix_end(table_prefix)
    if upper is not None:
        options.set_iterate_upper_bound(upper)
    visible_from = inverted(snapshot)
    start = len(table_prefix)
    current: bytes | None = None
    # items() hands over (key, value) in one call per entry, where an iterator needs
    # four (valid, key, value, next): the difference is most of a scan's cost.
    # Raw mode: keys and values are bytes, whatever rocksdict's stubs allow for.
    first = table_prefix + lo
    entries = cast("Iterator[tuple[bytes, bytes]]", cf.items(from_key=first, read_opt=options))
    full = b""
    for full, value in entries:
        key = full[start:-8]
        if key != current and full[-8:] >= visible_from:
            # The first version at or below the snapshot is the one this reader sees;
            # older versions of the same key follow and are skipped.
            current = key
            if value[:1] != TOMBSTONE:
                yield key, value[1:]
    _check_scan_end(cf, options, first, full)


def _check_scan_end(cf: Rdict, options: Any, first: bytes, last: bytes) -> None:
    """Raise if a scan that stopped after ``last`` stopped on damage, not at its end.

    ``items()`` ends quietly when RocksDB meets a damaged block and keeps no status to
    ask, so a second iterator resumes where it stopped, reads the same (immutable)
    blocks, and has a status. One seek per scan. (It may see entries written since the
    scan began; only its status counts.)
    """
    it = cf.iter(options)
    if last:
        it.seek(last)
        if it.valid():
            it.next()
    else:
        it.seek(first)
    integrity.check_iterator(it, cf)


def collect_garbage(
    cf: Rdict, horizon: int, write: Any, table_prefixes: list[bytes] | None = None
) -> int:
    """Delete versions that no snapshot at or above ``horizon`` can see.

    For each key, the newest version at or below ``horizon`` stays (readers at
    ``horizon`` need it) unless it is a tombstone, and every older version goes.
    ``write(keys)`` deletes a list of full keys; returns how many were deleted.
    """
    horizon_bytes = inverted(horizon)
    doomed: list[bytes] = []
    deleted = 0
    prefixes = table_prefixes if table_prefixes is not None else [b""]
    for prefix in prefixes:
        options = read_options()
        upper = prefix_end(prefix) if prefix else None
        if upper is not None:
            options.set_iterate_upper_bound(upper)
        it = cf.iter(options)
        it.seek(prefix)
        current: bytes | None = None
        while it.valid():
            full = it.key()
            entry = full[:-8]
            if full[-8:] >= horizon_bytes:
                if entry != current:
                    current = entry
                    if it.value()[:1] == TOMBSTONE:
                        doomed.append(full)
                else:
                    doomed.append(full)
            if len(doomed) >= 10_000:
                write(doomed)
                deleted += len(doomed)
                doomed = []
            it.next()
        integrity.check_iterator(it, cf)
    if doomed:
        write(doomed)
        deleted += len(doomed)
    return deleted
