"""FORMAT AVRO: Confluent's wire format, writer schemas from a schema registry.

Each value is magic byte 0, the writer schema's 4-byte id, then the Avro binary datum
(:mod:`offsetdb.schemas.confluent`, shared with the CDC publisher). The writer schema is
fetched from the registry by id once and cached; the datum must be a record, whose
fields map to columns as JSON fields do (fastavro gives logical types as Python values:
``date``, ``timestamp-millis/micros`` as UTC datetimes, ``decimal`` as Decimal, which
the columns' coercion takes as they are).

A value that is not in the wire format, or names a schema id the registry does not
have, or does not decode with its schema, is an error record (``VALUE_CONVERTER``,
22P03). A registry that cannot be reached is not the record's fault: the batch is
retried later.

One :class:`~offsetdb.schemas.confluent.SchemaRegistry` per registry URL per process
(:func:`registry_for`), so every source of a process shares its cache (and, with
confluent-kafka's ``mock://`` registry, which keeps schemas in the client object, the
schemas a test registered through the same object).
"""

from __future__ import annotations

import threading
from typing import Any

from offsetdb import errors
from offsetdb.ingest.formats import Decoder, Fields, Op, RecordError, key_fields
from offsetdb.materializers.catalog import TableDef
from offsetdb.schemas.confluent import MAGIC_BYTE, AvroDecoder, SchemaRegistry

_registries: dict[str, SchemaRegistry] = {}
_lock = threading.Lock()


def registry_for(url: str) -> SchemaRegistry:
    """The process's registry client (with its caches) for ``url``."""
    with _lock:
        registry = _registries.get(url)
        if registry is None:
            registry = _registries[url] = SchemaRegistry(url)
        return registry


def _decode(decoder: AvroDecoder, data: bytes, stage: str, what: str) -> Any:
    try:
        return decoder(data)
    except errors.DataError as e:
        raise RecordError(stage, f"the record's {what}: {e.message}", "offsetdb.errors.DataError", e.sqlstate) from None


def avro_decoder(table: TableDef, mode: str, registry: SchemaRegistry) -> Decoder:
    """The decoder of FORMAT AVRO in ``mode`` (APPEND or UPSERT)."""
    decoder = AvroDecoder(registry)
    kind = "I" if mode == "APPEND" else "U"

    def avro_key(key: bytes | None) -> Fields:
        if key is not None and len(key) > 5 and key[0] == MAGIC_BYTE:
            datum = _decode(decoder, key, "KEY_CONVERTER", "key")
            if isinstance(datum, dict):
                return datum
            if len(table.primary_key) == 1:
                return {table.columns[table.primary_key[0]].name: datum}
            raise RecordError("KEY_CONVERTER", "the Avro key must be a record naming the primary key columns")
        return key_fields(key, table)

    def decode(key: bytes | None, value: bytes | None) -> Op | None:
        if value is None:
            if kind == "I":
                raise RecordError(
                    "VALUE_CONVERTER", "a null value (a tombstone) has no row to append (MODE APPEND)"
                )
            return ("D", avro_key(key))
        datum = _decode(decoder, value, "VALUE_CONVERTER", "value")
        if not isinstance(datum, dict):
            raise RecordError("VALUE_CONVERTER", f"the record's Avro value is a {type(datum).__name__}, not a record")
        return (kind, datum)

    return decode
