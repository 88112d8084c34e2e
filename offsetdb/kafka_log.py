"""The Kafka log backend: a database's log is the one-partition topic ``<prefix>.<db>.log``.

Appends go through an idempotent producer with ``acks=all``: a record is in the log
when its delivery report says so, at the offset the report names (never a watermark).
Reads assign the partition directly (no consumer group: each node keeps its applied
offset in its own RocksDB, in the same write batch as the state it covers) and read
``read_committed``, so records of aborted Kafka transactions never reach a materializer.

The log topic is written only by offsetdb nodes, whose producers are idempotent and not
transactional, so its offsets are dense, like the embedded log's. A read that returns a
hole (a record missing before the next one) is a read anomaly, not history: the
reader seeks back and reads again, and a hole that persists stops the node rather than
let it skip a record other nodes apply. (Tansu, the test broker, was seen to skip a
record for a consumer following the tail: docs/kafka-compatibility.md.)

When an append's delivery fails, the records may or may not be in the log (a request
can time out after the broker wrote it). That is reported as
:class:`~offsetdb.errors.CommitOutcomeUnknown`, never guessed; the transaction id in
the record resolves it (see ``Database.resolve_outcome``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from offsetdb import errors
from offsetdb.config import Config
from offsetdb.log import LogEntry

logger = logging.getLogger(__name__)

ENV_PREFIX = "OFFSETDB_KAFKA_"
MAX_RECORD_BYTES = 16 * 1024 * 1024
_READ_AHEAD_SKIP = 10_000  # records a read may skip rather than seek past
_MAX_HOLE_RETRIES = 100  # the topic's max.message.bytes: a transaction is one record

# Settings offsetdb's correctness rests on; a pass-through setting may not change them.
_PRODUCER_FIXED = {"enable.idempotence": True, "acks": "all"}
# check.crcs: every record batch carries the producer's CRC-32C; librdkafka verifies it
# only when asked, and a damaged record must stop a node, never be applied
# (docs/integrity.md). A batch that fails it is reported and not delivered; the reader
# then meets a hole, which it never skips (_contiguous), so the node stops there.
_CONSUMER_FIXED = {"isolation.level": "read_committed", "enable.auto.commit": False, "check.crcs": True}

# Pass-through settings are shared by the producer, the consumer and the admin client,
# except these, which librdkafka accepts for one kind of client only (and warns about on
# the others). Prefixes; matched against the property name.
_CONSUMER_ONLY = (
    "fetch.", "auto.offset.reset", "session.timeout.ms", "heartbeat.interval.ms", "group.",
    "max.poll.interval.ms", "enable.partition.eof", "max.partition.fetch.bytes", "check.crcs",
    "queued.", "isolation.level", "enable.auto.", "auto.commit.", "partition.assignment.",
)
_PRODUCER_ONLY = (
    "linger.ms", "queue.buffering.", "batch.", "compression.", "message.timeout.ms",
    "delivery.timeout.ms", "acks", "request.required.acks", "enable.idempotence", "retries",
    "message.send.max.retries", "retry.backoff", "max.in.flight", "transactional.id",
    "transaction.timeout.ms", "partitioner", "sticky.",
)


def _for_client(settings: Mapping[str, Any], kind: str) -> dict[str, Any]:
    excluded = {"producer": _CONSUMER_ONLY, "consumer": _PRODUCER_ONLY}.get(
        kind, _CONSUMER_ONLY + _PRODUCER_ONLY
    )
    return {k: v for k, v in settings.items() if not k.startswith(excluded)}


_DB_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class KafkaTarget:
    """A parsed ``kafka://HOST:PORT[,HOST:PORT...]/DB[?data_dir=DIR]`` URL."""

    bootstrap: str
    database: str
    data_dir: str | None

    def topic(self, prefix: str) -> str:
        """The log topic of this database."""
        return f"{prefix}.{self.database}.log"


def parse_url(url: str) -> KafkaTarget:
    """Parse a ``kafka://`` database URL, naming what is wrong with a bad one."""
    parts = urlsplit(url)
    if parts.scheme != "kafka":
        raise errors.InterfaceError(f"not a kafka:// URL: {url!r}")
    bootstrap = parts.netloc
    database = parts.path.strip("/")
    if not bootstrap:
        raise errors.InterfaceError(f"{url!r} names no broker: use kafka://HOST:PORT/DB")
    if not database:
        raise errors.InterfaceError(f"{url!r} names no database: use kafka://HOST:PORT/DB")
    if not _DB_NAME.match(database) or len(database) > 200:
        raise errors.InterfaceError(
            f"database name {database!r} must be letters, digits, '.', '_' or '-' "
            "(it becomes part of a Kafka topic name)"
        )
    query = parse_qs(parts.query)
    unknown = set(query) - {"data_dir"}
    if unknown:
        raise errors.InterfaceError(f"unknown kafka:// URL parameter(s): {', '.join(sorted(unknown))}")
    data_dir = query["data_dir"][-1] if "data_dir" in query else None
    return KafkaTarget(bootstrap, database, data_dir)


def client_settings(explicit: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Kafka client settings from ``OFFSETDB_KAFKA_*`` variables, overridden by ``explicit``.

    ``OFFSETDB_KAFKA_SASL_MECHANISM=PLAIN`` becomes ``sasl.mechanism=PLAIN``: the
    property name upper-cased, dots as underscores. ``explicit`` is the ``kafka``
    setting (from ``connect(kafka={...})`` or a config file's ``[kafka]`` table).
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            settings[name[len(ENV_PREFIX) :].lower().replace("_", ".")] = value
    settings.update(explicit)
    for fixed in (*_PRODUCER_FIXED, *_CONSUMER_FIXED):
        if fixed in settings and str(settings[fixed]).lower() != str(
            {**_PRODUCER_FIXED, **_CONSUMER_FIXED}[fixed]
        ).lower():
            raise errors.InterfaceError(
                f"Kafka setting {fixed}={settings[fixed]!r} is not allowed: offsetdb's "
                "durability and ordering rest on its own value"
            )
    return settings


class KafkaLog:
    """A :class:`~offsetdb.log.Log` kept in a one-partition Kafka topic."""

    max_record_bytes = MAX_RECORD_BYTES

    def __init__(self, target: KafkaTarget, config: Config, *, read_only: bool = False) -> None:
        self.target = target
        self.topic = target.topic(config.topic_prefix)
        self._timeout = config.kafka_timeout
        self._common = {
            "bootstrap.servers": target.bootstrap,
            # The client's own log lines go through logging, not straight to stderr.
            "logger": logging.getLogger("offsetdb.kafka.client"),
            **client_settings(config.kafka),
        }
        self._config = config
        self._partition = TopicPartition(self.topic, 0)
        self._admin = AdminClient(_for_client(self._common, "admin"))
        self._ensure_topic()
        self._append_lock = threading.Lock()
        self._producer: Producer | None = None if read_only else self._new_producer()
        self._read_lock = threading.Lock()
        self._consumer = self._new_consumer()
        self._position: int | None = None
        self._holes = 0  # consecutive reads that met a hole (see _contiguous)
        self._known_end = 0
        self.at_end = False  # the last read met the end of the partition (a hint only)
        self._closed = False

    # --- topic --------------------------------------------------------------------------

    def _ensure_topic(self) -> None:
        """Find the log topic, or create it with the settings a log needs."""
        admin = self._admin
        try:
            metadata = admin.list_topics(timeout=self._timeout)
        except KafkaException as e:
            raise errors.CannotConnect(
                f"could not reach Kafka at {self.target.bootstrap} within "
                f"{self._timeout:g}s: {e.args[0].str() if e.args else e}"
            ) from e
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            self._create_topic(admin, len(metadata.brokers))
            return
        if len(topic.partitions) != 1:
            raise errors.CannotConnect(
                f"topic {self.topic} has {len(topic.partitions)} partitions; a database log "
                "must have exactly one (a single total order)"
            )

    def _create_topic(self, admin: AdminClient, brokers: int) -> None:
        replication = self._config.replication_factor or min(3, max(1, brokers))
        min_isr = self._config.min_insync_replicas or min(2, replication)
        new = NewTopic(
            self.topic,
            num_partitions=1,
            replication_factor=replication,
            config={
                "min.insync.replicas": str(min_isr),
                # Every record is history: a new node replays from offset 0.
                "retention.ms": "-1",
                "retention.bytes": "-1",
                "cleanup.policy": "delete",
                "max.message.bytes": str(MAX_RECORD_BYTES),
            },
        )
        future = admin.create_topics([new], operation_timeout=self._timeout)[self.topic]
        try:
            future.result(timeout=self._timeout)
        except TimeoutError as e:
            raise errors.CannotConnect(
                f"creating the log topic {self.topic} got no answer within {self._timeout:g}s"
            ) from e
        except KafkaException as e:
            error = e.args[0] if e.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return  # another node created it first
            raise errors.CannotConnect(f"could not create the log topic {self.topic}: {e}") from e
        logger.info(
            "created log topic %s (replication factor %d, min.insync.replicas %d)",
            self.topic, replication, min_isr,
        )

    # --- appending ----------------------------------------------------------------------

    def _new_producer(self) -> Producer:
        timeout_ms = int(self._timeout * 1000)
        return Producer(
            {
                # Batching happens above, in the group-commit writer: send at once.
                "linger.ms": 0,
                # Connect at once rather than on first need: the idempotent producer
                # asks for its producer id only once a broker is up, and with lazy
                # connections it found none on its first tries, so a node's first
                # commit waited about a second (its 500 ms retry timer, twice).
                "enable.sparse.connections": False,
                "message.timeout.ms": timeout_ms,
                "request.timeout.ms": min(timeout_ms, 30_000),
                "message.max.bytes": MAX_RECORD_BYTES + 64 * 1024,
                **_for_client(self._common, "producer"),
                **_PRODUCER_FIXED,
            }
        )

    def append(self, records: Sequence[bytes]) -> list[int]:
        """Produce ``records`` in order; return the offsets their delivery reports name.

        Raises ConnectionFailure (08006) when nothing can have been written, and
        CommitOutcomeUnknown (08007) when the records may or may not be in the log.
        """
        for record in records:
            if len(record) > MAX_RECORD_BYTES:
                raise errors.ProgrammingError(
                    f"a transaction record of {len(record):,} bytes exceeds the log's limit of "
                    f"{MAX_RECORD_BYTES:,} bytes; commit in smaller transactions", "54000"
                )
        with self._append_lock:
            if self._closed or self._producer is None:
                raise errors.OperationalError("the log is closed" if self._closed else "this reader cannot append")
            offsets: list[int | None] = [None] * len(records)
            failures: list[KafkaError] = []

            def reporter(position: int) -> Callable[[KafkaError | None, Any], None]:
                def delivered(error: KafkaError | None, message: Any) -> None:
                    if error is not None:
                        failures.append(error)
                    else:
                        offsets[position] = message.offset()

                return delivered

            producer = self._producer
            for position, record in enumerate(records):
                try:
                    producer.produce(
                        self.topic, record, partition=0,
                        on_delivery=reporter(position),
                    )
                except (BufferError, KafkaException) as e:
                    if position == 0:
                        raise errors.ConnectionFailure(f"could not queue a record for {self.topic}: {e}") from e
                    failures.append(KafkaError(KafkaError._FAIL, str(e)))
                    break
            pending = producer.flush(self._timeout + 5)
            if pending or failures or any(o is None for o in offsets):
                # Whatever was in flight may still land; a fresh producer makes sure nothing
                # queued behind it is sent later by this one.
                producer.purge(in_queue=True, in_flight=False)
                self._producer = self._new_producer()
                reason = failures[0].str() if failures else f"no delivery report within {self._timeout:g}s"
                raise errors.CommitOutcomeUnknown(
                    f"appending to {self.topic} at {self.target.bootstrap} failed ({reason}); "
                    "the record may or may not be in the log"
                )
            done = [o for o in offsets if o is not None]
            self._known_end = max(self._known_end, done[-1] + 1)
            return done

    # --- reading ------------------------------------------------------------------------

    def _new_consumer(self) -> Consumer:
        """A reader of the log partition; assigned (never joined to a group) on first read."""
        return Consumer(
            {
                # Apache Kafka answers a fetch as soon as a record arrives, so the wait
                # bounds only idle polling; a broker that holds fetches for the whole wait
                # (Tansu) needs it lowered (docs/kafka-compatibility.md).
                "fetch.wait.max.ms": 100,
                **_for_client(self._common, "consumer"),
                # Required by the client, never joined: the partition is assigned directly.
                "group.id": f"offsetdb-node-{uuid.uuid4().hex}",
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "error",
                **_CONSUMER_FIXED,
            }
        )

    def read(self, start: int, max_records: int, timeout: float) -> list[LogEntry]:
        """Records from offset ``start`` on (the first at or after it), waiting up to ``timeout``."""
        with self._read_lock:
            if self._closed:
                return []
            consumer = self._consumer
            position = self._position
            if position is None or start < position or start > position + _READ_AHEAD_SKIP:
                consumer.assign([TopicPartition(self.topic, 0, start)])
                self._position = position = start
                self.at_end = False
            # When the caller is a little ahead of the fetch position (it applied records
            # it appended itself), reading on and dropping them keeps the fetch pipeline
            # full; seeking would restart it.
            # consume() waits for all max_records; to return as soon as anything is there,
            # take what has arrived, else wait for one message and then take the rest.
            messages = consumer.consume(max_records, 0)
            if not messages and timeout > 0:
                first = consumer.poll(timeout)
                if first is not None:
                    messages = [first, *consumer.consume(max_records - 1, 0)]
            entries = []
            for message in messages:
                error = message.error()
                offset = message.offset()
                assert offset is not None, "consumed messages carry their offset"
                if error is None:
                    position = offset + 1
                    self.at_end = False
                    if offset >= start:
                        entries.append(LogEntry(offset, message.value() or b""))
                elif error.code() == KafkaError._PARTITION_EOF:
                    self.at_end = offset <= position
                else:
                    self._read_failed(error)
            self._position = position
            self._known_end = max(self._known_end, position)
            return self._contiguous(start, entries)

    def _contiguous(self, start: int, entries: list[LogEntry]) -> list[LogEntry]:
        """The entries up to the first hole; a hole makes the next read seek back to it."""
        expected = start
        for i, entry in enumerate(entries):
            if entry.offset != expected:
                self._holes += 1
                if self._holes > _MAX_HOLE_RETRIES:
                    raise errors.InternalError(
                        f"offset {expected} of {self.topic} is missing: the reader got offset "
                        f"{entry.offset} next, {self._holes} times in a row; a record is not "
                        "skipped, so this node stops (was the topic written by another producer?)"
                    )
                logger.warning(
                    "reading %s: got offset %d where %d was next; reading again from %d",
                    self.topic, entry.offset, expected, expected,
                )
                self._position = None  # seek back on the next read
                return entries[:i]
            expected += 1
        if entries:
            self._holes = 0
        return entries

    def _read_failed(self, error: KafkaError) -> None:
        if error.code() == KafkaError.OFFSET_OUT_OF_RANGE:
            raise errors.InternalError(
                f"offset {self._position} is no longer (or not yet) in {self.topic}: the log "
                "was truncated by retention, or the topic was recreated; this replica cannot "
                "follow it (rebuild it from an empty data directory)"
            )
        if error.fatal():
            # A fatal error leaves this client unusable; a new one picks up at the
            # applied offset on the next read, as after a restart.
            self._consumer.close()
            self._consumer = self._new_consumer()
            self._position = None
            raise errors.ConnectionFailure(
                f"reading {self.topic} failed: {error.str()} (reading again with a new client)"
            )
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise errors.ConnectionFailure(f"reading {self.topic} failed: {error.str()}")
        # Transient (broker unreachable, leader moving): the client retries by itself.
        logger.warning("reading %s: %s (retrying)", self.topic, error.str())

    def reader(self) -> KafkaLog:
        """Another reader of this log, with a consumer of its own (it cannot append).

        For followers besides the materializer (change data capture): sharing the
        materializer's consumer would make the two seek each other's position away.
        """
        return KafkaLog(self.target, self._config, read_only=True)

    def end_offset(self) -> int:
        """One past the newest record this node knows to exist (appended or read).

        A lower bound of the log's end, never a broker watermark: waiting for it to be
        applied always terminates.
        """
        return self._known_end

    def end_hint(self) -> int:
        """The broker's high watermark, for progress displays only (never for correctness).

        Asked through the admin client: the consumer belongs to the follower thread.
        """
        try:
            futures = self._admin.list_offsets(
                {self._partition: OffsetSpec.latest()}, request_timeout=2
            )
            high = futures[self._partition].result(timeout=3).offset
        except (KafkaException, TimeoutError):
            return self._known_end
        return max(int(high), self._known_end)

    def close(self) -> None:
        """Deliver what is queued (bounded), then release the clients."""
        with self._append_lock, self._read_lock:
            if self._closed:
                return
            self._closed = True
            if self._producer is not None:
                self._producer.flush(min(self._timeout, 5))
            self._consumer.close()
