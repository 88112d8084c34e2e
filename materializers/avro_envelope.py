"""Debezium's event format in Avro: the Confluent wire format through a schema registry.

The same events as :mod:`offsetdb.materializers.envelope` (same fields, same values),
encoded the way Debezium's ``AvroConverter`` encodes them: the Kafka Connect schemas of
``envelope.connect_schemas`` turned into Avro schemas by Kafka Connect's ``AvroData``
conventions, and each key and value framed with the registry id of its schema
(:mod:`offsetdb.schemas.confluent`).

Connect schema to Avro (``AvroData``):

- a struct is a ``record`` named by the struct's name (split at the last dot into
  namespace and name; an unnamed struct is ``io.confluent.connect.avro.ConnectDefault``),
  with ``connect.name`` and ``connect.version`` properties;
- int32 ``int``, int64 ``long``, double ``double``, string, boolean, bytes as themselves;
  a named primitive (``io.debezium.time.Date``) keeps ``connect.name``/``connect.version``
  (and ``connect.parameters``, ``connect.default``) as properties of the Avro type;
- an optional field is a union with ``null``: ``["null", T]`` defaulting to null, or
  ``[T, "null"]`` when it has another default (``source.snapshot``'s ``"false"``);
- names are made valid Avro names as Debezium's ``schema.name.adjustment.mode=avro`` and
  ``field.name.adjustment.mode=avro`` do: every character other than letters, digits
  and ``_`` becomes ``_``, and a leading digit gets a ``_`` before it. Two columns whose
  adjusted names collide are refused (0A000) rather than silently merged.

Subjects are per topic (``TopicNameStrategy``): ``PREFIX.<table>-key`` and
``PREFIX.<table>-value``, ``PREFIX.transaction-key`` and ``-value``. A table's schema
version is the envelope's ``connect.version``: when the table's schema changes, the next
change registers a new version of its subjects, under the registry's compatibility
rules (a refusal stops the publisher with 55000 naming the subject).
"""

from __future__ import annotations

import io
import re
from typing import Any

import fastavro

from offsetdb import errors
from offsetdb.materializers.catalog import TableDef
from offsetdb.materializers.changes import Change
from offsetdb.materializers.envelope import (
    CONNECTOR,
    TRANSACTION_KEY_SCHEMA,
    TRANSACTION_VALUE_SCHEMA,
    connect_schemas,
    key_names,
    table_topic,
)
from offsetdb.schemas.confluent import AvroEncoder, SchemaRegistry, key_subject, value_subject

_PRIMITIVES = {
    "int8": "int",
    "int16": "int",
    "int32": "int",
    "int64": "long",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "string": "string",
    "bytes": "bytes",
}
_DEFAULT_NAMESPACE = "io.confluent.connect.avro"
_DEFAULT_NAME = "ConnectDefault"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def avro_name(name: str) -> str:
    """A valid Avro name for ``name`` (Debezium's ``avro`` name adjustment)."""
    adjusted = _UNSAFE.sub("_", name)
    if not adjusted or adjusted[0].isdigit():
        adjusted = "_" + adjusted
    return adjusted


def _full_name(name: str) -> tuple[str | None, str]:
    parts = [avro_name(p) for p in name.split(".")]
    return (".".join(parts[:-1]) or None), parts[-1]


def connect_to_avro(schema: dict[str, Any], seen: set[str] | None = None) -> Any:
    """The Avro schema of a Connect schema (``AvroData`` conventions, see the module doc).

    ``seen`` holds the full names of records already defined in this Avro document: a
    second use of a named record (the row in ``before`` and ``after``) is a reference.
    """
    seen = set() if seen is None else seen
    kind = schema["type"]
    name = schema.get("name")
    if kind == "struct":
        namespace, short = _full_name(name) if name else (_DEFAULT_NAMESPACE, _DEFAULT_NAME)
        full = f"{namespace}.{short}" if namespace else short
        if full in seen:
            return full
        seen.add(full)
        fields = []
        names: set[str] = set()
        for field in schema["fields"]:
            field_name = avro_name(field["field"])
            if field_name in names:
                raise errors.not_supported(
                    f"publishing {name or 'a struct'} in Avro: two fields map to the Avro "
                    f"name {field_name!r}"
                )
            names.add(field_name)
            fields.append({"name": field_name, **_field_type(field, seen)})
        record: dict[str, Any] = {"type": "record", "name": short}
        if namespace:
            record["namespace"] = namespace
        record["fields"] = fields
        if "version" in schema:
            record["connect.version"] = schema["version"]
        if name:
            record["connect.name"] = name
        return record
    if kind == "array":
        return {"type": "array", "items": _optional(schema["items"], seen)}
    avro_type = _PRIMITIVES[kind]
    properties: dict[str, Any] = {}
    if "version" in schema:
        properties["connect.version"] = schema["version"]
    if "parameters" in schema:
        properties["connect.parameters"] = schema["parameters"]
    if "default" in schema:
        properties["connect.default"] = schema["default"]
    if name:
        properties["connect.name"] = name
    if kind in ("int8", "int16"):
        properties["connect.type"] = kind
    return {"type": avro_type, **properties} if properties else avro_type


def _optional(schema: dict[str, Any], seen: set[str]) -> Any:
    inner = connect_to_avro(schema, seen)
    return ["null", inner] if schema.get("optional") else inner


def _field_type(field: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    inner = connect_to_avro(field, seen)
    if not field.get("optional"):
        return {"type": inner}
    default = field.get("default")
    if default is None:
        return {"type": ["null", inner], "default": None}
    return {"type": [inner, "null"], "default": default}


class AvroTableCodec:
    """Keys and envelopes of one table version in Avro, registered under the topic's subjects."""

    def __init__(
        self, registry: SchemaRegistry, prefix: str, database: str, version: str, table: TableDef
    ) -> None:
        self.table = table
        self.topic = table_topic(prefix, table.name)
        key_schema, envelope = connect_schemas(prefix, table)
        self.key_schema = connect_to_avro(key_schema)
        self.value_schema = connect_to_avro(envelope)
        self._key = AvroEncoder(registry, key_subject(self.topic), self.key_schema)
        self._value = AvroEncoder(registry, value_subject(self.topic), self.value_schema)
        self._key_fields = [avro_name(n) for n in key_names(table)]
        self._row_fields = [avro_name(n) for n in table.column_names]
        self._source_common = {"version": version, "connector": CONNECTOR, "name": prefix}
        self._database = database
        self._schema_version = table.schema_version
        # The envelope is put together from its fields' encodings (Avro records have no
        # framing: a record is its fields in order, a union its branch index then the
        # value), so that the source block is encoded once per transaction and table,
        # and fastavro only encodes rows. test_cdc_avro pins it byte for byte to
        # fastavro's encoding of the whole envelope.
        fields = self.value_schema["fields"]
        self._row_schema = fastavro.parse_schema(fields[0]["type"][1])
        self._source_schema = fastavro.parse_schema(fields[2]["type"])

    def key(self, change: Change) -> bytes:
        """The message key of a change: the primary-key struct (or the hidden row id)."""
        table = self.table
        if table.has_hidden_key:
            values = list(change.key)
        else:
            row = change.raw_after if change.raw_after is not None else change.raw_before
            assert row is not None
            values = [row[i] for i in table.primary_key]
        return self._key(dict(zip(self._key_fields, values, strict=True)))

    def source(self, ts_ms: int, snapshot: str, offset: int, txn_id: str | None) -> bytes:
        """The ``source`` block, encoded (made once per transaction and table)."""
        out = io.BytesIO()
        fastavro.schemaless_writer(
            out,
            self._source_schema,
            {
                **self._source_common,
                "ts_ms": ts_ms,
                "snapshot": snapshot,
                "db": self._database,
                "sequence": None,
                "table": self.table.name,
                "offset": offset,
                "txId": txn_id,
                "schema_version": self._schema_version,
            },
        )
        return out.getvalue()

    def value(
        self,
        op: str,
        before: tuple[Any, ...] | None,
        after: tuple[Any, ...] | None,
        source: bytes,
        ts_ms: int,
        transaction: tuple[str, int, int] | None,
    ) -> bytes:
        """The envelope of one change (rows in primitive form, which are Debezium's values)."""
        out = io.BytesIO()
        out.write(self._value.header)
        fields = self._row_fields
        for row in (before, after):
            if row is None:
                out.write(_NULL_BRANCH)
            else:
                out.write(_SECOND_BRANCH)
                fastavro.schemaless_writer(out, self._row_schema, dict(zip(fields, row, strict=True)))
        out.write(source)
        out.write(_OPS.get(op) or _string(op))
        out.write(_SECOND_BRANCH + _long(ts_ms))
        if transaction is None:
            out.write(_NULL_BRANCH)
        else:
            out.write(_SECOND_BRANCH + _string(transaction[0]) + _long(transaction[1]) + _long(transaction[2]))
        return out.getvalue()


_NULL_BRANCH = b"\x00"  # union branch 0 (null)
_SECOND_BRANCH = b"\x02"  # union branch 1


def _long(value: int) -> bytes:
    """An Avro ``int``/``long``: zig-zag, then base-128 varint."""
    encoded = (value << 1) ^ (value >> 63)
    if encoded < 0x80:
        return bytes((encoded,))
    out = bytearray()
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def _string(value: str) -> bytes:
    data = value.encode()
    return _long(len(data)) + data


_OPS = {op: _string(op) for op in ("c", "u", "d", "r", "t")}


class AvroFormat:
    """Debezium's events in Avro, through a schema registry (``--format avro``)."""

    name = "avro"

    def __init__(self, registry: SchemaRegistry, prefix: str, database: str, version: str) -> None:
        self.registry = registry
        self.prefix = prefix
        self.database = database
        self.version = version
        self._txn_key: AvroEncoder | None = None
        self._txn_value: AvroEncoder | None = None

    def _transaction_encoders(self) -> tuple[AvroEncoder, AvroEncoder]:
        # Registered at first use, not at construction: an unreachable registry is then
        # an error of a publishing step, which the publisher retries.
        if self._txn_key is None or self._txn_value is None:
            topic = f"{self.prefix}.transaction"
            key = connect_to_avro(TRANSACTION_KEY_SCHEMA)
            self._txn_key = AvroEncoder(self.registry, key_subject(topic), key)
            value = connect_to_avro(TRANSACTION_VALUE_SCHEMA)
            self._txn_value = AvroEncoder(self.registry, value_subject(topic), value)
        return self._txn_key, self._txn_value

    def table_codec(self, table: TableDef) -> AvroTableCodec:
        """The codec of one table version (registers its schemas if they are new)."""
        return AvroTableCodec(self.registry, self.prefix, self.database, self.version, table)

    def transaction_key(self, txn_id: str) -> bytes:
        """The key of a transaction event."""
        return self._transaction_encoders()[0]({"id": txn_id})

    def transaction_begin(self, txn_id: str, ts_ms: int) -> bytes:
        """A BEGIN event."""
        return self._transaction_encoders()[1](
            {"status": "BEGIN", "id": txn_id, "event_count": None, "data_collections": None, "ts_ms": ts_ms}
        )

    def transaction_end(self, txn_id: str, ts_ms: int, counts: dict[str, int]) -> bytes:
        """An END event: how many events the transaction had, per table."""
        return self._transaction_encoders()[1](
            {
                "status": "END",
                "id": txn_id,
                "event_count": sum(counts.values()),
                "data_collections": [{"data_collection": t, "event_count": n} for t, n in counts.items()],
                "ts_ms": ts_ms,
            }
        )
