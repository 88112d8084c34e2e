"""Source record formats: from a Kafka record's bytes to the row operations it asks for.

A decoder turns one record into at most one :data:`Op`:

- ``("I", fields)``: append a row (MODE APPEND);
- ``("U", fields)``: insert or replace the row with that primary key (MODE UPSERT; a
  Debezium ``c``, ``r`` or ``u``);
- ``("D", key_fields)``: delete the row with that primary key (a null value in UPSERT
  mode, read from the record's key; a Debezium ``d``, from its ``before``);
- ``("T", None)``: delete every row (a Debezium truncate, ``op: t``);
- ``None``: nothing to write (a Debezium tombstone, which only lets Kafka compact).

``fields`` maps field names to values; :mod:`offsetdb.ingest.mapping` turns them into a
row of the table. A record that cannot be decoded raises :class:`RecordError` naming
the problem, with Kafka Connect's stage name (``VALUE_CONVERTER``, ``KEY_CONVERTER``).

Formats:

- **JSON**: the value is a JSON object (a Kafka Connect ``{"schema", "payload"}`` pair
  is unwrapped). The key, when a primary key is read from it, is a JSON object whose
  fields are named like the key columns, or a bare value for a one-column key.
- **DEBEZIUM**: Debezium's change envelope in Kafka Connect JSON, with schemas (as
  offsetdb's own CDC publishes, :mod:`offsetdb.materializers.envelope`) or without.
  Values are converted by the field schemas Debezium declares (``io.debezium.time.Date``
  days, ``MicroTimestamp`` microseconds, ``Timestamp`` milliseconds, bytes in base64,
  ...), so the rows that come out are the rows that went in.
- **AVRO**: see :mod:`offsetdb.ingest.avro`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
from collections.abc import Callable
from typing import Any

from offsetdb.materializers.catalog import TableDef
from offsetdb.types import Kind

Fields = dict[str, Any]
Op = tuple[str, Fields | None]
Decoder = Callable[[bytes | None, bytes | None], Op | None]

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_DATE = dt.date(1970, 1, 1)


class RecordError(Exception):
    """A record that cannot be ingested: the stage that failed and why (for the DLQ)."""

    def __init__(
        self, stage: str, message: str, exception_class: str = "offsetdb.ingest.RecordError",
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.exception_class = exception_class
        self.sqlstate = sqlstate


def headers_of(raw: Any) -> list[tuple[str, bytes | None]]:
    """A Kafka message's headers (``Message.headers()``) as ``(name, bytes)`` pairs, in order."""
    if not raw:
        return []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), v.encode() if isinstance(v, str) else v) for k, v in pairs]


_DECODE = json.JSONDecoder().decode
_DECODE_EXACT = json.JSONDecoder(parse_float=decimal.Decimal).decode


def _json(data: bytes, what: str, stage: str, table: TableDef) -> Any:
    try:
        # The decoder itself, on text: json.loads would first guess the bytes' encoding.
        if table._cache.get("has_numeric"):
            return _DECODE_EXACT(data.decode())
        return _DECODE(data.decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise RecordError(stage, f"the record's {what} is not valid JSON: {e}", type(e).__name__) from None


def _unwrap_connect(value: Any) -> Any:
    """Kafka Connect's JSON with schemas is ``{"schema": ..., "payload": ...}``: the payload."""
    if isinstance(value, dict) and len(value) == 2 and "schema" in value and "payload" in value:
        return value["payload"]
    return value


def _prepare(table: TableDef) -> None:
    if "has_numeric" not in table._cache:
        # NUMERIC columns must not lose digits through binary floats.
        table._cache["has_numeric"] = any(c.type.kind is Kind.NUMERIC for c in table.columns)


def key_fields(key: bytes | None, table: TableDef) -> Fields:
    """The primary-key fields a record's key names (UPSERT deletes)."""
    if key is None:
        raise RecordError("KEY_CONVERTER", "a null value (a delete) needs a key naming the row, and the record has none")
    parsed = _unwrap_connect(_json(key, "key", "KEY_CONVERTER", table))
    if isinstance(parsed, dict):
        return parsed
    if len(table.primary_key) == 1:
        return {table.columns[table.primary_key[0]].name: parsed}
    raise RecordError(
        "KEY_CONVERTER",
        f'the key must be a JSON object naming the primary key columns of "{table.name}" '
        f"({', '.join(table.columns[i].name for i in table.primary_key)})",
    )


def json_decoder(table: TableDef, mode: str) -> Decoder:
    """The decoder of FORMAT JSON in ``mode`` (APPEND or UPSERT)."""
    _prepare(table)
    kind = "I" if mode == "APPEND" else "U"

    def decode(key: bytes | None, value: bytes | None) -> Op | None:
        if value is None:
            if kind == "I":
                raise RecordError(
                    "VALUE_CONVERTER", "a null value (a tombstone) has no row to append (MODE APPEND)"
                )
            return ("D", key_fields(key, table))
        parsed = _unwrap_connect(_json(value, "value", "VALUE_CONVERTER", table))
        if not isinstance(parsed, dict):
            raise RecordError(
                "VALUE_CONVERTER", f"the record's value is a JSON {type(parsed).__name__}, not an object"
            )
        return (kind, parsed)

    return decode


# --- Debezium -------------------------------------------------------------------------


def _connect_converter(schema: dict[str, Any]) -> Callable[[Any], Any] | None:
    """How to turn a Connect JSON value of ``schema`` into offsetdb's logical value."""
    name = schema.get("name")
    kind = schema.get("type")
    if name in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return lambda days: EPOCH_DATE + dt.timedelta(days=days) if isinstance(days, int) else days
    if name == "io.debezium.time.MicroTimestamp":
        return lambda us: EPOCH + dt.timedelta(microseconds=us) if isinstance(us, int) else us
    if name in ("io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp"):
        return lambda ms: EPOCH + dt.timedelta(milliseconds=ms) if isinstance(ms, int) else ms
    if name == "io.debezium.time.NanoTimestamp":
        return lambda ns: EPOCH + dt.timedelta(microseconds=ns // 1000) if isinstance(ns, int) else ns
    if kind == "bytes" and name is None:
        return _base64
    if kind in ("double", "float"):
        return _connect_float
    return None


def _base64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64: {value[:40]!r} ({e})") from None


def _connect_float(value: Any) -> Any:
    # Kafka Connect's JsonConverter writes non-finite doubles as strings.
    if value in ("Infinity", "-Infinity", "NaN"):
        return float(value)
    return value


class _EnvelopeSchema:
    """The converters of one envelope schema's row struct, cached by its JSON text."""

    def __init__(self, schema: dict[str, Any] | None) -> None:
        self.converters: dict[str, Callable[[Any], Any]] = {}
        if schema is None:
            return
        for field in schema.get("fields", ()):
            if field.get("field") in ("after", "before"):
                for column in field.get("fields", ()):
                    converter = _connect_converter(column)
                    if converter is not None:
                        self.converters[column["field"]] = converter
                return

    def row(self, payload: Any) -> Fields:
        if not isinstance(payload, dict):
            raise RecordError("VALUE_CONVERTER", f"the envelope's row is a JSON {type(payload).__name__}, not an object")
        if not self.converters:
            return payload
        out = dict(payload)
        for name, convert in self.converters.items():
            if name in out and out[name] is not None:
                try:
                    out[name] = convert(out[name])
                except (ValueError, TypeError, OverflowError) as e:
                    raise RecordError("VALUE_CONVERTER", f'field "{name}" of the envelope: {e}') from None
        return out


def debezium_decoder(table: TableDef) -> Decoder:
    """The decoder of FORMAT DEBEZIUM: a change envelope per record."""
    _prepare(table)
    schemas: dict[str, _EnvelopeSchema] = {}
    plain = _EnvelopeSchema(None)

    def decode(key: bytes | None, value: bytes | None) -> Op | None:
        if value is None:
            return None  # a tombstone after a delete: for compaction, nothing to apply
        document = _json(value, "value", "VALUE_CONVERTER", table)
        layout = plain
        if isinstance(document, dict) and "payload" in document and "schema" in document:
            schema = document["schema"]
            # One schema per table version: its name and version identify it (the JSON
            # text, when the producer names neither).
            if isinstance(schema, dict) and schema.get("name"):
                cache_key = f"{schema['name']}\x00{schema.get('version')}"
            else:
                cache_key = json.dumps(schema, sort_keys=True)
            layout = schemas.get(cache_key) or schemas.setdefault(cache_key, _EnvelopeSchema(schema))
            document = document["payload"]
        if not isinstance(document, dict) or "op" not in document:
            raise RecordError(
                "VALUE_CONVERTER",
                "the value is not a Debezium change envelope (a JSON object with op, before and after)",
            )
        op = document["op"]
        if op in ("c", "r", "u"):
            after = document.get("after")
            if after is None:
                raise RecordError("VALUE_CONVERTER", f"a Debezium '{op}' event without an after image")
            return ("U", layout.row(after))
        if op == "d":
            before = document.get("before")
            if before is None:
                if key is None:
                    raise RecordError("VALUE_CONVERTER", "a Debezium 'd' event with neither a before image nor a key")
                return ("D", key_fields(key, table))
            return ("D", layout.row(before))
        if op == "t":
            return ("T", None)
        raise RecordError("VALUE_CONVERTER", f"unknown Debezium op {op!r} (expected c, r, u, d or t)")

    return decode
