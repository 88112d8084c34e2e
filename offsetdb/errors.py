"""The error tree: PEP 249 classes, each error carrying a SQLSTATE code.

Every error offsetdb raises to a user is an :class:`Error`. The PEP 249 hierarchy
(``InterfaceError``, ``DatabaseError`` and its subclasses) is the public contract; the
leaf classes name the common SQLSTATEs so that callers can catch precisely
(``except offsetdb.UniqueViolation``) and the CLI can print ``ERROR 23505: ...``.

An error also knows whether it is *deterministic*: a deterministic error (a constraint
violation found by certification, a bad cast) is the same on every node that applies the
same log, so it can be recorded as a transaction's outcome. Anything else raised while
applying the log must stop the materializer rather than be skipped, or replicas diverge.
"""

from __future__ import annotations


class Warning(Exception):  # noqa: A001 - the name PEP 249 prescribes
    """PEP 249 warning (never raised today, exported for completeness)."""


class Error(Exception):
    """Base of every offsetdb error; ``sqlstate`` is the five-character SQLSTATE code."""

    sqlstate = "XX000"
    deterministic = False

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate

    def __str__(self) -> str:
        return self.message


class InterfaceError(Error):
    """Misuse of the driver itself (closed cursor, bad parameter count)."""

    sqlstate = "08000"


class DatabaseError(Error):
    """An error reported by the database."""


class DataError(DatabaseError):
    """A value that does not fit: bad cast, out of range, division by zero."""

    sqlstate = "22000"
    deterministic = True


class OperationalError(DatabaseError):
    """The database could not do the work: locked directory, unavailable log, I/O."""

    sqlstate = "58000"


class IntegrityError(DatabaseError):
    """A constraint was violated."""

    sqlstate = "23000"
    deterministic = True


class InternalError(DatabaseError):
    """A bug or a corrupt state: the database is no longer consistent with itself."""

    sqlstate = "XX000"


class DataCorrupted(InternalError):
    """A log record that cannot be decoded.

    Every node reads the same bytes, so it is rejected the same way everywhere
    (deterministic) and the log moves on past it.
    """

    sqlstate = "XX001"
    deterministic = True


class StorageCorrupted(InternalError):
    """A file of this node's RocksDB (or a record of its embedded log) failed its check.

    SQLSTATE XX001 (PostgreSQL's ``data_corrupted``); 58030 when the file could not be
    read at all. Not deterministic: it is this node's disk, not the log, so it is never
    recorded as an outcome. The node stops serving from the damaged store rather than
    answer from damaged data; the message names the file and the remedy (rebuild the
    state from the log, or restore). See docs/integrity.md.
    """

    sqlstate = "XX001"

    def __init__(
        self,
        message: str,
        sqlstate: str | None = None,
        file: str | None = None,
        finding: str | None = None,
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, sqlstate)
        self.file = file  # the damaged file, when known
        self.finding = finding or message  # what is damaged and how, without the remedy
        self.remedy = remedy or ""


class ProgrammingError(DatabaseError):
    """A bad statement: syntax error, unknown table or column, wrong types."""

    sqlstate = "42000"
    deterministic = True


class NotSupportedError(DatabaseError):
    """A construct offsetdb does not implement (SQLSTATE 0A000)."""

    sqlstate = "0A000"
    deterministic = True


# --- leaves, named after PostgreSQL's condition names -------------------------------


class SqlSyntaxError(ProgrammingError):
    """The statement does not parse."""

    sqlstate = "42601"


class UndefinedTable(ProgrammingError):
    """The statement names a table that does not exist at its snapshot."""

    sqlstate = "42P01"


class UndefinedColumn(ProgrammingError):
    """The statement names a column that its tables do not have."""

    sqlstate = "42703"


class UndefinedFunction(ProgrammingError):
    """The statement calls a function offsetdb does not know."""

    sqlstate = "42883"


class DuplicateTable(ProgrammingError):
    """CREATE TABLE of a name that already exists."""

    sqlstate = "42P07"


class DuplicateColumn(ProgrammingError):
    """A column named twice in one table or one INSERT."""

    sqlstate = "42701"


class AmbiguousColumn(ProgrammingError):
    """An unqualified column that more than one table in scope has."""

    sqlstate = "42702"


class GroupingError(ProgrammingError):
    """A column used outside an aggregate that is not in GROUP BY."""

    sqlstate = "42803"


class DatatypeMismatch(ProgrammingError):
    """An expression of the wrong type (a non-boolean WHERE, say)."""

    sqlstate = "42804"


class InvalidTableDefinition(ProgrammingError):
    """A CREATE TABLE that cannot be built (two primary keys, unknown key column)."""

    sqlstate = "42P16"


class CardinalityViolation(ProgrammingError):
    """A scalar subquery returned more than one row."""

    sqlstate = "21000"


class UniqueViolation(IntegrityError):
    """A primary key or UNIQUE constraint would be violated."""

    sqlstate = "23505"


class NotNullViolation(IntegrityError):
    """NULL into a NOT NULL column."""

    sqlstate = "23502"


class NumericValueOutOfRange(DataError):
    """An integer that does not fit its column, or an overflow."""

    sqlstate = "22003"


class DivisionByZero(DataError):
    """Division by zero."""

    sqlstate = "22012"


class InvalidTextRepresentation(DataError):
    """A value that cannot be cast to the requested type."""

    sqlstate = "22P02"


class InvalidDatetimeFormat(DataError):
    """A date or timestamp literal that cannot be parsed."""

    sqlstate = "22007"


class StringDataRightTruncation(DataError):
    """A string longer than its VARCHAR(n) column."""

    sqlstate = "22001"


class CharacterNotInRepertoire(DataError):
    """Text that is not valid UTF-8 PostgreSQL could store (a lone surrogate, a NUL)."""

    sqlstate = "22021"


class ProgramLimitExceeded(OperationalError):
    """A result or statement beyond a documented size limit (54000)."""

    sqlstate = "54000"
    deterministic = True


class StatementTooComplex(ProgramLimitExceeded):
    """A statement nested deeper than the parser's documented limit (54001)."""

    sqlstate = "54001"


class SerializationFailure(OperationalError):
    """Certification aborted the transaction: a concurrent commit conflicted (40001).

    The transaction had no effect; retrying it from the start is safe.
    """

    sqlstate = "40001"
    deterministic = True


class SnapshotTooOld(OperationalError):
    """The transaction read at a snapshot older than the certification window."""

    sqlstate = "72000"
    deterministic = True


class InFailedTransaction(OperationalError):
    """A statement in a transaction that already failed; only ROLLBACK is accepted."""

    sqlstate = "25P02"


class ActiveTransaction(ProgrammingError):
    """BEGIN inside a transaction, or an operation not allowed inside one."""

    sqlstate = "25001"


class ObjectInUse(OperationalError):
    """The data directory is held by another process."""

    sqlstate = "55006"


class CommitOutcomeUnknown(OperationalError):
    """The commit record may or may not have been appended; resolve it by transaction id.

    ``txn_id`` names the transaction, for ``conn.transaction_outcome(txn_id, settle=True)``.
    """

    sqlstate = "08007"

    def __init__(self, message: str, sqlstate: str | None = None, txn_id: str | None = None) -> None:
        super().__init__(message, sqlstate)
        self.txn_id = txn_id


def not_supported(construct: str) -> NotSupportedError:
    """The error for an unsupported SQL construct, naming it."""
    return NotSupportedError(f"{construct} is not supported")


class TransactionIdReused(OperationalError):
    """A transaction record whose id was already settled (fenced, or appended twice)."""

    sqlstate = "40003"
    deterministic = True


class ConnectionFailure(OperationalError):
    """The log (the Kafka cluster) did not answer in time; nothing was committed."""

    sqlstate = "08006"


class CannotConnect(OperationalError):
    """The log could not be reached, or its topic not found or created, when opening."""

    sqlstate = "08001"


class SyncTimeout(OperationalError):
    """``sync()`` gave up waiting for this node to apply an offset (statement timeout)."""

    sqlstate = "57014"
