"""The ``Log`` protocol: a durable, totally ordered sequence of records.

A database has exactly one log. Its backends (embedded RocksDB, Kafka) share these
observable semantics, which everything above relies on:

- ``append`` is durable when it returns: the records get consecutive offsets, dense
  from 0, in the order given, and survive a crash of the process (embedded: one atomic
  WriteBatch; Kafka: acknowledged by the in-sync replicas, offsets as the delivery
  reports name them).
- ``read`` returns records in offset order, starting exactly at the offset asked for,
  with no holes; every reader sees the same record at the same offset, forever.
- Offsets are the only clock. Nothing relies on broker watermarks or time indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One record read back from the log, at its offset."""

    offset: int
    value: bytes


class Log(Protocol):
    """A database's log."""

    def append(self, records: Sequence[bytes]) -> list[int]:
        """Append ``records`` durably; return their offsets, in order."""
        ...

    def read(self, start: int, max_records: int, timeout: float) -> list[LogEntry]:
        """Records from offset ``start`` on, at most ``max_records`` of them.

        Waits up to ``timeout`` seconds for the first one to exist; empty if none did.
        """
        ...

    def end_offset(self) -> int:
        """One past the newest offset this process knows to be in the log.

        Embedded: exactly the offset the next append gets. Kafka: a lower bound (what
        this node appended or read), never a broker watermark.
        """
        ...

    def close(self) -> None:
        """Release the log's resources; appends and reads after this fail."""
        ...
