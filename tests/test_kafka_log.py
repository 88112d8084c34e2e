"""The Kafka log on its own: what a reader of the topic gets back, and after which errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError
from kafka_broker import Broker

from offsetdb import errors
from offsetdb.config import Config
from offsetdb.kafka_log import KafkaLog, parse_url


@pytest.fixture
def log(kafka_broker: Broker, kafka_settings: dict[str, str]) -> Iterator[KafkaLog]:
    target = parse_url(f"kafka://{kafka_broker.bootstrap}/t{uuid.uuid4().hex[:12]}")
    kafka_log = KafkaLog(target, Config(kafka_timeout=10))
    yield kafka_log
    kafka_log.close()


def read_all(log: KafkaLog, start: int, end: int) -> list[tuple[int, bytes]]:
    """Every record in [start, end), read as the follower reads: in as many calls as it takes."""
    got: list[tuple[int, bytes]] = []
    for _ in range(200):
        if start + len(got) >= end:
            break
        got += [(e.offset, e.value) for e in log.read(start + len(got), 100, 0.2)]
    return got[: end - start]


def test_records_read_back_densely_in_append_order(log: KafkaLog) -> None:
    offsets = log.append([b"a", b"b"]) + log.append([b"c"])
    assert offsets == [0, 1, 2]
    assert read_all(log, 0, 3) == [(0, b"a"), (1, b"b"), (2, b"c")]
    assert read_all(log, 1, 3) == [(1, b"b"), (2, b"c")]  # reading again from the middle
    assert log.end_offset() == 3


def test_fatal_read_error_replaces_the_client_and_reading_resumes_where_it_was(
    log: KafkaLog,
) -> None:
    log.append([b"a", b"b", b"c"])
    assert read_all(log, 0, 2) == [(0, b"a"), (1, b"b")]
    broken = log._consumer

    with pytest.raises(errors.ConnectionFailure, match="new client"):
        log._read_failed(KafkaError(KafkaError._FATAL, "injected", fatal=True))

    assert log._consumer is not broken
    log.append([b"d"])
    assert read_all(log, 2, 4) == [(2, b"c"), (3, b"d")]
