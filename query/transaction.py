"""A transaction: reads at one snapshot, buffered writes, and its read set.

This is the :class:`~offsetdb.query.context.TxnContext` the SQL engine runs against.
Reads go to MVCC state at ``snapshot`` (see :mod:`offsetdb.materializers.mvcc`),
overlaid with the transaction's own buffered writes; every read is recorded (keys, and
scan predicates) so that certification can decide at commit. Writes never touch state:
:meth:`Transaction.build_record` turns them into the one log record whose offset orders
the transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import marshal
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rocksdict import Rdict

from offsetdb import errors
from offsetdb.keys import (
    CATALOG_TABLE_ID,
    U64,
    describe_key,
    encode_key,
    encode_value,
    index_prefix,
    prefix_end,
    table_prefix,
)
from offsetdb.materializers import mvcc
from offsetdb.materializers.catalog import CatalogVersion, TableDef
from offsetdb.query.context import Conjunct, Row, ScanFilter
from offsetdb.schemas.codec import encode_images
from offsetdb.types import coerce

if TYPE_CHECKING:
    from offsetdb.materializers.sources import SourceDefinition

# A system view: its definition, and the rows it shows to a transaction (computed when read).
View = tuple[TableDef, Callable[["Transaction"], list[Row]]]
_SYSTEM_PREFIX = "offsetdb_"

_OPS = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE", "IN": "IN", "IS NULL": "IS_NULL"}

# Provisional keys of rows inserted into a table without a primary key: they sort after
# every real key, and certification replaces them with the row's hidden row id.
_PROVISIONAL = b"\xff"


_STORED = object()  # a pending row's statement-start view: the stored row itself


class _Pending:
    """The transaction's view of one row it wrote.

    ``statement`` is the last statement that wrote the row and ``seen`` the row as that
    statement's reads must see it: as it was when the statement began (PostgreSQL's
    command visibility), either an earlier statement's write or, with ``_STORED``, the
    row in the snapshot. Constraint checks always use ``after``.
    """

    __slots__ = ("before", "after", "statement", "seen")

    def __init__(self, before: tuple[Any, ...] | None, after: Row | None, statement: int) -> None:
        self.before = before  # primitive row as read at the snapshot; None: absent then
        self.after = after  # logical row now; None: deleted
        self.statement = statement
        self.seen: Row | None | object = _STORED

    def written_by(self, statement: int) -> None:
        """Record that ``statement`` writes the row: keep what it must go on reading."""
        if self.statement != statement:
            self.seen = self.after
            self.statement = statement

    def visible(self, statement: int) -> Row | None | object:
        """The row as reads of ``statement`` see it (``_STORED``: the snapshot's row)."""
        return self.seen if self.statement == statement else self.after


class _TableWrites:
    __slots__ = ("table", "rows", "unique", "appended")

    def __init__(self, table: TableDef) -> None:
        self.table = table
        self.rows: dict[bytes, _Pending] = {}
        # Rows of a keyless table appended in bulk (primitive form, see append_rows).
        self.appended: list[tuple[Any, ...]] = []
        # Per UNIQUE constraint: encoded values -> key of the pending row holding them.
        self.unique: list[dict[bytes, bytes]] = [{} for _ in table.unique]


class Transaction:
    """One transaction of a session."""

    def __init__(
        self,
        data: Rdict,
        index: Rdict,
        catalog: CatalogVersion,
        snapshot: int,
        isolation: str,
        principal: str,
        *,
        views: Mapping[str, View] | None = None,
    ) -> None:
        self._data = data
        self._index = index
        self._catalog = catalog
        self._snapshot = snapshot
        self.isolation = isolation
        self.principal = principal
        self._created: dict[str, TableDef] = {}
        self._dropped: dict[str, TableDef] = {}
        self._ddl: list[dict[str, Any]] = []
        self._writes: dict[str, _TableWrites] = {}
        self._read_keys: set[tuple[int, bytes]] = set()
        self._predicates: dict[tuple[int, tuple[Any, ...]], None] = {}
        self._provisional = 0
        self._statement = 0
        self._started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self._row_reader: mvcc.PointReader | None = None
        self._unique_reader: mvcc.PointReader | None = None
        self._views = views or {}
        self._system = 0  # > 0 while offsetdb itself writes its system tables
        self.changes_sources = False  # CREATE/DROP/ALTER SOURCE: runners look again after it

    @property
    def _rows(self) -> mvcc.PointReader:
        if self._row_reader is None:
            self._row_reader = mvcc.PointReader(self._data, self._snapshot)
        return self._row_reader

    @property
    def _uniques(self) -> mvcc.PointReader:
        if self._unique_reader is None:
            self._unique_reader = mvcc.PointReader(self._index, self._snapshot)
        return self._unique_reader

    # --- TxnContext: reads ----------------------------------------------------------------

    def begin_statement(self) -> None:
        """Start a statement: its reads see this transaction's writes made before it."""
        self._statement += 1

    @property
    def started_at(self) -> dt.datetime:
        """When this transaction began (UTC, naive): what ``now()`` returns in it."""
        return self._started_at

    @property
    def snapshot_offset(self) -> int:
        """The offset this transaction reads at."""
        return self._snapshot

    def table(self, name: str) -> TableDef:
        """The table ``name`` as this transaction sees it (42P01 if none)."""
        created = self._created.get(name)
        if created is not None:
            return created
        view = self._views.get(name) if name[:9] == _SYSTEM_PREFIX else None
        if view is not None:
            return view[0]
        self._read_keys.add((CATALOG_TABLE_ID, _catalog_key(name)))
        if name in self._dropped:
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        return self._catalog.require(name)

    def table_names(self) -> list[str]:
        """Visible table names, sorted."""
        names = set(self._catalog.names()) - set(self._dropped) | set(self._created)
        return sorted(names)

    def scan(self, table: TableDef, where: ScanFilter | None = None) -> Iterator[tuple[bytes, Row]]:
        """Rows of ``table`` at the snapshot, own writes included, in key order."""
        if not table.table_id and table.name in self._views and table.name not in self._created:
            # A system view: live, node-local figures, not part of any snapshot's state.
            for position, row in enumerate(self._views[table.name][1](self)):
                yield U64.pack(position), row
            return
        conjuncts = where.conjuncts if where is not None else ()
        lo, hi = self._key_range(table, conjuncts)
        stored: Iterator[tuple[bytes, Row]] = iter(())
        if table.table_id:
            self._record_predicate(table, conjuncts)
            to_primitive, from_primitive = table.converters()
            entries = mvcc.scan_live(self._data, _row_prefix(table), self._snapshot, lo, hi)
            loads = marshal.loads
            if to_primitive is from_primitive:  # no column needs converting: skip the call
                stored = ((key, loads(value)) for key, value in entries)
            else:
                stored = ((key, from_primitive(loads(value))) for key, value in entries)
        writes = self._writes.get(table.name)
        if writes is None or not writes.rows:
            yield from stored
            return
        yield from _overlay(stored, writes.rows, lo, hi, self._statement)

    def get(self, table: TableDef, primary_key: Sequence[Any]) -> tuple[bytes, Row] | None:
        """The row with this primary key, or None."""
        if table.has_hidden_key:
            raise errors.InternalError(f'table "{table.name}" has no primary key to look up')
        values = [
            coerce(v, table.columns[i].type, table.columns[i].name)
            for v, i in zip(primary_key, table.primary_key, strict=True)
        ]
        key = encode_key(values)
        return self._get_key(table, key)

    def _get_key(self, table: TableDef, key: bytes, latest: bool = False) -> tuple[bytes, Row] | None:
        """The row at ``key`` as this statement reads it (``latest``: with its own writes)."""
        writes = self._writes.get(table.name)
        if writes is not None:
            pending = writes.rows.get(key)
            if pending is not None:
                row = pending.after if latest else pending.visible(self._statement)
                if row is not _STORED:
                    return None if row is None else (key, row)  # type: ignore[return-value]
        if not table.table_id:
            return None
        self._read_keys.add((table.table_id, key))
        stored = self._stored(table, key)
        if stored is None:
            return None
        return key, table.converters()[1](stored)

    def _stored(self, table: TableDef, key: bytes) -> tuple[Any, ...] | None:
        """The primitive row at ``key`` as of the snapshot (no overlay, no read record)."""
        value = self._rows.live(_row_prefix(table) + key)
        return None if value is None else marshal.loads(value)

    def find_unique(
        self, table: TableDef, columns: tuple[int, ...], values: Sequence[Any]
    ) -> tuple[bytes, Row] | None:
        """The row whose ``columns`` equal ``values`` (a key or UNIQUE constraint)."""
        if columns == table.primary_key:
            values = [
                coerce(v, table.columns[i].type, table.columns[i].name)
                for v, i in zip(values, columns, strict=True)
            ]
            return self._get_key(table, encode_key(values), latest=True)
        if columns not in table.unique:
            raise errors.InvalidTableDefinition(
                "there is no unique or exclusion constraint matching the ON CONFLICT "
                f'specification on "{table.name}"'
            )
        number = table.unique.index(columns)
        coerced = [coerce(v, table.columns[i].type, table.columns[i].name) for v, i in zip(values, columns, strict=True)]
        if any(v is None for v in coerced):
            return None
        encoded = encode_key(coerced)
        writes = self._writes.get(table.name)
        if writes is not None:
            holder = writes.unique[number].get(encoded)
            if holder is not None:
                return holder, writes.rows[holder].after  # type: ignore[return-value]
        if not table.table_id:
            return None
        self._record_predicate(
            table, tuple(Conjunct(c, "=", (v,)) for c, v in zip(columns, coerced, strict=True))
        )
        holder = self._uniques.live(index_prefix(table.table_id, number) + encoded)
        if holder is None:
            return None
        found = self._get_key(table, holder, latest=True)
        if found is None or [found[1][i] for i in columns] != coerced:
            return None  # this transaction deleted or changed that row
        return found

    # --- TxnContext: writes -----------------------------------------------------------------

    def insert(self, table: TableDef, row: Row) -> bytes:
        """Buffer an INSERT; returns the row's key.

        A row refused by a constraint leaves the transaction as it was (an ingester goes
        on with the rest of its batch).
        """
        if table.name[:9] == _SYSTEM_PREFIX and not self._system:
            raise _system_table_error(table.name)
        row = self._checked_row(table, row)
        writes = self._table_writes(table)
        statement = self._statement
        if table.has_hidden_key:
            key = _PROVISIONAL + U64.pack(self._provisional)
            self._claim_unique(writes, key, row)
            self._provisional += 1
            writes.rows[key] = _Pending(None, row, statement)
            return key
        primary_key = table.primary_key
        key = (
            encode_value(row[primary_key[0]])
            if len(primary_key) == 1
            else encode_key([row[i] for i in primary_key])
        )
        pending = writes.rows.get(key)
        if pending is None:
            stored = self._stored(table, key) if table.table_id else None
            if stored is not None:
                raise self._duplicate_key(table, key)
            self._claim_unique(writes, key, row)
            writes.rows[key] = _Pending(None, row, statement)
        elif pending.after is not None:
            raise self._duplicate_key(table, key)
        else:
            self._claim_unique(writes, key, row)
            pending.written_by(statement)
            pending.after = row
        return key

    def append_rows(self, table: TableDef, rows: list[tuple[Any, ...]]) -> None:
        """Buffer INSERTs of rows already in *primitive* form into a keyless table (bulk path).

        For an ingester's APPEND batches: the caller converted and checked each row
        (types, NOT NULL; the row-image encoder checks every value's type again before
        anything reaches the log), so nothing is done per row here. Only for tables
        without a primary key and without UNIQUE constraints, which need no per-row
        check; the rows are not seen by this transaction's own later reads.
        """
        if table.name[:9] == _SYSTEM_PREFIX and not self._system:
            raise _system_table_error(table.name)
        if not table.has_hidden_key or table.unique:
            raise errors.InternalError(f'rows of "{table.name}" need per-row checks; use insert')
        self._table_writes(table).appended.extend(rows)

    def update(self, table: TableDef, key: bytes, row: Row) -> bytes:
        """Buffer an UPDATE of the row at ``key``; returns its key (new if the PK changed).

        A row refused by a constraint (its key unchanged) leaves the transaction as it was.
        """
        if table.name[:9] == _SYSTEM_PREFIX and not self._system:
            raise _system_table_error(table.name)
        row = self._checked_row(table, row)
        if not table.has_hidden_key:
            new_key = encode_key([row[i] for i in table.primary_key])
            if new_key != key:
                self.delete(table, key)
                return self.insert(table, row)
        writes = self._table_writes(table)
        pending = writes.rows.get(key)
        if pending is None:
            before = self._stored(table, key)
            if before is None:
                raise errors.InternalError(f'updated row of "{table.name}" does not exist')
            self._claim_unique(writes, key, row)
            writes.rows[key] = _Pending(before, row, self._statement)
            return key
        previous = pending.after
        self._release_unique(writes, key, previous)
        try:
            self._claim_unique(writes, key, row)
        except errors.Error:
            if previous is not None:
                self._claim_unique(writes, key, previous)  # held a moment ago: cannot fail
            raise
        pending.written_by(self._statement)
        pending.after = row
        return key

    def delete(self, table: TableDef, key: bytes) -> None:
        """Buffer a DELETE of the row at ``key``."""
        if table.name[:9] == _SYSTEM_PREFIX and not self._system:
            raise _system_table_error(table.name)
        writes = self._table_writes(table)
        pending = writes.rows.get(key)
        if pending is None:
            writes.rows[key] = _Pending(self._stored(table, key), None, self._statement)
            return
        pending.written_by(self._statement)
        self._release_unique(writes, key, pending.after)
        pending.after = None
        if pending.before is None and pending.seen is _STORED:
            del writes.rows[key]  # inserted and deleted by this statement: nothing happened

    def create_table(self, definition: TableDef, if_not_exists: bool = False) -> bool:
        """Buffer a CREATE TABLE."""
        name = definition.name
        if name[:9] == _SYSTEM_PREFIX and not self._system:
            raise errors.ProgrammingError(
                f'table name "{name}" is reserved: names starting with "{_SYSTEM_PREFIX}" '
                "are offsetdb's system tables", "42939"
            )
        exists = name in self._created or (
            self._catalog.get(name) is not None and name not in self._dropped
        )
        if name not in self._created:
            self._read_keys.add((CATALOG_TABLE_ID, encode_key([name])))
        if exists:
            if if_not_exists:
                return False
            raise errors.DuplicateTable(f'relation "{name}" already exists')
        self._created[name] = definition
        self._ddl.append(
            {"op": "CREATE_TABLE", "table": name, "table_id": 0, "definition": definition.to_dict()}
        )
        return True

    def drop_table(self, name: str, if_exists: bool = False) -> bool:
        """Buffer a DROP TABLE."""
        if name[:9] == _SYSTEM_PREFIX and not self._system and name not in self._created:
            raise _system_table_error(name)
        if name not in self._created:
            from offsetdb.query import sourcecatalog

            sourcecatalog.check_no_source_writes_into(self, name)
        self._writes.pop(name, None)
        if name in self._created:
            del self._created[name]
            self._ddl = [d for d in self._ddl if not (d["op"] == "CREATE_TABLE" and d["table"] == name)]
            return True
        self._read_keys.add((CATALOG_TABLE_ID, encode_key([name])))
        table = self._catalog.get(name)
        if table is None or name in self._dropped:
            if if_exists:
                return False
            raise errors.UndefinedTable(f'table "{name}" does not exist')
        self._dropped[name] = table
        self._ddl.append({"op": "DROP_TABLE", "table": name, "table_id": table.table_id, "definition": None})
        return True

    # --- sources (CREATE / DROP / ALTER SOURCE) ---------------------------------------------

    @contextlib.contextmanager
    def system_writes(self) -> Iterator[None]:
        """Let offsetdb itself write its system tables (``offsetdb_*``) within the block."""
        self._system += 1
        try:
            yield
        finally:
            self._system -= 1

    def create_source(self, definition: SourceDefinition, if_not_exists: bool = False) -> bool:
        """Record a Kafka source in the catalog (see :mod:`offsetdb.query.sourcecatalog`)."""
        from offsetdb.query import sourcecatalog

        self.changes_sources = True
        return sourcecatalog.create_source(self, definition, if_not_exists)

    def drop_source(self, name: str, if_exists: bool = False) -> bool:
        """Remove a source and its stored offsets."""
        from offsetdb.query import sourcecatalog

        self.changes_sources = True
        return sourcecatalog.drop_source(self, name, if_exists)

    def alter_source(self, name: str, state: str) -> None:
        """Pause or resume a source."""
        from offsetdb.query import sourcecatalog

        self.changes_sources = True
        sourcecatalog.alter_source(self, name, state)

    # --- commit ---------------------------------------------------------------------------

    @property
    def has_writes(self) -> bool:
        """Whether committing needs a log record (read-only transactions never abort)."""
        return bool(self._ddl) or any(w.rows or w.appended for w in self._writes.values())

    def build_record(self) -> dict[str, Any]:
        """The ``Transaction`` log record body for this transaction's commit."""
        tables = []
        for writes in self._writes.values():
            if not writes.rows and not writes.appended:
                continue
            table = writes.table
            to_primitive, _ = table.converters()
            ops: list[str] = []
            keys: list[bytes] = []
            images: list[tuple[Any, ...]] = []
            for key, pending in writes.rows.items():
                if pending.before is None:
                    if pending.after is None:
                        continue
                    ops.append("INSERT")
                    keys.append(b"" if key[:1] == _PROVISIONAL else key)
                    images.append(_plain(table, to_primitive(pending.after)))
                elif pending.after is None:
                    ops.append("DELETE")
                    keys.append(key)
                    images.append(pending.before)
                else:
                    ops.append("UPDATE")
                    keys.append(key)
                    images.append(pending.before)
                    images.append(_plain(table, to_primitive(pending.after)))
            if writes.appended:
                ops.extend(["INSERT"] * len(writes.appended))
                keys.extend([b""] * len(writes.appended))
                images.extend(writes.appended)
            tables.append(
                {
                    "table": table.name,
                    "table_id": table.table_id,
                    "schema_version": table.schema_version,
                    "ops": ops,
                    "keys": keys,
                    "images": encode_images(table, images),
                    # Not part of the record: the rows the images encode, so that this
                    # process's materializer need not decode what it just encoded.
                    "decoded_images": images,
                }
            )
        return {
            "txn_id": os.urandom(16).hex(),
            "principal": self.principal,
            "client_time_us": time.time_ns() // 1000,
            "snapshot_offset": self._snapshot,
            "isolation": self.isolation,
            "read_keys": [{"table_id": t, "key": k} for t, k in self._read_keys],
            "read_predicates": [
                {
                    "table_id": table_id,
                    "conjuncts": [
                        {"column": c, "op": op, "values": list(values)} for c, op, values in conjuncts
                    ],
                }
                for table_id, conjuncts in self._predicates
            ],
            "ddl": self._ddl,
            "tables": tables,
        }

    # --- helpers ------------------------------------------------------------------------

    def _table_writes(self, table: TableDef) -> _TableWrites:
        writes = self._writes.get(table.name)
        if writes is None or writes.table is not table:
            if writes is not None and writes.table.table_id != table.table_id:
                raise errors.InternalError(f'table "{table.name}" changed within the transaction')
            if writes is None:
                writes = self._writes[table.name] = _TableWrites(table)
        return writes

    def _checked_row(self, table: TableDef, row: Row) -> Row:
        if len(row) != len(table.columns):
            raise errors.InternalError(
                f'row of {len(row)} values for "{table.name}", which has {len(table.columns)} columns'
            )
        checked: Row = table.coercer()(row)
        return checked

    def _duplicate_key(self, table: TableDef, key: bytes) -> errors.Error:
        columns = [table.columns[i].name for i in table.primary_key]
        return errors.UniqueViolation(
            f'duplicate key value violates primary key of "{table.name}": '
            f"{describe_key(columns, key)} already exists"
        )

    def _claim_unique(self, writes: _TableWrites, key: bytes, row: Row) -> None:
        """Take ``row``'s UNIQUE values for ``key``; all or none (23505 naming the first taken)."""
        table = writes.table
        if not table.unique:
            return
        claims: list[tuple[int, bytes]] = []
        for number, columns in enumerate(table.unique):
            values = [row[i] for i in columns]
            if any(v is None for v in values):
                continue
            encoded = encode_key(values)
            holder = writes.unique[number].get(encoded)
            if holder is None and table.table_id:
                stored_holder = self._uniques.live(index_prefix(table.table_id, number) + encoded)
                if stored_holder is not None and stored_holder != key:
                    # Still a conflict unless this transaction moved that row off the value.
                    pending = writes.rows.get(stored_holder)
                    if pending is None or (
                        pending.after is not None and [pending.after[i] for i in columns] == values
                    ):
                        holder = stored_holder
            if holder is not None and holder != key:
                names = [table.columns[i].name for i in columns]
                raise errors.UniqueViolation(
                    f'duplicate key value violates unique constraint on "{table.name}": '
                    f"{describe_key(names, encoded)} already exists"
                )
            claims.append((number, encoded))
        for number, encoded in claims:
            writes.unique[number][encoded] = key

    def _release_unique(self, writes: _TableWrites, key: bytes, row: Row | None) -> None:
        if row is None:
            return
        for number, columns in enumerate(writes.table.unique):
            encoded = encode_key([row[i] for i in columns])
            if writes.unique[number].get(encoded) == key:
                del writes.unique[number][encoded]

    def _record_predicate(self, table: TableDef, conjuncts: tuple[Conjunct, ...]) -> None:
        encoded = []
        for conjunct in conjuncts:
            column = table.columns[conjunct.column]
            try:
                values = tuple(encode_value(coerce(v, column.type, column.name)) for v in conjunct.values)
            except errors.Error:
                continue  # dropping a conjunct only widens the predicate: still correct
            if conjunct.op != "IS NULL" and any(v == b"\x00" for v in values):
                continue
            encoded.append((conjunct.column, _OPS[conjunct.op], values))
        self._predicates[(table.table_id, tuple(encoded))] = None

    def _key_range(self, table: TableDef, conjuncts: tuple[Conjunct, ...]) -> tuple[bytes, bytes | None]:
        """The key range a scan must cover, from conjuncts on the first key column."""
        if table.has_hidden_key:
            return b"", None
        first = table.primary_key[0]
        column = table.columns[first]
        lo, hi = b"", None
        for conjunct in conjuncts:
            if conjunct.column != first or conjunct.op in ("IN", "IS NULL"):
                continue
            try:
                value = coerce(conjunct.values[0], column.type, column.name)
            except errors.Error:
                continue
            if value is None:
                continue
            encoded = encode_value(value)
            after = prefix_end(encoded)
            if conjunct.op in ("=", ">=") and encoded > lo:
                lo = encoded
            elif conjunct.op == ">" and after is not None and after > lo:
                lo = after
            if conjunct.op in ("=", "<=") and after is not None and (hi is None or after < hi):
                hi = after
            elif conjunct.op == "<" and (hi is None or encoded < hi):
                hi = encoded
        if hi is not None and hi <= lo:
            hi = lo  # empty range
        return lo, hi


_PRIMITIVE_TYPES = frozenset((type(None), bool, int, float, str, bytes))


def _plain(table: TableDef, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` if every value is of a primitive type every node decodes alike, else XX000.

    The committing node applies the rows it built without decoding them from the log;
    a value of any other type (a str subclass, say) would be applied differently here
    than on every other node, or stop this node's materializer. Coercion produces plain
    values, so this is a last line of defence, raised to the client before appending.
    """
    for value in row:
        if type(value) not in _PRIMITIVE_TYPES:
            raise errors.InternalError(
                f'a value of type {type(value).__name__} reached a row of "{table.name}"; '
                "nothing was committed"
            )
    return row


def _system_table_error(name: str) -> errors.Error:
    return errors.ProgrammingError(
        f'permission denied: "{name}" is a system table; offsetdb writes it itself '
        "(CREATE/DROP/ALTER SOURCE and the ingesters)", "42501"
    )


def _row_prefix(table: TableDef) -> bytes:
    """The ``data`` prefix of the table's rows, computed once per table version."""
    prefix: bytes | None = table._cache.get("prefix")
    if prefix is None:
        prefix = table._cache["prefix"] = table_prefix(table.table_id)
    return prefix


@functools.lru_cache(maxsize=4096)
def _catalog_key(name: str) -> bytes:
    """The key of a table's catalog entry, read by every statement that names it."""
    return encode_key([name])


def _overlay(
    stored: Iterator[tuple[bytes, Row]],
    pending: dict[bytes, _Pending],
    lo: bytes,
    hi: bytes | None,
    statement: int,
) -> Iterator[tuple[bytes, Row]]:
    """Merge stored rows with this transaction's writes before ``statement``, in key order."""
    own: list[tuple[bytes, Row | None]] = sorted(
        (k, seen)  # type: ignore[misc]
        for k, p in pending.items()
        if (seen := p.visible(statement)) is not _STORED
        and k >= lo
        and (hi is None or k < hi or k[:1] == _PROVISIONAL)
    )
    i = 0
    for key, row in stored:
        while i < len(own) and own[i][0] < key:
            if own[i][1] is not None:
                yield own[i][0], own[i][1]  # type: ignore[misc]
            i += 1
        if i < len(own) and own[i][0] == key:
            if own[i][1] is not None:
                yield key, own[i][1]  # type: ignore[misc]
            i += 1
            continue
        yield key, row
    for own_key, own_row in own[i:]:
        if own_row is not None:
            yield own_key, own_row
