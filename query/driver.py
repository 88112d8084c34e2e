"""The PEP 249 (DB-API 2.0) driver: ``offsetdb.connect(path)`` or ``connect(kafka_url, data_dir=...)``.

Beyond PEP 249, a connection exposes ``last_commit_offset`` (the log offset of its newest
commit, to hand to another node for read-your-writes), ``sync(offset)`` / ``sync()``
(wait until this node has applied an offset / everything committed before the call),
and a cursor exposes ``snapshot_offset`` (the offset whose state its last statement
read) and ``statusmessage`` (PostgreSQL's command tag, e.g. ``INSERT 0 1``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offsetdb import errors
from offsetdb.config import Config
from offsetdb.kafka_log import parse_url
from offsetdb.materializers.replay import Digest, table_digest
from offsetdb.query.database import Database, ReplicationStatus
from offsetdb.query.engine import Result
from offsetdb.query.engine.prepare import ISOLATION_LEVEL_NAMES
from offsetdb.query.session import Params, Session
from offsetdb.query.subscription import Subscription
from offsetdb.types import Kind, SqlType, float4_display


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a table, as ``describe_table`` reports it."""

    name: str
    type: str
    nullable: bool
    default: str | None
    primary_key: bool
    unique: bool


def _type_code(sql_type: SqlType | None) -> str | None:
    return None if sql_type is None else str(sql_type)


class Connection:
    """A PEP 249 connection. Not to be shared between threads: open one per thread."""

    def __init__(
        self,
        target: str,
        autocommit: bool = False,
        config: Config | None = None,
        data_dir: str | None = None,
    ) -> None:
        if target.startswith("kafka://"):
            kafka = parse_url(target)
            directory = data_dir or kafka.data_dir
            if directory is None:
                raise errors.InterfaceError(
                    f"{target} needs a data directory for this node's replica: "
                    "data_dir=DIR (--data-dir DIR at the command line), or ?data_dir=DIR in the URL"
                )
            self._database: Database | None = Database.acquire(directory, config, kafka)
        else:
            if data_dir is not None:
                raise errors.InterfaceError(
                    "data_dir is for kafka:// URLs; an embedded database's target is its directory"
                )
            self._database = Database.acquire(target, config)
        self._session = Session(self._database, autocommit=autocommit)
        self._lock = threading.Lock()

    # --- PEP 249 ------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        """A new cursor on this connection."""
        self._check_open()
        return Cursor(self)

    def commit(self) -> None:
        """Commit the open transaction; SerializationFailure (40001) if it conflicted."""
        with self._lock:
            self._check_open()
            self._session.commit()

    def rollback(self) -> None:
        """Roll back the open transaction."""
        with self._lock:
            self._check_open()
            self._session.rollback()

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back.

        A statement another thread is running on this connection finishes first (close
        waits for it); after that every call fails with InterfaceError "the connection
        is closed", and the database directory is released exactly once.
        """
        with self._lock:
            if self._database is None:
                return
            database, self._database = self._database, None
            try:
                self._session.rollback()
            finally:
                database.release()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # As sqlite3 and psycopg: commit on success, roll back on error; then close.
        try:
            if self._database is not None:
                if exc_type is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.close()

    # --- offsetdb extensions --------------------------------------------------------------

    @property
    def autocommit(self) -> bool:
        """Whether each statement outside BEGIN...COMMIT commits by itself."""
        return self._session.autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._check_open()
        if value and self._session.in_transaction:
            self._session.commit()
        self._session.autocommit = bool(value)

    @property
    def isolation_level(self) -> str:
        """The level of this connection's transactions that name none.

        ``"SERIALIZABLE"`` (the default) or ``"SNAPSHOT"``; the weaker names (``"READ
        COMMITTED"``, ``"REPEATABLE READ"``) are accepted and give SNAPSHOT, as in SQL.
        """
        return self._session.default_isolation

    @isolation_level.setter
    def isolation_level(self, value: str) -> None:
        self._check_open()
        level = ISOLATION_LEVEL_NAMES.get(" ".join(str(value).upper().replace("_", " ").split()))
        if level is None:
            raise errors.ProgrammingError(
                f"unknown isolation level {value!r}; use SERIALIZABLE or SNAPSHOT", "22023"
            )
        if self._session.snapshot_offset is not None:
            raise errors.ActiveTransaction(
                "the isolation level cannot change inside a transaction that has run a query; "
                "commit or roll back first"
            )
        self._session.default_isolation = level

    @property
    def last_commit_offset(self) -> int | None:
        """The log offset of this connection's newest commit (None before the first)."""
        return self._session.last_commit_offset

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._database is None

    def state_digest(self) -> Digest:
        """A hash of every table's contents at the newest applied offset.

        Equal on nodes that applied the same log (see :mod:`offsetdb.materializers.replay`).
        """
        return self._check_open().digest()

    def table_digest(self, name: str) -> Digest:
        """A hash of one table's rows at the newest applied offset, equal across databases.

        Two databases holding the same rows in a table (one ingesting the other's CDC
        topics, say) give the same table digest; see
        :func:`offsetdb.materializers.replay.table_digest`.
        """
        database = self._check_open()
        materializer = database.materializer
        snapshot = materializer.applied_offset
        table = materializer.catalog.at(snapshot).require(name)
        return table_digest(database.store, table, snapshot)

    def sync(self, offset: int | None = None, timeout: float | None = None) -> int:
        """Wait until this node's state includes ``offset``; returns the applied offset.

        ``sync(offset)`` gives read-your-writes across nodes: pass the writer's
        ``last_commit_offset``. ``sync()`` is a strong read: it appends a sync marker to
        the log and waits until it is applied, so everything committed anywhere before
        the call is visible afterwards. ``timeout`` (seconds, default the
        ``kafka_timeout`` setting) bounds the wait: SyncTimeout (57014) when it passes.
        """
        database = self._check_open()
        limit = database.config.kafka_timeout if timeout is None else timeout
        # The applied offset only grows, so every later snapshot of this node includes it.
        if offset is None:
            return database.sync(limit)
        return database.wait_for(offset, limit)

    def replication_status(self) -> ReplicationStatus:
        """The applied offset of this node, the log's end and the lag between them."""
        return self._check_open().replication_status()

    def transaction_outcome(
        self, txn_id: str, *, settle: bool = False, timeout: float | None = None
    ) -> tuple[int, bool, str | None] | None:
        """``(offset, committed, sqlstate)`` of transaction ``txn_id``, once applied.

        Without ``settle``: None when no record with that id has been applied (yet).
        With ``settle=True`` the answer is final: if the transaction is not applied, a
        fence for its id is appended to the log and, once applied, the transaction is
        known never to commit (every node refuses it after the fence). That is how a
        commit that raised CommitOutcomeUnknown (08007, naming the id) is resolved.
        """
        database = self._check_open()
        if settle:
            limit = database.config.kafka_timeout if timeout is None else timeout
            outcome = database.resolve_outcome(txn_id, limit)
            return outcome.offset, outcome.committed, outcome.sqlstate
        materializer = database.materializer
        offset = materializer.offset_of_txn(txn_id)
        if offset is None:
            return None
        outcome = materializer.outcome(offset)
        return offset, outcome.committed, outcome.sqlstate

    def subscribe(
        self,
        tables: Collection[str] | str | None = None,
        *,
        from_offset: int | None = None,
        snapshot: bool = True,
        timeout: float | None = None,
        progress_interval: float = 1.0,
    ) -> Subscription:
        """Every committed change to ``tables`` (None: all), in commit order (docs/cdc.md).

        By default the iterator first yields a snapshot: every row of the tables as they
        stood at one offset S (``SnapshotChunk`` items, op ``r``), then every transaction
        committed after S (``CommittedTransaction``: offset, txn id, commit time, changes
        with op ``c``/``u``/``d``, key, before, after), with no gap and no duplicate.
        ``from_offset=N`` resumes after offset N instead, without a snapshot;
        ``snapshot=False`` starts at the present without one. ``Progress`` items say
        that every offset up to theirs is delivered, after ``progress_interval`` seconds
        of quiet. Iteration ends after ``timeout`` seconds with nothing to deliver (None:
        never); ``close()`` the subscription (or use it as a context manager) when done.
        """
        database = self._check_open()
        return Subscription(
            database,
            tables,
            from_offset=from_offset,
            snapshot=snapshot,
            timeout=timeout,
            progress_interval=progress_interval,
        )

    def list_tables(self) -> list[str]:
        """Names of the tables at the latest snapshot, sorted."""
        database = self._check_open()
        return database.materializer.catalog.latest().names()

    def describe_table(self, name: str) -> list[ColumnInfo]:
        """The columns of table ``name``, spelled as stored (42P01 if it does not exist).

        Unquoted SQL names are stored in lower case: ``CREATE TABLE Users`` makes ``users``.
        """
        database = self._check_open()
        table = database.materializer.catalog.latest().require(name)
        unique_columns = {i for constraint in table.unique for i in constraint if len(constraint) == 1}
        return [
            ColumnInfo(
                name=c.name,
                type=str(c.type),
                nullable=not c.not_null,
                default=c.default,
                primary_key=i in table.primary_key,
                unique=i in unique_columns,
            )
            for i, c in enumerate(table.columns)
        ]

    def _execute(self, sql: str, params: Params) -> Result:
        with self._lock:
            self._check_open()
            return self._session.execute(sql, params)

    def _executemany(self, sql: str, seq_of_params: Iterable[Params]) -> int:
        with self._lock:
            self._check_open()
            return self._session.executemany(sql, seq_of_params)

    def _check_open(self) -> Database:
        if self._database is None:
            raise errors.InterfaceError("the connection is closed")
        return self._database


def _displayed(result: Result) -> list[tuple[Any, ...]]:
    """The result's rows as a PostgreSQL client receives them (REAL at single precision)."""
    reals = [i for i, c in enumerate(result.columns) if c.type is not None and c.type.kind is Kind.REAL]
    if not reals:
        return result.rows
    out = []
    for row in result.rows:
        values = list(row)
        for i in reals:
            if values[i] is not None:
                values[i] = float4_display(values[i])
        out.append(tuple(values))
    return out


class Cursor:
    """A PEP 249 cursor. Results are fully materialized when a statement runs."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._rows: list[tuple[Any, ...]] = []
        self._position = 0
        self._columns: list[Any] = []
        self._returns_rows = False
        self._description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.statusmessage: str | None = None
        self.snapshot_offset: int | None = None
        self._closed = False

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Cursor:
        """Run a statement (``?``, ``$1`` or ``:name`` parameters)."""
        self._check_open()
        result = self.connection._execute(sql, params)
        self._load(result)
        return self

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Cursor:
        """Run a statement once per parameter set, in one transaction."""
        self._check_open()
        count = self.connection._executemany(sql, seq_of_params)
        self._rows, self._position, self._columns, self._description = [], 0, [], None
        self._returns_rows = False
        self.rowcount = count
        self.statusmessage = None
        self.snapshot_offset = self.connection._session.last_snapshot
        return self

    def _load(self, result: Result) -> None:
        self._rows = _displayed(result)
        self._position = 0
        self.rowcount = result.rowcount
        self.statusmessage = result.status
        self.snapshot_offset = self.connection._session.last_snapshot
        self._columns = result.columns
        # SELECT FROM t returns rows of no columns: still a result set, as in PostgreSQL
        self._returns_rows = bool(result.columns) or result.status.startswith("SELECT")
        self._description = None

    @property
    def description(self) -> list[tuple[Any, ...]] | None:
        """PEP 249: one 7-tuple per result column (name, type code, then five Nones)."""
        if self._description is None and self._returns_rows:
            # Built on first access: most point selects never look at it.
            self._description = [
                (c.name, _type_code(c.type), None, None, None, None, None) for c in self._columns
            ]
        return self._description

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        self._check_result()
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Up to ``size`` (default ``arraysize``) next rows."""
        self._check_result()
        count = self.arraysize if size is None else size
        rows = self._rows[self._position : self._position + count]
        self._position += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All remaining rows."""
        self._check_result()
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        """Close the cursor."""
        self._closed = True
        self._rows = []

    def setinputsizes(self, sizes: object) -> None:
        """PEP 249: accepted and ignored."""

    def setoutputsize(self, size: object, column: object = None) -> None:
        """PEP 249: accepted and ignored."""

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise errors.InterfaceError("the cursor is closed")
        self.connection._check_open()

    def _check_result(self) -> None:
        self._check_open()
        if not self._returns_rows:
            raise errors.ProgrammingError("the last statement returned no rows to fetch", "24000")


def connect(
    target: str,
    *,
    autocommit: bool = False,
    data_dir: str | None = None,
    isolation_level: str | None = None,
    **settings: Any,
) -> Connection:
    """Open a connection to the database ``target``.

    ``target`` is a directory (the embedded backend, created if needed) or
    ``kafka://HOST:PORT[,HOST:PORT...]/DB``, with ``data_dir`` (or ``?data_dir=`` in the
    URL) the directory of this node's replica. ``settings`` are
    :class:`~offsetdb.config.Config` fields (``synchronous``, ``kafka_timeout``,
    ``kafka={...}`` client settings, ...); they apply when this call opens the database.
    ``isolation_level`` (``"SERIALIZABLE"``, the default, or ``"SNAPSHOT"``) is the
    level of this connection's transactions that name none (``conn.isolation_level``).
    """
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise errors.InterfaceError(
            f"unknown connection setting {', '.join(unknown)}; the settings are "
            f"autocommit, data_dir, isolation_level, {', '.join(sorted(known))}"
        )
    config = Config(**settings) if settings else None
    connection = Connection(target, autocommit=autocommit, config=config, data_dir=data_dir)
    if isolation_level is not None:
        try:
            connection.isolation_level = isolation_level
        except errors.Error:
            connection.close()
            raise
    return connection


