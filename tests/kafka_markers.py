"""Which records of a partition belong to aborted transactions, from the batch headers.

A ``read_committed`` consumer must not see records of aborted transactions. Apache
Kafka lists aborted transactions in its fetch responses and librdkafka drops them; the
test broker (Tansu) writes ABORT markers but lists nothing, so every client shows those
records (docs/kafka-compatibility.md). Tests that check exactly-once delivery apply the
markers themselves, the way Kafka's ``read_committed`` defines: a record of a
transactional batch of producer P is visible iff the first control marker of P after it
is a COMMIT; records of P with no marker after them yet (an open transaction) are not
visible either.

This module speaks the Kafka protocol directly (Fetch v4, ``read_uncommitted``, so that
it gets every batch) because no client library exposes control batches. It reads
uncompressed record batches (magic 2), which is what offsetdb's publisher writes.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class Batch:
    """One record batch's header: the offsets it covers and its transaction attributes."""

    base_offset: int
    last_offset: int
    producer_id: int
    transactional: bool
    control: bool
    commit: bool | None  # control batches: COMMIT (True) or ABORT (False)


def _leader(bootstrap: str, topic: str, partition: int) -> tuple[str, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10)
    leader = metadata.topics[topic].partitions[partition].leader
    broker = metadata.brokers[leader]
    return broker.host, broker.port


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _fetch(sock: socket.socket, correlation: int, topic: str, partition: int, offset: int) -> bytes:
    body = (
        struct.pack(">iiiib", -1, 100, 1, 8 * 1024 * 1024, 0)  # replica, wait, min, max bytes, read_uncommitted
        + struct.pack(">i", 1) + _string(topic)
        + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 8 * 1024 * 1024)
    )
    header = struct.pack(">hhi", 1, 4, correlation) + _string("offsetdb-tests")
    request = header + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    size = struct.unpack(">i", _read_exactly(sock, 4))[0]
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return bytes(data)


def _varint(data: bytes, position: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7


def _parse(response: bytes) -> tuple[list[Batch], int]:
    """The batches of a Fetch v4 response for one partition, and the high watermark."""
    position = 4 + 4  # correlation id, throttle time
    (topics,) = struct.unpack_from(">i", response, position)
    position += 4
    assert topics == 1
    (length,) = struct.unpack_from(">h", response, position)
    position += 2 + length
    (partitions,) = struct.unpack_from(">i", response, position)
    position += 4
    assert partitions == 1
    _, error, high, _ = struct.unpack_from(">ihqq", response, position)
    position += 4 + 2 + 8 + 8
    if error:
        raise RuntimeError(f"fetch failed with Kafka error code {error}")
    (aborted,) = struct.unpack_from(">i", response, position)
    position += 4
    if aborted > 0:
        position += aborted * 16
    (size,) = struct.unpack_from(">i", response, position)
    position += 4
    records = response[position : position + max(size, 0)]
    batches = []
    at = 0
    while at + 61 <= len(records):
        base_offset, batch_length = struct.unpack_from(">qi", records, at)
        end = at + 12 + batch_length
        if end > len(records):
            break  # a partial batch at the end of the response
        magic = records[at + 16]
        if magic != 2:
            raise RuntimeError(f"record batch of magic {magic}: only magic 2 is read here")
        (attributes,) = struct.unpack_from(">h", records, at + 21)
        (last_delta,) = struct.unpack_from(">i", records, at + 23)
        (producer_id,) = struct.unpack_from(">q", records, at + 43)
        if attributes & 0x07:
            raise RuntimeError("compressed record batch: only uncompressed batches are read here")
        control = bool(attributes & 0x20)
        commit = None
        if control:
            # The one control record: length, attributes, timestamp delta, offset delta,
            # then its key: version (int16), type (int16: 0 ABORT, 1 COMMIT).
            record = at + 61
            _, record = _varint(records, record)
            record += 1
            _, record = _varint(records, record)
            _, record = _varint(records, record)
            key_length, record = _varint(records, record)
            _, kind = struct.unpack_from(">hh", records, record)
            commit = kind == 1
        batches.append(
            Batch(base_offset, base_offset + last_delta, producer_id, bool(attributes & 0x10), control, commit)
        )
        at = end
    return batches, high


def read_batches(bootstrap: str, topic: str, partition: int = 0) -> list[Batch]:
    """Every batch header of a partition, from offset 0 to its end."""
    host, port = _leader(bootstrap, topic, partition)
    batches: list[Batch] = []
    offset = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        for correlation in range(1, 100_000):
            found, high = _parse(_fetch(sock, correlation, topic, partition, offset))
            found = [b for b in found if b.last_offset >= offset]
            if not found:
                if offset >= high:
                    return batches
                offset += 1  # a gap the broker does not answer for: skip it
                continue
            batches += found
            offset = found[-1].last_offset + 1
    raise RuntimeError(f"{topic}/{partition} did not end")


def aborted_offsets(bootstrap: str, topic: str, partition: int = 0) -> set[int]:
    """Offsets a ``read_committed`` reader of Apache Kafka would not deliver."""
    batches = read_batches(bootstrap, topic, partition)
    hidden: set[int] = set()
    open_batches: dict[int, list[Batch]] = {}
    for batch in batches:
        if batch.control:
            decided = open_batches.pop(batch.producer_id, [])
            if not batch.commit:
                for aborted in decided:
                    hidden.update(range(aborted.base_offset, aborted.last_offset + 1))
        elif batch.transactional:
            open_batches.setdefault(batch.producer_id, []).append(batch)
    for still_open in open_batches.values():
        for batch in still_open:
            hidden.update(range(batch.base_offset, batch.last_offset + 1))
    return hidden
