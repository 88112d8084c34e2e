"""Change feed items as text: JSON lines (``offsetdb subscribe``) and prompt lines (``SUBSCRIBE``).

Items are those of ``conn.subscribe()`` (see :mod:`offsetdb.materializers.changes`),
read here by their attributes only, so that the kernel need not import the layers above:
a transaction or snapshot chunk has ``offset`` and ``changes`` (each with ``table``,
``op``, ``key``, ``before``, ``after``, ``columns``, ``snapshot``), a transaction also
``txn_id``, ``commit_time_us`` and ``schema_changes``; a progress mark only ``offset``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from offsetdb.repl import render_value


def json_value(value: Any) -> Any:
    r"""A value as JSON holds it: dates and times in ISO 8601, NUMERIC as text, BYTEA as ``\x`` hex."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return value


def _row(columns: tuple[str, ...], row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {name: json_value(value) for name, value in zip(columns, row, strict=True)}


def _key(change: Any) -> dict[str, Any]:
    table = change.table_def
    if table is None or table.has_hidden_key:
        names = ("rowid_offset", "rowid_position")
    else:
        names = tuple(table.columns[i].name for i in table.primary_key)
    return {name: json_value(value) for name, value in zip(names, change.key, strict=True)}


def json_lines(item: Any, progress: bool = False) -> list[str]:
    """One JSON object per change of ``item`` (and per DROP TABLE); progress marks if asked."""
    if not hasattr(item, "changes"):
        return [json.dumps({"progress": item.offset})] if progress else []
    txn_id = getattr(item, "txn_id", None)
    ts_ms = item.commit_time_us // 1000
    lines = []
    for change in item.changes:
        record: dict[str, Any] = {
            "offset": item.offset,
            "txn_id": txn_id,
            "ts_ms": ts_ms,
            "table": change.table,
            "op": change.op,
            "key": _key(change),
            "before": _row(change.columns, change.before),
            "after": _row(change.columns, change.after),
        }
        if change.op == "r":
            record["snapshot"] = change.snapshot
        lines.append(json.dumps(record, ensure_ascii=False))
    for schema_change in getattr(item, "schema_changes", ()):
        lines.append(
            json.dumps(
                {
                    "offset": item.offset,
                    "txn_id": txn_id,
                    "ts_ms": ts_ms,
                    "table": schema_change.table,
                    "op": "create" if schema_change.op == "CREATE" else "drop",
                    "schema_version": schema_change.schema_version,
                    "columns": list(schema_change.columns),
                }
            )
        )
    return lines


def _tuple(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return ""
    return "(" + ", ".join(render_value(v) if v is not None else "NULL" for v in row) + ")"


PROMPT_HEADER = " offset | op | table | key | before | after"


def prompt_lines(item: Any) -> list[str]:
    """The lines ``SUBSCRIBE`` prints at the prompt for one item (none for progress)."""
    if not hasattr(item, "changes"):
        return []
    lines = []
    for change in item.changes:
        lines.append(
            f" {item.offset} | {change.op} | {change.table} | {_tuple(change.key)} | "
            f"{_tuple(change.before)} | {_tuple(change.after)}"
        )
    for schema_change in getattr(item, "schema_changes", ()):
        what = "CREATE TABLE" if schema_change.op == "CREATE" else "DROP TABLE"
        lines.append(f" {item.offset} | {what} {schema_change.table}")
    return lines
