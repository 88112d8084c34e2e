"""The materializer: reads the log in order, certifies each transaction, applies it.

Contract (what every node relies on):

- Records are applied strictly in offset order; applying offset ``n`` asserts
  ``n == next_offset`` first (both logs are dense: see :mod:`offsetdb.kafka_log`).
- Everything one record changes (row versions, unique-index entries, catalog entries,
  the transaction's outcome) and the new ``next_offset`` go into one RocksDB WriteBatch,
  so a crash at any instant leaves either all of it or none, and a restart resumes at
  exactly the first record not applied.
- Certification (:mod:`offsetdb.materializers.certifier`) decides from the log and the
  state at ``n - 1`` only; an abort is a deterministic outcome, recorded like a commit.
  Any other error while applying is not deterministic: the materializer stops and the
  database refuses further work rather than diverge from other replicas.
- Damage to this node's files (a RocksDB block or a log record failing its checksum,
  :mod:`offsetdb.integrity`) is such an error: never an outcome, always a stop.
"""

from __future__ import annotations

import logging
import marshal
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rocksdict import WriteBatch

from offsetdb import errors, integrity
from offsetdb.config import Config
from offsetdb.keys import (
    CATALOG_TABLE_ID,
    U64,
    decode_key,
    describe_key,
    encode_key,
    hidden_row_key,
    index_prefix,
    table_prefix,
    u64,
    version_key,
)
from offsetdb.log import Log, LogEntry
from offsetdb.materializers import mvcc
from offsetdb.materializers.catalog import Catalog, CatalogVersion, TableDef
from offsetdb.materializers.certifier import CertificationWindow, Predicate
from offsetdb.materializers.gc import GarbageCollector, SnapshotRegistry
from offsetdb.schemas.codec import decode_images, decode_log_record
from offsetdb.store import Store

_log = logging.getLogger(__name__)

NEXT_OFFSET_KEY = b"next_offset"
# Test-only: certification checks to skip ("read-write", "write-write"), so that the
# history checker can be shown to catch the anomalies certification exists to prevent.
# Never set it on a database you care about: skipped checks commit anomalies for good.
UNSAFE_SKIP_CHECKS_ENV = "OFFSETDB_UNSAFE_SKIP_CERTIFICATION"
_SKIPPABLE_CHECKS = frozenset({"read-write", "write-write"})


def _skipped_checks() -> frozenset[str]:
    """The checks the test-only switch turns off; unknown names are refused."""
    raw = os.environ.get(UNSAFE_SKIP_CHECKS_ENV, "")
    skipped = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = skipped - _SKIPPABLE_CHECKS
    if unknown:
        raise errors.InterfaceError(
            f"{UNSAFE_SKIP_CHECKS_ENV} names unknown checks {sorted(unknown)}; "
            f"known: {sorted(_SKIPPABLE_CHECKS)}"
        )
    if skipped:
        _log.warning(
            "certification is weakened (%s skipped) by %s: this node can commit anomalies",
            ", ".join(sorted(skipped)), UNSAFE_SKIP_CHECKS_ENV,
        )
    return skipped
SETTINGS_KEY = b"log_settings"  # the DatabaseSettings record that holds, once applied


@dataclass(frozen=True, slots=True)
class Outcome:
    """What certification decided for the transaction at ``offset``."""

    offset: int
    txn_id: str
    committed: bool
    sqlstate: str | None = None
    message: str | None = None

    def raise_if_aborted(self) -> None:
        """Raise the error that aborted the transaction, if it did."""
        if self.committed:
            return
        error_class = _ERRORS_BY_STATE.get(self.sqlstate or "", errors.SerializationFailure)
        raise error_class(self.message or "transaction aborted", self.sqlstate)


_ERRORS_BY_STATE: dict[str, type[errors.Error]] = {
    "40001": errors.SerializationFailure,
    "72000": errors.SnapshotTooOld,
    "23505": errors.UniqueViolation,
    "23502": errors.NotNullViolation,
    "42P07": errors.DuplicateTable,
    "42P01": errors.UndefinedTable,
    "08007": errors.CommitOutcomeUnknown,
    "40003": errors.TransactionIdReused,
}


@dataclass(slots=True)
class _TableOps:
    """One table's writes in a transaction, decoded."""

    table: TableDef
    ops: list[str]
    keys: list[bytes]
    befores: list[tuple[Any, ...] | None]
    afters: list[tuple[Any, ...] | None]
    created_here: bool  # the table was created by this same transaction


_MAX_CREATES = 2**16 - 1


def created_table_ids(offset: int, ddl: list[dict[str, Any]]) -> dict[str, int]:
    """Ids of the tables created by the record at ``offset``, by name.

    The ``n``-th CREATE TABLE of the record gets ``offset * 2**16 + n + 1``: unique, the
    same on every node, and never 0, the catalog's own id.
    """
    ids: dict[str, int] = {}
    creates = [d["table"] for d in ddl if d["op"] == "CREATE_TABLE"]
    if len(creates) > _MAX_CREATES:
        raise errors.ProgrammingError(
            f"a transaction may create at most {_MAX_CREATES} tables", "54000"
        )
    for position, name in enumerate(creates):
        ids[name] = (offset << 16) + position + 1
    return ids


def _outcome_key(offset: int) -> bytes:
    return b"o" + u64(offset)


def _txn_key(txn_id: str) -> bytes:
    return b"t" + txn_id.encode()


def _catalog_entry(name: str) -> bytes:
    return encode_key([name])


class Materializer:
    """Applies one database's log to a node's RocksDB state."""

    def __init__(
        self,
        store: Store,
        log: Log,
        config: Config,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self._store = store
        self._log = log
        self._data_cf = store.handle("data")
        self._index_cf = store.handle("index")
        self._txns_cf = store.handle("txns")
        self._meta_cf = store.handle("meta")
        self._apply_lock = threading.Lock()
        self._applied = threading.Condition(threading.Lock())
        self._outcomes: OrderedDict[int, Outcome] = OrderedDict()
        self._failure: BaseException | None = None
        self._expected: dict[bytes, dict[str, Any]] = {}
        self._rows: mvcc.PointReader
        self._uniques: mvcc.PointReader
        self._progress = progress
        self._skipped_checks = _skipped_checks()
        stored = integrity.get(store.meta, NEXT_OFFSET_KEY)
        # The next offset to apply, i.e. the last applied offset + 1 (bytewax's convention).
        self._next_offset: int = U64.unpack(stored)[0] if stored is not None else 0
        self.catalog = self._load_catalog()
        stored_settings = integrity.get(store.meta, SETTINGS_KEY)
        self.settings: dict[str, Any] | None = (
            marshal.loads(stored_settings) if stored_settings is not None else None
        )
        # Until the log's settings are applied (a database older than them), the local
        # configuration decides.
        window = self.settings["certification_window"] if self.settings else config.certification_window
        self.window = CertificationWindow(window)
        self._rebuild_window()
        self.snapshots = SnapshotRegistry()
        self._history_retention = config.history_retention
        self.gc = GarbageCollector(store, self.snapshots, self._retention())
        for table_id, dropped_at in self.catalog.dropped():
            # Rows of tables dropped before a restart still need collecting.
            self.gc.note_drop(table_id, dropped_at)

    def _retention(self) -> int:
        # Versions a certification could still consult must survive collection: keep at
        # least the window's worth of history, whatever the retention setting says.
        return max(self._history_retention, self.window.size + 1)

    # --- state visible to readers -----------------------------------------------------

    @property
    def next_offset(self) -> int:
        """The next offset to apply; every record below it is applied."""
        return self._next_offset

    @property
    def applied_offset(self) -> int:
        """The newest applied offset (-1 before the first): the latest snapshot."""
        return self._next_offset - 1

    def check_healthy(self) -> None:
        """Raise if applying the log failed, since state would then be behind the log.

        Damage found anywhere in the store (by a query, by garbage collection) stops the
        materializer as well: nothing more is applied to, or read from, a damaged store.
        """
        self._store.raise_if_damaged()
        if self._failure is not None:
            raise errors.InternalError(
                f"the materializer stopped at offset {self._next_offset}: {self._failure}; "
                "restart the process to retry (state is intact up to that offset)"
            ) from self._failure

    def wait_applied(self, offset: int, timeout: float | None) -> bool:
        """Wait until ``offset`` is applied; False if ``timeout`` passed first."""
        with self._applied:
            ok = self._applied.wait_for(
                lambda: self._next_offset > offset or self._failure is not None, timeout
            )
        self.check_healthy()
        return ok

    def outcome(self, offset: int) -> Outcome:
        """The certification outcome of the transaction at ``offset`` (applied)."""
        cached = self._outcomes.get(offset)
        if cached is not None:
            return cached
        raw = integrity.get(self._store.txns, _outcome_key(offset))
        if raw is None:
            raise errors.InternalError(f"no transaction outcome recorded at offset {offset}")
        txn_id, committed, sqlstate, message = marshal.loads(raw)
        return Outcome(offset, txn_id, committed, sqlstate, message)

    def recorded_outcome(self, offset: int) -> Outcome | None:
        """The outcome recorded at ``offset`` (applied), or None if that record decided nothing.

        Records that decide nothing: a sync marker, settings, a fence of an applied
        transaction. What change data capture reads to learn which offsets committed: the decisions
        themselves, never a second certification.
        """
        cached = self._outcomes.get(offset)
        if cached is not None:
            return cached
        raw = integrity.get(self._store.txns, _outcome_key(offset))
        if raw is None:
            return None
        txn_id, committed, sqlstate, message = marshal.loads(raw)
        return Outcome(offset, txn_id, committed, sqlstate, message)

    def offset_of_txn(self, txn_id: str) -> int | None:
        """The offset at which transaction ``txn_id`` was applied, if it was."""
        raw = integrity.get(self._store.txns, _txn_key(txn_id))
        return None if raw is None else U64.unpack(raw)[0]

    # --- applying ---------------------------------------------------------------------

    def expect(self, record: bytes, body: dict[str, Any]) -> None:
        """Announce a record this process is about to append, with its decoded body.

        When the materializer meets exactly these bytes in the log it uses ``body``
        instead of decoding them again. ``body`` must be what decoding ``record`` yields,
        its groups may carry ``decoded_images`` (the primitive rows of ``images``); the
        replay tests hold both paths to the same state digest.
        """
        self._expected[record] = body

    def forget(self, record: bytes) -> None:
        """Withdraw an :meth:`expect` whose append failed."""
        self._expected.pop(record, None)

    def poll(self, timeout: float, max_records: int = 1000) -> int:
        """Apply what the log holds past the applied offset, waiting up to ``timeout`` for it.

        The loop of a node that follows a shared log (:mod:`offsetdb.materializers.follower`).
        Reads outside the apply lock, so that :meth:`apply_appended` is not held up by the
        wait; entries it applied meanwhile are skipped.
        """
        self.check_healthy()
        entries = self._read(self._next_offset, max_records, timeout)
        applied = 0
        with self._apply_lock:
            for entry in entries:
                if entry.offset >= self._next_offset:  # below: applied by apply_appended
                    self._apply_entry(entry)
                    applied += 1
            if applied:
                self.gc.maybe_collect(self.applied_offset)
        return applied

    def apply_appended(self, entries: list[LogEntry]) -> None:
        """Apply records this node just appended, if they are next in the log.

        A record at offset ``next_offset`` is, by its delivery report, exactly the next
        record of the log, so applying it from memory is applying the log, a fetch round
        trip sooner. Entries the follower applied first are skipped; from the first one
        that is not next (another node appended in between) on, the follower applies
        them, in order.
        """
        with self._apply_lock:
            if self._failure is not None:
                return
            for entry in entries:
                if entry.offset < self._next_offset:
                    continue
                if entry.offset > self._next_offset:
                    break
                self._apply_entry(entry)

    def catch_up(self, until: int | None = None) -> int:
        """Apply every record in the log (or up to offset ``until``); returns how many."""
        self.check_healthy()
        applied = 0
        with self._apply_lock:
            target = self._log.end_offset() if until is None else until + 1
            started = time.monotonic()
            while self._next_offset < target:
                entries = self._read(self._next_offset, 1000, timeout=0)
                if not entries:
                    break
                for entry in entries:
                    self._apply_entry(entry)
                applied += len(entries)
                if self._progress is not None:
                    self._progress(self._next_offset, target, time.monotonic() - started)
            self.gc.maybe_collect(self.applied_offset)
        return applied

    def _read(self, start: int, max_records: int, timeout: float) -> list[LogEntry]:
        """Read the log; a damaged record stops the materializer, as a failed apply does."""
        try:
            return self._log.read(start, max_records, timeout)
        except errors.StorageCorrupted as e:
            with self._applied:
                self._failure = e
                self._applied.notify_all()
            raise

    def _apply_entry(self, entry: LogEntry) -> None:
        offset = entry.offset
        try:
            if offset != self._next_offset:
                raise errors.InternalError(
                    f"log offset {offset} delivered when {self._next_offset} was expected"
                )
            expected = self._expected.pop(entry.value, None) if self._expected else None
            if expected is not None:
                body_type, body = "Transaction", expected
            else:
                body_type, body = _decode_or_reject(entry.value)
            batch = WriteBatch(raw_mode=True)
            outcome, publish, adopted = None, None, None
            if body_type == "Transaction":
                outcome, publish = self._apply_transaction(offset, body, batch)
            elif body_type == "Rejected":
                outcome = Outcome(offset, "", False, errors.DataCorrupted.sqlstate, body["reason"])
                self._put_outcome(outcome, batch)
            elif body_type == "Fence":
                outcome = self._apply_fence(offset, body["txn_id"], batch)
            elif body_type == "DatabaseSettings" and self.settings is None:
                adopted = {"certification_window": body["certification_window"], "offset": offset}
                batch.put(SETTINGS_KEY, marshal.dumps(adopted), self._meta_cf)
            batch.put(NEXT_OFFSET_KEY, u64(offset + 1), self._meta_cf)
            self._store.db.write(batch)
            # Only now may readers see the new catalog and certification see the writes:
            # they must never run ahead of the rows they describe.
            if adopted is not None:
                self.settings = adopted
                self.window.size = adopted["certification_window"]
                self.gc.retention = self._retention()
            if publish is not None:
                catalog, written = publish
                previous = self.catalog.latest()
                if catalog is not previous:
                    self.catalog.publish(catalog)
                    for table in previous.tables():
                        if catalog.by_id(table.table_id) is None:
                            self.gc.note_drop(table.table_id, offset)
                self.window.add(offset, written)
            else:
                self.window.add(offset, {})
        except BaseException as e:
            # A bare RocksDB "Corruption:" or "IO error:" is damage to this node's files.
            failure = integrity.from_rocksdb(e, self._store.rocks_path) or e
            with self._applied:
                self._failure = failure
                self._applied.notify_all()
            if failure is not e:
                raise failure from e
            raise
        with self._applied:
            if outcome is not None:
                self._outcomes[offset] = outcome
                if len(self._outcomes) > 50_000:
                    self._outcomes.popitem(last=False)
            self._next_offset = offset + 1
            self._applied.notify_all()

    def _apply_transaction(
        self, offset: int, txn: dict[str, Any], batch: WriteBatch
    ) -> tuple[Outcome, tuple[CatalogVersion, dict[int, list[bytes]]] | None]:
        txn_id = txn["txn_id"]
        decided_at = self.offset_of_txn(txn_id)
        if decided_at is not None:
            # Fenced by a session that could not learn its outcome, or appended twice: the
            # first decision stands, on every node.
            outcome = Outcome(
                offset, txn_id, False, errors.TransactionIdReused.sqlstate,
                f"transaction {txn_id} was already settled at offset {decided_at}; "
                "this later copy is not applied",
            )
            self._put_outcome(outcome, batch)
            return outcome, None
        # Created now, after offset - 1 was written: they read exactly the state at C - 1.
        self._rows = mvcc.PointReader(self._store.data)
        self._uniques = mvcc.PointReader(self._store.index)
        try:
            catalog, created = self._certify_ddl(offset, txn)
            groups = self._decode_writes(offset, txn, catalog, created)
            snapshot = txn["snapshot_offset"]
            if snapshot < offset - self.window.size - 1:
                raise errors.SnapshotTooOld(
                    f"transaction read at offset {snapshot}, more than "
                    f"{self.window.size} offsets before its commit at {offset}; retry it"
                )
            if txn["isolation"] == "SERIALIZABLE" and "read-write" not in self._skipped_checks:
                self._certify_reads(snapshot, txn)
            self._certify_writes(snapshot, offset, groups)
        except errors.Error as e:
            if not e.deterministic:
                raise
            outcome = Outcome(offset, txn_id, False, e.sqlstate, e.message)
        else:
            outcome = Outcome(offset, txn_id, True)
            written = self._write_rows(offset, groups, batch)
            if catalog is not self.catalog.latest():
                self._write_catalog(offset, txn, catalog, batch)
        self._put_outcome(outcome, batch)
        batch.put(_txn_key(txn_id), u64(offset), self._txns_cf)
        if outcome.committed:
            return outcome, (catalog, written)
        return outcome, None

    # --- certification ----------------------------------------------------------------

    def _apply_fence(self, offset: int, txn_id: str, batch: WriteBatch) -> Outcome | None:
        """Settle ``txn_id`` as never committed, unless a record of it was applied already."""
        if self.offset_of_txn(txn_id) is not None:
            return None
        outcome = Outcome(
            offset, txn_id, False, errors.CommitOutcomeUnknown.sqlstate,
            f"transaction {txn_id} did not reach the log before the fence at offset {offset}: "
            "it did not commit, and never will",
        )
        self._put_outcome(outcome, batch)
        batch.put(_txn_key(txn_id), u64(offset), self._txns_cf)
        return outcome

    def _put_outcome(self, outcome: Outcome, batch: WriteBatch) -> None:
        record = (outcome.txn_id, outcome.committed, outcome.sqlstate, outcome.message)
        batch.put(_outcome_key(outcome.offset), mvcc.dumps(record), self._txns_cf)

    def _certify_ddl(
        self, offset: int, txn: dict[str, Any]
    ) -> tuple[CatalogVersion, dict[str, TableDef]]:
        catalog = self.catalog.latest()
        if not txn["ddl"]:
            return catalog, {}
        created: dict[str, TableDef] = {}
        dropped: list[str] = []
        tables = {t.name: t for t in catalog.tables()}
        ids = created_table_ids(offset, txn["ddl"])
        for ddl in txn["ddl"]:
            name = ddl["table"]
            if ddl["op"] == "CREATE_TABLE":
                if name in tables:
                    raise errors.DuplicateTable(f'relation "{name}" already exists')
                definition = TableDef.from_dict(ddl["definition"]).with_id(ids[name])
                tables[name] = definition
                created[name] = definition
            else:
                current = tables.get(name)
                if current is None or current.table_id != ddl["table_id"]:
                    raise errors.SerializationFailure(
                        f'could not serialize access: table "{name}" was dropped or '
                        "replaced by a concurrent transaction"
                    )
                del tables[name]
                created.pop(name, None)
                dropped.append(name)
        # A table created and dropped in one transaction never reaches the catalog.
        return catalog.with_changes(offset, list(created.values()), dropped), created

    def _decode_writes(
        self,
        offset: int,
        txn: dict[str, Any],
        catalog: CatalogVersion,
        created: dict[str, TableDef],
    ) -> list[_TableOps]:
        groups = []
        for group in txn["tables"]:
            name = group["table"]
            if group["table_id"] == 0:
                table = created.get(name)
            else:
                table = catalog.by_id(group["table_id"])
            if table is None or table.schema_version != group["schema_version"]:
                raise errors.SerializationFailure(
                    f'could not serialize access: table "{name}" was dropped or replaced '
                    "by a concurrent transaction"
                )
            rows = group.get("decoded_images")
            befores: list[tuple[Any, ...] | None] = []
            afters: list[tuple[Any, ...] | None] = []
            try:
                images = iter(rows if rows is not None else decode_images(table, group["images"]))
                for op in group["ops"]:
                    befores.append(next(images) if op != "INSERT" else None)
                    afters.append(next(images) if op != "DELETE" else None)
                if next(images, None) is not None or len(group["keys"]) != len(group["ops"]):
                    raise ValueError("more images or fewer keys than operations")
            except Exception as e:  # malformed images: the same bytes on every node
                raise errors.DataCorrupted(
                    f'the row images for "{name}" do not match its operations: {e!r}'
                ) from e
            # Rows of a table without a primary key get their hidden row id here, so that
            # everything below sees real keys.
            keys = [
                key or hidden_row_key(offset, position) for position, key in enumerate(group["keys"])
            ]
            groups.append(
                _TableOps(table, list(group["ops"]), keys, befores, afters, group["table_id"] == 0)
            )
        return groups

    def _certify_reads(self, snapshot: int, txn: dict[str, Any]) -> None:
        rows = self._rows
        for read in txn["read_keys"]:
            table_id = read["table_id"]
            version = rows.latest(table_prefix(table_id) + read["key"])
            if version is not None and version[0] > snapshot:
                raise errors.SerializationFailure(
                    "could not serialize access due to read/write dependencies among "
                    f"transactions: {self._describe(table_id, read['key'])} was changed by "
                    f"the transaction at offset {version[0]} after this one read it"
                )
        for raw in txn["read_predicates"]:
            predicate = Predicate(
                raw["table_id"],
                tuple((c["column"], c["op"], tuple(c["values"])) for c in raw["conjuncts"]),
            )
            self._certify_predicate(snapshot, predicate)

    def _certify_predicate(self, snapshot: int, predicate: Predicate) -> None:
        table = self.catalog.latest().by_id(predicate.table_id)
        if table is None:
            return  # dropped since: the DDL conflict is caught through the catalog read
        _, from_primitive = table.converters()
        rows = self._rows
        for written_at, key in self.window.writes_since(snapshot, predicate.table_id):
            prefix = table_prefix(predicate.table_id) + key
            after = rows.live(prefix, written_at)
            before = rows.live(prefix, written_at - 1)
            for image in (before, after):
                if image is not None and predicate.matches(from_primitive(marshal.loads(image))):
                    raise errors.SerializationFailure(
                        "could not serialize access due to read/write dependencies among "
                        f'transactions: a row of "{table.name}" matching a predicate this '
                        f"transaction scanned, {describe_key(self._key_columns(table), key)}, "
                        f"was written at offset {written_at}"
                    )

    def _certify_writes(self, snapshot: int, offset: int, groups: list[_TableOps]) -> None:
        rows = self._rows
        for group in groups:
            table = group.table
            if group.created_here:
                continue  # created by this very transaction: nothing concurrent to meet
            prefix = table_prefix(table.table_id)
            hidden = table.has_hidden_key
            for op, key in zip(group.ops, group.keys, strict=True):
                if hidden and op == "INSERT":
                    continue  # a hidden row id is this record's offset: no version can exist
                version = rows.latest(prefix + key)
                if version is None:
                    if op != "INSERT":
                        raise self._ww_conflict(table, key, None)
                    continue
                written_at, value = version
                if op == "INSERT" and value is not None:
                    raise errors.UniqueViolation(
                        f'duplicate key value violates primary key of "{table.name}": '
                        f"{describe_key(self._key_columns(table), key)} already exists"
                    )
                if written_at > snapshot and "write-write" not in self._skipped_checks:
                    raise self._ww_conflict(table, key, written_at)
                if op != "INSERT" and value is None:
                    raise self._ww_conflict(table, key, written_at)
            if table.unique:
                self._certify_unique(group)

    def _certify_unique(self, group: _TableOps) -> None:
        table = group.table
        uniques = self._uniques
        released: set[tuple[int, bytes, bytes]] = set()
        for op, key, before in zip(group.ops, group.keys, group.befores, strict=True):
            if op != "INSERT" and before is not None:
                for number, values in self._unique_values(table, before):
                    released.add((number, values, key))
        for key, after in zip(group.keys, group.afters, strict=True):
            if after is None:
                continue
            for number, values in self._unique_values(table, after):
                holder = uniques.live(index_prefix(table.table_id, number) + values)
                if holder is not None and holder != key and (number, values, holder) not in released:
                    columns = [table.columns[i].name for i in table.unique[number]]
                    raise errors.UniqueViolation(
                        f'duplicate key value violates unique constraint on "{table.name}": '
                        f"{describe_key(columns, values)} already exists"
                    )

    @staticmethod
    def _unique_values(table: TableDef, row: tuple[Any, ...]) -> list[tuple[int, bytes]]:
        """Encoded values of each UNIQUE constraint (NULLs never collide, as in SQL)."""
        _, from_primitive = table.converters()
        logical = from_primitive(row)
        out = []
        for number, columns in enumerate(table.unique):
            values = [logical[i] for i in columns]
            if any(v is None for v in values):
                continue
            out.append((number, encode_key(values)))
        return out

    def _ww_conflict(self, table: TableDef, key: bytes, written_at: int | None) -> errors.Error:
        when = f"at offset {written_at}" if written_at is not None else ""
        return errors.SerializationFailure(
            "could not serialize access due to concurrent update: "
            f'{describe_key(self._key_columns(table), key)} of "{table.name}" was changed '
            f"by a concurrent transaction {when}".rstrip()
        )

    @staticmethod
    def _key_columns(table: TableDef) -> list[str]:
        if table.has_hidden_key:
            return ["rowid", "position"]
        return [table.columns[i].name for i in table.primary_key]

    def _describe(self, table_id: int, key: bytes) -> str:
        if table_id == CATALOG_TABLE_ID:
            return f"table definition {describe_key(['name'], key)}"
        table = self.catalog.latest().by_id(table_id)
        if table is None:
            return f"a row of a dropped table {describe_key(['key'], key)}"
        return f'row {describe_key(self._key_columns(table), key)} of "{table.name}"'

    # --- writing ------------------------------------------------------------------------

    def _write_rows(
        self, offset: int, groups: list[_TableOps], batch: WriteBatch
    ) -> dict[int, list[bytes]]:
        written: dict[int, list[bytes]] = {}
        data_cf, index_cf = self._data_cf, self._index_cf
        for group in groups:
            table = group.table
            table_id = table.table_id
            keys_written = written.setdefault(table_id, [])
            self.gc.note_writes(table_id, sum(1 for op in group.ops if op != "INSERT"))
            for key, before, after in zip(group.keys, group.befores, group.afters, strict=True):
                keys_written.append(key)
                value = mvcc.TOMBSTONE if after is None else mvcc.encode_row(after)
                batch.put(version_key(table_id, key, offset), value, data_cf)
                if not table.unique:
                    continue
                new_values = dict(self._unique_values(table, after)) if after is not None else {}
                if before is not None:
                    for number, values in self._unique_values(table, before):
                        if new_values.get(number) != values:
                            entry = index_prefix(table_id, number) + values
                            batch.put(entry + _inv(offset), mvcc.TOMBSTONE, index_cf)
                for number, values in new_values.items():
                    entry = index_prefix(table_id, number) + values
                    batch.put(entry + _inv(offset), mvcc.LIVE + key, index_cf)
        return written

    def _write_catalog(
        self, offset: int, txn: dict[str, Any], catalog: CatalogVersion, batch: WriteBatch
    ) -> None:
        ids = created_table_ids(offset, txn["ddl"])
        for ddl in txn["ddl"]:
            name = ddl["table"]
            entry = version_key(CATALOG_TABLE_ID, _catalog_entry(name), offset)
            table = catalog.get(name)
            if table is not None and table.table_id == ids.get(name):
                batch.put(entry, mvcc.LIVE + mvcc.dumps(table.to_dict()), self._data_cf)
            else:
                batch.put(entry, mvcc.TOMBSTONE, self._data_cf)

    # --- recovery -----------------------------------------------------------------------

    def _load_catalog(self) -> Catalog:
        """Every catalog version, from the catalog entries of all offsets."""
        changes: dict[int, tuple[list[TableDef], list[str]]] = {}
        prefix = u64(CATALOG_TABLE_ID)
        it = self._store.data.iter()
        it.seek(prefix)
        while it.valid():
            full = it.key()
            if not full.startswith(prefix):
                break
            offset = 2**64 - 1 - U64.unpack(full[-8:])[0]
            created, dropped = changes.setdefault(offset, ([], []))
            value = it.value()
            if value[:1] == mvcc.TOMBSTONE:
                dropped.append(str(_decode_name(full[8:-8])))
            else:
                created.append(TableDef.from_dict(marshal.loads(value[1:])))
            it.next()
        if not it.valid():
            integrity.check_iterator(it, self._store.rocks_path)
        catalog = Catalog()
        for offset in sorted(changes):
            created, dropped = changes[offset]
            catalog.publish(catalog.latest().with_changes(offset, created, dropped))
        return catalog

    def _rebuild_window(self) -> None:
        """Re-derive the certification window from the log's last ``size`` offsets."""
        end = self._next_offset
        start = max(0, end - self.window.size - 1)
        offset = start
        while offset < end:
            # A shared log may need a round trip before the first records arrive, and a
            # read that met a hole returns nothing and seeks back: try again.
            entries: list[LogEntry] = []
            for _ in range(5):
                entries = self._log.read(offset, min(1000, end - offset), timeout=30)
                if entries:
                    break
            if not entries:
                raise errors.InternalError(
                    f"the log gave no record at offset {offset} in 5 reads, but this replica "
                    f"has applied up to {end - 1}: the log is shorter than the replica (a "
                    "replica of another log, or a log that lost records), or the broker is "
                    "not serving it"
                )
            for entry in entries:
                body_type, body = _decode_or_reject(entry.value)
                if entry.offset >= end:
                    break
                if body_type == "Transaction" and self.outcome(entry.offset).committed:
                    self.window.add(entry.offset, _written_keys(entry.offset, body))
                else:
                    self.window.add(entry.offset, {})
            offset = entries[-1].offset + 1


def _decode_or_reject(data: bytes) -> tuple[str, dict[str, Any]]:
    """Decode a record, or turn bytes that do not decode into a ``Rejected`` body.

    An unknown format version still raises: a newer offsetdb wrote it, and skipping
    records this node cannot read would make it diverge from the nodes that can.
    """
    try:
        return decode_log_record(data)
    except errors.DataCorrupted as e:
        return "Rejected", {"reason": f"record rejected: {e.message}"}


def _inv(offset: int) -> bytes:
    return u64(2**64 - 1 - offset)


def _decode_name(key: bytes) -> str:
    return str(decode_key(key)[0])


def _written_keys(offset: int, txn: dict[str, Any]) -> dict[int, list[bytes]]:
    written: dict[int, list[bytes]] = {}
    ids = created_table_ids(offset, txn["ddl"])
    for group in txn["tables"]:
        table_id = group["table_id"] or ids[group["table"]]
        keys = written.setdefault(table_id, [])
        for position, key in enumerate(group["keys"]):
            keys.append(key or hidden_row_key(offset, position))
    return written
