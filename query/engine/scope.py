"""Name resolution: which column of the current row an identifier means.

A :class:`Scope` lists the columns of the row a query level evaluates expressions on
(the FROM clause's joined row, flattened left to right). Its ``parent`` is the scope of
the enclosing query, so a correlated subquery finds outer columns there; the compiled
reference then reads the outer row from ``env.outer`` at the right depth.
:class:`GroupedScope` is the view of an aggregated query after grouping: only grouped
columns are visible, at their slot in the group row (42803 for any other column).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from offsetdb import errors
from offsetdb.types import SqlType


@dataclass
class ScopeColumn:
    """One column of a scope's row.

    ``qualifier`` is the table name or alias; ``star`` says whether ``*`` expands to it
    and ``unqualified`` whether a bare name finds it (false for the right-hand copy of a
    ``JOIN ... USING`` column, which PostgreSQL merges into one).
    """

    qualifier: str | None
    name: str
    type: SqlType | None
    star: bool = True
    unqualified: bool = True


class Scope:
    """The columns visible at one query level, and the enclosing level's scope."""

    def __init__(self, columns: Sequence[ScopeColumn], parent: Scope | None = None) -> None:
        self.columns = list(columns)
        self.parent = parent

    def has_qualifier(self, qualifier: str) -> bool:
        """True when some column of this level belongs to ``qualifier``."""
        return any(c.qualifier == qualifier for c in self.columns)

    def find(self, name: str, qualifier: str | None) -> tuple[int, SqlType | None] | None:
        """(index, type) of the column in this level's row, None when absent here.

        Raises 42702 when an unqualified name matches several columns, and 42703 when a
        qualifier of this level lacks the column.
        """
        if qualifier is not None:
            for i, c in enumerate(self.columns):
                if c.qualifier == qualifier and c.name == name:
                    return i, c.type
            if self.has_qualifier(qualifier):
                raise errors.UndefinedColumn(f"column {qualifier}.{name} does not exist")
            return None
        found: int | None = None
        for i, c in enumerate(self.columns):
            if c.name == name and c.unqualified:
                if found is not None:
                    raise errors.AmbiguousColumn(f'column reference "{name}" is ambiguous')
                found = i
        if found is None:
            return None
        return found, self.columns[found].type

    def lookup(self, name: str, qualifier: str | None) -> tuple[int, SqlType | None] | None:
        """Like :meth:`find`, but as seen by expressions evaluated on this level's rows."""
        return self.find(name, qualifier)

    def qualifiers(self) -> list[str]:
        """The distinct qualifiers of this level, in order."""
        seen: list[str] = []
        for c in self.columns:
            if c.qualifier is not None and c.qualifier not in seen:
                seen.append(c.qualifier)
        return seen


class GroupedScope(Scope):
    """An aggregated query's row after grouping: grouped columns at their group slot."""

    def __init__(self, source: Scope, slots: dict[int, int], parent: Scope | None) -> None:
        super().__init__(source.columns, parent)
        self.source = source
        self.slots = slots  # source column index -> slot in the group row

    def lookup(self, name: str, qualifier: str | None) -> tuple[int, SqlType | None] | None:
        """The group slot of a grouped column; 42803 for a column that is not grouped."""
        hit = self.source.find(name, qualifier)
        if hit is None:
            return None
        index, sql_type = hit
        slot = self.slots.get(index)
        if slot is None:
            shown = f"{qualifier}.{name}" if qualifier else name
            raise errors.GroupingError(
                f'column "{shown}" must appear in the GROUP BY clause or be used in an '
                "aggregate function"
            )
        return slot, sql_type


def resolve_error(name: str, qualifier: str | None, scope: Scope | None) -> errors.Error:
    """The error for a column no scope knows: 42P01 for an unknown qualifier, else 42703."""
    if qualifier is not None:
        known = False
        s = scope
        while s is not None:
            known = known or s.has_qualifier(qualifier)
            s = s.parent
        if not known:
            return errors.UndefinedTable(f'missing FROM-clause entry for table "{qualifier}"')
        return errors.UndefinedColumn(f"column {qualifier}.{name} does not exist")
    return errors.UndefinedColumn(f'column "{name}" does not exist')

