"""The CDC publisher: a node's change feed to Kafka topics, exactly once, in Debezium's format.

Topics (``PREFIX`` is the topic prefix):

- ``PREFIX.<table>``: one per table, keyed by primary key; the value is the Debezium
  envelope, in Kafka Connect's JSON (:mod:`offsetdb.materializers.envelope`) or in
  Avro through a schema registry (:mod:`offsetdb.materializers.avro_envelope`); each
  delete is followed by a tombstone (same key, null value); a DROP TABLE puts a truncate
  event (op ``t``, header ``offsetdb.ddl: DROP TABLE``) on every partition: the end of
  that table's stream;
- ``PREFIX.transaction``: Debezium's transaction metadata, BEGIN and END per committed
  transaction (END with ``event_count`` and ``data_collections``);
- ``PREFIX.progress``: the publisher's progress records, one per Kafka transaction and
  one per heartbeat: ``{"next_offset", "resolved", "snapshot", ...}`` -- every change
  at or below ``resolved`` is published. Always JSON: it is the publisher's own state.

Exactly once across crashes. Everything one batch publishes, its progress record
included, is one Kafka transaction of a producer whose ``transactional.id`` is
``offsetdb-cdc.<publisher id>``; a restarted (or duplicated) publisher's
``init_transactions`` fences the old one and aborts its open transaction. Where the
publisher resumes is kept where aborted data cannot reach it: the transaction also
commits the offset of its progress record + 1 for the consumer group
``offsetdb-cdc.<publisher id>`` on ``PREFIX.progress`` (Kafka's transactional offset
commit, as a consume-transform-produce application does), so the committed offset
always points just past a committed progress record. That matters on brokers that
show aborted records to ``read_committed`` consumers (the test broker,
docs/kafka-compatibility.md): reading the progress topic's last record could
otherwise resume after changes that were aborted.

The publisher reads the node's replica through its own log reader and never takes the
materializer's locks: a slow or absent broker delays publishing, never commits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from offsetdb import errors
from offsetdb.materializers.avro_envelope import AvroFormat
from offsetdb.materializers.catalog import TableDef
from offsetdb.materializers.changes import (
    Change,
    CommittedTransaction,
    Item,
    Progress,
    SnapshotChunk,
    SnapshotResume,
)
from offsetdb.materializers.envelope import JsonFormat, table_topic
from offsetdb.schemas.confluent import SchemaRegistry

logger = logging.getLogger(__name__)

PROGRESS_FORMAT = 1


class Feed(Protocol):
    """The change feed the publisher drains (a :class:`~offsetdb.query.subscription.Subscription`)."""

    def poll(self, timeout: float | None) -> Item | None:
        """The next item, or None after ``timeout`` seconds without one."""
        ...

    def close(self) -> None:
        """Stop following."""
        ...


# (from_offset, snapshot, resume) -> a feed: from_offset None means "the present".
OpenFeed = Callable[[int | None, bool, SnapshotResume | None], Feed]


class TableEncoding(Protocol):
    """Keys and change envelopes of one table version, as message bytes."""

    topic: str

    def key(self, change: Change) -> bytes:
        """The message key of a change."""
        ...

    def source(self, ts_ms: int, snapshot: str, offset: int, txn_id: str | None) -> Any:
        """The ``source`` block, reused for every change of a transaction in this table."""
        ...

    def value(
        self,
        op: str,
        before: tuple[Any, ...] | None,
        after: tuple[Any, ...] | None,
        source: Any,
        ts_ms: int,
        transaction: tuple[str, int, int] | None,
    ) -> bytes:
        """The envelope of one change (rows in primitive form)."""
        ...


class EnvelopeFormat(Protocol):
    """A serialization of Debezium's events: JSON (envelope.py) or Avro (avro_envelope.py)."""

    name: str

    def table_codec(self, table: TableDef) -> TableEncoding:
        """The codec of one table version."""
        ...

    def transaction_key(self, txn_id: str) -> bytes:
        """The key of a transaction event."""
        ...

    def transaction_begin(self, txn_id: str, ts_ms: int) -> bytes:
        """A BEGIN event."""
        ...

    def transaction_end(self, txn_id: str, ts_ms: int, counts: dict[str, int]) -> bytes:
        """An END event with the per-table event counts."""
        ...


FORMATS = ("json", "avro")


@dataclass(frozen=True)
class PublisherSettings:
    """What and where a publisher publishes.

    Attributes:
        bootstrap: the brokers the topics live on.
        topic_prefix: ``PREFIX`` of every topic.
        database: the database's name, as ``source.db`` says it.
        publisher_id: names the transactional id and the progress group (default: the
            prefix); two publishers with the same id fence each other.
        snapshot: a publisher with no progress yet starts with a snapshot; without one
            it starts at ``from_offset`` (default: the present).
        from_offset: with ``snapshot=False``, publish what follows this offset (-1: the
            whole history in the log).
        partitions: partitions of each table topic this publisher creates.
        replication_factor: of the topics it creates (None: min(3, brokers)).
        max_batch_events: events per Kafka transaction at most (a log transaction is
            never split; a bigger one is a transaction of its own).
        heartbeat_interval: seconds between progress records when nothing is published.
        kafka: librdkafka settings for the producer and consumer (SASL, TLS, ...).
        timeout: seconds a broker call may take before the batch is retried.
        version: the offsetdb version in ``source.version``.
        format: ``json`` (Kafka Connect JSON with schemas) or ``avro`` (the Confluent
            wire format, schemas in ``schema_registry``).
        schema_registry: with ``avro``: the registry's URL, a confluent-kafka client
            configuration dict, or a confluent-kafka ``SchemaRegistryClient``.

    """

    bootstrap: str
    topic_prefix: str
    database: str
    publisher_id: str | None = None
    snapshot: bool = True
    from_offset: int | None = None
    partitions: int = 1
    replication_factor: int | None = None
    max_batch_events: int = 20_000
    heartbeat_interval: float = 5.0
    kafka: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    version: str = "unknown"
    format: str = "json"
    schema_registry: Any = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise errors.InterfaceError(f"unknown CDC format {self.format!r}: json or avro")
        if self.format == "avro" and self.schema_registry is None:
            raise errors.InterfaceError("the avro format needs a schema registry (--schema-registry URL)")
        if self.format == "json" and self.schema_registry is not None:
            raise errors.InterfaceError("a schema registry is used with the avro format only (--format avro)")

    def envelope_format(self) -> EnvelopeFormat:
        """The serialization these settings name."""
        if self.format == "avro":
            return AvroFormat(SchemaRegistry(self.schema_registry), self.topic_prefix, self.database, self.version)
        return JsonFormat(self.topic_prefix, self.database, self.version)

    @property
    def id(self) -> str:
        """The publisher id (transactional id and group are derived from it)."""
        return self.publisher_id or self.topic_prefix

    @property
    def transactional_id(self) -> str:
        """The producer's ``transactional.id``."""
        return f"offsetdb-cdc.{self.id}"

    @property
    def transaction_topic(self) -> str:
        """Debezium's transaction metadata topic."""
        return f"{self.topic_prefix}.transaction"

    @property
    def progress_topic(self) -> str:
        """Where progress records (resolved marks, heartbeats) go."""
        return f"{self.topic_prefix}.progress"


class PublisherFenced(errors.OperationalError):
    """Another publisher with the same id took over (its ``init_transactions`` fenced this one)."""

    sqlstate = "55006"


@dataclass
class PublisherStats:
    """What a publisher has done since it started (for logs and the bench)."""

    events: int = 0
    transactions: int = 0  # log transactions published
    kafka_transactions: int = 0
    resolved: int | None = None
    started_at: float = field(default_factory=time.monotonic)


class Publisher:
    """Publishes one feed to Kafka until stopped; see the module docstring."""

    def __init__(
        self,
        settings: PublisherSettings,
        open_feed: OpenFeed,
        *,
        on_commit: Callable[[PublisherStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self._open_feed = open_feed
        self._on_commit = on_commit
        self.stats = PublisherStats()
        common = {"bootstrap.servers": settings.bootstrap, **settings.kafka}
        self._common = common
        self._admin = AdminClient(_only(common, "admin"))
        self._partitions: dict[str, int] = {}
        self._format = settings.envelope_format()
        self._codecs: dict[tuple[int, int], TableEncoding] = {}
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._feed: Feed | None = None
        # The state the next progress record carries (see _state_after).
        self._next_offset: int | None = None
        self._snapshot_at: SnapshotResume | None = None
        self._batch_events = 0
        self._in_transaction = False
        self._last_commit = time.monotonic()
        self._state_moved = False

    # --- running ----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; raises PublisherFenced if another took over.

        A broker that fails or goes away aborts the open batch; the publisher then starts
        over from its committed progress, with a new producer, retrying until ``stop``.
        """
        try:
            while not stop.is_set():
                try:
                    if self._producer is None:
                        self._start()
                    self._step()
                except (KafkaException, errors.ConnectionFailure) as e:
                    self._recover(e)
                    stop.wait(1.0)
                except SystemError as e:
                    # confluent-kafka can leave a pending C error behind a delivery
                    # callback of a producer that has just been fenced, and it surfaces as
                    # SystemError from the next call. Ask the producer what is wrong.
                    self._recover(self._diagnose(e))
                    stop.wait(1.0)
        finally:
            self.close()

    def _start(self) -> None:
        settings = self.settings
        self._producer = Producer(
            {
                **_only(self._common, "producer"),
                "transactional.id": settings.transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                # The same key goes to the same partition as with Java producers.
                "partitioner": "murmur2_random",
                "queue.buffering.max.messages": 1_000_000,
                "transaction.timeout.ms": 60_000,
                "message.timeout.ms": int(settings.timeout * 1000),
            }
        )
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    **_only(self._common, "consumer"),
                    "group.id": settings.transactional_id,
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                }
            )
        self._ensure_topic(settings.transaction_topic, 1)
        self._ensure_topic(settings.progress_topic, 1)
        self._begin_from_committed()

    def _begin_from_committed(self) -> None:
        """Fence older publishers, read the committed progress and open the feed there."""
        assert self._producer is not None
        try:
            self._producer.init_transactions(self.settings.timeout)
        except KafkaException as e:
            raise errors.ConnectionFailure(
                f"the CDC publisher could not initialize its Kafka transactions: {_describe(e)}"
            ) from e
        state = self._read_progress()
        settings = self.settings
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        if state is None:
            logger.info("no progress for publisher %s: %s", settings.id,
                        "starting with a snapshot" if settings.snapshot else f"starting after offset {settings.from_offset}")
            if settings.snapshot:
                self._feed = self._open_feed(None, True, None)
            else:
                self._feed = self._open_feed(settings.from_offset, False, None)
            self._next_offset, self._snapshot_at = None, None
        elif state.get("snapshot"):
            snap = state["snapshot"]
            resume = SnapshotResume(snap["offset"], snap["table"], bytes.fromhex(snap["key"]))
            logger.info("resuming the snapshot at offset %d after a row of %s", resume.offset, resume.table)
            try:
                self._feed = self._open_feed(None, False, resume)
            except errors.SnapshotTooOld:
                logger.warning(
                    "the interrupted snapshot at offset %d is no longer readable; starting a "
                    "new snapshot (its rows are published again)", resume.offset,
                )
                self._feed = self._open_feed(None, True, None)
            self._next_offset, self._snapshot_at = resume.offset + 1, resume
        else:
            self._next_offset, self._snapshot_at = int(state["next_offset"]), None
            logger.info("publisher %s resumes after offset %d", settings.id, self._next_offset - 1)
            self._feed = self._open_feed(self._next_offset - 1, False, None)
        self.stats.resolved = None if self._next_offset is None else self._next_offset - 1
        self._batch_events = 0
        self._in_transaction = False

    def _read_progress(self) -> dict[str, Any] | None:
        """The progress record the committed group offset points just past, if any."""
        assert self._consumer is not None
        topic = self.settings.progress_topic
        try:
            committed = self._consumer.committed([TopicPartition(topic, 0)], self.settings.timeout)
        except KafkaException as e:
            raise errors.ConnectionFailure(f"reading the publisher's progress failed: {_describe(e)}") from e
        position = committed[0].offset
        if position is None or position <= 0:
            return None
        self._consumer.assign([TopicPartition(topic, 0, position - 1)])
        deadline = time.monotonic() + self.settings.timeout
        try:
            while time.monotonic() < deadline:
                message = self._consumer.poll(1.0)
                if message is None or message.error() is not None:
                    continue
                if message.offset() == position - 1:
                    state: dict[str, Any] = json.loads(message.value() or b"{}")
                    if state.get("format") != PROGRESS_FORMAT:
                        raise errors.InternalError(
                            f"progress record {position - 1} of {topic} has format "
                            f"{state.get('format')}; this offsetdb reads {PROGRESS_FORMAT}"
                        )
                    return state
        finally:
            self._consumer.unassign()
        raise errors.ConnectionFailure(
            f"the committed progress record (offset {position - 1} of {topic}) could not be read "
            f"within {self.settings.timeout:g}s"
        )

    def _step(self) -> None:
        """Publish what the feed has; commit when it has no more at once, or the batch is full."""
        assert self._feed is not None
        wait = 0.0 if self._batch_events else self._until_heartbeat()
        item = self._feed.poll(wait)
        if item is not None:
            self._publish(item)
            if self._batch_events >= self.settings.max_batch_events:
                self._commit()
            return
        if self._batch_events or (self._in_transaction and self._state_moved):
            self._commit()
        elif self._until_heartbeat() <= 0:
            self._commit()  # a heartbeat: the progress record alone

    def _until_heartbeat(self) -> float:
        return max(0.0, self.settings.heartbeat_interval - (time.monotonic() - self._last_commit))

    # --- publishing ---------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            assert self._producer is not None
            self._producer.begin_transaction()
            self._in_transaction = True
            self._state_moved = False

    def _publish(self, item: Item) -> None:
        self._begin()
        if isinstance(item, CommittedTransaction):
            self._publish_transaction(item)
            self._next_offset, self._snapshot_at = item.offset + 1, None
            self.stats.transactions += 1
        elif isinstance(item, SnapshotChunk):
            self._publish_snapshot(item)
            if item.last:
                self._next_offset, self._snapshot_at = item.offset + 1, None
            elif item.changes:
                last = item.changes[-1]
                self._next_offset = item.offset + 1
                self._snapshot_at = SnapshotResume(item.offset, last.table, last.raw_key)
        elif isinstance(item, Progress):
            self._next_offset, self._snapshot_at = item.offset + 1, None
        self._state_moved = True

    def _publish_transaction(self, txn: CommittedTransaction) -> None:
        if not txn.changes and not any(s.op == "DROP" for s in txn.schema_changes):
            return  # a CREATE TABLE alone: no event (the first change's schema shows the table)
        produce = self._produce
        settings = self.settings
        ts_ms = txn.commit_time_us // 1000
        txn_id = txn.txn_id
        envelope = self._format
        produce(settings.transaction_topic, envelope.transaction_key(txn_id), envelope.transaction_begin(txn_id, ts_ms), 0)
        counts: dict[str, int] = {}
        total = 0
        sources: dict[str, Any] = {}
        for change in txn.changes:
            codec = self._codec(change)
            source = sources.get(change.table)
            if source is None:
                source = sources[change.table] = codec.source(ts_ms, "false", txn.offset, txn_id)
            total += 1
            order = counts[change.table] = counts.get(change.table, 0) + 1
            key = codec.key(change)
            produce(
                codec.topic, key,
                codec.value(change.op, change.raw_before, change.raw_after, source, ts_ms, (txn_id, total, order)),
            )
            if change.op == "d":
                produce(codec.topic, key, None)  # the tombstone, for log compaction
        for schema_change in txn.schema_changes:
            if schema_change.op != "DROP":
                continue
            table = schema_change.table_def
            assert table is not None
            codec = self._codec_for(table)
            total += 1
            order = counts[table.name] = counts.get(table.name, 0) + 1
            value = codec.value(
                "t", None, None, codec.source(ts_ms, "false", txn.offset, txn_id), ts_ms, (txn_id, total, order)
            )
            for partition in range(self._ensure_topic(codec.topic, self.settings.partitions)):
                produce(codec.topic, None, value, partition, [("offsetdb.ddl", b"DROP TABLE")])
        produce(
            settings.transaction_topic, envelope.transaction_key(txn_id), envelope.transaction_end(txn_id, ts_ms, counts), 0
        )
        self.stats.events += total

    def _publish_snapshot(self, chunk: SnapshotChunk) -> None:
        produce = self._produce
        ts_ms = chunk.commit_time_us // 1000
        sources: dict[tuple[int, str], Any] = {}  # by codec and snapshot marker
        for change in chunk.changes:
            codec = self._codec(change)
            source = sources.get((id(codec), change.snapshot))
            if source is None:
                source = sources[(id(codec), change.snapshot)] = codec.source(ts_ms, change.snapshot, chunk.offset, None)
            produce(codec.topic, codec.key(change), codec.value("r", None, change.raw_after, source, ts_ms, None))
        self.stats.events += len(chunk.changes)

    def _codec(self, change: Change) -> TableEncoding:
        table = change.table_def
        assert table is not None
        return self._codec_for(table)

    def _codec_for(self, table: TableDef) -> TableEncoding:
        key = (table.table_id, table.schema_version)
        codec = self._codecs.get(key)
        if codec is None:
            settings = self.settings
            codec = self._format.table_codec(table)
            self._ensure_topic(codec.topic, settings.partitions)
            self._codecs[key] = codec
        return codec

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        producer = self._producer
        assert producer is not None
        kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                producer.produce(topic, value, key, **kwargs)
                self._batch_events += 1
                return
            except BufferError:
                producer.poll(0.05)  # the queue is full: let deliveries drain it

    def _commit(self) -> None:
        """Write the progress record, commit its offset + 1 to the group, commit the batch."""
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        self._begin()
        settings = self.settings
        snapshot = self._snapshot_at
        resolved = None if (self._next_offset is None or snapshot is not None) else self._next_offset - 1
        record = {
            "format": PROGRESS_FORMAT,
            "publisher": settings.id,
            "database": settings.database,
            "next_offset": self._next_offset,
            "resolved": resolved,
            "snapshot": None if snapshot is None else {
                "offset": snapshot.offset, "table": snapshot.table, "key": snapshot.key.hex(),
            },
            "events": self._batch_events,
            "ts_ms": int(time.time() * 1000),
        }
        delivered: list[int] = []
        failures: list[KafkaError] = []

        def report(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                failures.append(error)
            else:
                delivered.append(message.offset())

        if self._next_offset is not None or snapshot is not None:
            producer.produce(
                settings.progress_topic, json.dumps(record).encode(), settings.id.encode(),
                partition=0, on_delivery=report,
            )
        remaining = producer.flush(settings.timeout)
        if remaining or failures:
            raise KafkaException(failures[0] if failures else KafkaError(KafkaError._TIMED_OUT, "flush timed out"))
        if delivered:
            offsets = [TopicPartition(settings.progress_topic, 0, delivered[0] + 1)]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), settings.timeout)
        producer.commit_transaction(settings.timeout)
        self._in_transaction = False
        self._batch_events = 0
        self._last_commit = time.monotonic()
        self.stats.kafka_transactions += 1
        self.stats.resolved = resolved if resolved is not None else self.stats.resolved
        if self._on_commit is not None:
            self._on_commit(self.stats)

    def _diagnose(self, error: SystemError) -> Exception:
        """The KafkaException behind a SystemError from confluent-kafka, if there is one.

        Aborting the open transaction raises the producer's real state (fenced, or a
        broker failure); if it succeeds, the SystemError stands and the batch restarts.
        """
        producer = self._producer
        if producer is None:
            return error
        try:
            producer.abort_transaction(self.settings.timeout)
        except KafkaException as e:
            return e
        except Exception:  # noqa: BLE001 - only a diagnosis; the SystemError is reported
            return error
        self._in_transaction = False
        return error

    def _recover(self, error: Exception) -> None:
        """A broker call failed: drop the batch and the producer, to start over.

        The next step starts from the committed progress; another publisher having
        taken over ends this one instead.
        """
        kafka_error = error.args[0] if isinstance(error, KafkaException) and error.args else None
        if isinstance(kafka_error, KafkaError) and kafka_error.code() in _FENCED:
            self.close()
            raise PublisherFenced(
                f"publisher {self.settings.id} was fenced: another publisher with transactional id "
                f"{self.settings.transactional_id} took over ({kafka_error.str()})"
            ) from error
        message = _describe(error) if isinstance(error, KafkaException) else str(error)
        logger.warning("publishing failed (%s); starting over from the committed progress", message)
        self._drop_producer()

    def _drop_producer(self) -> None:
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        producer, self._producer = self._producer, None
        if producer is not None and self._in_transaction:
            # If this fails, the next producer's init_transactions aborts it anyway.
            with contextlib.suppress(KafkaException):
                producer.abort_transaction(5)
        self._in_transaction = False
        self._batch_events = 0

    # --- topics -------------------------------------------------------------------------

    def _ensure_topic(self, topic: str, partitions: int) -> int:
        """Create ``topic`` if missing; returns its partition count."""
        known = self._partitions.get(topic)
        if known is not None:
            return known
        # All topics, not just this one: a metadata request naming a missing topic makes
        # brokers that auto-create topics create it, with their default partition count.
        metadata = self._admin.list_topics(timeout=self.settings.timeout)
        found = metadata.topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            self._partitions[topic] = len(found.partitions)
            return len(found.partitions)
        brokers = max(1, len(metadata.brokers))
        replication = self.settings.replication_factor or min(3, brokers)
        new = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=replication,
            config={"retention.ms": "-1", "min.insync.replicas": str(min(2, replication))},
        )
        try:
            self._admin.create_topics([new], operation_timeout=self.settings.timeout)[topic].result(
                self.settings.timeout
            )
        except KafkaException as e:
            kafka_error = e.args[0] if e.args else None
            if not (isinstance(kafka_error, KafkaError) and kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise errors.ConnectionFailure(f"could not create topic {topic}: {_describe(e)}") from e
            return self._ensure_topic_known(topic)
        self._partitions[topic] = partitions
        return partitions

    def _ensure_topic_known(self, topic: str) -> int:
        metadata = self._admin.list_topics(timeout=self.settings.timeout)
        count = len(metadata.topics[topic].partitions)
        self._partitions[topic] = count
        return count

    def close(self) -> None:
        """Abort an open batch (nothing of it becomes visible) and release the clients."""
        self._drop_producer()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


_FENCED = {
    getattr(KafkaError, name)
    for name in ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")
    if hasattr(KafkaError, name)
}

_PRODUCER_ONLY = ("linger.ms", "queue.buffering.", "batch.", "compression.", "message.timeout.ms",
                  "delivery.timeout.ms", "acks", "enable.idempotence", "retries", "transactional.id",
                  "transaction.timeout.ms", "partitioner", "sticky.", "max.in.flight")
_CONSUMER_ONLY = ("fetch.", "auto.offset.reset", "session.timeout.ms", "heartbeat.interval.ms", "group.",
                  "max.poll.interval.ms", "enable.partition.eof", "isolation.level", "enable.auto.",
                  "queued.", "check.crcs")


def _only(settings: dict[str, Any], kind: str) -> dict[str, Any]:
    excluded = {"producer": _CONSUMER_ONLY, "consumer": _PRODUCER_ONLY}.get(kind, _CONSUMER_ONLY + _PRODUCER_ONLY)
    return {k: v for k, v in settings.items() if not k.startswith(excluded)}


def _describe(error: KafkaException) -> str:
    kafka_error = error.args[0] if error.args else None
    return kafka_error.str() if isinstance(kafka_error, KafkaError) else str(error)


def topic_of(prefix: str, table: str) -> str:
    """The topic a table's changes go to (re-exported for users and tests)."""
    return table_topic(prefix, table)
