"""Bulk load: CSV files into a table, in batches of one transaction each.

Each batch is one ``executemany`` and one commit, so a load appends one log record per
batch and a failure leaves every earlier batch committed and nothing of the failing one
(the error names the line). Values arrive as text and are parsed by the column types,
as PostgreSQL's ``COPY ... CSV`` does; an unquoted empty field is NULL.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from offsetdb import errors


class _Cursor(Protocol):
    def executemany(self, sql: str, seq_of_params: Sequence[Sequence[Any]]) -> Any: ...


class Connection(Protocol):
    """The part of a PEP 249 connection a bulk load needs."""

    def cursor(self) -> Any:
        """A new cursor."""
        ...

    def commit(self) -> None:
        """Commit the open transaction."""
        ...

    def rollback(self) -> None:
        """Roll back the open transaction."""
        ...

    def describe_table(self, name: str) -> list[Any]:
        """Column descriptions (objects with a ``name``) of table ``name``."""
        ...


@dataclass(frozen=True)
class LoadResult:
    """What a load did: rows committed, batches (transactions), seconds taken."""

    rows: int
    batches: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Throughput of the whole load."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def load_csv(
    conn: Connection,
    table: str,
    path: str,
    batch_size: int = 10_000,
    header: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
) -> LoadResult:
    """Load the CSV file ``path`` into ``table``; returns what was committed.

    With ``header``, the first line names the columns (in any order, a subset of the
    table's; the others get their defaults); without, the fields are all the table's
    columns in order. ``progress(bytes_read, file_size, seconds)`` is called per batch.
    """
    known = [c.name for c in conn.describe_table(table)]
    size = os.path.getsize(path)
    started = time.monotonic()
    rows = batches = 0
    consumed = 0

    def counted(handle: Any) -> Any:
        nonlocal consumed
        for line in handle:
            consumed += len(line)  # characters: close enough to bytes for a progress line
            yield line

    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(counted(handle))
        columns = known
        if header:
            first = next(reader, None)
            if first is None:
                return LoadResult(0, 0, 0.0)
            columns = [name.strip().lower() for name in first]
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise errors.UndefinedColumn(
                    f'column "{unknown[0]}" of relation "{table}" does not exist '
                    f"(CSV header of {path})"
                )
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
        cursor = conn.cursor()
        batch: list[list[str | None]] = []
        first_line = reader.line_num + 1
        for record in reader:
            if len(record) != len(columns):
                raise errors.DataError(
                    f"{path}, line {reader.line_num}: {len(record)} fields where "
                    f"{len(columns)} columns were expected",
                    "22P04",
                )
            batch.append([field if field != "" else None for field in record])
            if len(batch) >= batch_size:
                rows += _commit_batch(conn, cursor, sql, batch, path, first_line, reader.line_num)
                batches += 1
                batch = []
                first_line = reader.line_num + 1
                if progress is not None:
                    progress(min(consumed, size), size, time.monotonic() - started)
        if batch:
            rows += _commit_batch(conn, cursor, sql, batch, path, first_line, reader.line_num)
            batches += 1
        if progress is not None:
            progress(size, size, time.monotonic() - started)
    return LoadResult(rows, batches, time.monotonic() - started)


def _commit_batch(
    conn: Connection,
    cursor: _Cursor,
    sql: str,
    batch: list[list[str | None]],
    path: str,
    first: int,
    last: int,
) -> int:
    try:
        cursor.executemany(sql, batch)
        conn.commit()
    except errors.Error as e:
        conn.rollback()
        where = f"line {first}" if first == last else f"lines {first}-{last}"
        raise type(e)(f"{path}, {where} (not loaded): {e.message}", e.sqlstate) from e
    return len(batch)
