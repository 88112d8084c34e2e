"""The transaction writer: appends commit records to the log with group commit.

Concurrent committers share appends: the first to arrive becomes the *leader*, appends
every record queued so far in one ``Log.append`` (one WriteBatch and one fsync on the
embedded log, one produce batch on Kafka), hands leadership to the first record queued
meanwhile, and returns. So a lone writer pays one append per commit and no thread
hand-off, while N concurrent writers share one append, and throughput grows with them.

After its append, a leader runs ``after_append`` (on the embedded backend: apply the
log up to its end), outside the queue lock, so the next leader's fsync overlaps it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from offsetdb import errors
from offsetdb.log import Log


@dataclass(eq=False, slots=True)
class _Pending:
    record: bytes
    offset: int = -1
    error: BaseException | None = None
    done: bool = False
    leader: bool = False
    cond: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))


class TransactionWriter:
    """Appends transaction records to a :class:`~offsetdb.log.Log`, batching concurrent ones."""

    def __init__(
        self, log: Log, after_append: Callable[[], object] | None = None, max_batch: int = 1024
    ) -> None:
        self._log = log
        self._after_append = after_append
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: list[_Pending] = []
        self._leader_active = False

    def append(self, record: bytes) -> int:
        """Append one record, durably; returns its offset. Blocks until appended."""
        pending = _Pending(record)
        with self._mutex:
            self._queue.append(pending)
            lead = not self._leader_active
            if lead:
                self._leader_active = True
        if not lead:
            with pending.cond:
                pending.cond.wait_for(lambda: pending.done or pending.leader)
            if pending.done:
                return self._result(pending)
        self._lead()
        return self._result(pending)

    def _lead(self) -> None:
        with self._mutex:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            offsets = self._log.append([p.record for p in batch])
        except BaseException as e:  # every committer of the batch learns the same failure
            offsets = []
            failure: BaseException | None = e
        else:
            failure = None
        with self._mutex:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._leader_active = False
        if successor is not None:
            with successor.cond:
                successor.leader = True
                successor.cond.notify()
        if failure is None and self._after_append is not None:
            try:
                self._after_append()
            except BaseException as e:
                failure = failure or e
        for i, p in enumerate(batch):
            with p.cond:
                if failure is not None and not offsets:
                    p.error = failure
                else:
                    p.offset = offsets[i]
                p.done = True
                p.cond.notify()

    @staticmethod
    def _result(pending: _Pending) -> int:
        if pending.error is not None:
            if isinstance(pending.error, errors.Error):
                raise pending.error
            raise errors.OperationalError(f"appending to the log failed: {pending.error}") from (
                pending.error
            )
        return pending.offset
