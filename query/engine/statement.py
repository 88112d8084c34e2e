"""Prepared statements: what the session and the driver execute.

A :class:`Statement` is built once per SQL text (see :func:`.prepare.prepare`) and may be
executed any number of times, from any thread, with different parameters. Its plan is
built on first execution, because planning needs the catalog, and kept while every table
it read keeps its table id and schema version; a DROP/CREATE or an ALTER makes the next
execution plan again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlglot import exp

from offsetdb import errors

from .limits import too_complex
from .params import ParamSpec
from .result import Result, ResultColumn, StatementKind
from .runtime import Env
from .select import Planner, QueryPlan

if TYPE_CHECKING:
    from offsetdb.materializers.catalog import TableDef
    from offsetdb.query.context import TxnContext

Params = Sequence[Any] | Mapping[str, Any] | None


class Executable(Protocol):
    """A planned statement."""

    def execute(self, env: Env) -> Result:
        """Run it."""
        ...


class QueryExec:
    """A planned query: runs the plan and counts its rows."""

    def __init__(self, plan: QueryPlan) -> None:
        self.plan = plan
        self.columns = [ResultColumn(name, t) for name, t in plan.columns]

    def execute(self, env: Env) -> Result:
        """All rows of the query."""
        rows = list(self.plan.rows(env))
        n = len(rows)
        return Result(self.columns, rows, n, f"SELECT {n}")


def _same_table(current: TableDef, planned: TableDef) -> bool:
    # The definition itself, not only its id and version: a statement is cached by its
    # text for the whole process, and two databases opened in one process have tables
    # with the same ids and versions but other columns.
    return current is planned or current == planned


class Statement:
    """One prepared SQL statement.

    Attributes:
        kind: how the session must treat it.
        isolation: "SERIALIZABLE" or "SNAPSHOT" for BEGIN / SET TRANSACTION with an
            isolation level, else None.
        read_only: True when executing it never writes.
        param_count: number of distinct parameters.
        sql: the statement's text.

    """

    def __init__(
        self,
        kind: StatementKind,
        sql: str,
        tree: exp.Expression | None = None,
        params: ParamSpec | None = None,
        isolation: str | None = None,
        tag: str = "",
        plan: Executable | None = None,
    ) -> None:
        self.kind = kind
        self.sql = sql
        self.tree = tree
        self.params = params or ParamSpec(None, 0, ())
        self.param_count = self.params.count
        self.isolation = isolation
        self.read_only = kind not in (StatementKind.DML, StatementKind.DDL)
        self.tag = tag
        self._cached: tuple[tuple[tuple[str, TableDef], ...], Executable] | None = None
        # A statement planned without the catalog (CREATE/DROP/ALTER SOURCE: parsed from
        # tokens, checked against the catalog when it runs).
        self._fixed_plan = plan

    def __repr__(self) -> str:
        return f"Statement({self.kind.name}, {self.sql!r})"

    def _plan(self, ctx: TxnContext) -> Executable:
        cached = self._cached
        if cached is not None:
            deps, plan = cached
            table = ctx.table
            for name, planned in deps:
                if not _same_table(table(name), planned):
                    break
            else:
                return plan
        planner = Planner(ctx)
        plan = self._build(planner)
        self._cached = (tuple(planner.deps.items()), plan)
        return plan

    def _build(self, planner: Planner) -> Executable:
        from . import ddl, dml

        tree = self.tree
        if tree is None:
            raise errors.InternalError(f"statement {self.sql!r} has nothing to plan")
        if isinstance(tree, exp.Insert):
            return dml.plan_insert(planner, tree)
        if isinstance(tree, exp.Update):
            return dml.plan_update(planner, tree)
        if isinstance(tree, exp.Delete):
            return dml.plan_delete(planner, tree)
        if isinstance(tree, exp.Create):
            return ddl.plan_create(planner, tree)
        if isinstance(tree, exp.Drop):
            return ddl.plan_drop(planner, tree)
        return QueryExec(planner.plan_query(tree))

    def execute(self, ctx: TxnContext, params: Params = None) -> Result:
        """Execute the statement in the transaction ``ctx``.

        Args:
            ctx: the transaction to read and write through.
            params: values for the placeholders: a sequence for ``?`` and ``$n``, a
                mapping for ``:name``.

        Returns:
            The rows (queries, RETURNING), row count and command tag.

        """
        values = self.params.bind(params)
        ctx.begin_statement()
        kind = self.kind
        if kind is StatementKind.QUERY and self.tree is None:
            names = ctx.table_names()
            from offsetdb.types import Kind, SqlType

            return Result(
                [ResultColumn("name", SqlType(Kind.TEXT))],
                [(n,) for n in names],
                len(names),
                f"SELECT {len(names)}",
            )
        if self._fixed_plan is not None:
            return self._fixed_plan.execute(Env(ctx, values))
        if self.tree is None:
            return Result([], [], -1, self.tag)
        try:
            plan = self._plan(ctx)
            return plan.execute(Env(ctx, values))
        except RecursionError:
            raise too_complex() from None

    def execute_many(self, ctx: TxnContext, seq_of_params: Iterable[Params]) -> int:
        """Execute once per parameter set; returns the total row count of DML.

        ``INSERT ... VALUES (?, ...)`` runs as a tight loop of inserts.
        """
        from .dml import InsertPlan

        if self.tree is not None and isinstance(self.tree, exp.Insert):
            plan = self._plan(ctx)
            assert isinstance(plan, InsertPlan)
            ctx.begin_statement()
            return plan.execute_many(Env(ctx, ()), seq_of_params, self.params.bind)
        total = 0
        for params in seq_of_params:
            result = self.execute(ctx, params)
            if self.kind is StatementKind.DML:
                total += max(result.rowcount, 0)
        return total if self.kind is StatementKind.DML else -1
