"""Debezium's event format: keys, change envelopes and transaction events, as bytes.

The default serialization is Kafka Connect's JSON with schemas (``JsonConverter`` with
``schemas.enable=true``): every message is ``{"schema": ..., "payload": ...}``, so a
Debezium consumer (the JDBC sink, the ``ExtractNewRecordState`` transform, a program
that parses JSON) reads it unchanged. A change's value::

    {"before": {...} | null, "after": {...} | null,
     "source": {"version", "connector": "offsetdb", "name": PREFIX, "ts_ms", "snapshot",
                "db", "sequence", "table", "offset", "txId", "schema_version"},
     "op": "c" | "u" | "d" | "r" | "t", "ts_ms",
     "transaction": {"id", "total_order", "data_collection_order"} | null}

Column types follow Debezium's PostgreSQL connector with ``decimal.handling.mode=string``
and ``time.precision.mode=adaptive``: INTEGER int32, BIGINT int64, DOUBLE/REAL double (Connect's float64),
NUMERIC string, TEXT/VARCHAR string, BOOLEAN boolean, DATE int32
``io.debezium.time.Date`` (days), TIMESTAMP int64 ``io.debezium.time.MicroTimestamp``,
BYTEA bytes (base64 in JSON). Those are exactly the primitive forms rows are stored in
(:mod:`offsetdb.types`), so a payload is the stored row, field for field.

Everything here is a function of the log: ``ts_ms`` is the commit time the session
recorded (Debezium puts the connector's clock there; offsetdb does not, so that every
node publishes the same bytes). Schemas are cached per table version and spliced in as
text.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any

from offsetdb.materializers.catalog import TableDef
from offsetdb.materializers.changes import Change
from offsetdb.types import Kind

CONNECTOR = "offsetdb"

_CONNECT_TYPES: dict[Kind, dict[str, Any]] = {
    Kind.INTEGER: {"type": "int32"},
    Kind.BIGINT: {"type": "int64"},
    Kind.DOUBLE: {"type": "double"},
    Kind.REAL: {"type": "double"},
    Kind.NUMERIC: {"type": "string"},
    Kind.TEXT: {"type": "string"},
    Kind.VARCHAR: {"type": "string"},
    Kind.BOOLEAN: {"type": "boolean"},
    Kind.DATE: {"type": "int32", "name": "io.debezium.time.Date", "version": 1},
    Kind.TIMESTAMP: {"type": "int64", "name": "io.debezium.time.MicroTimestamp", "version": 1},
    Kind.BYTEA: {"type": "bytes"},
}
HIDDEN_KEY_FIELDS = ("rowid_offset", "rowid_position")

_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def table_topic(prefix: str, table: str) -> str:
    """The topic of a table's changes: ``PREFIX.<table>`` (other characters become ``_``)."""
    return f"{prefix}.{_TOPIC_UNSAFE.sub('_', table)}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def connect_schemas(prefix: str, table: TableDef) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Connect schemas of a table version's keys and envelopes: ``(key, envelope)``.

    The envelope's ``version`` is the table's schema version, so a consumer sees the
    schema change when the table's does. Every serialization derives from these.
    """
    base = f"{prefix}.{table.name}"
    value_fields = [
        {"field": c.name, "optional": not c.not_null, **_CONNECT_TYPES[c.type.kind]}
        for c in table.columns
    ]
    if table.has_hidden_key:
        key_fields: list[dict[str, Any]] = [
            {"field": HIDDEN_KEY_FIELDS[0], "type": "int64", "optional": False},
            {"field": HIDDEN_KEY_FIELDS[1], "type": "int64", "optional": False},
        ]
    else:
        key_fields = [{**value_fields[i], "optional": False} for i in table.primary_key]
    key_schema = {"type": "struct", "name": f"{base}.Key", "optional": False, "fields": key_fields}
    row_schema = {"type": "struct", "name": f"{base}.Value", "optional": True, "fields": value_fields}
    envelope = {
        "type": "struct",
        "name": f"{base}.Envelope",
        "version": table.schema_version,
        "optional": False,
        "fields": [
            {**row_schema, "field": "before"},
            {**row_schema, "field": "after"},
            {**SOURCE_SCHEMA, "field": "source"},
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
            {**TRANSACTION_BLOCK_SCHEMA, "field": "transaction"},
        ],
    }
    return key_schema, envelope


def key_names(table: TableDef) -> tuple[str, ...]:
    """The fields of a table's message key: its primary-key columns, or the hidden row id."""
    if table.has_hidden_key:
        return HIDDEN_KEY_FIELDS
    return tuple(table.columns[i].name for i in table.primary_key)


class TableCodec:
    """Keys and envelopes of one table version, with the schemas made once."""

    def __init__(self, prefix: str, database: str, version: str, table: TableDef) -> None:
        self.table = table
        self.topic = table_topic(prefix, table.name)
        self.key_names = key_names(table)
        key_schema, envelope = connect_schemas(prefix, table)
        self._key_prefix = '{"schema":' + _dumps(key_schema) + ',"payload":'
        self._value_prefix = '{"schema":' + _dumps(envelope) + ',"payload":'
        self.key_schema = key_schema
        self.value_schema = envelope
        self._names = table.column_names
        self._row_json = _row_serializer(table)
        self._source_common = (
            f'"version":{_dumps(version)},"connector":"{CONNECTOR}","name":{_dumps(prefix)},'
        )
        self._source_table = (
            f'"db":{_dumps(database)},"sequence":null,"table":{_dumps(table.name)},'
        )
        self._schema_version = table.schema_version

    def key(self, change: Change) -> bytes:
        """The message key of a change: the primary-key struct (or the hidden row id)."""
        if self.table.has_hidden_key:
            values = list(change.key)
        else:
            row = change.raw_after if change.raw_after is not None else change.raw_before
            assert row is not None
            values = [row[i] for i in self.table.primary_key]
            for i, value in enumerate(values):
                if isinstance(value, bytes):
                    values[i] = base64.b64encode(value).decode()
        payload = dict(zip(self.key_names, values, strict=True))
        return (self._key_prefix + _dumps(payload) + "}").encode()

    def source(self, ts_ms: int, snapshot: str, offset: int, txn_id: str | None) -> str:
        """The ``source`` block as JSON text (made once per transaction and table)."""
        return (
            "{" + self._source_common + f'"ts_ms":{ts_ms},"snapshot":"{snapshot}",'
            + self._source_table + f'"offset":{offset},"txId":{_dumps(txn_id)},'
            + f'"schema_version":{self._schema_version}' + "}"
        )

    def value(
        self,
        op: str,
        before: tuple[Any, ...] | None,
        after: tuple[Any, ...] | None,
        source: str,
        ts_ms: int,
        transaction: tuple[str, int, int] | None,
    ) -> bytes:
        """The envelope of one change (rows in primitive form)."""
        block = (
            "null" if transaction is None else
            '{"id":' + _dumps(transaction[0]) + f',"total_order":{transaction[1]},'
            f'"data_collection_order":{transaction[2]}' + "}"
        )
        row_json = self._row_json
        payload = (
            '{"before":' + ("null" if before is None else row_json(before))
            + ',"after":' + ("null" if after is None else row_json(after))
            + ',"source":' + source + f',"op":"{op}","ts_ms":{ts_ms},"transaction":' + block + "}"
        )
        return (self._value_prefix + payload + "}").encode()


def _row_serializer(table: TableDef) -> Callable[[tuple[Any, ...]], str]:
    """Row (primitive form) to the JSON of its Connect struct."""
    names = table.column_names
    kinds = [c.type.kind for c in table.columns]
    binary = [i for i, k in enumerate(kinds) if k is Kind.BYTEA]
    floats = [i for i, k in enumerate(kinds) if k in (Kind.DOUBLE, Kind.REAL)]
    if not binary and not floats:
        def plain(row: tuple[Any, ...]) -> str:
            return _dumps(dict(zip(names, row, strict=True)))

        return plain

    def converted(row: tuple[Any, ...]) -> str:
        values = list(row)
        for i in binary:
            if values[i] is not None:
                values[i] = base64.b64encode(values[i]).decode()
        for i in floats:
            value = values[i]
            if value is not None and not math.isfinite(value):
                # As Kafka Connect's JsonConverter writes them: JSON has no infinities.
                values[i] = "Infinity" if value > 0 else "-Infinity"
        return _dumps(dict(zip(names, values, strict=True)))

    return converted


SOURCE_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "io.debezium.connector.offsetdb.Source",
    "optional": False,
    "fields": [
        {"type": "string", "optional": False, "field": "version"},
        {"type": "string", "optional": False, "field": "connector"},
        {"type": "string", "optional": False, "field": "name"},
        {"type": "int64", "optional": False, "field": "ts_ms"},
        {
            "type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
            "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
            "default": "false", "field": "snapshot",
        },
        {"type": "string", "optional": False, "field": "db"},
        {"type": "string", "optional": True, "field": "sequence"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": False, "field": "offset"},
        {"type": "string", "optional": True, "field": "txId"},
        {"type": "int32", "optional": False, "field": "schema_version"},
    ],
}

TRANSACTION_BLOCK_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "event.block",
    "version": 1,
    "optional": True,
    "fields": [
        {"type": "string", "optional": False, "field": "id"},
        {"type": "int64", "optional": False, "field": "total_order"},
        {"type": "int64", "optional": False, "field": "data_collection_order"},
    ],
}

TRANSACTION_KEY_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "io.debezium.connector.common.TransactionMetadataKey",
    "optional": False,
    "fields": [{"type": "string", "optional": False, "field": "id"}],
}

TRANSACTION_VALUE_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "io.debezium.connector.common.TransactionMetadataValue",
    "optional": False,
    "fields": [
        {"type": "string", "optional": False, "field": "status"},
        {"type": "string", "optional": False, "field": "id"},
        {"type": "int64", "optional": True, "field": "event_count"},
        {
            "type": "array",
            "optional": True,
            "field": "data_collections",
            "items": {
                "type": "struct",
                "optional": False,
                "fields": [
                    {"type": "string", "optional": False, "field": "data_collection"},
                    {"type": "int64", "optional": False, "field": "event_count"},
                ],
            },
        },
        {"type": "int64", "optional": False, "field": "ts_ms"},
    ],
}

_TXN_KEY_PREFIX = '{"schema":' + _dumps(TRANSACTION_KEY_SCHEMA) + ',"payload":'
_TXN_VALUE_PREFIX = '{"schema":' + _dumps(TRANSACTION_VALUE_SCHEMA) + ',"payload":'


def transaction_key(txn_id: str) -> bytes:
    """The key of a transaction event: ``{"id": txn_id}``."""
    return (_TXN_KEY_PREFIX + _dumps({"id": txn_id}) + "}").encode()


def transaction_begin(txn_id: str, ts_ms: int) -> bytes:
    """Debezium's BEGIN event of a transaction."""
    payload = {"status": "BEGIN", "id": txn_id, "event_count": None, "data_collections": None, "ts_ms": ts_ms}
    return (_TXN_VALUE_PREFIX + _dumps(payload) + "}").encode()


def transaction_end(txn_id: str, ts_ms: int, counts: dict[str, int]) -> bytes:
    """Debezium's END event: how many events the transaction had, per table."""
    payload = {
        "status": "END",
        "id": txn_id,
        "event_count": sum(counts.values()),
        "data_collections": [{"data_collection": t, "event_count": n} for t, n in counts.items()],
        "ts_ms": ts_ms,
    }
    return (_TXN_VALUE_PREFIX + _dumps(payload) + "}").encode()


class JsonFormat:
    """Kafka Connect's JSON with schemas: the publisher's default serialization."""

    name = "json"

    def __init__(self, prefix: str, database: str, version: str) -> None:
        self.prefix = prefix
        self.database = database
        self.version = version

    def table_codec(self, table: TableDef) -> TableCodec:
        """The codec of one table version."""
        return TableCodec(self.prefix, self.database, self.version, table)

    def transaction_key(self, txn_id: str) -> bytes:
        """The key of a transaction event."""
        return transaction_key(txn_id)

    def transaction_begin(self, txn_id: str, ts_ms: int) -> bytes:
        """A BEGIN event."""
        return transaction_begin(txn_id, ts_ms)

    def transaction_end(self, txn_id: str, ts_ms: int, counts: dict[str, int]) -> bytes:
        """An END event."""
        return transaction_end(txn_id, ts_ms, counts)
