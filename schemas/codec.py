"""Avro encoding of log records and row images (fastavro, schemaless).

``log_record.avsc`` is the one schema of everything appended to the log; every record
carries ``format_version``. Row images inside a transaction are encoded with the
table's own Avro row schema (:func:`row_schema`), derived from its definition and
schema version, and packed per table as one Avro array, because one fastavro call per
batch of rows costs a fraction of one call per row.

Logical types follow the Avro spec: DATE is ``int``/``date``, TIMESTAMP is
``long``/``timestamp-micros`` (UTC), NUMERIC is a ``string`` holding the canonical
decimal text (Avro's ``decimal`` needs a fixed precision and scale, which an unqualified
NUMERIC lacks). Images hold these *primitive* forms (see :mod:`offsetdb.types`); the
logical types are declared so that other Avro readers decode them correctly.
"""

from __future__ import annotations

import io
import json
import struct
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastavro

from offsetdb import errors
from offsetdb.types import Kind

if TYPE_CHECKING:
    from offsetdb.materializers.catalog import TableDef

FORMAT_VERSION = 1


def _load(name: str) -> dict[str, Any]:
    text = resources.files("offsetdb.schemas").joinpath(name).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


_LOG_RECORD: Any = fastavro.parse_schema(_load("log_record.avsc"))


def _zigzag(value: int) -> bytes:
    """An Avro ``long``: zig-zag, then base-128 varint."""
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def _read_long(data: bytes, position: int) -> tuple[int, int]:
    """Decode an Avro ``long`` at ``position``; returns (value, next position)."""
    shift = result = 0
    while True:
        if position >= len(data):
            raise errors.DataCorrupted("log record is truncated")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7


# The two fields of LogRecord are encoded here by hand: ``format_version`` (an Avro long)
# and the union index of ``body``, followed by the body in its own record schema. That is
# byte for byte the Avro encoding of LogRecord (records have no framing; a union is its
# branch index then the value), and it spares fastavro a union resolution per record,
# the costliest part of encoding a small transaction.
_BODY_TYPES = ("Transaction", "SyncMarker", "Fence", "DatabaseSettings")
_BODY_SCHEMAS: dict[str, Any] = {
    name: fastavro.parse_schema(
        _LOG_RECORD["__named_schemas"][f"offsetdb.{name}"],
        named_schemas=dict(_LOG_RECORD["__named_schemas"]),
    )
    for name in _BODY_TYPES
}
_HEADERS = {
    name: _zigzag(FORMAT_VERSION) + _zigzag(index) for index, name in enumerate(_BODY_TYPES)
}


def encode_log_record(body: dict[str, Any], body_type: str) -> bytes:
    """Encode a log record: ``body`` is a dict of the ``body_type`` branch of LogRecord."""
    out = io.BytesIO()
    out.write(_HEADERS[body_type])
    fastavro.schemaless_writer(out, _BODY_SCHEMAS[body_type], body)
    return out.getvalue()


def decode_log_record(data: bytes) -> tuple[str, dict[str, Any]]:
    """Decode a log record into (body type, body), refusing unknown format versions."""
    version, position = _read_long(data, 0)
    if version != FORMAT_VERSION:
        raise errors.InternalError(
            f"log record format version {version} is not supported by this offsetdb "
            f"(it reads version {FORMAT_VERSION}); upgrade offsetdb to read this log"
        )
    branch, position = _read_long(data, position)
    if not 0 <= branch < len(_BODY_TYPES):
        raise errors.DataCorrupted(f"log record has an unknown body type (union branch {branch})")
    body_type = _BODY_TYPES[branch]
    stream = io.BytesIO(data)
    stream.seek(position)
    try:
        body = fastavro.schemaless_reader(stream, _BODY_SCHEMAS[body_type], None)
    except Exception as e:  # fastavro raises whatever the bytes provoke
        raise errors.DataCorrupted(f"log record does not decode as a {body_type}: {e!r}") from e
    if not isinstance(body, dict) or stream.tell() != len(data):
        raise errors.DataCorrupted(f"log record has {len(data) - stream.tell()} bytes past its end")
    return body_type, body


# --- row images -------------------------------------------------------------------------

_AVRO_TYPES: dict[Kind, Any] = {
    Kind.INTEGER: "int",
    Kind.BIGINT: "long",
    Kind.DOUBLE: "double",
    # REAL values live as Python floats; keeping them as double keeps a round trip exact.
    Kind.REAL: "double",
    Kind.NUMERIC: "string",
    Kind.TEXT: "string",
    Kind.VARCHAR: "string",
    Kind.BOOLEAN: "boolean",
    Kind.DATE: {"type": "int", "logicalType": "date"},
    Kind.TIMESTAMP: {"type": "long", "logicalType": "timestamp-micros"},
    Kind.BYTEA: "bytes",
}

# Primitive forms are written as they are; the reader must not turn them into date and
# datetime objects, so images are read with the logical annotations stripped.
_PLAIN_TYPES: dict[Kind, Any] = {
    kind: (t["type"] if isinstance(t, dict) else t) for kind, t in _AVRO_TYPES.items()
}


def row_schema_json(table: TableDef, logical: bool = True) -> dict[str, Any]:
    """The Avro row schema of a table version (the one published for consumers)."""
    types = _AVRO_TYPES if logical else _PLAIN_TYPES
    fields = []
    for column in table.columns:
        avro_type = types[column.type.kind]
        nullable = not column.not_null
        fields.append(
            {"name": column.name, "type": ["null", avro_type] if nullable else avro_type}
        )
    return {
        "type": "record",
        "name": f"{table.name}_v{table.schema_version}",
        "namespace": "offsetdb.rows",
        "fields": fields,
    }


@lru_cache(maxsize=4096)
def _images_schema(table_id: int, schema_version: int, definition_json: str) -> Any:
    definition = json.loads(definition_json)
    # A record whose only field is the array encodes to exactly the array's bytes (Avro
    # records have no framing), and fastavro keeps a parsed record schema parsed, while
    # a bare array schema would be parsed again on every call.
    return fastavro.parse_schema(
        {
            "type": "record",
            "name": "Images",
            "namespace": "offsetdb.images",
            "fields": [{"name": "rows", "type": {"type": "array", "items": definition}}],
        }
    )


def _schema_for(table: TableDef) -> Any:
    key = table._cache.get("avro")
    if key is None:
        key = table._cache["avro"] = json.dumps(row_schema_json(table, logical=False))
    return _images_schema(table.table_id, table.schema_version, key)


def encode_images(table: TableDef, rows: list[tuple[Any, ...]]) -> bytes:
    """Encode primitive-form rows of ``table`` as one Avro array.

    Byte for byte what fastavro writes for the images schema (one block of ``len(rows)``
    items, then the end marker), by an encoder generated once per table version: fastavro
    spends ~10 us on a six-column row of nullable columns (a dict per row, a union
    resolution per value), the generated code a fraction of it. A value of the wrong
    type raises InternalError, as fastavro's writer would refuse it, so nothing
    malformed reaches the log.
    """
    encoder = table._cache.get("encoder")
    if encoder is None:
        encoder = table._cache["encoder"] = _compile_encoder(table)
    result: bytes = encoder(rows)
    return result


def encode_images_fastavro(table: TableDef, rows: list[tuple[Any, ...]]) -> bytes:
    """:func:`encode_images` through fastavro itself (the reference the tests compare with)."""
    names = table.column_names
    out = io.BytesIO()
    records = [dict(zip(names, r, strict=True)) for r in rows]
    fastavro.schemaless_writer(out, _schema_for(table), {"rows": records})
    return out.getvalue()


_SMALL_VARINTS = [_zigzag(n >> 1) if not n & 1 else _zigzag(-((n + 1) >> 1)) for n in range(1 << 14)]
_DOUBLE = struct.Struct("<d").pack


def _long(value: int) -> bytes:
    """An Avro ``long``: small ones from a table, the others unrolled (no loop per byte)."""
    z = (value << 1) ^ (value >> 63)
    if z < 16384:
        return _SMALL_VARINTS[z]
    if z < 1 << 28:
        if z < 1 << 21:
            return bytes((z & 0x7F | 0x80, z >> 7 & 0x7F | 0x80, z >> 14))
        return bytes((z & 0x7F | 0x80, z >> 7 & 0x7F | 0x80, z >> 14 & 0x7F | 0x80, z >> 21))
    if z < 1 << 56:
        # epoch microseconds (51 bits) and most ids: 5 to 8 bytes
        low = bytes((z & 0x7F | 0x80, z >> 7 & 0x7F | 0x80, z >> 14 & 0x7F | 0x80, z >> 21 & 0x7F | 0x80))
        high = z >> 28
        if high < 1 << 14:
            return low + _SMALL_VARINTS[high]
        if high < 1 << 21:
            return low + bytes((high & 0x7F | 0x80, high >> 7 & 0x7F | 0x80, high >> 14))
        return low + bytes((high & 0x7F | 0x80, high >> 7 & 0x7F | 0x80, high >> 14 & 0x7F | 0x80, high >> 21))
    return _zigzag(value)


def _bad_value(table: str, column: str, kind: str, value: Any) -> errors.Error:
    return errors.InternalError(
        f'a value of type {type(value).__name__} reached column "{column}" ({kind}) of '
        f'"{table}" in a row image; nothing was committed'
    )


_INT_RANGES = {"int": (-(2**31), 2**31), "long": (-(2**63), 2**63)}


def _compile_encoder(table: TableDef) -> Any:
    """Generate ``encode(rows) -> bytes`` for the table's plain (primitive) row schema."""
    lines = [
        "def encode(rows):",
        "    parts = [_long(len(rows))] if rows else []",
        "    append = parts.append",
        "    for r in rows:",
    ]
    for i, column in enumerate(table.columns):
        avro = _PLAIN_TYPES[column.type.kind]
        v = f"v{i}"
        bad = f"raise _bad_value(_TABLE, {column.name!r}, {avro!r}, {v})"
        body: list[str]
        if avro in ("int", "long"):
            lo, hi = _INT_RANGES[avro]
            body = [f"if type({v}) is not int or not {lo} <= {v} < {hi}: {bad}", f"append(_long({v}))"]
        elif avro == "double":
            body = [f"if type({v}) is not float: {bad}", f"append(_DOUBLE({v}))"]
        elif avro == "string":
            body = [f"if type({v}) is not str: {bad}", f"b = {v}.encode()", "append(_long(len(b)))", "append(b)"]
        elif avro == "bytes":
            body = [f"if type({v}) is not bytes: {bad}", f"append(_long(len({v})))", f"append({v})"]
        elif avro == "boolean":
            body = [f"if {v} is True: append(b'\\x01')", f"elif {v} is False: append(b'\\x00')", f"else: {bad}"]
        else:
            raise errors.InternalError(f"no image encoding for Avro type {avro}")
        lines.append(f"        {v} = r[{i}]")
        if column.not_null:
            lines += ["        " + line for line in body]
        else:
            lines += [
                f"        if {v} is None:",
                "            append(b'\\x00')",
                "        else:",
                "            append(b'\\x02')",
            ]
            lines += ["            " + line for line in body]
    lines += ["    append(b'\\x00')", "    return b''.join(parts)"]
    namespace: dict[str, Any] = {
        "_long": _long, "_DOUBLE": _DOUBLE, "_bad_value": _bad_value, "_TABLE": table.name,
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code generated from the table's own types
    return namespace["encode"]


def decode_images(table: TableDef, data: bytes) -> list[tuple[Any, ...]]:
    """Inverse of :func:`encode_images`: primitive-form row tuples."""
    decoded = fastavro.schemaless_reader(io.BytesIO(data), _schema_for(table), None)
    assert isinstance(decoded, dict)
    return [tuple(r.values()) for r in decoded["rows"]]
