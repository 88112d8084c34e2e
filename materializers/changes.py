"""Change data capture: every committed change, in commit order, from a node's replica.

A :class:`ChangeFeed` follows the log *behind* the materializer. It never certifies and
never reads the raw log alone (which also holds aborted attempts, sync markers and
fences): for each offset the materializer has applied it asks the outcome the
materializer recorded there (``txns`` column family, ``"o" offset``), and only for a
committed transaction does it decode the record's row images. So a subscriber sees
exactly the decisions every node made, from any node, in log order::

    log        0:Settings 1:T(create t) 2:T(insert) 3:T(aborted, 40001) 4:Sync 5:T(update)
    outcomes              committed     committed   aborted                committed
    feed                  txn @1        txn @2                             txn @5

Items (see :class:`CommittedTransaction`, :class:`SnapshotChunk`, :class:`Progress`):

- a *snapshot* (optional) first: every row of the chosen tables as it stood at one
  offset ``S`` (the applied offset when the feed started), in table-name and key order,
  op ``r``, in chunks; the first and last rows are marked as Debezium marks them;
- then every committed transaction after ``S`` that touched a chosen table, with its
  changes (op ``c``, ``u``, ``d``; a primary-key change is a ``d`` then a ``c``, as the
  log records it) and its schema changes (CREATE / DROP TABLE);
- :class:`Progress` items when nothing was delivered for a while: "every offset up to
  X is delivered", so a consumer can move its resume point on quiet tables.

Resuming: pass the offset of the last item handled as ``start - 1`` (``from_offset``);
the feed delivers what follows it, without a snapshot. The snapshot reads MVCC state at
``S``, pinned against garbage collection while it runs; the stream reads the log, the
outcomes and the catalog, all kept for the whole history.

Memory: a transaction's changes are a lazy sequence over the decoded record: iterating
decodes the row images table by table and makes one :class:`Change` at a time.
"""

from __future__ import annotations

import datetime as dt
import marshal
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from offsetdb import errors, integrity
from offsetdb.keys import decode_key, hidden_row_key, table_prefix
from offsetdb.log import Log, LogEntry
from offsetdb.materializers import mvcc
from offsetdb.materializers.applier import Materializer, created_table_ids
from offsetdb.materializers.catalog import TableDef
from offsetdb.schemas.codec import decode_images, decode_log_record
from offsetdb.store import Store

_OPS = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}
_EPOCH = dt.datetime(1970, 1, 1)
SNAPSHOT_CHUNK = 1000  # rows per snapshot item


@dataclass(frozen=True, slots=True)
class Change:
    """One changed row.

    ``op`` is Debezium's: ``c`` (insert), ``u`` (update), ``d`` (delete), ``r`` (a row
    of a snapshot). ``key`` holds the primary-key values (a table without a primary key:
    its hidden row id, ``(commit offset, position)``); ``before`` and ``after`` are whole
    rows as the driver returns them (``columns`` names their fields), None where absent.
    ``snapshot`` is Debezium's ``source.snapshot``: ``"false"`` outside a snapshot;
    inside, ``"first"`` (first row of the snapshot), ``"first_in_data_collection"``,
    ``"true"``, ``"last_in_data_collection"``, ``"last"`` (last row of the snapshot).
    """

    table: str
    op: str
    key: tuple[Any, ...]
    before: tuple[Any, ...] | None
    after: tuple[Any, ...] | None
    columns: tuple[str, ...]
    schema_version: int
    snapshot: str = "false"
    table_def: TableDef | None = field(default=None, repr=False, compare=False)
    # The row images in primitive form (DATE as days, TIMESTAMP as microseconds,
    # NUMERIC as text) and the encoded key: what the publisher serializes.
    raw_key: bytes = field(default=b"", repr=False, compare=False)
    raw_before: tuple[Any, ...] | None = field(default=None, repr=False, compare=False)
    raw_after: tuple[Any, ...] | None = field(default=None, repr=False, compare=False)

    def as_dict(self, row: tuple[Any, ...] | None) -> dict[str, Any] | None:
        """``before`` or ``after`` as a dict of column name to value."""
        return None if row is None else dict(zip(self.columns, row, strict=True))


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """A CREATE TABLE or DROP TABLE committed by a transaction.

    A DROP ends the table's stream: nothing of that table follows, unless a table of the
    same name is created again (a new ``table_id``).
    """

    op: str  # "CREATE" or "DROP"
    table: str
    table_id: int
    schema_version: int
    columns: tuple[str, ...]
    table_def: TableDef | None = field(default=None, repr=False, compare=False)


class _Group:
    """One table's writes in a committed record, decoded on demand."""

    __slots__ = ("table", "ops", "keys", "images", "offset")

    def __init__(self, table: TableDef, ops: list[str], keys: list[bytes], images: bytes, offset: int) -> None:
        self.table = table
        self.ops = ops
        self.keys = keys
        self.images = images
        self.offset = offset

    def changes(self) -> Iterator[Change]:
        table = self.table
        _, from_primitive = table.converters()
        rows = iter(decode_images(table, self.images))
        names = table.column_names
        version = table.schema_version
        name = table.name
        offset = self.offset
        for position, (op, key) in enumerate(zip(self.ops, self.keys, strict=True)):
            before = next(rows) if op != "INSERT" else None
            after = next(rows) if op != "DELETE" else None
            raw_key = key or hidden_row_key(offset, position)
            yield Change(
                name,
                _OPS[op],
                decode_key(raw_key),
                None if before is None else from_primitive(before),
                None if after is None else from_primitive(after),
                names,
                version,
                "false",
                table,
                raw_key,
                before,
                after,
            )


class Changes(Sequence[Change]):
    """The changes of one transaction: a sequence made one :class:`Change` at a time.

    ``len()`` and :meth:`counts` need no decoding; iterating decodes the row images
    again each time (nothing is cached, so a 100 k-row transaction is held once, as
    its record).
    """

    def __init__(self, groups: list[_Group]) -> None:
        self._groups = groups
        self._length = sum(len(g.ops) for g in groups)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Change]:
        for group in self._groups:
            yield from group.changes()

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | Sequence[Change]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        for group in self._groups:
            if index < len(group.ops):
                for position, change in enumerate(group.changes()):
                    if position == index:
                        return change
            index -= len(group.ops)
        raise IndexError(index)

    def counts(self) -> dict[str, int]:
        """Changes per table, in the order the tables appear."""
        out: dict[str, int] = {}
        for group in self._groups:
            out[group.table.name] = out.get(group.table.name, 0) + len(group.ops)
        return out


@dataclass(frozen=True)
class CommittedTransaction:
    """A committed transaction: its offset (its place in history), id, time and changes.

    ``commit_time_us`` is the time its session recorded in the log record (so it is the
    same from every node); ``changes`` holds only the chosen tables' rows, in the
    record's order; ``schema_changes`` its CREATE/DROP TABLE of chosen tables.
    """

    offset: int
    txn_id: str
    commit_time_us: int
    changes: Changes
    schema_changes: tuple[SchemaChange, ...] = ()

    @property
    def commit_time(self) -> dt.datetime:
        """The commit time as a naive UTC datetime."""
        return _EPOCH + dt.timedelta(microseconds=self.commit_time_us)


@dataclass(frozen=True)
class SnapshotChunk:
    """Rows of the snapshot at ``offset`` (op ``r``), in table-name and key order.

    ``commit_time_us`` is the commit time of the newest transaction at or below
    ``offset`` (0 for an empty database). ``last`` is True on the snapshot's last chunk.
    """

    offset: int
    commit_time_us: int
    changes: Sequence[Change]
    last: bool


@dataclass(frozen=True)
class Progress:
    """Every offset up to and including ``offset`` is delivered: resume after it."""

    offset: int


Item = CommittedTransaction | SnapshotChunk | Progress


@dataclass(frozen=True)
class SnapshotResume:
    """Where an interrupted snapshot at ``offset`` goes on: after ``key`` of ``table``."""

    offset: int
    table: str
    key: bytes


class ChangeFeed:
    """Committed changes of a node's replica, in log order, optionally after a snapshot.

    Args:
        materializer: the node's materializer (outcomes, catalog, applied offset).
        store: its RocksDB (the snapshot reads MVCC state).
        log: a reader of the log this feed may use alone (on Kafka, its own consumer).
        tables: table names to follow (None: every table, those created later too).
        start: the first offset to deliver after the snapshot (``from_offset + 1``).
        snapshot: deliver a snapshot at ``start - 1`` first.
        resume: continue an interrupted snapshot (``start - 1`` is its offset).
        progress_interval: seconds without an item after which a :class:`Progress` is
            delivered, if the feed moved on meanwhile.
        snapshot_progress: called with (rows done, 0, seconds) during a snapshot.

    """

    def __init__(
        self,
        materializer: Materializer,
        store: Store,
        log: Log,
        tables: Collection[str] | None,
        start: int,
        *,
        snapshot: bool = False,
        resume: SnapshotResume | None = None,
        progress_interval: float = 1.0,
        snapshot_progress: Callable[[int, int, float], None] | None = None,
    ) -> None:
        if start < 0:
            raise errors.InterfaceError(f"a change feed starts at offset 0 or later, not {start}")
        self._materializer = materializer
        self._store = store
        self._log = log
        self._tables = None if tables is None else self._names(materializer, tables, start - 1)
        self._progress_interval = progress_interval
        self._snapshot_progress = snapshot_progress
        self.next_offset = start  # the next log offset to examine (last examined + 1)
        # The newest offset whose changes are all delivered; None until a snapshot ends.
        self._delivered: int | None = None if (snapshot or resume is not None) else start - 1
        self._last_item_at = time.monotonic()
        self._buffer: deque[LogEntry] = deque()  # read from the log, not yet examined
        self._pinned: int | None = None
        self._check_tables(start - 1)
        self._snapshot: Iterator[SnapshotChunk] | None = None
        if snapshot or resume is not None:
            at = start - 1
            materializer.wait_applied(at, None)
            materializer.snapshots.pin(at)  # 72000 if collected already
            self._pinned = at
            self._snapshot = self._snapshot_chunks(at, resume)

    @staticmethod
    def _names(materializer: Materializer, tables: Collection[str], at: int) -> frozenset[str]:
        """Table names as the catalog spells them: exact if so named, else folded to lower case."""
        catalog = materializer.catalog
        known = set(catalog.at(max(at, -1)).names()) | set(catalog.latest().names())
        return frozenset(t if t in known else t.lower() for t in tables)

    def _check_tables(self, at: int) -> None:
        if self._tables is None:
            return
        catalog = self._materializer.catalog
        known = set(catalog.at(max(at, -1)).names()) | set(catalog.latest().names())
        missing = sorted(self._tables - known)
        if missing:
            raise errors.UndefinedTable(f'relation "{missing[0]}" does not exist')

    @property
    def position(self) -> int | None:
        """The newest offset whose changes are all delivered (resume after it).

        None while a snapshot is being delivered: it cannot be resumed by offset.
        """
        return self._delivered

    def close(self) -> None:
        """Release the snapshot's pin (if any) and the log reader."""
        if self._pinned is not None:
            self._materializer.snapshots.unpin(self._pinned)
            self._pinned = None
        self._snapshot = None

    # --- iteration ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[Item]:
        while True:
            item = self.poll(None)
            if item is not None:
                yield item

    def poll(self, timeout: float | None) -> Item | None:
        """The next item, waiting up to ``timeout`` seconds (None: for ever) for one.

        Returns None when nothing was delivered in that time (a :class:`Progress` counts
        as something, and comes after ``progress_interval`` seconds of quiet).
        """
        if self._snapshot is not None:
            chunk = next(self._snapshot, None)
            if chunk is not None:
                return self._delivered_item(chunk, chunk.offset if chunk.last else None)
            self._finish_snapshot()
        deadline = None if timeout is None else time.monotonic() + timeout
        materializer = self._materializer
        while True:
            materializer.check_healthy()
            applied = materializer.applied_offset
            while self.next_offset <= applied:
                item = self._next_from_log(applied)
                if item is not None:
                    return self._delivered_item(item, item.offset)
                if self._progress_due():
                    return self._delivered_item(Progress(self.next_offset - 1), self.next_offset - 1)
                if deadline is not None and not self._buffer and time.monotonic() >= deadline:
                    return None  # what was read already is examined first: it costs no wait
            if self._progress_due():
                return self._delivered_item(Progress(self.next_offset - 1), self.next_offset - 1)
            now = time.monotonic()
            wait = self._progress_interval - (now - self._last_item_at)
            if deadline is not None:
                if now >= deadline:
                    return None
                wait = min(wait, deadline - now)
            materializer.wait_applied(self.next_offset, max(wait, 0.001))

    def _progress_due(self) -> bool:
        return (
            self._delivered is not None
            and self.next_offset - 1 > self._delivered
            and time.monotonic() - self._last_item_at >= self._progress_interval
        )

    def _delivered_item(self, item: Item, offset: int | None) -> Item:
        if offset is not None:
            self._delivered = offset if self._delivered is None else max(self._delivered, offset)
        self._last_item_at = time.monotonic()
        return item

    def _finish_snapshot(self) -> None:
        self._snapshot = None
        if self._pinned is not None:
            self._materializer.snapshots.unpin(self._pinned)
            self._pinned = None

    # --- the stream -----------------------------------------------------------------------

    def _next_from_log(self, applied: int) -> CommittedTransaction | None:
        """Examine the next applied offset; its transaction if it concerns this feed."""
        if not self._buffer:
            self._buffer.extend(self._read(self.next_offset))
        entry = self._buffer.popleft()
        offset = entry.offset
        assert offset == self.next_offset <= applied, (offset, self.next_offset, applied)
        self.next_offset = offset + 1
        outcome = self._materializer.recorded_outcome(offset)
        if outcome is None or not outcome.committed:
            return None  # not a transaction (marker, settings), or aborted, fenced, rejected
        body_type, body = decode_log_record(entry.value)
        if body_type != "Transaction":
            raise errors.InternalError(
                f"offset {offset} has a committed outcome but holds a {body_type} record"
            )
        return self._transaction(offset, body)

    def _read(self, start: int) -> list[LogEntry]:
        """Records from ``start`` on (applied here, so in the log): at least one."""
        for _ in range(30):
            try:
                entries = self._log.read(start, 1000, timeout=1.0)
            except errors.InternalError as e:
                raise errors.SnapshotTooOld(
                    f"the changes after offset {start - 1} cannot be read from the log "
                    f"({e.message}); subscribe again with a snapshot (no from_offset) to "
                    "start from the present state"
                ) from e
            if entries and entries[0].offset == start:
                return entries
            if entries and entries[0].offset > start:
                raise errors.SnapshotTooOld(
                    f"the log no longer holds offset {start} (the oldest record read is "
                    f"{entries[0].offset}); subscribe again with a snapshot (no from_offset)"
                )
        raise errors.ConnectionFailure(
            f"the log gave no record at offset {start}, which this node has applied, within "
            "30 reads; is the broker reachable?"
        )

    def _transaction(self, offset: int, body: dict[str, Any]) -> CommittedTransaction | None:
        catalog = self._materializer.catalog
        before = catalog.at(offset - 1)
        after = catalog.at(offset)
        wanted = self._tables
        ids = created_table_ids(offset, body["ddl"])
        schema_changes = []
        for ddl in body["ddl"]:
            name = ddl["table"]
            if wanted is not None and name not in wanted:
                continue
            if ddl["op"] == "CREATE_TABLE":
                table = after.get(name)
                if table is None or table.table_id != ids.get(name):
                    continue  # created and dropped by this same transaction
                schema_changes.append(
                    SchemaChange(
                        "CREATE", name, table.table_id, table.schema_version, table.column_names, table
                    )
                )
            else:
                dropped = before.by_id(ddl["table_id"])
                if dropped is None:
                    continue  # created earlier in this same transaction
                schema_changes.append(
                    SchemaChange(
                        "DROP", name, dropped.table_id, dropped.schema_version, dropped.column_names,
                        dropped,
                    )
                )
        groups = []
        for group in body["tables"]:
            name = group["table"]
            if wanted is not None and name not in wanted:
                continue
            table_id = group["table_id"]
            table = after.by_id(ids[name]) if table_id == 0 else before.by_id(table_id)
            if table is None:
                raise errors.InternalError(
                    f'the committed transaction at offset {offset} writes "{name}", which the '
                    "catalog does not hold there"
                )
            groups.append(_Group(table, group["ops"], group["keys"], group["images"], offset))
        if not groups and not schema_changes:
            return None
        return CommittedTransaction(
            offset, body["txn_id"], body["client_time_us"], Changes(groups), tuple(schema_changes)
        )

    # --- the snapshot ---------------------------------------------------------------------

    def _snapshot_chunks(self, at: int, resume: SnapshotResume | None) -> Iterator[SnapshotChunk]:
        """The snapshot's rows in chunks, marked as Debezium marks them.

        One row of lookahead tells whether a row is the last of its table (or of all);
        a resumed snapshot marks no row "first": those were delivered before.
        """
        catalog = self._materializer.catalog.at(at)
        tables = [t for t in catalog.tables() if self._tables is None or t.name in self._tables]
        if resume is not None:
            names = [t.name for t in tables]
            if resume.table not in names:
                raise errors.InternalError(
                    f'cannot resume the snapshot at offset {at}: table "{resume.table}" is not in it'
                )
            tables = tables[names.index(resume.table):]
        commit_time = self._commit_time_at(at)
        started = time.monotonic()
        done = 0
        chunk: list[Change] = []
        previous: Change | None = None
        previous_first_in_table = False
        first_of_all = resume is None
        for number, table in enumerate(tables):
            after_key = resume.key if (resume is not None and number == 0) else None
            first_in_table = after_key is None
            for change in self._table_rows(table, at, after_key):
                if previous is not None:
                    last_in_table = previous.table != change.table
                    chunk.append(_marked(previous, previous_first_in_table, last_in_table, False))
                    if len(chunk) >= SNAPSHOT_CHUNK:
                        yield SnapshotChunk(at, commit_time, chunk, False)
                        done += len(chunk)
                        chunk = []
                        if self._snapshot_progress is not None:
                            self._snapshot_progress(done, 0, time.monotonic() - started)
                previous = change
                previous_first_in_table = first_in_table
                if first_of_all:
                    previous = _with_marker(change, "first")
                first_in_table = first_of_all = False
        if previous is not None:
            chunk.append(_marked(previous, previous_first_in_table, True, True))
        yield SnapshotChunk(at, commit_time, chunk, True)

    def _table_rows(self, table: TableDef, at: int, after_key: bytes | None) -> Iterator[Change]:
        _, from_primitive = table.converters()
        prefix = table_prefix(table.table_id)
        lo = b"" if after_key is None else after_key + b"\x00"  # keys are prefix-free
        names = table.column_names
        for key, value in mvcc.scan_live(self._store.data, prefix, at, lo):
            raw = mvcc_row(value)
            yield Change(
                table.name, "r", decode_key(key), None, from_primitive(raw), names,
                table.schema_version, "true", table, key, None, raw,
            )

    def _commit_time_at(self, at: int) -> int:
        """The commit time of the newest committed transaction at or below ``at``."""
        it = self._store.txns.iter()
        it.seek_for_prev(b"o" + at.to_bytes(8, "big"))
        while it.valid() and it.key()[:1] == b"o":
            offset = int.from_bytes(it.key()[1:9], "big")
            outcome = self._materializer.recorded_outcome(offset)
            if outcome is not None and outcome.committed:
                entries = self._log.read(offset, 1, timeout=5.0)
                if entries and entries[0].offset == offset:
                    _, body = decode_log_record(entries[0].value)
                    return int(body["client_time_us"])
                return 0
            it.prev()
        if not it.valid():
            integrity.check_iterator(it, self._store.rocks_path)  # the start, or damage?
        return 0


def mvcc_row(value: bytes) -> tuple[Any, ...]:
    """A stored row (without its live marker) in primitive form."""
    row: tuple[Any, ...] = marshal.loads(value)
    return row


def _marked(change: Change, first_in_table: bool, last_in_table: bool, last: bool) -> Change:
    """Debezium's marker for a snapshot row: "last" wins, then "first", then the table's."""
    if last:
        return _with_marker(change, "last")
    if change.snapshot == "first":
        return change
    if first_in_table:
        return _with_marker(change, "first_in_data_collection")
    if last_in_table:
        return _with_marker(change, "last_in_data_collection")
    return change


def _with_marker(change: Change, marker: str) -> Change:
    if change.snapshot == marker:
        return change
    return Change(
        change.table, change.op, change.key, change.before, change.after, change.columns,
        change.schema_version, marker, change.table_def, change.raw_key, change.raw_before,
        change.raw_after,
    )
