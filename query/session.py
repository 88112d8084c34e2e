"""A session: statements, transaction boundaries, commit and retry.

A session runs each statement in a :class:`~offsetdb.query.transaction.Transaction`:

- *autocommit* (the SQL prompt; ``connect(..., autocommit=True)``): every statement
  outside ``BEGIN``...``COMMIT`` is its own transaction, committed at once, and retried
  from a fresh snapshot when certification aborts it (up to ``autocommit_retries``);
- otherwise (PEP 249's default) the first statement opens a transaction that lasts
  until ``commit()`` / ``rollback()``; a conflict at commit raises SQLSTATE 40001.

As in PostgreSQL, an error inside an explicit transaction aborts it (a statement that
does not parse, or a misplaced SET TRANSACTION, too): later statements fail with 25P02
until it is rolled back. A transaction's snapshot is taken at its first
statement: the newest applied offset, and never older than the session's own last
commit (read-your-writes).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from offsetdb import errors
from offsetdb.query import engine
from offsetdb.query.database import Database
from offsetdb.query.engine import Result, Statement, StatementKind
from offsetdb.query.transaction import Transaction
from offsetdb.schemas.codec import encode_log_record

Params = Sequence[Any] | Mapping[str, Any] | None

ISOLATION_LEVELS = ("SERIALIZABLE", "SNAPSHOT")

# Statements that draw transaction boundaries instead of running in one.
_CONTROL = frozenset(
    (StatementKind.BEGIN, StatementKind.COMMIT, StatementKind.ROLLBACK, StatementKind.SET_ISOLATION)
)


def _run_all(statements: list[Statement], txn: Transaction, *, params: Params) -> Result:
    """Run ``statements`` in ``txn``; the result is the last one's."""
    result = Result([], [], -1, "")
    for statement in statements:
        result = statement.execute(txn, params)
    return result


# Autocommit attempts that compete freely before a retry holds off other local appends.
_EXCLUSIVE_AFTER = 3


class Session:
    """One connection's conversation with a database."""

    def __init__(self, database: Database, autocommit: bool = False) -> None:
        self._db = database
        self.autocommit = autocommit
        self.default_isolation = "SERIALIZABLE"
        self.last_commit_offset: int | None = None
        self._txn: Transaction | None = None
        self._block = False  # inside BEGIN ... COMMIT, or an implicit PEP 249 transaction
        self._block_isolation: str | None = None
        self._failed = False
        self.last_snapshot: int | None = None

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        return self._block

    # --- statements -------------------------------------------------------------------

    def execute(self, sql: str, params: Params = None) -> Result:
        """Run every statement in ``sql``; the result is the last one's.

        As PostgreSQL's simple query protocol does, the statements of one string run in
        one transaction: in autocommit, consecutive statements outside a transaction
        block commit together or not at all, and BEGIN/COMMIT/ROLLBACK in the string
        draw the boundaries.
        """
        statements = self._prepare(sql)
        if not statements:
            return Result([], [], -1, "")
        result = None
        i = 0
        while i < len(statements):
            if self.autocommit and not self._block and statements[i].kind not in _CONTROL:
                j = i
                while j < len(statements) and statements[j].kind not in _CONTROL:
                    j += 1
                group = statements[i:j]
                if len(group) > 1:
                    result = self._run(functools.partial(_run_all, group, params=params))
                    i = j
                    continue
            result = self._execute_one(statements[i], params)
            i += 1
        assert result is not None
        return result

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> int:
        """Run one statement once per parameter set; returns the total rowcount."""
        statements = self._prepare(sql)
        if len(statements) != 1:
            self._fail_open_transaction()
            raise errors.ProgrammingError("executemany takes exactly one statement", "42601")
        statement = statements[0]
        if statement.kind not in (StatementKind.DML, StatementKind.QUERY):
            self._fail_open_transaction()
            raise errors.ProgrammingError("executemany takes an INSERT, UPDATE or DELETE", "42601")
        # Kept as a list, so that an autocommit retry can run the same parameters again.
        params = seq_of_params if isinstance(seq_of_params, list) else list(seq_of_params)
        return self._run(lambda txn: Result([], [], statement.execute_many(txn, params), "")).rowcount

    def _prepare(self, sql: str) -> list[Statement]:
        try:
            return engine.prepare(sql)
        except errors.Error:
            # A statement that does not even parse still aborts the open transaction, as
            # in PostgreSQL: the program's next statements must not commit without it.
            self._fail_open_transaction()
            raise

    def _execute_one(self, statement: Statement, params: Params) -> Result:
        kind = statement.kind
        if kind is StatementKind.BEGIN:
            return self._begin(statement)
        if kind is StatementKind.COMMIT:
            self.commit()
            return Result([], [], -1, "COMMIT")
        if kind is StatementKind.ROLLBACK:
            self.rollback()
            return Result([], [], -1, "ROLLBACK")
        if kind is StatementKind.SET_ISOLATION:
            return self._set_isolation(statement)
        return self._run(lambda txn: statement.execute(txn, params))

    def _fail_open_transaction(self) -> None:
        """An error inside a transaction block: only ROLLBACK (or COMMIT) may follow."""
        if self._block:
            self._failed = True

    def _check_not_failed(self) -> None:
        if self._failed:
            raise errors.InFailedTransaction(
                "current transaction is aborted, commands ignored until end of transaction block"
            )

    def _run(self, work: Callable[[Transaction], Result]) -> Result:
        self._check_not_failed()
        if self._block or not self.autocommit:
            self._block = True
            txn = self._current_txn()
            self.last_snapshot = txn.snapshot_offset
            try:
                result = work(txn)
            except BaseException:
                # The statement may have buffered part of its writes: the transaction can
                # only be rolled back now, as in PostgreSQL.
                self._failed = True
                raise
            return result
        attempts = self._db.config.autocommit_retries
        for attempt in range(attempts + 1):
            try:
                if attempt < _EXCLUSIVE_AFTER:
                    result = self._attempt(work, None)
                else:
                    # Losing again and again to other writers of this process: run the
                    # statement and its append with other appends held off, so that no
                    # local commit can land between its snapshot and its commit.
                    with self._db.writer.exclusive() as append_now:
                        self._db.catch_up()
                        result = self._attempt(work, append_now)
            except errors.SerializationFailure:
                if attempt == attempts:
                    raise
                self._before_retry(attempt)
                continue
            return result
        raise AssertionError("unreachable")

    def _attempt(
        self, work: Callable[[Transaction], Result], append: Callable[[bytes], int] | None
    ) -> Result:
        """One autocommit attempt: a fresh transaction, the statement, its commit."""
        txn = self._new_txn(self.default_isolation)
        self.last_snapshot = txn.snapshot_offset
        try:
            result = work(txn)
            self._commit_txn(txn, append)
        finally:
            self._db.materializer.snapshots.unpin(txn.snapshot_offset)
        return result

    def _before_retry(self, attempt: int) -> None:
        """Wait out a conflict before retrying an autocommit statement.

        Exponential backoff with full jitter keeps colliding writers from colliding again
        in lockstep; then the retry waits until every record already in the log is
        applied, since a snapshot older than those commits would conflict with them again.
        """
        time.sleep(random.uniform(0, min(0.02, 0.0002 * 2**attempt)))
        self._db.materializer.wait_applied(self._db.log_end() - 1, 5.0)

    # --- transaction control -------------------------------------------------------------

    def _begin(self, statement: Statement) -> Result:
        if self._block and (self._txn is not None or self.autocommit):
            raise errors.ActiveTransaction("there is already a transaction in progress")
        self._block = True
        self._block_isolation = statement.isolation
        return Result([], [], -1, "BEGIN")

    def _set_isolation(self, statement: Statement) -> Result:
        self._check_not_failed()
        level = statement.isolation
        if level is None:
            return Result([], [], -1, "SET")  # only modes that change nothing (READ WRITE)
        if level not in ISOLATION_LEVELS:
            raise errors.not_supported(f"isolation level {level}")
        if self._txn is not None:
            self._fail_open_transaction()
            raise errors.ActiveTransaction(
                "SET TRANSACTION ISOLATION LEVEL must be called before any query"
            )
        if self._block:
            self._block_isolation = level
        else:
            self.default_isolation = level
        return Result([], [], -1, "SET")

    def commit(self) -> None:
        """Commit the open transaction (nothing to do when none is open)."""
        txn, failed = self._txn, self._failed
        self._end()
        if failed:
            raise errors.InFailedTransaction(
                "the transaction was aborted by an earlier error and has been rolled back"
            )
        if txn is not None:
            self._commit_txn(txn)

    def rollback(self) -> None:
        """Discard the open transaction's writes."""
        self._end()

    def _end(self) -> None:
        if self._txn is not None:
            self._db.materializer.snapshots.unpin(self._txn.snapshot_offset)
        self._txn = None
        self._block = False
        self._block_isolation = None
        self._failed = False

    def _current_txn(self) -> Transaction:
        if self._txn is None:
            self._txn = self._new_txn(self._block_isolation or self.default_isolation)
        return self._txn

    def begin_transaction(self, isolation: str) -> Transaction:
        """A transaction at the newest snapshot, for writes built below SQL (an ingester's).

        Its snapshot stays pinned until the caller unpins it
        (``materializer.snapshots.unpin(txn.snapshot_offset)``); commit it with
        :meth:`commit_transaction`.
        """
        return self._new_txn(isolation)

    def commit_transaction(self, txn: Transaction) -> int:
        """Commit ``txn`` as COMMIT would; its offset (-1 when it wrote nothing).

        Raises the abort's error, or CommitOutcomeUnknown (08007) naming its id.
        """
        if not txn.has_writes:
            return -1
        self._commit_txn(txn)
        assert self.last_commit_offset is not None
        return self.last_commit_offset

    def _new_txn(self, isolation: str) -> Transaction:
        materializer = self._db.materializer
        materializer.check_healthy()
        snapshot = materializer.applied_offset
        if self.last_commit_offset is not None and snapshot < self.last_commit_offset:
            materializer.wait_applied(self.last_commit_offset, None)
            snapshot = materializer.applied_offset
        materializer.snapshots.pin(snapshot)
        store = self._db.store
        return Transaction(
            store.data,
            store.index,
            materializer.catalog.at(snapshot),
            snapshot,
            isolation,
            self._db.config.principal,
            views=self._db.views,
        )

    def _commit_txn(self, txn: Transaction, append: Callable[[bytes], int] | None = None) -> None:
        if not txn.has_writes:
            return  # read-only: nothing to certify, never aborts
        body = txn.build_record()
        record = encode_log_record(body, "Transaction")
        txn_id = body["txn_id"]
        limit = self._db.max_record_bytes
        if limit is not None and len(record) > limit:
            raise errors.ProgrammingError(
                f"the transaction's record is {len(record):,} bytes, over the log's limit of "
                f"{limit:,}; commit in smaller transactions", "54000"
            )
        materializer = self._db.materializer
        materializer.expect(record, body)
        try:
            offset = (append or self._db.writer.append)(record)
        except errors.CommitOutcomeUnknown as e:
            materializer.forget(record)
            raise errors.CommitOutcomeUnknown(
                f"the commit of transaction {txn_id} may or may not have happened: {e.message}. "
                f"Once the log answers again, conn.transaction_outcome({txn_id!r}, settle=True) "
                "tells which, for certain",
                txn_id=txn_id,
            ) from e
        except BaseException:
            materializer.forget(record)
            raise
        try:
            if not materializer.wait_applied(offset, self._db.commit_timeout):
                raise errors.CommitOutcomeUnknown(
                    f"transaction {txn_id} is in the log at offset {offset}, but this node has "
                    f"not applied that offset within {self._db.commit_timeout:g}s, so its "
                    f"outcome is not known yet; conn.transaction_outcome({txn_id!r}) tells it "
                    "once the node catches up",
                    txn_id=txn_id,
                )
        except errors.InternalError as e:
            # The record is in the log, so certification will decide it when the log is
            # applied again (at the next open); saying "failed" now could be a lie.
            raise errors.CommitOutcomeUnknown(
                f"transaction {txn_id} was appended to the log at offset {offset} but "
                f"could not be applied here ({e.message}); its outcome is decided when the "
                "database is opened again and can be looked up by that transaction id",
                txn_id=txn_id,
            ) from e
        materializer.outcome(offset).raise_if_aborted()
        self.last_commit_offset = offset
        if txn.changes_sources:
            self._db.sources.poke()

    @property
    def snapshot_offset(self) -> int | None:
        """The open transaction's snapshot, if it has taken one."""
        return None if self._txn is None else self._txn.snapshot_offset
