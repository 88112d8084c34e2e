"""The dead-letter topic: records a source could not ingest, with Kafka Connect's headers.

Each bad record is produced unchanged (key, value, its own headers) to the source's
dead-letter topic, with the headers Kafka Connect's ``DeadLetterQueueReporter`` adds,
so tools written for Connect's DLQs read it as they are::

    __connect.errors.topic                  the source topic
    __connect.errors.partition              its partition (decimal text)
    __connect.errors.offset                 its offset (decimal text)
    __connect.errors.connector.name         the source's name
    __connect.errors.task.id                "0"
    __connect.errors.stage                  VALUE_CONVERTER, KEY_CONVERTER or TASK_PUT
    __connect.errors.class.name             the offsetdb class that failed
    __connect.errors.exception.class.name   the error's class
    __connect.errors.exception.message      what is wrong with the record
    offsetdb.errors.sqlstate                the SQLSTATE, when the table refused the row

The records of a batch are produced and flushed *before* the batch commits, so a bad
record is never lost; a batch that is retried (or a crash before its commit) may
produce it again. The DLQ topic is at least once, as Kafka Connect's is; the
``offsetdb_ingest_errors`` table, written in the batch's own transaction, is exactly
once. Duplicates in the topic carry the same topic/partition/offset headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer

from offsetdb import errors

HEADER_PREFIX = "__connect.errors."


@dataclass(frozen=True)
class BadRecord:
    """One record that could not be ingested, and why."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    stage: str
    exception_class: str
    message: str
    sqlstate: str | None

    def dlq_headers(self, source: str, executing_class: str) -> list[tuple[str, str | bytes | None]]:
        """The record's own headers, then Kafka Connect's error headers."""
        out: list[tuple[str, str | bytes | None]] = list(self.headers)
        out += [
            (HEADER_PREFIX + "topic", self.topic.encode()),
            (HEADER_PREFIX + "partition", str(self.partition).encode()),
            (HEADER_PREFIX + "offset", str(self.offset).encode()),
            (HEADER_PREFIX + "connector.name", source.encode()),
            (HEADER_PREFIX + "task.id", b"0"),
            (HEADER_PREFIX + "stage", self.stage.encode()),
            (HEADER_PREFIX + "class.name", executing_class.encode()),
            (HEADER_PREFIX + "exception.class.name", self.exception_class.encode()),
            (HEADER_PREFIX + "exception.message", self.message.encode()),
        ]
        if self.sqlstate is not None:
            out.append(("offsetdb.errors.sqlstate", self.sqlstate.encode()))
        return out


class DeadLetterProducer:
    """Produces bad records to a dead-letter topic and waits until they are written."""

    def __init__(self, settings: dict[str, Any], topic: str, source: str, timeout: float) -> None:
        self.topic = topic
        self._source = source
        self._timeout = timeout
        self._producer = Producer(
            {
                **settings,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(timeout * 1000),
            }
        )

    def send(self, records: list[BadRecord]) -> None:
        """Produce ``records`` and flush; ConnectionFailure (08006) if not all were written."""
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for record in records:
            try:
                self._producer.produce(
                    self.topic, record.value, record.key,
                    headers=record.dlq_headers(self._source, "offsetdb.ingest.ingester.Ingester"),
                    timestamp=record.timestamp_ms or 0,
                    on_delivery=delivered,
                )
            except (BufferError, KafkaException) as e:
                failures.append(str(e))
                break
        pending = self._producer.flush(self._timeout)
        if pending or failures:
            reason = failures[0] if failures else f"{pending} not delivered within {self._timeout:g}s"
            raise errors.ConnectionFailure(
                f"the dead-letter topic {self.topic} did not take {len(records)} bad record(s): "
                f"{reason}; the batch is retried"
            )

    def close(self) -> None:
        """Deliver what is queued (bounded) and release the client."""
        self._producer.flush(min(self._timeout, 5))
