"""Helpers for tests that drive transactions below SQL, through the TxnContext seam."""

from __future__ import annotations

from offsetdb.materializers.applier import Outcome
from offsetdb.materializers.catalog import Column, TableDef
from offsetdb.query.database import Database
from offsetdb.query.transaction import Transaction
from offsetdb.schemas.codec import encode_log_record
from offsetdb.types import Kind, SqlType


def begin(db: Database, isolation: str = "SERIALIZABLE") -> Transaction:
    """A transaction at the newest applied snapshot."""
    materializer = db.materializer
    snapshot = materializer.applied_offset
    return Transaction(
        db.store.data, db.store.index, materializer.catalog.at(snapshot), snapshot, isolation, "test"
    )


def commit(db: Database, txn: Transaction) -> Outcome:
    """Append the transaction's record and return certification's outcome."""
    offset = db.writer.append(encode_log_record(txn.build_record(), "Transaction"))
    db.materializer.wait_applied(offset, None)
    return db.materializer.outcome(offset)


def accounts_table() -> TableDef:
    """accounts(id INTEGER PRIMARY KEY, balance BIGINT, email TEXT UNIQUE)."""
    return TableDef(
        "accounts",
        (
            Column("id", SqlType(Kind.INTEGER), not_null=True),
            Column("balance", SqlType(Kind.BIGINT)),
            Column("email", SqlType(Kind.TEXT)),
        ),
        primary_key=(0,),
        unique=((2,),),
    )
