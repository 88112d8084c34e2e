"""The ingester: one Kafka source into its table, exactly once, as an ordinary session.

Recovery contract: everything an ingester does is derived from what the database holds
at the snapshot of each transaction — the source's definition and the *next* offset of
each partition (``offsetdb_source_offsets``; last ingested + 1, bytewax's convention).
Nothing is kept in Kafka (no consumer-group commits, no Kafka transactions): the
consumer is assigned its partitions directly at the stored offsets.

One batch is one transaction:

1. take up to ``batch_rows`` records (waiting at most ``batch_wait_ms`` once one is in);
2. open a transaction at the newest snapshot, read the definition (by key) and the
   stored offsets; if they are not where this ingester's consumer is, another ingester
   moved them: seek there and drop the batch;
3. decode each record (:mod:`.formats`), map it to a row (:mod:`.mapping`) and write it
   (APPEND: insert; UPSERT: insert or update by primary key, delete for a null value;
   DEBEZIUM: the envelope's op). A record that fails — it does not decode, a value does
   not convert, the table refuses the row — is kept as a :class:`BadRecord`, and the
   transaction is exactly as before it (the rest of the batch goes on);
4. write each partition's new next offset and counters, and one ``offsetdb_ingest_errors``
   row per bad record, in the same transaction;
5. produce the bad records to the dead-letter topic and flush (before the commit, so
   none is lost; at least once), then commit — one log record for the whole batch.

Outcomes: committed → next batch. Aborted by certification (a conflict with a user's
write, a UNIQUE value a concurrent commit took, a snapshot too old, or a second ingester
that committed the same offsets first: both write the offset rows) → the same records
again from a fresh snapshot, after re-checking the stored offsets (a record that is now
at fault fails in step 3 and becomes a bad record). Unknown (08007) → settled with a
fence before anything else (``SourceHost.settle``). Anything else (the broker or the log
away) → back off and start over from the stored offsets.

A kill -9 at any instant therefore leaves each record either in a committed batch,
with the offsets past it, or in none; the restarted ingester reads from the offsets.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from offsetdb import errors
from offsetdb.ingest.deadletter import BadRecord, DeadLetterProducer
from offsetdb.ingest.formats import Decoder, RecordError, debezium_decoder, headers_of, json_decoder
from offsetdb.ingest.mapping import RowMapper
from offsetdb.kafka_log import _for_client
from offsetdb.materializers.catalog import TableDef
from offsetdb.materializers.sources import (
    ERRORS_TABLE,
    MAX_ERROR_BYTES,
    OFFSETS_TABLE,
    PartitionOffset,
    SourceDefinition,
)

logger = logging.getLogger(__name__)

Row = tuple[Any, ...]


class SourceTransaction(Protocol):
    """The transaction an ingester writes through (``offsetdb.query.transaction.Transaction``)."""

    def begin_statement(self) -> None:
        """Start the next record: its reads see every earlier record's writes."""
        ...

    def table(self, name: str) -> TableDef:
        """The table ``name`` at the snapshot."""
        ...

    def get(self, table: TableDef, primary_key: list[Any]) -> tuple[bytes, Row] | None:
        """The row with this primary key (recorded as read)."""
        ...

    def scan(self, table: TableDef) -> Iterator[tuple[bytes, Row]]:
        """Every row (recorded as read)."""
        ...

    def insert(self, table: TableDef, row: Row) -> bytes:
        """Buffer an insert; a refused row leaves the transaction unchanged."""
        ...

    def update(self, table: TableDef, key: bytes, row: Row) -> bytes:
        """Buffer an update; a refused row leaves the transaction unchanged."""
        ...

    def delete(self, table: TableDef, key: bytes) -> None:
        """Buffer a delete."""
        ...

    def append_rows(self, table: TableDef, rows: list[Row]) -> None:
        """Buffer inserts of checked primitive rows into a keyless table without UNIQUE."""
        ...

    def system_writes(self) -> contextlib.AbstractContextManager[None]:
        """Allow writes to the ``offsetdb_*`` system tables within the block."""
        ...


class SourceHost(Protocol):
    """What an ingester needs of the database it writes into (``offsetdb.query.sources``)."""

    timeout: float

    def begin(self) -> SourceTransaction:
        """A SERIALIZABLE transaction at the newest applied snapshot."""
        ...

    def end(self, txn: SourceTransaction) -> None:
        """Release the transaction's snapshot (after commit or when abandoned)."""
        ...

    def definition(self, txn: SourceTransaction, name: str) -> SourceDefinition | None:
        """The source ``name`` as the transaction sees it (its row read by key)."""
        ...

    def offsets(self, txn: SourceTransaction, name: str) -> dict[int, PartitionOffset]:
        """The stored offsets of source ``name`` (its offset rows read)."""
        ...

    def commit(self, txn: SourceTransaction) -> int:
        """Commit; the offset, or the abort's error, or CommitOutcomeUnknown (08007)."""
        ...

    def settle(self, txn_id: str) -> bool:
        """Whether ``txn_id`` committed, fencing it first if it is not applied."""
        ...

    def kafka_settings(self, bootstrap: str | None) -> dict[str, Any]:
        """Client settings (librdkafka) for the source's brokers (None: the database's own)."""
        ...


# Aborts certification decides for a whole batch: retried from a fresh snapshot.
_RETRIED = frozenset({"40001", "23505", "23502", "72000", "40003"})


@dataclass
class IngesterStats:
    """What one ingester has done since it started (the offsetdb_sources view reads it)."""

    state: str = "starting"
    records: int = 0
    rows: int = 0
    errors: int = 0
    batches: int = 0
    retries: int = 0
    positions: dict[int, int] = field(default_factory=dict)  # next offsets, as committed
    ends: dict[int, int] = field(default_factory=dict)  # the broker's high watermarks (a hint)
    last_error: str | None = None
    last_commit_offset: int | None = None

    @property
    def lag(self) -> int | None:
        """Records in the topic not ingested yet (from the broker's hint), or None."""
        if not self.ends:
            return None
        return sum(max(0, end - self.positions.get(p, 0)) for p, end in self.ends.items())


class _Stop(Exception):
    """The source was dropped or paused: the ingester ends."""


class _Moved(Exception):
    """The stored offsets are not where this ingester's consumer is."""

    def __init__(self, stored: dict[int, PartitionOffset]) -> None:
        super().__init__("offsets moved")
        self.stored = stored


def decoder_for(definition: SourceDefinition, table: TableDef, registry: Any = None) -> Decoder:
    """The decoder of the source's format for ``table``."""
    if definition.format == "JSON":
        return json_decoder(table, definition.mode)
    if definition.format == "DEBEZIUM":
        return debezium_decoder(table)
    if definition.format == "AVRO":
        from offsetdb.ingest.avro import avro_decoder

        return avro_decoder(table, definition.mode, registry)
    raise errors.not_supported(f"FORMAT {definition.format}")


class Ingester:
    """Runs one source until stopped, dropped or paused (see the module docstring)."""

    def __init__(
        self,
        name: str,
        host: SourceHost,
        stop: threading.Event,
        on_batch: Callable[[IngesterStats], None] | None = None,
    ) -> None:
        self.name = name
        self._host = host
        self._stop = stop
        self._on_batch = on_batch
        self.stats = IngesterStats()
        self._consumer: Consumer | None = None
        self._dlq: DeadLetterProducer | None = None
        self._committed: dict[int, int | None] = {}
        self._partitions: list[int] = []
        self._topic = ""
        self._codec: tuple[TableDef, Decoder, RowMapper] | None = None
        self._registry: Any = None

    # --- running ----------------------------------------------------------------------

    def run(self) -> None:
        """Ingest until the stop event is set or the source is dropped or paused."""
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self._run()
                self.stats.state = "stopped"
                return
            except _Stop:
                self.stats.state = "stopped"
                return
            except (KafkaException, errors.Error) as e:
                message = e.message if isinstance(e, errors.Error) else _describe(e)
                self.stats.last_error = message
                self.stats.state = f"retrying: {message}"
                logger.warning("source %s: %s (retrying in %.1fs)", self.name, message, backoff)
            except Exception as e:  # a bug: shown in offsetdb_sources and retried, never silent
                self.stats.last_error = f"{type(e).__name__}: {e}"
                self.stats.state = f"failed: {self.stats.last_error}"
                logger.exception("source %s failed (retrying in %.1fs)", self.name, backoff)
            finally:
                self._close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                self._consumer.close()
            self._consumer = None
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None

    def _run(self) -> None:
        host = self._host
        txn = host.begin()
        try:
            definition = host.definition(txn, self.name)
            stored = host.offsets(txn, self.name)
        finally:
            host.end(txn)
        if definition is None or definition.state != "RUNNING":
            raise _Stop
        self._topic = definition.topic
        settings = host.kafka_settings(definition.bootstrap)
        self._consumer = Consumer(
            {
                **_for_client(settings, "consumer"),
                # Required by the client, never joined: partitions are assigned directly
                # and offsets live in the database, not in the group.
                "group.id": f"offsetdb-source.{self.name}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        if definition.dlq_topic is not None:
            self._dlq = DeadLetterProducer(
                _for_client(settings, "producer"),
                definition.dlq_topic, self.name, host.timeout,
            )
        if definition.format == "AVRO":
            from offsetdb.ingest.avro import registry_for

            assert definition.schema_registry is not None
            self._registry = registry_for(definition.schema_registry)
        self._partitions = self._wait_for_partitions(definition.topic)
        if not self._partitions:
            return  # stopped while waiting
        if definition.start == "latest" and any(p not in stored for p in self._partitions):
            stored = self._start_at_latest(definition, stored)
        self._assign(stored)
        self.stats.state = "running"
        while not self._stop.is_set():
            messages = self._collect(definition)
            self._refresh_ends()
            if not messages:
                continue
            definition = self._commit_batch(messages)

    def _wait_for_partitions(self, topic: str) -> list[int]:
        """The topic's partitions, waiting for the topic to exist (never creating it)."""
        assert self._consumer is not None
        while not self._stop.is_set():
            # The full list, not a request naming the topic: some brokers create a topic a
            # metadata request names (docs/kafka-compatibility.md).
            metadata = self._consumer.list_topics(timeout=self._host.timeout)
            found = metadata.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            self.stats.state = f"waiting for topic {topic}"
            self._stop.wait(1.0)
        return []

    def _assign(self, stored: dict[int, PartitionOffset]) -> None:
        assert self._consumer is not None
        self._committed = {p: (stored[p].next_offset if p in stored else None) for p in self._partitions}
        self.stats.positions = {p: o for p, o in self._committed.items() if o is not None}
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING if o is None else o) for p, o in self._committed.items()]
        )

    def _start_at_latest(
        self, definition: SourceDefinition, stored: dict[int, PartitionOffset]
    ) -> dict[int, PartitionOffset]:
        """Record where 'latest' is now, so that a restart does not skip what came since."""
        assert self._consumer is not None
        ends = {}
        for p in self._partitions:
            if p not in stored:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, p), timeout=self._host.timeout, cached=False
                )
                ends[p] = high
        host = self._host
        txn = host.begin()
        try:
            if host.offsets(txn, self.name) != stored:
                raise errors.SerializationFailure("another ingester started this source first")
            offsets = txn.table(OFFSETS_TABLE)
            with txn.system_writes():
                for p, end in ends.items():
                    txn.insert(offsets, (self.name, p, end, 0, 0, 0))
            host.commit(txn)
        finally:
            host.end(txn)
        return {**stored, **{p: PartitionOffset(end, 0, 0, 0) for p, end in ends.items()}}

    def _collect(self, definition: SourceDefinition) -> list[Message]:
        """Up to ``batch_rows`` records, or what came within ``batch_wait_ms`` of the first.

        What is there already is taken at once; else the first record within 0.5 s.
        """
        consumer = self._consumer
        assert consumer is not None
        limit = definition.batch_rows
        messages = consumer.consume(limit, 0)
        if not messages:
            first = consumer.poll(0.5)
            if first is None:
                return []
            messages = [first]
        if len(messages) < limit:
            messages += consumer.consume(limit - len(messages), definition.batch_wait_ms / 1000)
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaException(error)
            elif error.code() != KafkaError._PARTITION_EOF:
                self.stats.last_error = error.str()
                logger.warning("source %s: %s", self.name, error.str())
        return good

    def _refresh_ends(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        for p in self._partitions:
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self._topic, p), cached=True)
            except KafkaException:
                continue
            if high is not None and high >= 0:
                self.stats.ends[p] = high

    # --- one batch ----------------------------------------------------------------------

    def _commit_batch(self, messages: list[Message]) -> SourceDefinition:
        """Write ``messages`` and their offsets in one transaction, retrying aborts."""
        host = self._host
        attempt = 0
        while True:
            if self._stop.is_set():
                raise _Stop
            txn = host.begin()
            txn_id: str | None = None
            try:
                definition = host.definition(txn, self.name)
                if definition is None or definition.state != "RUNNING":
                    raise _Stop
                stored = host.offsets(txn, self.name)
                for p, committed in self._committed.items():
                    now = stored[p].next_offset if p in stored else None
                    if now != committed:
                        raise _Moved(stored)
                counts, bad = self._write(txn, definition, messages, stored)
                if bad and self._dlq is not None:
                    self._dlq.send(bad)
                try:
                    offset = host.commit(txn)
                except errors.CommitOutcomeUnknown as e:
                    txn_id = e.txn_id
                    if txn_id is None or not self._settle(txn_id):
                        raise errors.SerializationFailure(f"the batch's commit did not happen: {e.message}") from e
                    offset = -1
            except _Moved as moved:
                # Another ingester of this source committed these records: go on after them.
                self.stats.retries += 1
                logger.info("source %s: another ingester moved its offsets; following them", self.name)
                self._assign(moved.stored)
                self._stop.wait(random.uniform(0.05, 0.5))
                return self._current_definition()
            except errors.Error as e:
                if e.sqlstate not in _RETRIED:
                    raise
                attempt += 1
                self.stats.retries += 1
                self.stats.last_error = e.message
                self._stop.wait(random.uniform(0, min(1.0, 0.01 * 2**attempt)))
                continue
            finally:
                host.end(txn)
            self._committed_batch(counts, offset)
            return definition

    def _current_definition(self) -> SourceDefinition:
        host = self._host
        txn = host.begin()
        try:
            definition = host.definition(txn, self.name)
        finally:
            host.end(txn)
        if definition is None or definition.state != "RUNNING":
            raise _Stop
        return definition

    def _settle(self, txn_id: str) -> bool:
        """Whether the transaction committed, asking until the log answers."""
        delay = 0.2
        while True:
            try:
                return self._host.settle(txn_id)
            except errors.Error as e:
                if e.deterministic:
                    raise
                self.stats.state = f"settling {txn_id}: {e.message}"
                if self._stop.wait(delay):
                    raise _Stop from e
                delay = min(delay * 2, 5.0)

    def _committed_batch(self, counts: dict[int, list[int]], offset: int) -> None:
        stats = self.stats
        for p, (last, records, rows, bad) in counts.items():
            self._committed[p] = last + 1
            stats.positions[p] = last + 1
            stats.records += records
            stats.rows += rows
            stats.errors += bad
        stats.batches += 1
        stats.state = "running"
        if offset >= 0:
            stats.last_commit_offset = offset
        if self._on_batch is not None:
            self._on_batch(stats)

    def _codec_for(self, table: TableDef, definition: SourceDefinition) -> tuple[Decoder, RowMapper]:
        codec = self._codec
        if codec is None or codec[0] is not table:
            codec = self._codec = (table, decoder_for(definition, table, self._registry), RowMapper(table, definition))
        return codec[1], codec[2]

    def _write(
        self,
        txn: SourceTransaction,
        definition: SourceDefinition,
        messages: list[Message],
        stored: dict[int, PartitionOffset],
    ) -> tuple[dict[int, list[int]], list[BadRecord]]:
        """Buffer the rows, offsets and errors of ``messages`` in ``txn``."""
        table = txn.table(definition.into)
        decode, mapper = self._codec_for(table, definition)
        pk = table.primary_key
        counts: dict[int, list[int]] = {}  # partition -> [last offset, records, rows, errors]
        bad: list[BadRecord] = []
        insert, update, get, delete = txn.insert, txn.update, txn.get, txn.delete
        # Each record is a statement of its own (its reads see the records before it).
        next_record = txn.begin_statement
        # APPEND into a table with no key and no UNIQUE constraint needs no per-row check
        # against other rows: rows are converted straight to their stored form and
        # handed over in bulk (the same rows and errors as the general path).
        bulk: list[Row] | None = [] if definition.mode == "APPEND" and table.has_hidden_key and not table.unique else None
        if bulk is not None:
            self._write_bulk(messages, decode, mapper, bulk, counts, bad)
            messages = []
        for message in messages:
            next_record()
            partition = message.partition()
            assert partition is not None
            tally = counts.get(partition)
            if tally is None:
                tally = counts[partition] = [0, 0, 0, 0]
            tally[0] = message.offset() or 0
            tally[1] += 1
            try:
                op = decode(message.key(), message.value())
                if op is None:
                    continue
                kind, fields = op
                if kind == "I":
                    assert fields is not None
                    insert(table, mapper.row(fields, message))
                    tally[2] += 1
                elif kind == "U":
                    assert fields is not None
                    row = mapper.row(fields, message)
                    found = get(table, [row[i] for i in pk])
                    if found is None:
                        insert(table, row)
                    else:
                        update(table, found[0], row)
                    tally[2] += 1
                elif kind == "D":
                    assert fields is not None
                    found = get(table, mapper.key(fields, message))
                    if found is not None:
                        delete(table, found[0])
                        tally[2] += 1
                else:  # "T": a truncate
                    for key, _ in list(txn.scan(table)):
                        delete(table, key)
                        tally[2] += 1
            except RecordError as e:
                tally[3] += 1
                bad.append(_bad(message, e.stage, e.exception_class, e.message, e.sqlstate))
            except errors.Error as e:
                if not e.deterministic or e.sqlstate in ("40001", "72000"):
                    raise
                tally[3] += 1
                bad.append(_bad(message, "TASK_PUT", f"offsetdb.errors.{type(e).__name__}", e.message, e.sqlstate))
        if bulk:
            txn.append_rows(table, bulk)
        self._write_bookkeeping(txn, definition.name, counts, stored, bad)
        return counts, bad

    @staticmethod
    def _write_bulk(
        messages: list[Message],
        decode: Decoder,
        mapper: RowMapper,
        rows: list[Row],
        counts: dict[int, list[int]],
        bad: list[BadRecord],
    ) -> None:
        """The bulk APPEND loop: rows in stored form, then the per-partition tallies."""
        primitive_row = mapper.primitive_row
        append = rows.append
        failed: set[int] = set()
        for position, message in enumerate(messages):
            try:
                op = decode(message.key(), message.value())
                assert op is not None and op[1] is not None
                append(primitive_row(op[1], message))
            except RecordError as e:
                failed.add(position)
                bad.append(_bad(message, e.stage, e.exception_class, e.message, e.sqlstate))
            except errors.Error as e:
                if not e.deterministic:
                    raise
                failed.add(position)
                bad.append(_bad(message, "TASK_PUT", f"offsetdb.errors.{type(e).__name__}", e.message, e.sqlstate))
        for position, message in enumerate(messages):
            partition = message.partition()
            assert partition is not None
            tally = counts.get(partition)
            if tally is None:
                tally = counts[partition] = [0, 0, 0, 0]
            tally[0] = message.offset() or 0
            tally[1] += 1
            if position in failed:
                tally[3] += 1
            else:
                tally[2] += 1

    def _write_bookkeeping(
        self,
        txn: SourceTransaction,
        name: str,
        counts: dict[int, list[int]],
        stored: dict[int, PartitionOffset],
        bad: list[BadRecord],
    ) -> None:
        offsets = txn.table(OFFSETS_TABLE)
        with txn.system_writes():
            for p, (last, records, rows, errs) in counts.items():
                before = stored.get(p)
                if before is None:
                    txn.insert(offsets, (name, p, last + 1, records, rows, errs))
                    continue
                row = (
                    name, p, last + 1, before.records + records,
                    before.rows_written + rows, before.errors + errs,
                )
                found = txn.get(offsets, [name, p])
                assert found is not None, "a stored offset row the snapshot showed"
                txn.update(offsets, found[0], row)
            if bad:
                table = txn.table(ERRORS_TABLE)
                for record in bad:
                    row = _error_row(name, record)
                    found = txn.get(table, [name, record.partition, record.offset])
                    if found is None:
                        txn.insert(table, row)
                    else:
                        txn.update(table, found[0], row)


def _bad(message: Message, stage: str, exception_class: str, text: str, sqlstate: str | None) -> BadRecord:
    ts_type, ts = message.timestamp()
    partition, offset, topic = message.partition(), message.offset(), message.topic()
    assert partition is not None and offset is not None and topic is not None
    return BadRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=ts if ts_type else None,
        key=message.key(),
        value=message.value(),
        headers=tuple(headers_of(message.headers())),
        stage=stage,
        exception_class=exception_class,
        message=_storable_text(f"{text} (topic {topic}, partition {partition}, offset {offset})"),
        sqlstate=sqlstate,
    )


def _storable_text(text: str) -> str:
    """``text`` with what a TEXT column and a header cannot hold escaped.

    An error message may quote the bad value itself (a NUL, a lone surrogate from a JSON
    escape); kept as it is, the error row would fail the whole batch, again and again.
    """
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _error_row(source: str, record: BadRecord) -> Row:
    import datetime as dt

    when = (
        dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=record.timestamp_ms)
        if record.timestamp_ms is not None else None
    )
    return (
        source, record.partition, record.offset, record.topic, when,
        None if record.key is None else record.key[:MAX_ERROR_BYTES],
        None if record.value is None else record.value[:MAX_ERROR_BYTES],
        record.stage, record.exception_class, record.sqlstate, record.message,
    )


def _describe(e: KafkaException) -> str:
    error = e.args[0] if e.args else None
    return error.str() if isinstance(error, KafkaError) else str(e)
