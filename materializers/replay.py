"""State digests and full replays: the evidence that state is a function of the log.

:func:`state_digest` hashes what every table holds at the applied offset (definitions,
keys, row bytes), so two nodes, or a node and a fresh replay of its log, can be compared
with one string. :func:`copy_log` seeds an empty directory with another's log; opening
it then applies every record from offset 0.
"""

from __future__ import annotations

import hashlib
import marshal
import time
from collections.abc import Callable
from dataclasses import dataclass

from offsetdb import errors, integrity
from offsetdb.embedded_log import EmbeddedLog
from offsetdb.keys import table_prefix
from offsetdb.materializers import mvcc
from offsetdb.materializers.catalog import CatalogVersion, TableDef
from offsetdb.store import Store, open_store


@dataclass(frozen=True)
class Digest:
    """A state digest: the hash, the offset it describes, and how many rows it covers."""

    sha256: str
    applied_offset: int
    rows: int

    def __str__(self) -> str:
        return f"{self.sha256}  offset={self.applied_offset} rows={self.rows}"


def state_digest(store: Store, catalog: CatalogVersion, snapshot: int) -> Digest:
    """Hash every table's definition and visible rows at ``snapshot``, in key order.

    The certification decisions up to ``snapshot`` (which offsets committed, and the
    SQLSTATE of each abort) are hashed too: nodes that agree on state but not on
    decisions would still be diverging.
    """
    digest = hashlib.sha256()
    rows = 0
    it = store.txns.iter()
    it.seek(b"o")
    while it.valid():
        key = it.key()
        if not key.startswith(b"o") or int.from_bytes(key[1:9], "big") > snapshot:
            break
        _, committed, sqlstate, _ = marshal.loads(it.value())
        digest.update(key + (b"C" if committed else b"A" + (sqlstate or "").encode()))
        it.next()
    if not it.valid():
        integrity.check_iterator(it, store.rocks_path)
    del it
    for table in catalog.tables():
        digest.update(b"table\x00" + table.name.encode() + b"\x00")
        digest.update(mvcc.dumps(table.to_dict()))
        for key, value in mvcc.scan_live(store.data, table_prefix(table.table_id), snapshot):
            digest.update(len(key).to_bytes(4, "big") + key)
            digest.update(len(value).to_bytes(4, "big") + value)
            rows += 1
    return Digest(digest.hexdigest(), snapshot, rows)


def table_digest(store: Store, table: TableDef, snapshot: int) -> Digest:
    """Hash one table's rows at ``snapshot``: equal for equal contents in *any* database.

    Unlike :func:`state_digest` it leaves out what differs between databases holding
    the same rows (table ids, offsets, decisions): a table copied into another database
    (a Debezium source reading this one's CDC topics) has the same table digest. Rows
    of a table with a primary key are hashed in key order with their keys; rows of one
    without (whose hidden keys are offsets) as a sorted multiset.
    """
    digest = hashlib.sha256()
    digest.update(mvcc.dumps([(c.name, c.type.kind.name, c.not_null) for c in table.columns]))
    entries = mvcc.scan_live(store.data, table_prefix(table.table_id), snapshot)
    rows = 0
    if table.has_hidden_key:
        values = sorted(value for _, value in entries)
        for value in values:
            digest.update(len(value).to_bytes(4, "big") + value)
        rows = len(values)
    else:
        for key, value in entries:
            digest.update(len(key).to_bytes(4, "big") + key)
            digest.update(len(value).to_bytes(4, "big") + value)
            rows += 1
    return Digest(digest.hexdigest(), snapshot, rows)


def copy_log(
    source: str, target: str, progress: Callable[[int, int, float], None] | None = None
) -> int:
    """Copy the log of database directory ``source`` into the empty directory ``target``.

    Returns the number of records copied. ``source`` must not be open elsewhere. Every
    record is read through the source's log, so a damaged one stops the copy
    (StorageCorrupted) instead of being copied; the target stores them framed.
    """
    src = open_store(source)
    try:
        dst = open_store(target)
        try:
            src_log = EmbeddedLog(src.db, src.log)
            dst_log = EmbeddedLog(dst.db, dst.log)
            if dst_log.end_offset() != 0:
                raise errors.OperationalError(f"{target} already holds a log; replay needs an empty directory")
            end = src_log.end_offset()
            started = time.monotonic()
            copied = 0
            while copied < end:
                entries = src_log.read(copied, 10_000, timeout=0)
                dst_log.append([entry.value for entry in entries])
                copied += len(entries)
                if progress is not None:
                    progress(copied, end, time.monotonic() - started)
            src_log.close()
            dst_log.close()
            del src_log, dst_log
            return copied
        finally:
            dst.close()
    finally:
        src.close()
