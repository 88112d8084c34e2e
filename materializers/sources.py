"""Kafka source definitions and the system tables that hold them, their offsets and errors.

A source (``CREATE SOURCE orders_in FROM KAFKA TOPIC 'orders' ... INTO orders``) is a
catalog entry written by DDL in the log, like a table: the statement's transaction
writes one row of the system table ``offsetdb_source_definitions``, and every node
materializes it from the log. An ingester (``offsetdb.ingest.ingester``) is an ordinary
session whose transactions write the target table's rows *and* the next source offset
of each partition it consumed (``offsetdb_source_offsets``) *and* the records it could
not ingest (``offsetdb_ingest_errors``), all in one transaction record; certification
then makes the batch exactly once (rows and offsets commit or abort together) and fences
a second ingester that read the same offsets (both write the offset rows: write-write).

The three system tables are ordinary tables with reserved names (``offsetdb_*``): the
SQL engine reads them like any table; only offsetdb's own transactions write them
(:func:`is_system_table`). They are created by the first CREATE SOURCE, in its own
transaction. Their layout is fixed here and versioned with the catalog (a later layout
is a new schema version).

Offsets are stored as the *next* offset to read (last ingested + 1), bytewax's
convention: a partition without a row starts at the source's ``start`` position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from offsetdb import errors
from offsetdb.materializers.catalog import Column, TableDef
from offsetdb.types import Kind, SqlType

SYSTEM_PREFIX = "offsetdb_"
DEFINITIONS_TABLE = "offsetdb_source_definitions"
OFFSETS_TABLE = "offsetdb_source_offsets"
ERRORS_TABLE = "offsetdb_ingest_errors"
SOURCES_VIEW = "offsetdb_sources"

FORMATS = ("JSON", "AVRO", "DEBEZIUM")
MODES = ("APPEND", "UPSERT", "DEBEZIUM")
ORIGINS = ("FIELD", "KEY", "KEY_FIELD", "TIMESTAMP", "PARTITION", "OFFSET", "HEADER")
STATES = ("RUNNING", "PAUSED")

# The bytes of a bad record's key and value kept in offsetdb_ingest_errors; the whole
# record goes to the dead-letter topic.
MAX_ERROR_BYTES = 64 * 1024

_TEXT = SqlType(Kind.TEXT)
_INT = SqlType(Kind.INTEGER)
_BIGINT = SqlType(Kind.BIGINT)

DEFINITIONS = TableDef(
    DEFINITIONS_TABLE,
    (
        Column("name", _TEXT, not_null=True),
        Column("topic", _TEXT, not_null=True),
        Column("format", _TEXT, not_null=True),
        Column("mode", _TEXT, not_null=True),
        Column("into_table", _TEXT, not_null=True),
        Column("state", _TEXT, not_null=True),
        Column("definition", _TEXT, not_null=True),
    ),
    primary_key=(0,),
)

OFFSETS = TableDef(
    OFFSETS_TABLE,
    (
        Column("source", _TEXT, not_null=True),
        Column("kafka_partition", _INT, not_null=True),
        Column("next_offset", _BIGINT, not_null=True),
        Column("records", _BIGINT, not_null=True),
        Column("rows_written", _BIGINT, not_null=True),
        Column("errors", _BIGINT, not_null=True),
    ),
    primary_key=(0, 1),
)

ERRORS = TableDef(
    ERRORS_TABLE,
    (
        Column("source", _TEXT, not_null=True),
        Column("kafka_partition", _INT, not_null=True),
        Column("kafka_offset", _BIGINT, not_null=True),
        Column("topic", _TEXT, not_null=True),
        Column("kafka_timestamp", SqlType(Kind.TIMESTAMP)),
        Column("kafka_key", SqlType(Kind.BYTEA)),
        Column("kafka_value", SqlType(Kind.BYTEA)),
        Column("stage", _TEXT, not_null=True),
        Column("exception_class", _TEXT, not_null=True),
        Column("sqlstate", _TEXT),
        Column("message", _TEXT, not_null=True),
    ),
    primary_key=(0, 1, 2),
)

SYSTEM_TABLES = (DEFINITIONS, OFFSETS, ERRORS)

# The live view of every source (offsetdb_sources): not stored, computed when read.
VIEW = TableDef(
    SOURCES_VIEW,
    (
        Column("name", _TEXT, not_null=True),
        Column("topic", _TEXT, not_null=True),
        Column("format", _TEXT, not_null=True),
        Column("mode", _TEXT, not_null=True),
        Column("into_table", _TEXT, not_null=True),
        Column("state", _TEXT, not_null=True),
        Column("partitions", _INT, not_null=True),
        Column("next_offsets", _TEXT),
        Column("broker_ends", _TEXT),
        Column("lag", _BIGINT),
        Column("records", _BIGINT, not_null=True),
        Column("rows_written", _BIGINT, not_null=True),
        Column("errors", _BIGINT, not_null=True),
        Column("runner", _TEXT),
    ),
    primary_key=(0,),
)


@dataclass(frozen=True)
class PartitionOffset:
    """What ``offsetdb_source_offsets`` says of one partition of a source."""

    next_offset: int
    records: int
    rows_written: int
    errors: int


def is_system_table(name: str) -> bool:
    """Whether ``name`` is reserved for offsetdb's own tables (``offsetdb_*``)."""
    return name.startswith(SYSTEM_PREFIX)


@dataclass(frozen=True)
class ColumnSource:
    """Where one column's value comes from, when not from the field of its own name.

    ``origin`` is one of :data:`ORIGINS`: ``FIELD`` (the value's field ``name``; a dotted
    name reaches into nested objects), ``KEY`` (the whole Kafka key), ``KEY_FIELD`` (field
    ``name`` of a JSON key), ``TIMESTAMP``, ``PARTITION``, ``OFFSET`` (the record's),
    ``HEADER`` (the value of header ``name``).
    """

    column: str
    origin: str
    name: str | None = None

    def describe(self) -> str:
        """The clause as written in SQL."""
        origin = self.origin.replace("KEY_FIELD", "KEY FIELD")
        return f"{self.column} FROM {origin}" + (f" '{self.name}'" if self.name is not None else "")


@dataclass(frozen=True)
class SourceDefinition:
    """One Kafka source: which topic, how its records decode, which table they go into.

    Attributes:
        name: the source's name (an identifier, folded like table names).
        topic: the Kafka topic read (every partition).
        format: JSON, AVRO (Confluent wire format, through a schema registry) or
            DEBEZIUM (change envelopes in Kafka Connect JSON).
        into: the table written.
        mode: APPEND (every record a new row), UPSERT (by primary key; a null value
            deletes) or DEBEZIUM (the envelope's own ops).
        columns: columns whose value does not come from the field of their own name.
        bootstrap: the brokers of the topic (None: the database's own brokers).
        start: where a partition without a stored offset starts: earliest or latest.
        batch_rows: source records per transaction at most.
        batch_wait_ms: how long a batch waits for more records once it has one.
        dead_letter_topic: where records that cannot be ingested go ("" for none).
        schema_registry: AVRO: the schema registry's URL.
        state: RUNNING or PAUSED.

    """

    name: str
    topic: str
    format: str
    into: str
    mode: str
    columns: tuple[ColumnSource, ...] = ()
    bootstrap: str | None = None
    start: str = "earliest"
    batch_rows: int = 5000
    batch_wait_ms: int = 100
    dead_letter_topic: str | None = None
    schema_registry: str | None = None
    state: str = "RUNNING"

    @property
    def dlq_topic(self) -> str | None:
        """The dead-letter topic (default ``<topic>.dlq``; None when disabled with '')."""
        if self.dead_letter_topic is None:
            return f"{self.topic}.dlq"
        return self.dead_letter_topic or None

    def with_state(self, state: str) -> SourceDefinition:
        """A copy in another state (PAUSE / RESUME)."""
        return replace(self, state=state)

    def to_json(self) -> str:
        """The definition as canonical JSON (sorted keys): what the catalog row holds."""
        data: dict[str, Any] = {
            "version": 1,
            "name": self.name,
            "topic": self.topic,
            "format": self.format,
            "into": self.into,
            "mode": self.mode,
            "columns": [[c.column, c.origin, c.name] for c in self.columns],
            "bootstrap": self.bootstrap,
            "start": self.start,
            "batch_rows": self.batch_rows,
            "batch_wait_ms": self.batch_wait_ms,
            "dead_letter_topic": self.dead_letter_topic,
            "schema_registry": self.schema_registry,
            "state": self.state,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SourceDefinition:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        if data.get("version") != 1:
            raise errors.InternalError(
                f"source definition version {data.get('version')} is not supported by this offsetdb"
            )
        return cls(
            name=data["name"],
            topic=data["topic"],
            format=data["format"],
            into=data["into"],
            mode=data["mode"],
            columns=tuple(ColumnSource(c, o, n) for c, o, n in data["columns"]),
            bootstrap=data["bootstrap"],
            start=data["start"],
            batch_rows=data["batch_rows"],
            batch_wait_ms=data["batch_wait_ms"],
            dead_letter_topic=data["dead_letter_topic"],
            schema_registry=data["schema_registry"],
            state=data["state"],
        )

    def definition_row(self) -> tuple[Any, ...]:
        """The row of ``offsetdb_source_definitions`` describing this source."""
        return (self.name, self.topic, self.format, self.mode, self.into, self.state, self.to_json())

    def check_against(self, table: TableDef) -> None:
        """Refuse a definition the target table cannot take, naming the problem.

        Checked when the source is created, against the table as the creating
        transaction sees it (a later change of the table is met by the ingester, which
        then reports each record it cannot write).
        """
        names = set(table.column_names)
        seen: set[str] = set()
        for column in self.columns:
            if column.column not in names:
                raise errors.UndefinedColumn(
                    f'column "{column.column}" of relation "{table.name}" does not exist '
                    f"(in the source's column list: {column.describe()})"
                )
            if column.column in seen:
                raise errors.DuplicateColumn(f'column "{column.column}" is mapped more than once')
            seen.add(column.column)
        if self.mode in ("UPSERT", "DEBEZIUM") and table.has_hidden_key:
            raise errors.InvalidTableDefinition(
                f'MODE {self.mode} writes by primary key, and table "{table.name}" has none'
            )
        if self.format == "DEBEZIUM" and self.columns:
            raise errors.not_supported("a column list with FORMAT DEBEZIUM (the envelope names the columns)")
        if (self.format == "DEBEZIUM") != (self.mode == "DEBEZIUM"):
            raise errors.ProgrammingError(
                "FORMAT DEBEZIUM goes with MODE DEBEZIUM (the envelope's own operations), "
                f"not with MODE {self.mode}" if self.format == "DEBEZIUM"
                else f"MODE DEBEZIUM needs FORMAT DEBEZIUM, not FORMAT {self.format}",
                "42601",
            )
        if self.format == "AVRO" and not self.schema_registry:
            raise errors.ProgrammingError(
                "FORMAT AVRO needs WITH (schema_registry = 'http://HOST:PORT')", "42601"
            )
