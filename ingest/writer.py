"""The transaction writer: appends commit records to the log with group commit.

Concurrent committers share appends: the first to arrive becomes the *leader*, appends
every record queued so far in one ``Log.append`` (one WriteBatch and one fsync on the
embedded log, one produce batch on Kafka), hands leadership to the first record queued
meanwhile, and returns. So a lone writer pays one append per commit and no thread
hand-off, while N concurrent writers share one append, and throughput grows with them.

After its append, a leader runs ``after_append`` with the appended entries (embedded:
apply the log up to its end; Kafka: apply them at once if they are next in the log,
without waiting to read them back), outside the queue lock, so the next leader's
append overlaps it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from offsetdb import errors
from offsetdb.log import Log, LogEntry


class _Pending:
    """One record waiting to be appended, and how its committer waits."""

    __slots__ = ("record", "offset", "error", "done", "leader", "wake")

    def __init__(self, record: bytes) -> None:
        self.record = record
        self.offset = -1
        self.error: BaseException | None = None
        self.done = False
        self.leader = False
        # A held lock used as a one-shot semaphore: the cheapest thing to block on.
        # Only followers get one; a lone committer never allocates or waits.
        self.wake: threading.Lock | None = None


class TransactionWriter:
    """Appends transaction records to a :class:`~offsetdb.log.Log`, batching concurrent ones."""

    def __init__(
        self,
        log: Log,
        after_append: Callable[[list[LogEntry]], object] | None = None,
        max_batch: int = 1024,
    ) -> None:
        self._log = log
        self._after_append = after_append
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: list[_Pending] = []
        self._leader_active = False
        # Held by each group append, or by one committer for a whole read-execute-append
        # (see :meth:`exclusive`).
        self._gate = threading.Lock()

    @property
    def queued(self) -> int:
        """Records waiting for the next group append."""
        return len(self._queue)

    def append(self, record: bytes) -> int:
        """Append one record, durably; returns its offset. Blocks until appended."""
        pending = _Pending(record)
        with self._mutex:
            self._queue.append(pending)
            if self._leader_active:
                pending.wake = threading.Lock()
                pending.wake.acquire()
            else:
                self._leader_active = pending.leader = True
        if pending.wake is not None:
            pending.wake.acquire()  # released when appended, or when made leader
        if not pending.done:
            self._lead(pending)
        return self._result(pending)

    def _lead(self, leader: _Pending) -> None:
        failure: BaseException | None = None
        offsets: list[int] = []
        with self._gate:
            # Taken only once the log is ours: whatever queued while an exclusive holder
            # kept it joins this append. The leader is always first in the queue.
            with self._mutex:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            try:
                offsets = self._log.append([p.record for p in batch])
            except BaseException as e:  # every committer of the batch learns the same failure
                failure = e
        with self._mutex:
            if self._queue:
                successor = self._queue[0]
                successor.leader = True
                assert successor.wake is not None
                successor.wake.release()
            else:
                self._leader_active = False
        if failure is None and self._after_append is not None:
            # Errors here (the materializer stopping) reach each committer when it waits
            # for its outcome; the records themselves were appended.
            with contextlib.suppress(errors.Error):
                self._after_append(
                    [LogEntry(o, p.record) for o, p in zip(offsets, batch, strict=True)]
                )
        for p, i in zip(batch, range(len(batch)), strict=True):
            if failure is not None:
                p.error = failure
            else:
                p.offset = offsets[i]
            p.done = True
            if p is not leader and p.wake is not None:
                p.wake.release()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Callable[[bytes], int]]:
        """Hold off every other append; yields the function that appends for the holder.

        For a transaction that keeps losing certification to concurrent commits: it reads,
        executes and appends while no other record can enter the log of this process, so
        it cannot lose again to a local writer. Others queue meanwhile and go in the next
        group.
        """
        with self._gate:

            def append_now(record: bytes) -> int:
                offset = self._log.append([record])[0]
                if self._after_append is not None:
                    with contextlib.suppress(errors.Error):
                        self._after_append([LogEntry(offset, record)])
                return offset

            yield append_now

    @staticmethod
    def _result(pending: _Pending) -> int:
        if pending.error is not None:
            if isinstance(pending.error, errors.Error):
                raise pending.error
            raise errors.OperationalError(f"appending to the log failed: {pending.error}") from (
                pending.error
            )
        return pending.offset
