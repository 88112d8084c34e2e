"""Avro in the Confluent wire format, with a schema registry.

Kafka's common Avro convention (Confluent's serializers, Debezium's ``AvroConverter``,
ksqlDB, Kafka Connect) frames every key or value as::

    byte 0        magic byte, 0
    bytes 1-4     the writer schema's id in the schema registry, big-endian
    bytes 5-      the Avro binary encoding of the datum (schemaless)

A reader looks the id up in the registry to get the writer's schema. Subjects follow
``TopicNameStrategy``: ``<topic>-key`` and ``<topic>-value``.

This module is shared by everything that writes or reads such messages: the CDC
publisher (``materializers/``) encodes with :class:`AvroEncoder`, Kafka source ingestion
(``ingest/``) decodes with :class:`AvroDecoder`. Registry access goes through
confluent-kafka's schema-registry client, an optional extra (``pip install
'offsetdb[avro]'``); the registry is named by URL (``http(s)://host:8081``, or
``mock://name`` for confluent-kafka's in-process registry, which tests use: each client
object holds its own schemas, so only code sharing the object sees them), by a client
configuration dict (``{"url": ..., "basic.auth.user.info": ...}``), or given as a
client object.

Encoding is done here with fastavro rather than with confluent-kafka's
``AvroSerializer``: the bytes are the same, and a parsed schema per subject costs one
fastavro call per message instead of the serializer's per-message rule machinery.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Mapping
from typing import Any

import fastavro

from offsetdb import errors

MAGIC_BYTE = 0
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size


class SchemaRejected(errors.OperationalError):
    """The registry refused a schema (incompatible with the subject's earlier versions, or invalid)."""

    sqlstate = "55000"


def key_subject(topic: str) -> str:
    """The subject of a topic's keys (``TopicNameStrategy``)."""
    return f"{topic}-key"


def value_subject(topic: str) -> str:
    """The subject of a topic's values (``TopicNameStrategy``)."""
    return f"{topic}-value"


def schema_text(schema: Mapping[str, Any] | str) -> str:
    """The schema as the text registered: compact JSON, keys in the order given."""
    if isinstance(schema, str):
        return schema
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def _client_module() -> Any:
    try:
        from confluent_kafka import schema_registry
    except ImportError as e:  # the extra is not installed
        raise errors.NotSupportedError(
            "Avro with a schema registry needs confluent-kafka's schema-registry client: "
            "pip install 'offsetdb[avro]'"
        ) from e
    return schema_registry


def registry_client(registry: str | Mapping[str, Any] | Any) -> Any:
    """A confluent-kafka schema-registry client for a URL, a client configuration, or itself.

    ``mock://...`` URLs give confluent-kafka's in-process mock registry.
    """
    if not isinstance(registry, (str, Mapping)):
        return registry  # already a client
    module = _client_module()
    conf = {"url": registry} if isinstance(registry, str) else dict(registry)
    url = str(conf.get("url", ""))
    if not url.startswith(("http://", "https://", "mock://")):
        raise errors.InterfaceError(
            f"schema registry URL {url!r} must start with http://, https:// or mock://"
        )
    try:
        return module.SchemaRegistryClient.new_client(conf)
    except ValueError as e:  # unknown or bad configuration keys
        raise errors.InterfaceError(f"bad schema registry configuration: {e}") from e


class SchemaRegistry:
    """A registry seen through a cache: schema ids by subject and schema, writer schemas by id.

    Thread-safe; registry calls that fail for want of the registry raise
    ``ConnectionFailure`` (08006, retry later), refusals raise :class:`SchemaRejected`.
    """

    def __init__(self, registry: str | Mapping[str, Any] | Any) -> None:
        self.client = registry_client(registry)
        self._ids: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, Any] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema: Mapping[str, Any] | str) -> int:
        """The id of ``schema`` under ``subject``, registering it if it is new there."""
        text = schema_text(schema)
        cached = self._ids.get((subject, text))
        if cached is not None:
            return cached
        module = _client_module()
        with self._lock:
            try:
                schema_id = int(self.client.register_schema(subject, module.Schema(text, "AVRO")))
            except module.SchemaRegistryError as e:
                raise _registry_error(e, f"registering a schema under subject {subject}") from e
            except Exception as e:  # noqa: BLE001 - the HTTP client's transport errors
                raise errors.ConnectionFailure(
                    f"the schema registry could not be reached to register subject {subject}: {e}"
                ) from e
            self._ids[(subject, text)] = schema_id
        return schema_id

    def writer_schema(self, schema_id: int) -> Any:
        """The parsed (fastavro) schema registered under ``schema_id``."""
        parsed = self._by_id.get(schema_id)
        if parsed is not None:
            return parsed
        module = _client_module()
        with self._lock:
            try:
                found = self.client.get_schema(schema_id)
            except module.SchemaRegistryError as e:
                if e.http_status_code == 404:
                    raise errors.DataError(
                        f"schema id {schema_id} is not in the schema registry", "22P03"
                    ) from e
                raise _registry_error(e, f"reading schema id {schema_id}") from e
            except Exception as e:  # noqa: BLE001 - the HTTP client's transport errors
                raise errors.ConnectionFailure(
                    f"the schema registry could not be reached to read schema id {schema_id}: {e}"
                ) from e
            if found.schema_type not in (None, "AVRO"):
                raise errors.DataError(
                    f"schema id {schema_id} is a {found.schema_type} schema, not Avro", "22P03"
                )
            parsed = fastavro.parse_schema(json.loads(found.schema_str))
            self._by_id[schema_id] = parsed
        return parsed


def _registry_error(error: Any, doing: str) -> errors.Error:
    status = getattr(error, "http_status_code", None)
    if status in (409, 422):
        return SchemaRejected(f"the schema registry refused {doing}: {error}")
    return errors.ConnectionFailure(f"the schema registry failed {doing}: {error}")


def frame(schema_id: int, payload: bytes) -> bytes:
    """Avro binary ``payload`` framed for schema ``schema_id``."""
    return _HEADER.pack(MAGIC_BYTE, schema_id) + payload


def schema_id_of(message: bytes) -> int:
    """The writer schema id of a framed message; 22P03 if it is not in the wire format."""
    if len(message) < HEADER_SIZE or message[0] != MAGIC_BYTE:
        raise errors.DataError(
            "message is not in the Confluent Avro wire format (magic byte 0, then a 4-byte "
            f"schema id): it starts with {bytes(message[:HEADER_SIZE]).hex() or 'nothing'}",
            "22P03",
        )
    schema_id: int = _HEADER.unpack_from(message)[1]
    return schema_id


class AvroEncoder:
    """Encodes data of one schema under one subject: registered once, framed per datum.

    ``header`` is the 5-byte frame, for callers that put the datum's bytes together
    themselves.
    """

    def __init__(self, registry: SchemaRegistry, subject: str, schema: Mapping[str, Any]) -> None:
        self.subject = subject
        self.schema = dict(schema)
        self.schema_id = registry.register(subject, schema)
        self._parsed = fastavro.parse_schema(self.schema)
        self._header = self.header = _HEADER.pack(MAGIC_BYTE, self.schema_id)

    def __call__(self, datum: Any) -> bytes:
        """The framed message of ``datum`` (dicts for records)."""
        out = io.BytesIO()
        out.write(self._header)
        fastavro.schemaless_writer(out, self._parsed, datum)
        return out.getvalue()


class AvroDecoder:
    """Decodes framed messages with their writer schemas, looked up by id (and cached).

    ``reader_schema`` (optional) resolves every datum to one schema, by Avro's schema
    resolution rules, so that records written with older or newer schemas read alike.
    """

    def __init__(self, registry: SchemaRegistry, reader_schema: Mapping[str, Any] | None = None) -> None:
        self.registry = registry
        self._reader = None if reader_schema is None else fastavro.parse_schema(dict(reader_schema))

    def __call__(self, message: bytes) -> Any:
        """The datum of a framed message; 22P03 if it does not decode."""
        schema_id = schema_id_of(message)
        writer = self.registry.writer_schema(schema_id)
        stream = io.BytesIO(message)
        stream.seek(HEADER_SIZE)
        try:
            datum = fastavro.schemaless_reader(stream, writer, self._reader)
        except Exception as e:  # noqa: BLE001 - fastavro raises whatever the bytes provoke
            raise errors.DataError(
                f"message does not decode with schema id {schema_id}: {e!r}", "22P03"
            ) from e
        if stream.tell() != len(message):
            raise errors.DataError(
                f"message has {len(message) - stream.tell()} bytes past its Avro datum "
                f"(schema id {schema_id})",
                "22P03",
            )
        return datum
