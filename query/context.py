"""The seam between the SQL engine and a transaction.

The engine (parsing, planning, expression evaluation, DML semantics) sees storage only
through :class:`TxnContext`. A context reads at one snapshot offset, overlays the
transaction's own buffered writes, records every read for certification, and enforces
the table's constraints on each write. It knows nothing of SQL text; the engine knows
nothing of keys, offsets or RocksDB.

Rows are tuples of *logical* values (see :mod:`offsetdb.types`) in the table's column
order. A row's identity is its opaque ``key`` (bytes): the engine passes back the keys it
got from :meth:`TxnContext.scan` / :meth:`TxnContext.get` to update or delete rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from offsetdb.materializers.catalog import TableDef
    from offsetdb.materializers.sources import SourceDefinition

Row = tuple[Any, ...]

ConjunctOp = Literal["=", "<", "<=", ">", ">=", "IN", "IS NULL"]


@dataclass(frozen=True)
class Conjunct:
    """``column op values``: one AND-ed term of a scan's filter on a single table.

    ``values`` holds one logical value for comparisons, the list for IN, none for IS NULL.
    """

    column: int
    op: ConjunctOp
    values: tuple[Any, ...]


@dataclass(frozen=True)
class ScanFilter:
    """The part of a WHERE clause that a scan can state about one table's rows.

    A conjunction of :class:`Conjunct`; empty means every row. The context may use it to
    narrow the scan (primary-key ranges) and records it as the predicate read for
    SERIALIZABLE certification. It is a *hint*: a scan returns at least every row that
    satisfies it, and the engine still applies its whole WHERE clause afterwards.
    """

    conjuncts: tuple[Conjunct, ...] = ()


class TxnContext(Protocol):
    """What the SQL engine needs from a transaction."""

    @property
    def snapshot_offset(self) -> int:
        """The log offset whose state this transaction reads (-1: the empty database)."""
        ...

    @property
    def started_at(self) -> datetime:
        """When the transaction began (UTC, naive): ``now()`` for all of its statements."""
        ...

    def begin_statement(self) -> None:
        """Mark the start of a statement.

        Until the next call, :meth:`scan` and :meth:`get` see this transaction's writes
        made *before* the statement, never the statement's own (PostgreSQL's command
        visibility: ``UPDATE t SET v = (SELECT max(v) FROM t)`` reads t as it was).
        :meth:`find_unique` and the constraint checks of writes see every write.
        """
        ...

    def table(self, name: str) -> TableDef:
        """The table called ``name`` at this snapshot, or UndefinedTable (42P01).

        Tables this transaction created are included.
        """
        ...

    def table_names(self) -> list[str]:
        """Names of the tables visible to this transaction, sorted."""
        ...

    def scan(self, table: TableDef, where: ScanFilter | None = None) -> Iterator[tuple[bytes, Row]]:
        """Every live row of ``table`` matching ``where`` (maybe more), as ``(key, row)``.

        Rows come in primary-key order, the transaction's own writes included.
        """
        ...

    def get(self, table: TableDef, primary_key: Sequence[Any]) -> tuple[bytes, Row] | None:
        """The row whose primary key equals ``primary_key``, or None.

        Values are in key-column order. Only for tables with a declared primary key.
        """
        ...

    def find_unique(
        self, table: TableDef, columns: tuple[int, ...], values: Sequence[Any]
    ) -> tuple[bytes, Row] | None:
        """The row whose ``columns`` equal ``values``, or None (for ON CONFLICT).

        ``columns`` must be the primary key or a UNIQUE constraint.
        """
        ...

    def insert(self, table: TableDef, row: Row) -> bytes:
        """Insert a complete row (defaults already filled in); returns its key.

        Coerces values to the column types and enforces NOT NULL (23502), the primary
        key and UNIQUE constraints (23505) against this snapshot and this transaction's
        own writes. Certification re-checks uniqueness against concurrent commits.
        """
        ...

    def update(self, table: TableDef, key: bytes, row: Row) -> bytes:
        """Replace the row at ``key`` with ``row``; returns its key (new if the PK changed).

        Same checks as :meth:`insert`.
        """
        ...

    def delete(self, table: TableDef, key: bytes) -> None:
        """Delete the row at ``key``."""
        ...

    def create_table(self, definition: TableDef, if_not_exists: bool = False) -> bool:
        """Create a table (``definition.table_id`` is 0).

        Returns False when it existed and ``if_not_exists`` was given; else an existing
        name raises DuplicateTable (42P07).
        """
        ...

    def drop_table(self, name: str, if_exists: bool = False) -> bool:
        """Drop a table and its rows; False when absent and ``if_exists``, else 42P01."""
        ...

    def create_source(self, definition: SourceDefinition, if_not_exists: bool = False) -> bool:
        """Record a Kafka source (CREATE SOURCE), checked against its target table.

        False when it existed and ``if_not_exists`` was given; else 42710.
        """
        ...

    def drop_source(self, name: str, if_exists: bool = False) -> bool:
        """Remove a source and its stored offsets; False when absent and ``if_exists``."""
        ...

    def alter_source(self, name: str, state: str) -> None:
        """Set a source's state: ``RUNNING`` or ``PAUSED``."""
        ...
