"""CREATE / DROP / ALTER SOURCE inside a transaction, and reading sources back.

Source definitions are rows of the system table ``offsetdb_source_definitions``
(:mod:`offsetdb.materializers.sources`), written by the DDL statement's own transaction,
so they are in the log like every other catalog change and certified like any write:
two sessions creating the same source conflict on its row, and an ingester that read a
definition conflicts with a concurrent DROP or PAUSE (it read that row; SERIALIZABLE).
The first CREATE SOURCE also creates the system tables, in the same transaction.
"""

from __future__ import annotations

from offsetdb import errors
from offsetdb.materializers.sources import (
    DEFINITIONS_TABLE,
    OFFSETS_TABLE,
    SYSTEM_TABLES,
    PartitionOffset,
    SourceDefinition,
    is_system_table,
)
from offsetdb.query.context import Conjunct, ScanFilter
from offsetdb.query.transaction import Transaction


def create_source(txn: Transaction, definition: SourceDefinition, if_not_exists: bool) -> bool:
    """Insert the source's definition row (creating the system tables if needed)."""
    if is_system_table(definition.into):
        raise errors.ProgrammingError(
            f'a source cannot write into the system table "{definition.into}"', "42501"
        )
    definition.check_against(txn.table(definition.into))
    with txn.system_writes():
        for table in SYSTEM_TABLES:
            txn.create_table(table.with_id(0), if_not_exists=True)
        definitions = txn.table(DEFINITIONS_TABLE)
        if txn.get(definitions, [definition.name]) is not None:
            if if_not_exists:
                return False
            raise errors.ProgrammingError(f'source "{definition.name}" already exists', "42710")
        txn.insert(definitions, definition.definition_row())
    return True


def drop_source(txn: Transaction, name: str, if_exists: bool) -> bool:
    """Delete the source's definition row and its offsets (its error rows stay)."""
    found = _definition_row(txn, name)
    if found is None:
        if if_exists:
            return False
        raise errors.ProgrammingError(f'source "{name}" does not exist', "42704")
    with txn.system_writes():
        txn.delete(txn.table(DEFINITIONS_TABLE), found[0])
        offsets = txn.table(OFFSETS_TABLE)
        for key, row in list(txn.scan(offsets, ScanFilter((Conjunct(0, "=", (name,)),)))):
            if row[0] == name:
                txn.delete(offsets, key)
    return True


def alter_source(txn: Transaction, name: str, state: str) -> None:
    """Set the source's state (RUNNING, PAUSED)."""
    found = _definition_row(txn, name)
    if found is None:
        raise errors.ProgrammingError(f'source "{name}" does not exist', "42704")
    definition = SourceDefinition.from_json(str(found[1][6])).with_state(state)
    with txn.system_writes():
        txn.update(txn.table(DEFINITIONS_TABLE), found[0], definition.definition_row())


def check_no_source_writes_into(txn: Transaction, table: str) -> None:
    """Refuse to drop a table a source writes into (2BP01), as PostgreSQL refuses dependents."""
    for definition in definitions(txn):
        if definition.into == table:
            raise errors.ProgrammingError(
                f'cannot drop table "{table}" because source "{definition.name}" writes into '
                f"it; DROP SOURCE {definition.name} first", "2BP01"
            )


def definitions(txn: Transaction) -> list[SourceDefinition]:
    """Every source the transaction sees, by name."""
    if DEFINITIONS_TABLE not in txn.table_names():
        return []
    table = txn.table(DEFINITIONS_TABLE)
    return [SourceDefinition.from_json(row[6]) for _, row in txn.scan(table)]


def definition(txn: Transaction, name: str) -> SourceDefinition | None:
    """The source called ``name``, as the transaction sees it (its row is read by key)."""
    found = _definition_row(txn, name)
    return None if found is None else SourceDefinition.from_json(str(found[1][6]))


def offsets(txn: Transaction, source: str) -> dict[int, PartitionOffset]:
    """The stored offsets of ``source`` by partition (a scan of its offset rows)."""
    if OFFSETS_TABLE not in txn.table_names():
        return {}
    table = txn.table(OFFSETS_TABLE)
    out = {}
    for _, row in txn.scan(table, ScanFilter((Conjunct(0, "=", (source,)),))):
        if row[0] == source:
            out[row[1]] = PartitionOffset(row[2], row[3], row[4], row[5])
    return out


def _definition_row(txn: Transaction, name: str) -> tuple[bytes, tuple[object, ...]] | None:
    if DEFINITIONS_TABLE not in txn.table_names():
        return None
    return txn.get(txn.table(DEFINITIONS_TABLE), [name])
