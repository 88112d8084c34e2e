"""offsetdb: a log-centric SQL database.

Every write is a record in a log; state is materialized from it; every read names the
log offset it saw.

>>> import offsetdb, tempfile
>>> conn = offsetdb.connect(tempfile.mkdtemp(), autocommit=True)
>>> cur = conn.cursor()
>>> _ = cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
>>> _ = cur.execute("INSERT INTO t VALUES (?, ?)", (1, "one"))
>>> cur.execute("SELECT name FROM t WHERE id = 1").fetchall()
[('one',)]
>>> conn.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offsetdb.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    SerializationFailure,
    UniqueViolation,
    Warning,
)

if TYPE_CHECKING:
    from offsetdb.query.driver import ColumnInfo, Connection

apilevel = "2.0"
threadsafety = 1  # PEP 249: threads may share the module (and so the database), not a connection
paramstyle = "qmark"  # ``$1`` and ``:name`` are accepted too

__all__ = [
    "ColumnInfo",
    "Connection",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "SerializationFailure",
    "UniqueViolation",
    "Warning",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
]


def connect(
    target: str,
    *,
    autocommit: bool = False,
    data_dir: str | None = None,
    isolation_level: str | None = None,
    **settings: Any,
) -> Connection:
    """Open a PEP 249 connection to the database at ``target``.

    Args:
        target: the data directory of an embedded database (created if needed), or
            ``kafka://HOST:PORT[,HOST:PORT...]/DB`` for a database whose log is a Kafka
            topic (created on first use).
        data_dir: with a ``kafka://`` target, the directory of this node's replica
            (an empty one is rebuilt from the log); also accepted as ``?data_dir=``.
        autocommit: commit each statement by itself (retrying conflicts), as at the SQL
            prompt; by default a transaction lasts until ``commit()``.
        isolation_level: ``"SERIALIZABLE"`` (the default) or ``"SNAPSHOT"``, for the
            transactions of this connection that name no level (docs/consistency.md).
        settings: :class:`offsetdb.config.Config` fields, applied when this call is the
            one that opens the database in this process.

    """
    # The driver lives with the SQL layer; the kernel only hands over to it.
    from offsetdb.query.driver import connect as _connect

    return _connect(
        target, autocommit=autocommit, data_dir=data_dir, isolation_level=isolation_level,
        **settings,
    )


def __getattr__(name: str) -> Any:
    if name in ("ColumnInfo", "Connection"):
        from offsetdb.query import driver

        return getattr(driver, name)
    raise AttributeError(name)
