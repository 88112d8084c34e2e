"""What compiled plans run with: the per-execution environment and compiled expressions.

A compiled expression is a closure ``fn(row, env)``: ``row`` is the tuple of the query
level it is evaluated on and ``env`` the :class:`Env` of this execution (parameters,
transaction context, enclosing rows of correlated subqueries, caches). Plans are built
once and shared by every execution and thread; everything that varies per execution lives
in the Env.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offsetdb.query.context import TxnContext
    from offsetdb.types import SqlType

Row = tuple[Any, ...]
Fn = Callable[[Row, "Env"], Any]


class Env:
    """The state of one statement execution."""

    __slots__ = ("ctx", "params", "outer", "cache", "_now")

    def __init__(self, ctx: TxnContext, params: Sequence[Any]) -> None:
        self.ctx = ctx
        self.params = params
        # rows of the enclosing query levels, innermost last (see Scope.parent)
        self.outer: tuple[Row, ...] = ()
        # per-execution results: uncorrelated subqueries, CTEs, correlated subqueries by key
        self.cache: dict[Any, Any] = {}
        self._now: dt.datetime | None = None

    def now(self) -> dt.datetime:
        """The transaction's start time (UTC, naive), as PostgreSQL's ``now()``."""
        if self._now is None:
            self._now = self.ctx.started_at
        return self._now

    def child(self, row: Row) -> Env:
        """The Env for a subquery evaluated on behalf of ``row`` of this level."""
        env = Env.__new__(Env)
        env.ctx = self.ctx
        env.params = self.params
        env.outer = self.outer + (row,)
        env.cache = self.cache
        env._now = self._now
        return env


@dataclass
class CExpr:
    """A compiled expression: its closure and what is known about it at plan time.

    ``const`` means the value is known at compile time (``value``); ``untyped`` marks a
    string literal or a parameter, whose type PostgreSQL resolves from context, so a
    comparison with a typed operand parses it as that type; ``param`` is the slot of a
    bare parameter.
    """

    fn: Fn
    type: SqlType | None
    const: bool = False
    value: Any = None
    untyped: bool = False
    param: int | None = None


def constant(value: Any, sql_type: SqlType | None, untyped: bool = False) -> CExpr:
    """A compiled constant."""

    def fn(row: Row, env: Env) -> Any:
        return value

    return CExpr(fn, sql_type, const=True, value=value, untyped=untyped)
