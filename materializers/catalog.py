"""The catalog: table definitions, materialized from DDL records in the log.

A table is created by a transaction record whose ``ddl`` list holds a CREATE TABLE; its
``table_id`` is derived from that record's offset (see ``created_table_ids`` in the
applier; 0 is the catalog itself), so ids are unique and every node derives
the same one without coordination. The catalog is versioned like rows: a session reads it
at its snapshot offset (:meth:`Catalog.at`), and DROP then CREATE of the same name yields a
new table id, so writes addressed to the old table are refused at certification.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from offsetdb import errors
from offsetdb.types import Kind, SqlType, row_coercer, row_converters


@dataclass(frozen=True)
class Column:
    """One column of a table. ``default`` is the SQL text of its DEFAULT expression."""

    name: str
    type: SqlType
    not_null: bool = False
    default: str | None = None


@dataclass(frozen=True)
class TableDef:
    """A table at one schema version.

    ``primary_key`` holds column positions; an empty key means the table was declared
    without one and rows are keyed by a hidden row id assigned at apply time (the commit
    offset and the row's place in its transaction), as PostgreSQL's ctid or
    CockroachDB's rowid. ``unique`` lists the UNIQUE constraints, each a tuple of column
    positions. ``table_id`` is 0 until the CREATE is committed.
    """

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[int, ...] = ()
    unique: tuple[tuple[int, ...], ...] = ()
    table_id: int = 0
    schema_version: int = 1
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in declaration order."""
        cached = self._cache.get("names")
        if cached is None:
            cached = self._cache["names"] = tuple(c.name for c in self.columns)
        return cached

    @property
    def types(self) -> tuple[SqlType, ...]:
        """Column types in declaration order."""
        cached = self._cache.get("types")
        if cached is None:
            cached = self._cache["types"] = tuple(c.type for c in self.columns)
        return cached

    @property
    def has_hidden_key(self) -> bool:
        """True when rows are keyed by a hidden row id rather than declared columns."""
        return not self.primary_key

    def column_index(self, name: str) -> int:
        """Position of the column called ``name`` (as folded by the parser), or 42703."""
        for i, column in enumerate(self.columns):
            if column.name == name:
                return i
        raise errors.UndefinedColumn(f'column "{name}" of relation "{self.name}" does not exist')

    def converters(self) -> tuple[Any, Any]:
        """(to_primitive, from_primitive) row functions for this table version."""
        cached = self._cache.get("conv")
        if cached is None:
            cached = self._cache["conv"] = row_converters(self.types)
        return cached

    def coercer(self) -> Any:
        """Function coercing a row to this table's column types and checking NOT NULL."""
        cached = self._cache.get("coercer")
        if cached is None:
            cached = self._cache["coercer"] = row_coercer(
                self.types, self.column_names, tuple(c.not_null for c in self.columns), self.name
            )
        return cached

    def with_id(self, table_id: int) -> TableDef:
        """A copy of this definition, committed under ``table_id``."""
        return replace(self, table_id=table_id, _cache={})

    # --- serialization into log records and the catalog keyspace ----------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of this definition (the Avro ``TableDefinition`` record)."""
        return {
            "name": self.name,
            "table_id": self.table_id,
            "schema_version": self.schema_version,
            "columns": [
                {
                    "name": c.name,
                    "kind": c.type.kind.name,
                    "length": c.type.length,
                    "precision": c.type.precision,
                    "scale": c.type.scale,
                    "not_null": c.not_null,
                    "default": c.default,
                }
                for c in self.columns
            ],
            "primary_key": list(self.primary_key),
            "unique": [list(u) for u in self.unique],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableDef:
        """Inverse of :meth:`to_dict`."""
        columns = tuple(
            Column(
                name=c["name"],
                type=SqlType(Kind[c["kind"]], c.get("length"), c.get("precision"), c.get("scale")),
                not_null=c["not_null"],
                default=c.get("default"),
            )
            for c in data["columns"]
        )
        return cls(
            name=data["name"],
            columns=columns,
            primary_key=tuple(data["primary_key"]),
            unique=tuple(tuple(u) for u in data["unique"]),
            table_id=data["table_id"],
            schema_version=data["schema_version"],
        )


class CatalogVersion:
    """The set of tables as of one log offset: immutable once published."""

    def __init__(self, offset: int, tables: dict[str, TableDef]) -> None:
        self.offset = offset
        self._tables = tables
        self._by_id = {t.table_id: t for t in tables.values()}

    def get(self, name: str) -> TableDef | None:
        """The table called exactly ``name``, or None.

        Names are stored as the parser folded them: unquoted identifiers in lower case,
        quoted ones as written (``"Users"`` and ``users`` are two tables, as in PostgreSQL).
        """
        return self._tables.get(name)

    def require(self, name: str) -> TableDef:
        """The table called ``name``, or 42P01 naming it."""
        table = self._tables.get(name)
        if table is None:
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        return table

    def by_id(self, table_id: int) -> TableDef | None:
        """The live table with this id, or None when it was dropped or never existed."""
        return self._by_id.get(table_id)

    def names(self) -> list[str]:
        """Table names, sorted."""
        return sorted(self._tables)

    def tables(self) -> list[TableDef]:
        """All tables, sorted by name."""
        return [self._tables[n] for n in sorted(self._tables)]

    def with_changes(
        self, offset: int, created: list[TableDef], dropped: list[str]
    ) -> CatalogVersion:
        """The next version: ``dropped`` names removed, ``created`` tables added."""
        tables = dict(self._tables)
        for name in dropped:
            tables.pop(name, None)
        for table in created:
            tables[table.name] = table
        return CatalogVersion(offset, tables)


class Catalog:
    """Every catalog version since the database began, for reads at any snapshot.

    DDL is rare, so all versions are kept in memory (rebuilt from the catalog keyspace
    at open). Readers take :meth:`at` their snapshot; the materializer publishes new
    versions with :meth:`publish` after the WriteBatch holding them is written.
    """

    def __init__(self) -> None:
        self._offsets: list[int] = [-1]
        self._versions: list[CatalogVersion] = [CatalogVersion(-1, {})]
        self._lock = threading.Lock()

    def latest(self) -> CatalogVersion:
        """The newest published version."""
        return self._versions[-1]

    def at(self, offset: int) -> CatalogVersion:
        """The version in force at snapshot ``offset`` (the last change at or before it)."""
        versions = self._versions
        if versions[-1].offset <= offset:
            return versions[-1]
        index = bisect.bisect_right(self._offsets, offset) - 1
        return versions[max(index, 0)]

    def dropped(self) -> list[tuple[int, int]]:
        """``(table_id, offset of its DROP)`` of every table dropped since the beginning."""
        out = []
        for previous, current in zip(self._versions, self._versions[1:], strict=False):
            for table in previous.tables():
                if current.by_id(table.table_id) is None:
                    out.append((table.table_id, current.offset))
        return out

    def publish(self, version: CatalogVersion) -> None:
        """Make ``version`` (at an offset above every earlier one) visible to readers."""
        with self._lock:
            if version.offset <= self._offsets[-1]:
                raise errors.InternalError(
                    f"catalog version {version.offset} published after {self._offsets[-1]}"
                )
            self._versions.append(version)
            self._offsets.append(version.offset)
