r"""From a decoded record to a row of the target table.

Columns take the field of their own name (exact spelling) unless the source's column
list says otherwise (``COLUMNS (id FROM KEY, at FROM TIMESTAMP, ...)``); a field that is
absent gives NULL; fields no column names are ignored. Values then go through the
table's own coercion (:meth:`~offsetdb.materializers.catalog.TableDef.coercer`, called
by the transaction's insert), as a literal would in an INSERT, after these conventions
of Kafka's JSON (Kafka Connect's, where it has one):

- a number into TIMESTAMP is milliseconds since the epoch (UTC); into DATE, days;
- a string into BYTEA is base64, or hex with a ``\x`` prefix;
- an object or array into TEXT/VARCHAR is its JSON text.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from offsetdb import errors
from offsetdb.ingest.formats import EPOCH, EPOCH_DATE, Fields, RecordError, headers_of, key_fields
from offsetdb.materializers.catalog import TableDef
from offsetdb.materializers.sources import ColumnSource, SourceDefinition
from offsetdb.types import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    Kind,
    SqlType,
    coerce,
    row_converters,
)

Row = tuple[Any, ...]


def _timestamp(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return EPOCH + dt.timedelta(milliseconds=value)
    return value


def _date(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return EPOCH_DATE + dt.timedelta(days=value)
    return value


def _bytes(value: Any) -> Any:
    if isinstance(value, str) and not value.startswith("\\x"):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(f"a BYTEA value must be base64 or \\x-prefixed hex, not {value[:40]!r}") from None
    return value


def _text(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if type(value) is str and not _storable(value):
        _refuse_text(value)
    return value


def _storable(text: str) -> bool:
    """Whether PostgreSQL could hold ``text``: no NUL, no lone surrogate (JSON can say both)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_text(text: str) -> None:
    what = "0x00" if "\x00" in text else "a lone surrogate in the text"
    raise errors.CharacterNotInRepertoire(f'invalid byte sequence for encoding "UTF8": {what}')


_ADAPT: dict[Kind, Callable[[Any], Any]] = {
    Kind.TIMESTAMP: _timestamp,
    Kind.DATE: _date,
    Kind.BYTEA: _bytes,
    Kind.TEXT: _text,
    Kind.VARCHAR: _text,
}


def _metadata(source: ColumnSource, kind: Kind) -> Callable[[Message, Fields | None], Any]:
    """A column filled from the Kafka record itself rather than its value."""
    binary = kind is Kind.BYTEA
    origin = source.origin
    if origin == "KEY":
        def from_key(message: Message, _: Fields | None) -> Any:
            key = message.key()
            return key if key is None or binary else key.decode("utf-8", "strict")

        return from_key
    if origin == "TIMESTAMP":
        as_time = kind in (Kind.TIMESTAMP, Kind.DATE)

        def from_timestamp(message: Message, _: Fields | None) -> Any:
            ts_type, ms = message.timestamp()
            if ts_type == 0:  # TIMESTAMP_NOT_AVAILABLE
                return None
            return EPOCH + dt.timedelta(milliseconds=ms) if as_time else ms

        return from_timestamp
    if origin == "PARTITION":
        return lambda message, _: message.partition()
    if origin == "OFFSET":
        return lambda message, _: message.offset()
    if origin == "HEADER":
        wanted = source.name

        def from_header(message: Message, _: Fields | None) -> Any:
            found = None
            for name, value in headers_of(message.headers()):
                if name == wanted:
                    found = value  # the last one, as Kafka's Headers.lastHeader
            if found is None or binary:
                return found
            return found.decode("utf-8", "strict")

        return from_header
    raise AssertionError(origin)


# Microseconds and days from 1970 that TIMESTAMP and DATE hold (years 1 to 9999).
_MICROS = (-62_135_596_800_000_000, 253_402_300_799_999_999)
_DAYS = (-719_162, 2_932_896)


def _primitive_converter(
    kind: Kind, sql_type: SqlType, name: str, table: str, not_null: bool
) -> Callable[[Any], Any]:
    """One column: a JSON value straight to its primitive form (bulk APPEND).

    The usual JSON type goes through one type check; anything else takes the general
    path (the Kafka JSON conventions, then the column's coercion), so the result is the
    same as :meth:`RowMapper.row` followed by the table's coercer.
    """
    adapt = _ADAPT.get(kind)
    to_primitive = row_converters((sql_type,))[0]

    def general(value: Any) -> Any:
        if value is None:
            if not_null:
                raise errors.NotNullViolation(
                    f'null value in column "{name}" of relation "{table}" violates not-null constraint'
                )
            return None
        if adapt is not None:
            try:
                value = adapt(value)
            except (ValueError, TypeError, OverflowError) as e:
                raise errors.InvalidTextRepresentation(f'column "{name}" of "{table}": {e}') from None
        return to_primitive((coerce(value, sql_type, name),))[0]

    plain = sql_type.length is None and sql_type.precision is None
    if kind in (Kind.INTEGER, Kind.BIGINT):
        lo, hi = (INT32_MIN, INT32_MAX) if kind is Kind.INTEGER else (INT64_MIN, INT64_MAX)
        return lambda v: v if type(v) is int and lo <= v <= hi else general(v)
    if kind is Kind.DOUBLE:
        return lambda v: v if type(v) is float and v == v else general(v)
    if kind is Kind.TEXT or (kind is Kind.VARCHAR and plain):
        return lambda v: v if type(v) is str and _storable(v) else general(v)
    if kind is Kind.BOOLEAN:
        return lambda v: v if type(v) is bool else general(v)
    if kind is Kind.TIMESTAMP:
        lo, hi = _MICROS
        return lambda v: v * 1000 if type(v) is int and lo <= v * 1000 <= hi else general(v)
    if kind is Kind.DATE:
        lo, hi = _DAYS
        return lambda v: v if type(v) is int and lo <= v <= hi else general(v)
    return general


def _compile_plain_converter(table: TableDef, converters: list[Callable[[Any], Any]]) -> Callable[[Fields], Row]:
    """``fields -> primitive row`` for a table whose columns all take their own field.

    Generated once per table version, with each column's usual JSON type checked inline
    (the per-column converters are called only for anything else): the bulk APPEND path's
    cost per value is then a dict lookup and a type check.
    """
    lines = ["def convert(fields):", "    get = fields.get"]
    names = []
    for i, column in enumerate(table.columns):
        kind, sql_type = column.type.kind, column.type
        v, g = f"v{i}", f"g[{i}]"
        lines.append(f"    {v} = get({column.name!r})")
        plain = sql_type.length is None and sql_type.precision is None
        if kind in (Kind.INTEGER, Kind.BIGINT):
            lo, hi = (INT32_MIN, INT32_MAX) if kind is Kind.INTEGER else (INT64_MIN, INT64_MAX)
            lines.append(f"    if type({v}) is not int or not {lo} <= {v} <= {hi}: {v} = {g}({v})")
        elif kind is Kind.DOUBLE:
            lines.append(f"    if type({v}) is not float or {v} != {v}: {v} = {g}({v})")
        elif kind is Kind.TEXT or (kind is Kind.VARCHAR and plain):
            lines.append(f"    if type({v}) is not str or not {v}.isascii() or '\\x00' in {v}: {v} = {g}({v})")
        elif kind is Kind.BOOLEAN:
            lines.append(f"    if type({v}) is not bool: {v} = {g}({v})")
        elif kind is Kind.TIMESTAMP:
            lo, hi = _MICROS[0] // 1000 + 1, _MICROS[1] // 1000
            lines.append(f"    if type({v}) is int and {lo} <= {v} <= {hi}: {v} = {v} * 1000")
            lines.append(f"    else: {v} = {g}({v})")
        elif kind is Kind.DATE:
            lo, hi = _DAYS
            lines.append(f"    if type({v}) is not int or not {lo} <= {v} <= {hi}: {v} = {g}({v})")
        else:
            lines.append(f"    {v} = {g}({v})")
        names.append(v)
    lines.append(f"    return ({', '.join(names)},)")
    namespace: dict[str, Any] = {"g": converters}
    exec("\n".join(lines), namespace)  # noqa: S102 - code generated from the table's own types
    convert: Callable[[Fields], Row] = namespace["convert"]
    return convert


class RowMapper:
    """Builds rows of one table version from decoded fields, per the source's column list."""

    def __init__(self, table: TableDef, definition: SourceDefinition) -> None:
        self.table = table
        names = table.column_names
        self._names = names
        by_column = {c.column: c for c in definition.columns}
        self._fields: list[tuple[int, tuple[str, ...]]] = []  # renamed or nested fields
        self._metadata: list[tuple[int, Callable[[Message, Fields | None], Any]]] = []
        self._key_fields: list[tuple[int, str]] = []
        for i, column in enumerate(table.columns):
            source = by_column.get(column.name)
            if source is None:
                continue
            if source.origin == "FIELD":
                assert source.name is not None
                self._fields.append((i, tuple(source.name.split("."))))
            elif source.origin == "KEY_FIELD":
                assert source.name is not None
                self._key_fields.append((i, source.name))
            else:
                self._metadata.append((i, _metadata(source, column.type.kind)))
        self._plain = not (self._fields or self._metadata or self._key_fields)
        self._adapt = [
            (i, _ADAPT[c.type.kind]) for i, c in enumerate(table.columns) if c.type.kind in _ADAPT
        ]
        self._converters = [
            _primitive_converter(c.type.kind, c.type, c.name, table.name, c.not_null)
            for c in table.columns
        ]
        self._plain_converter = _compile_plain_converter(table, self._converters)

    def primitive_row(self, fields: Fields, message: Message) -> Row:
        """The row in primitive form, converted and checked as an insert would (bulk APPEND).

        Raises the column's error (22P02, 23502, 22003, ...) for a value it refuses.
        """
        if self._plain:
            return self._plain_converter(fields)
        values = self._values(fields, message)
        return tuple([convert(v) for convert, v in zip(self._converters, values, strict=True)])

    def _values(self, fields: Fields, message: Message) -> list[Any]:
        get = fields.get
        values = [get(n) for n in self._names]
        if not self._plain:
            for i, path in self._fields:
                values[i] = _walk(fields, path)
            for i, read in self._metadata:
                values[i] = read(message, fields)
            if self._key_fields:
                key = key_fields(message.key(), self.table)
                for i, name in self._key_fields:
                    values[i] = key.get(name)
        return values

    def row(self, fields: Fields, message: Message) -> Row:
        """The row the record's fields (and the record itself) make."""
        values = self._values(fields, message)
        for i, adapt in self._adapt:
            value = values[i]
            if value is not None:
                try:
                    values[i] = adapt(value)
                except (ValueError, TypeError, OverflowError) as e:
                    raise RecordError(
                        "TASK_PUT", f'column "{self._names[i]}" of "{self.table.name}": {e}',
                        "offsetdb.errors.InvalidTextRepresentation", "22P02",
                    ) from None
        return tuple(values)

    def key(self, fields: Fields, message: Message) -> list[Any]:
        """The primary-key values of a delete, from the key fields (or the column list)."""
        table = self.table
        out = []
        for i in table.primary_key:
            name = self._names[i]
            value = fields.get(name)
            if value is None and not self._plain:
                value = self.row(fields, message)[i]
            if value is None:
                raise RecordError(
                    "KEY_CONVERTER", f'the delete names no value for key column "{name}" of "{table.name}"'
                )
            out.append(value)
        return out


def _walk(fields: Fields, path: tuple[str, ...]) -> Any:
    value: Any = fields
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
