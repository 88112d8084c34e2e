"""The primary-key fast path: ``SELECT ... FROM t WHERE pk = ?`` without the executor.

When a query reads one table and its WHERE clause fixes every primary-key column with
``=`` to a constant or parameter, the plan is a single :meth:`TxnContext.get` (recorded
as a key read, the narrowest read set there is), the other WHERE terms applied to the row
it returns, and the select list evaluated on it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

from offsetdb import errors

from .expressions import Compiler, conjuncts, is_aggregate
from .runtime import Env, Fn, Row
from .scanfilter import NO_MATCH, NOT_A_KEY, key_value
from .scope import Scope, ScopeColumn

if TYPE_CHECKING:
    from offsetdb.materializers.catalog import TableDef
    from offsetdb.types import SqlType

    from .select import Planner, QueryPlan


class KeyLookup:
    """Evaluates the primary-key values of a point lookup and fetches the row."""

    def __init__(self, table: TableDef, getters: list[Fn]) -> None:
        self.table = table
        self.parts = [(g, table.columns[i].type) for g, i in zip(getters, table.primary_key, strict=True)]

    def fetch(self, env: Env) -> tuple[bytes, Row] | None | object:
        """The row with this key, or None (also when no row can match, e.g. ``id = NULL``).

        Returns :data:`NOT_A_KEY` when a value cannot be looked up as a key (a float8
        compared with a NUMERIC key): the caller must scan and filter instead.
        """
        values = []
        for getter, sql_type in self.parts:
            v = key_value(getter((), env), sql_type)
            if v is NO_MATCH:
                return None
            if v is NOT_A_KEY:
                return NOT_A_KEY
            values.append(v)
        return env.ctx.get(self.table, values)


def match_key(
    planner: Planner, table: TableDef, compiler: Compiler, conds: list[exp.Expression]
) -> tuple[KeyLookup, list[exp.Expression]] | None:
    """A KeyLookup when ``conds`` fix the whole primary key, and the other conditions."""
    if not table.primary_key:
        return None
    names = table.column_names
    found: dict[int, Fn] = {}
    rest: list[exp.Expression] = []
    for cond in conds:
        if isinstance(cond, exp.EQ) and not cond.args.get("negate"):
            for col, other in ((cond.this, cond.expression), (cond.expression, cond.this)):
                if (
                    isinstance(col, exp.Column)
                    and col.name in names
                    and names.index(col.name) in table.primary_key
                    and names.index(col.name) not in found
                    and other.find(exp.Column, exp.Subquery, exp.Select) is None
                ):
                    value = compiler.compile(other)
                    if value.const or value.param is not None:
                        compiler.compile(col)  # checks the qualifier
                        found[names.index(col.name)] = value.fn
                        break
            else:
                rest.append(cond)
            continue
        rest.append(cond)
    if len(found) != len(table.primary_key):
        return None
    return KeyLookup(table, [found[i] for i in table.primary_key]), rest


class PointSelectPlan:
    """A planned point select."""

    untyped: frozenset[int] = frozenset()  # QueryPlan's: no output is a bare string literal

    def __init__(
        self,
        columns: list[tuple[str, SqlType | None]],
        lookup: KeyLookup,
        residual: Fn | None,
        project: Callable[[Row, Env], Row],
        where: Fn,
    ) -> None:
        self.columns = columns
        self.outer_depth = 0
        self.lookup = lookup
        self.residual = residual
        self.project = project
        self.where = where

    def rows(self, env: Env) -> list[Row]:
        """Zero or one row."""
        hit = self.lookup.fetch(env)
        if hit is None:
            return []
        if hit is NOT_A_KEY:
            where, project = self.where, self.project
            return [
                project(row, env) for _, row in env.ctx.scan(self.lookup.table) if where(row, env) is True
            ]
        assert isinstance(hit, tuple)
        row = hit[1]
        residual = self.residual
        if residual is not None and residual(row, env) is not True:
            return []
        return [self.project(row, env)]


def try_point_select(planner: Planner, node: exp.Select, parent: Scope | None) -> QueryPlan | None:
    """A :class:`PointSelectPlan` for ``node`` when it qualifies, else None."""
    if parent is not None:
        return None  # subqueries may be correlated: leave them to the general planner
    args = node.args
    for key in ("joins", "group", "having", "order", "limit", "offset", "distinct", "locks", "with_", "with"):
        if args.get(key):
            return None
    from_ = args.get("from_") or args.get("from")
    where = args.get("where")
    if from_ is None or where is None or not isinstance(from_.this, exp.Table):
        return None
    table_node = from_.this
    if table_node.args.get("db") or not isinstance(table_node.this, exp.Identifier):
        return None
    if any(table_node.name in frame for frame in planner.ctes):
        return None
    if any(is_aggregate(n) or isinstance(n, (exp.Window, exp.Subquery, exp.Exists)) for e in node.expressions for n in e.walk()):
        return None
    if where.find(exp.Subquery, exp.Exists, exp.Select) is not None:
        return None
    table = planner.table(table_node.name)
    if not table.primary_key:
        return None
    alias = table_node.args.get("alias")
    if alias is not None and alias.columns:
        return None
    qualifier = alias.name if alias is not None and alias.name else table.name
    scope = Scope([ScopeColumn(qualifier, c.name, c.type) for c in table.columns])
    compiler = Compiler(planner, scope, "WHERE")
    matched = match_key(planner, table, compiler, conjuncts(where.this))
    if matched is None:
        return None
    lookup, rest = matched
    from .select import Planner as _Planner
    from .select import all_true

    residual: Fn | None = None
    if rest:
        residual = all_true([compiler.predicate(c, "WHERE").fn for c in rest])
    where_fn = compiler.predicate(where.this, "WHERE").fn

    items = _Planner._expand_stars(planner, node.expressions, scope)
    select_compiler = Compiler(planner, scope, "SELECT")
    compiled = [select_compiler.compile(e) for _, e in items]
    columns = [(name, c.type) for (name, _), c in zip(items, compiled, strict=True)]
    indexes = _plain_columns(items, scope)
    project: Callable[[Row, Env], Row]
    if indexes is not None and len(indexes) > 1:
        getter = operator.itemgetter(*indexes)

        def project(row: Row, env: Env) -> Row:
            return getter(row)

    elif indexes is not None and indexes == list(range(len(scope.columns))):

        def project(row: Row, env: Env) -> Row:
            return row

    else:
        select_fns = [c.fn for c in compiled]

        def project(row: Row, env: Env) -> Row:
            return tuple(f(row, env) for f in select_fns)

    if not compiled:
        raise errors.SqlSyntaxError("empty select list")
    return PointSelectPlan(columns, lookup, residual, project, where_fn)  # type: ignore[return-value]


def _plain_columns(items: list[tuple[str, exp.Expression]], scope: Scope) -> list[int] | None:
    out = []
    for _, e in items:
        target = e.this if isinstance(e, exp.Alias) else e
        if not isinstance(target, exp.Column):
            return None
        hit = scope.find(target.name, target.table or None)
        if hit is None:
            return None
        out.append(hit[0])
    return out
