"""Deterministic certification: whether the transaction at offset C commits.

Every node decides, in log order and with only the log and its own state at ``C - 1``,
so every node decides the same (no coordinator, no 2PC). For a transaction ``T`` that
read at snapshot ``S`` and was appended at ``C``:

- *snapshot too old*: ``S < C - window`` aborts with 72000. The window bounds how much
  history certification must keep; it is the same on every node.
- *write-write* (SNAPSHOT and SERIALIZABLE): a row ``T`` updates or deletes, or a key it
  inserts, has a version newer than ``S`` -> 40001 (or 23505 when an insert meets a
  live row: a unique violation is the better message).
- *read-write* (SERIALIZABLE only): a key ``T`` read has a version newer than ``S``, or
  a row written by a transaction committed in ``(S, C)`` has a before or after image
  that satisfies a predicate ``T`` scanned -> 40001. This closes write skew and
  phantoms.
- *constraints*: a UNIQUE value taken by another row at ``C - 1`` -> 23505; DDL on a
  name that changed under ``T`` -> 42P07 / 40001.

Key checks read the newest version's offset straight from the MVCC state; predicate
checks walk the writes of transactions committed since ``S``, which
:class:`CertificationWindow` keeps (keys only; images are read back from MVCC).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from offsetdb.keys import encode_value


@dataclass(frozen=True, slots=True)
class Predicate:
    """A scanned predicate of a transaction's read set, as recorded in the log."""

    table_id: int
    conjuncts: tuple[tuple[int, str, tuple[bytes, ...]], ...]  # (column, op, encoded values)

    def matches(self, row: tuple[object, ...]) -> bool:
        """Whether a row (logical values) satisfies every conjunct."""
        for column, op, values in self.conjuncts:
            value = row[column]
            if op == "IS_NULL":
                if value is not None:
                    return False
                continue
            if value is None:
                return False
            encoded = encode_value(value)
            if op == "EQ":
                ok = encoded == values[0]
            elif op == "IN":
                ok = encoded in values
            elif op == "LT":
                ok = encoded < values[0]
            elif op == "LE":
                ok = encoded <= values[0]
            elif op == "GT":
                ok = encoded > values[0]
            else:  # GE
                ok = encoded >= values[0]
            if not ok:
                return False
        return True


class CertificationWindow:
    """The written keys of committed transactions in the last ``size`` offsets.

    Appended in log order by the materializer; rebuilt at start-up from the log, so it
    is the same on every node at every offset.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: deque[tuple[int, dict[int, list[bytes]]]] = deque()

    def add(self, offset: int, writes: dict[int, list[bytes]]) -> None:
        """Record the keys (per table id) written by the transaction committed at ``offset``."""
        if writes:
            self._entries.append((offset, writes))
        floor = offset - self.size
        while self._entries and self._entries[0][0] < floor:
            self._entries.popleft()

    def writes_since(self, snapshot: int, table_id: int) -> Iterable[tuple[int, bytes]]:
        """``(offset, key)`` of every write to ``table_id`` committed after ``snapshot``."""
        for offset, writes in reversed(self._entries):
            if offset <= snapshot:
                break
            for key in writes.get(table_id, ()):
                yield offset, key
