"""An in-memory TxnContext: a fake of the engine's own seam, for engine unit tests.

Rows live in dicts keyed by an order-preserving key (the primary key values, or a hidden
row id); values are coerced with offsetdb.types.coerce, NOT NULL and uniqueness are
checked, as the real context does. No MVCC, no certification: one transaction at a time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

from offsetdb import errors
from offsetdb.materializers.catalog import TableDef
from offsetdb.query.context import ScanFilter
from offsetdb.types import coerce


class MemoryDatabase:
    """Tables and rows shared by the contexts opened on it."""

    def __init__(self) -> None:
        self.tables: dict[str, TableDef] = {}
        self.rows: dict[int, dict[bytes, tuple[Any, ...]]] = {}
        self.sort_keys: dict[int, dict[bytes, Any]] = {}
        self.next_id = itertools.count(1)
        self.next_rowid = itertools.count(1)
        self.scans: list[tuple[str, ScanFilter | None]] = []
        self.gets: list[tuple[str, tuple[Any, ...]]] = []


def _sortable(values: Sequence[Any]) -> Any:
    return tuple((v is None, v if v is not None else 0) for v in values)


class MemoryContext:
    """A TxnContext over a MemoryDatabase (writes apply immediately)."""

    def __init__(self, db: MemoryDatabase | None = None) -> None:
        self.db = db or MemoryDatabase()
        self._started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # rows as they stood when the current statement began: what its reads see
        self._view: dict[int, dict[bytes, tuple[Any, ...]]] = {}

    def begin_statement(self) -> None:
        self._view = {tid: dict(rows) for tid, rows in self.db.rows.items()}

    @property
    def snapshot_offset(self) -> int:
        return -1

    @property
    def started_at(self) -> dt.datetime:
        return self._started


    def table(self, name: str) -> TableDef:
        table = self.db.tables.get(name)
        if table is None:
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        return table

    def table_names(self) -> list[str]:
        return sorted(self.db.tables)

    def _rows(self, table: TableDef) -> dict[bytes, tuple[Any, ...]]:
        return self.db.rows[table.table_id]

    def _seen(self, table: TableDef) -> dict[bytes, tuple[Any, ...]]:
        view = self._view.get(table.table_id)
        return view if view is not None else self._rows(table)

    def scan(self, table: TableDef, where: ScanFilter | None = None) -> Iterator[tuple[bytes, tuple[Any, ...]]]:
        self.db.scans.append((table.name, where))
        rows = self._seen(table)
        order = self.db.sort_keys[table.table_id]
        for key in sorted(rows, key=lambda k: order[k]):
            if key in rows:
                yield key, rows[key]

    def get(self, table: TableDef, primary_key: Sequence[Any]) -> tuple[bytes, tuple[Any, ...]] | None:
        assert table.primary_key, "get() on a table without a primary key"
        values = tuple(
            coerce(v, table.columns[i].type) for v, i in zip(primary_key, table.primary_key, strict=True)
        )
        self.db.gets.append((table.name, values))
        key = pickle.dumps(values)
        row = self._seen(table).get(key)
        return (key, row) if row is not None else None

    def find_unique(self, table: TableDef, columns: tuple[int, ...], values: Sequence[Any]) -> tuple[bytes, tuple[Any, ...]] | None:
        wanted = tuple(coerce(v, table.columns[i].type) for v, i in zip(values, columns, strict=True))
        for key, row in self._rows(table).items():
            if tuple(row[i] for i in columns) == wanted:
                return key, row
        return None

    def _check(self, table: TableDef, row: tuple[Any, ...], ignore: bytes | None) -> tuple[Any, ...]:
        if len(row) != len(table.columns):
            raise errors.InternalError("row of the wrong width")
        out = tuple(coerce(v, c.type, c.name) for v, c in zip(row, table.columns, strict=True))
        for v, c in zip(out, table.columns, strict=True):
            if v is None and c.not_null:
                raise errors.NotNullViolation(f'null value in column "{c.name}" violates not-null constraint')
        constraints = ([table.primary_key] if table.primary_key else []) + list(table.unique)
        for cols in constraints:
            values = tuple(out[i] for i in cols)
            if None in values:
                continue
            for key, other in self._rows(table).items():
                if key != ignore and tuple(other[i] for i in cols) == values:
                    raise errors.UniqueViolation("duplicate key value violates unique constraint")
        return out

    def _key(self, table: TableDef, row: tuple[Any, ...]) -> tuple[bytes, Any]:
        if table.primary_key:
            values = tuple(row[i] for i in table.primary_key)
            return pickle.dumps(values), _sortable(values)
        rowid = next(self.db.next_rowid)
        return pickle.dumps(("rowid", rowid)), ((False, rowid),)

    def insert(self, table: TableDef, row: tuple[Any, ...]) -> bytes:
        out = self._check(table, tuple(row), None)
        key, order = self._key(table, out)
        self._rows(table)[key] = out
        self.db.sort_keys[table.table_id][key] = order
        return key

    def update(self, table: TableDef, key: bytes, row: tuple[Any, ...]) -> bytes:
        out = self._check(table, tuple(row), key)
        rows = self._rows(table)
        if not table.primary_key:
            rows[key] = out
            return key
        new_key, order = self._key(table, out)
        del rows[key]
        rows[new_key] = out
        self.db.sort_keys[table.table_id][new_key] = order
        return new_key

    def delete(self, table: TableDef, key: bytes) -> None:
        del self._rows(table)[key]

    def create_table(self, definition: TableDef, if_not_exists: bool = False) -> bool:
        if definition.name in self.db.tables:
            if if_not_exists:
                return False
            raise errors.DuplicateTable(f'relation "{definition.name}" already exists')
        table = definition.with_id(next(self.db.next_id))
        self.db.tables[table.name] = table
        self.db.rows[table.table_id] = {}
        self.db.sort_keys[table.table_id] = {}
        return True

    def drop_table(self, name: str, if_exists: bool = False) -> bool:
        table = self.db.tables.pop(name, None)
        if table is None:
            if if_exists:
                return False
            raise errors.UndefinedTable(f'table "{name}" does not exist')
        del self.db.rows[table.table_id]
        return True
