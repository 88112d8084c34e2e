"""Planning and running queries: FROM, joins, WHERE, GROUP BY, ORDER BY, set operations.

:class:`Planner` turns a SELECT (or UNION, VALUES, WITH ...) into a :class:`QueryPlan`, a
small tree of nodes whose ``rows(env)`` yields tuples. The FROM clause becomes one row
per combination, flattened left to right (the :class:`~.scope.Scope` records which
column is where). Joins are hash joins on their equality terms (under LEFT JOIN too) and
nested loops otherwise; WHERE terms that link tables of an inner join are moved into the
join so that comma joins hash as well. Aggregation hashes on the GROUP BY values; sorting
is Python's stable sort, one pass per ORDER BY key from the last to the first.

A plan is built once per statement and table versions, then shared: everything an
execution changes lives in its :class:`~.runtime.Env`.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from offsetdb import errors
from offsetdb.types import SqlType

from . import values as V
from .aggregates import Accumulator, make_factory
from .expressions import (
    Compiler,
    common_type,
    conjuncts,
    converted,
    exactly_comparable,
    is_aggregate,
)
from .runtime import CExpr, Env, Fn, Row
from .scanfilter import build_filter, extract_terms
from .scope import GroupedScope, Scope, ScopeColumn

if TYPE_CHECKING:
    from offsetdb.materializers.catalog import TableDef
    from offsetdb.query.context import TxnContext

Columns = list[tuple[str, SqlType | None]]


class QueryPlan:
    """A planned query: output columns, correlation depth and a row generator.

    ``untyped`` holds the positions of output columns that are bare string literals:
    PostgreSQL's "unknown" type, which a set operation resolves from the other side.
    """

    columns: Columns
    outer_depth: int = 0
    untyped: frozenset[int] = frozenset()

    def rows(self, env: Env) -> Iterable[Row]:
        """The query's rows for this execution."""
        raise NotImplementedError


# --- FROM sources --------------------------------------------------------------------


class Source:
    """A FROM item or join: yields flattened rows."""

    width: int

    def rows(self, env: Env) -> Iterable[Row]:
        """The source's rows."""
        raise NotImplementedError


class ScanSource(Source):
    """A base table, scanned with the filter its WHERE terms allow."""

    def __init__(self, table: TableDef) -> None:
        self.table = table
        self.width = len(table.columns)
        self.filter: Callable[[Env], Any] = build_filter([])

    def rows(self, env: Env) -> Iterable[Row]:
        """Rows of the table (a superset of those the filter states)."""
        return map(operator.itemgetter(1), env.ctx.scan(self.table, self.filter(env)))


class EmptyRowSource(Source):
    """The single empty row of a SELECT without FROM."""

    width = 0

    def rows(self, env: Env) -> Iterable[Row]:
        """One empty row."""
        return ((),)


class PlanSource(Source):
    """A derived table, CTE or VALUES list: the rows of a nested plan."""

    def __init__(self, plan: QueryPlan, materialize: bool) -> None:
        self.plan = plan
        self.width = len(plan.columns)
        self.materialize = materialize and plan.outer_depth == 0
        self.key = object()

    def rows(self, env: Env) -> Iterable[Row]:
        """The nested plan's rows (computed once per execution for CTEs)."""
        if not self.materialize:
            return self.plan.rows(env)
        cached = env.cache.get(self.key)
        if cached is None:
            cached = env.cache[self.key] = list(self.plan.rows(env))
        return cached


class JoinSource(Source):
    """``left JOIN right``: hash join on equality keys, nested loop otherwise."""

    def __init__(
        self,
        left: Source,
        right: Source,
        outer: bool,
        left_keys: list[Fn],
        right_keys: list[Fn],
        residual: Fn | None,
    ) -> None:
        self.left = left
        self.right = right
        self.outer = outer
        self.left_keys = left_keys
        self.right_keys = right_keys
        self.residual = residual
        self.width = left.width + right.width

    def rows(self, env: Env) -> Iterator[Row]:
        """The joined rows, left rows in order."""
        residual = self.residual
        pad = (None,) * self.right.width
        outer = self.outer
        if self.left_keys:
            table = self._build(env)
            lkeys = self.left_keys
            single = lkeys[0] if len(lkeys) == 1 else None
            for left in self.left.rows(env):
                if single is not None:
                    k: Any = single(left, env)
                    matches = table.get(k) if k is not None else None
                else:
                    kt = tuple(f(left, env) for f in lkeys)
                    matches = table.get(kt) if None not in kt else None
                matched = False
                if matches:
                    for right in matches:
                        row = left + right
                        if residual is None or residual(row, env) is True:
                            matched = True
                            yield row
                if outer and not matched:
                    yield left + pad
            return
        rights = list(self.right.rows(env))
        for left in self.left.rows(env):
            matched = False
            for right in rights:
                row = left + right
                if residual is None or residual(row, env) is True:
                    matched = True
                    yield row
            if outer and not matched:
                yield left + pad

    def _build(self, env: Env) -> dict[Any, list[Row]]:
        table: dict[Any, list[Row]] = {}
        rkeys = self.right_keys
        if len(rkeys) == 1:
            (f,) = rkeys
            for right in self.right.rows(env):
                k = f(right, env)
                if k is not None:
                    table.setdefault(k, []).append(right)
            return table
        for right in self.right.rows(env):
            kt = tuple(g(right, env) for g in rkeys)
            if None not in kt:
                table.setdefault(kt, []).append(right)
        return table


# --- plans ---------------------------------------------------------------------------


@dataclass
class SortKey:
    """One ORDER BY key: an output column (``out``) or an expression on the input row."""

    out: int | None
    fn: Fn | None
    desc: bool
    nulls_first: bool


def sort_items(items: list[tuple[Row, tuple[Any, ...]]], keys: list[SortKey]) -> None:
    """Sort (output row, key values) pairs in place by SQL ordering.

    One stable pass per key, last key first; NULL placement is a leading flag in each
    key so that no comparison ever sees None.
    """
    for i in range(len(keys) - 1, -1, -1):
        spec = keys[i]
        # sort ascending on (flag, value) and reverse for DESC: the flag puts NULLs at
        # the end of the ascending order when they must come last after the reversal
        nulls_high = spec.nulls_first == spec.desc

        def key(item: tuple[Row, tuple[Any, ...]], i: int = i, nulls_high: bool = nulls_high) -> Any:
            v = item[1][i]
            if v is None:
                return (nulls_high, 0)
            return (not nulls_high, v)

        try:
            items.sort(key=key, reverse=spec.desc)
        except TypeError:
            raise errors.DatatypeMismatch("ORDER BY values of different types") from None


@dataclass
class SelectPlan(QueryPlan):
    """A planned SELECT."""

    columns: Columns
    source: Source
    where: Fn | None = None
    group_key: Fn | None = None
    grouped: bool = False
    agg_specs: list[tuple[Fn | None, Fn | None]] = field(default_factory=list)
    agg_factories: list[Callable[[], Accumulator]] = field(default_factory=list)
    having: Fn | None = None
    project: list[Fn] = field(default_factory=list)
    sort_keys: list[SortKey] = field(default_factory=list)
    distinct: bool = False
    limit: Fn | None = None
    offset: Fn | None = None
    outer_depth: int = 0

    def rows(self, env: Env) -> Iterator[Row]:
        """Run the query."""
        rows: Iterable[Row] = self.source.rows(env)
        where = self.where
        if where is not None:
            rows = (r for r in rows if where(r, env) is True)
        if self.grouped:
            rows = self._aggregate(rows, env)
            having = self.having
            if having is not None:
                rows = (r for r in rows if having(r, env) is True)
        project = self.project
        limit, offset = _limit_value(self.limit, env), _limit_value(self.offset, env) or 0
        if not self.sort_keys:
            out: Iterable[Row] = (tuple(f(r, env) for f in project) for r in rows)
            if self.distinct:
                out = _dedupe(out)
            if offset or limit is not None:
                out = itertools.islice(out, offset, None if limit is None else offset + limit)
            yield from out
            return
        key_fns = [(k.out, k.fn) for k in self.sort_keys]
        items = []
        for r in rows:
            o = tuple(f(r, env) for f in project)
            items.append((o, tuple(o[i] if i is not None else fn(r, env) for i, fn in key_fns)))  # type: ignore[misc]
        if self.distinct:
            seen: set[Row] = set()
            unique = []
            for item in items:
                if item[0] not in seen:
                    seen.add(item[0])
                    unique.append(item)
            items = unique
        sort_items(items, self.sort_keys)
        end = None if limit is None else offset + limit
        for o, _ in items[offset:end]:
            yield o

    def _aggregate(self, rows: Iterable[Row], env: Env) -> Iterator[Row]:
        groups: dict[Any, list[Accumulator]] = {}
        factories = self.agg_factories
        specs = list(enumerate(self.agg_specs))
        key_fn = self.group_key
        for row in rows:
            k = key_fn(row, env) if key_fn is not None else ()
            accs = groups.get(k)
            if accs is None:
                accs = groups[k] = [f() for f in factories]
            for i, (arg, filt) in specs:
                if filt is not None and filt(row, env) is not True:
                    continue
                if arg is None:
                    accs[i].add(1)
                else:
                    v = arg(row, env)
                    if v is not None:
                        accs[i].add(v)
        if not groups and key_fn is None:
            groups[()] = [f() for f in factories]
        for k, accs in groups.items():
            yield tuple(k) + tuple(a.result() for a in accs)


def _dedupe(rows: Iterable[Row]) -> Iterator[Row]:
    seen: set[Row] = set()
    for r in rows:
        if r not in seen:
            seen.add(r)
            yield r


def _limit_value(fn: Fn | None, env: Env) -> int | None:
    if fn is None:
        return None
    v = fn((), env)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            v = V.cast(v, V.BIGINT)
        except errors.NumericValueOutOfRange:
            raise
        except errors.Error:
            shown = repr(v)[:40]
            raise errors.DataError(f"invalid LIMIT/OFFSET value {shown}", sqlstate="22023") from None
    V.check_int(v, V.BIGINT)
    if v < 0:
        raise errors.DataError("LIMIT/OFFSET must not be negative", sqlstate="2201W")
    return int(v)


@dataclass
class SetOpPlan(QueryPlan):
    """UNION / INTERSECT / EXCEPT [ALL] of two plans, then ORDER BY / LIMIT."""

    columns: Columns
    left: QueryPlan
    right: QueryPlan
    op: str
    distinct: bool
    sort_keys: list[SortKey] = field(default_factory=list)
    limit: Fn | None = None
    offset: Fn | None = None
    outer_depth: int = 0

    def rows(self, env: Env) -> Iterator[Row]:
        """Run both sides and combine them."""
        out = self._combine(env)
        limit, offset = _limit_value(self.limit, env), _limit_value(self.offset, env) or 0
        if self.sort_keys:
            items = [(r, tuple(r[k.out] for k in self.sort_keys)) for r in out]  # type: ignore[index]
            sort_items(items, self.sort_keys)
            out = (r for r, _ in items)
        if offset or limit is not None:
            out = itertools.islice(out, offset, None if limit is None else offset + limit)
        yield from out

    def _combine(self, env: Env) -> Iterator[Row]:
        left = self.left.rows(env)
        right = self.right.rows(env)
        if self.op == "union":
            both = itertools.chain(left, right)
            return _dedupe(both) if self.distinct else iter(both)
        right_counts = Counter(right)
        if self.op == "intersect":

            def intersect() -> Iterator[Row]:
                emitted: set[Row] = set()
                for r in left:
                    if right_counts[r] > 0:
                        if self.distinct:
                            if r not in emitted:
                                emitted.add(r)
                                yield r
                        else:
                            right_counts[r] -= 1
                            yield r

            return intersect()

        def except_() -> Iterator[Row]:
            emitted: set[Row] = set()
            for r in left:
                if self.distinct:
                    if right_counts[r] == 0 and r not in emitted:
                        emitted.add(r)
                        yield r
                elif right_counts[r] > 0:
                    right_counts[r] -= 1
                else:
                    yield r

        return except_()


class ConvertedPlan(QueryPlan):
    """A plan whose columns are converted to the types resolved for a set operation."""

    def __init__(self, plan: QueryPlan, columns: Columns, converters: list[Callable[[Any], Any] | None]) -> None:
        self.plan = plan
        self.columns = columns
        self.outer_depth = plan.outer_depth
        self.converters = list(enumerate(converters))

    @classmethod
    def wrap(cls, plan: QueryPlan, columns: Columns) -> QueryPlan:
        """``plan`` itself when its column types already match ``columns``."""
        converters = [
            V.converter(None if i in plan.untyped else t, target)
            for i, ((_, t), (_, target)) in enumerate(zip(plan.columns, columns, strict=True))
        ]
        if all(c is None for c in converters):
            return plan
        return cls(plan, columns, converters)

    def rows(self, env: Env) -> Iterator[Row]:
        """The nested plan's rows, converted."""
        active = [(i, c) for i, c in self.converters if c is not None]
        for row in self.plan.rows(env):
            out = list(row)
            for i, convert in active:
                if out[i] is not None:
                    out[i] = convert(out[i])
            yield tuple(out)


@dataclass
class ValuesPlan(QueryPlan):
    """A VALUES list used as a query."""

    columns: Columns
    tuples: list[list[Fn]]
    outer_depth: int = 0

    def rows(self, env: Env) -> Iterator[Row]:
        """Evaluate each tuple."""
        for fns in self.tuples:
            yield tuple(f((), env) for f in fns)


# --- the planner ---------------------------------------------------------------------


def output_name(node: exp.Expression) -> str:
    """The column name PostgreSQL gives a select-list expression."""
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Paren):
        return output_name(node.this)
    if isinstance(node, exp.Cast):
        inner = node.this
        if isinstance(inner, exp.Column | exp.Func):
            return output_name(inner)  # type: ignore[arg-type]
        return node.args["to"].this.name.lower()
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, (exp.Exists,)):
        return "exists"
    if isinstance(node, exp.Filter):
        return output_name(node.this)
    if isinstance(node, exp.CurrentTimestamp):
        return "now"
    if isinstance(node, exp.Coalesce):
        return "coalesce"
    if isinstance(node, exp.Subquery):
        inner = node.this
        if isinstance(inner, exp.Select) and len(inner.expressions) == 1:
            return output_name(inner.expressions[0])
        return "?column?"
    if isinstance(node, exp.Func):
        return {
            "timestamptrunc": "date_trunc",
            "strposition": "strpos",
            "trim": "btrim",
            "groupconcat": "string_agg",
            "logicaland": "bool_and",
            "logicalor": "bool_or",
            "pad": "lpad" if node.args.get("is_left") else "rpad",
            "timetostr": "to_char",
            "currentdate": "current_date",
            "pow": "power",
        }.get(node.key, node.key)
    return "?column?"


class _NestedAggregateCompiler(Compiler):
    def aggregate(self, node: exp.Expression) -> CExpr:
        raise errors.GroupingError("aggregate function calls cannot be nested")


class _GroupedCompiler(Compiler):
    """Compiles expressions over the grouped row: group values then aggregate results."""

    def __init__(
        self,
        planner: Planner,
        scope: GroupedScope,
        group_exprs: dict[str, tuple[int, SqlType | None]],
        aggs: dict[str, tuple[int, SqlType | None]],
        canon: Callable[[exp.Expression], str | None],
        clause: str,
    ) -> None:
        super().__init__(planner, scope, clause)
        self.group_exprs = group_exprs
        self.aggs = aggs
        self.canon = canon

    def override(self, node: exp.Expression) -> CExpr | None:
        if isinstance(node, (exp.Column, exp.Literal, exp.Boolean, exp.Null)):
            return None
        if is_aggregate(node) or self.group_exprs:
            key = self.canon(node)
            if key is None:
                return None
            hit = self.aggs.get(key) if is_aggregate(node) else self.group_exprs.get(key)
            if hit is not None:
                slot, sql_type = hit
                return self._column_ref(0, slot, sql_type)
        return None


@dataclass
class _FromItem:
    source: Source
    columns: list[ScopeColumn]
    scan: ScanSource | None = None
    nullable: bool = False


class Planner:
    """Plans the queries of one statement against one catalog state.

    ``deps`` records every table the plan read the definition of, so the statement can
    reuse the plan while those tables keep their id and schema version.
    """

    def __init__(self, ctx: TxnContext) -> None:
        self.ctx = ctx
        self.deps: dict[str, TableDef] = {}
        self.ctes: list[dict[str, tuple[QueryPlan, list[str]]]] = []

    def table(self, name: str) -> TableDef:
        """The table called ``name`` (42P01 if none), recorded as a dependency."""
        table = self.ctx.table(name)
        self.deps[name] = table
        return table

    # --- queries ----------------------------------------------------------------------

    def plan_query(self, node: exp.Expression, parent: Scope | None = None) -> QueryPlan:
        """Plan a SELECT, set operation, VALUES or parenthesized query."""
        while isinstance(node, (exp.Subquery, exp.Paren)):
            if isinstance(node, exp.Subquery) and (node.args.get("order") or node.args.get("limit")):
                break
            node = node.this
        with_ = node.args.get("with_") or node.args.get("with")
        if with_ is not None:
            if with_.args.get("recursive"):
                raise errors.not_supported("WITH RECURSIVE")
            frame: dict[str, tuple[QueryPlan, list[str]]] = {}
            self.ctes.append(frame)
            try:
                for cte in with_.expressions:
                    name = cte.alias_or_name
                    body = self.plan_query(cte.this, parent)
                    names = [c.name for c in cte.args["alias"].columns] if cte.args.get("alias") else []
                    frame[name] = (body, names)
                return self._plan_body(node, parent)
            finally:
                self.ctes.pop()
        return self._plan_body(node, parent)

    def _plan_body(self, node: exp.Expression, parent: Scope | None) -> QueryPlan:
        if isinstance(node, exp.Select):
            from .pointlookup import try_point_select

            fast = try_point_select(self, node, parent)
            if fast is not None:
                return fast
            return self.plan_select(node, parent)
        if isinstance(node, exp.SetOperation):
            return self.plan_set_operation(node, parent)
        if isinstance(node, exp.Values):
            return self.plan_values(node, parent)
        if isinstance(node, exp.Subquery):
            return self.plan_query(node.this, parent)
        raise errors.not_supported(f"{node.key.upper()} as a query")

    def plan_values(self, node: exp.Values, parent: Scope | None) -> QueryPlan:
        """``VALUES (...), (...)`` as a query with columns column1, column2, ..."""
        compiler = Compiler(self, Scope([], parent), "VALUES")
        tuples: list[list[CExpr]] = []
        for t in node.expressions:
            items = t.expressions if isinstance(t, exp.Tuple) else [t]
            tuples.append([compiler.compile(e) for e in items])
        width = len(tuples[0])
        if any(len(t) != width for t in tuples):
            raise errors.SqlSyntaxError("VALUES lists must all be the same length")
        columns: Columns = [
            (f"column{i + 1}", common_type([t[i] for t in tuples], "VALUES")) for i in range(width)
        ]
        fns = [[converted(c, columns[i][1]).fn for i, c in enumerate(t)] for t in tuples]
        return ValuesPlan(columns, fns, compiler.outer_depth)

    def plan_set_operation(self, node: exp.SetOperation, parent: Scope | None) -> QueryPlan:
        """UNION / INTERSECT / EXCEPT with optional ORDER BY, LIMIT, OFFSET."""
        left = self.plan_query(node.this, parent)
        right = self.plan_query(node.expression, parent)
        op = {exp.Union: "union", exp.Intersect: "intersect", exp.Except: "except"}[type(node)]
        if len(left.columns) != len(right.columns):
            raise errors.SqlSyntaxError(f"each {op.upper()} query must have the same number of columns")
        columns: Columns = []
        untyped = set()
        for i, ((name, lt), (_, rt)) in enumerate(zip(left.columns, right.columns, strict=True)):
            # an unknown-typed literal takes the other side's type
            lc = CExpr(_never, None if i in left.untyped else lt)
            rc = CExpr(_never, None if i in right.untyped else rt)
            resolved = common_type([lc, rc], op.upper())
            if i in left.untyped and i in right.untyped:
                untyped.add(i)  # both unknown: text, and still unknown to an outer set operation
                resolved = lt
            columns.append((name, resolved))
        distinct = node.args.get("distinct") is not False
        plan: SetOpPlan = SetOpPlan(
            columns,
            ConvertedPlan.wrap(left, columns),
            ConvertedPlan.wrap(right, columns),
            op,
            distinct,
            outer_depth=max(left.outer_depth, right.outer_depth),
        )
        plan.untyped = frozenset(untyped)
        scope = Scope([ScopeColumn(None, n, t) for n, t in columns], parent)
        order = node.args.get("order")
        if order is not None:
            for ordered in order.expressions:
                index = self._output_position(ordered.this, columns)
                if index is None:
                    raise errors.not_supported(
                        "ORDER BY on a set operation other than by output column"
                    )
                plan.sort_keys.append(_sort_key(ordered, index, None))
        compiler = Compiler(self, Scope([], scope), "LIMIT")
        plan.limit = self._limit(compiler, node.args.get("limit"))
        plan.offset = self._limit(compiler, node.args.get("offset"))
        return plan

    def _output_position(
        self, node: exp.Expression, columns: Columns, same: list[str | None] | None = None
    ) -> int | None:
        if isinstance(node, exp.Literal) and not node.is_string:
            position = int(node.name)
            if not 1 <= position <= len(columns):
                raise errors.ProgrammingError(
                    f"ORDER BY position {position} is not in select list", sqlstate="42P10"
                )
            return position - 1
        if isinstance(node, exp.Column) and not node.table:
            hits = [i for i, (n, _) in enumerate(columns) if n == node.name]
            if len(hits) > 1 and same is not None and len({same[i] for i in hits}) == 1:
                hits = hits[:1]  # the same expression twice is not ambiguous
            if len(hits) > 1:
                raise errors.AmbiguousColumn(f'ORDER BY "{node.name}" is ambiguous')
            if hits:
                return hits[0]
        return None

    def _limit(self, compiler: Compiler, node: exp.Expression | None) -> Fn | None:
        if node is None:
            return None
        if isinstance(node, exp.Fetch):
            count = node.args.get("count")
            if node.args.get("limit_options") and node.args["limit_options"].args.get("percent"):
                raise errors.not_supported("FETCH ... PERCENT")
            if count is None:
                return lambda row, env: 1  # FETCH FIRST ROW ONLY: one row
            if node.args.get("limit_options") and node.args["limit_options"].args.get("with_ties"):
                raise errors.not_supported("FETCH ... WITH TIES")
            return compiler.compile(count).fn
        value = node.args.get("expression")
        if value is None:
            value = node.this
        if isinstance(value, exp.Var) and value.name.upper() == "ALL":
            return None
        return compiler.compile(value).fn

    # --- FROM ---------------------------------------------------------------------------

    def _from_item(self, node: exp.Expression, parent: Scope | None) -> _FromItem:
        alias = node.args.get("alias")
        alias_name = alias.name if alias is not None and alias.name else None
        alias_columns = [c.name for c in alias.columns] if alias is not None else []
        if isinstance(node, exp.Table):
            if node.args.get("db") or node.args.get("catalog"):
                raise errors.not_supported(f"qualified table name {node.sql()}")
            if isinstance(node.this, exp.Anonymous) or not isinstance(node.this, exp.Identifier):
                raise errors.not_supported("table functions")
            name = node.name
            for frame in reversed(self.ctes):
                if name in frame:
                    plan, names = frame[name]
                    return self._plan_item(plan, alias_name or name, alias_columns or names, True)
            table = self.table(name)
            qualifier = alias_name or table.name
            scan = ScanSource(table)
            cols = [ScopeColumn(qualifier, c.name, c.type) for c in table.columns]
            for i, new in enumerate(alias_columns[: len(cols)]):
                cols[i].name = new
            return _FromItem(scan, cols, scan)
        if isinstance(node, exp.Subquery):
            if node.args.get("lateral"):
                raise errors.not_supported("LATERAL")
            if alias_name is None:
                raise errors.SqlSyntaxError("subquery in FROM must have an alias")
            plan = self.plan_query(node.this, parent)
            return self._plan_item(plan, alias_name, alias_columns, False)
        if isinstance(node, exp.Values):
            plan = self.plan_values(node, parent)
            return self._plan_item(plan, alias_name or "*values*", alias_columns, False)
        if isinstance(node, exp.Lateral):
            raise errors.not_supported("LATERAL")
        raise errors.not_supported(f"{node.key.upper()} in FROM")

    def _plan_item(self, plan: QueryPlan, qualifier: str, names: list[str], cte: bool) -> _FromItem:
        if len(names) > len(plan.columns):
            raise errors.SqlSyntaxError(
                f'table "{qualifier}" has {len(plan.columns)} columns available but '
                f"{len(names)} columns specified"
            )
        cols = [ScopeColumn(qualifier, n, t) for n, t in plan.columns]
        for i, new in enumerate(names):
            cols[i].name = new
        return _FromItem(PlanSource(plan, cte), cols)

    def plan_select(self, node: exp.Select, parent: Scope | None) -> QueryPlan:
        """Plan one SELECT block."""
        for key, what in (
            ("locks", "SELECT ... FOR UPDATE/SHARE"),
            ("laterals", "LATERAL VIEW"),
            ("into", "SELECT INTO"),
            ("qualify", "QUALIFY"),
            ("windows", "WINDOW clause"),
            ("pivots", "PIVOT"),
        ):
            if node.args.get(key):
                raise errors.not_supported(what)
        distinct_node = node.args.get("distinct")
        if distinct_node is not None and distinct_node.args.get("on") is not None:
            raise errors.not_supported("SELECT DISTINCT ON")
        from_ = node.args.get("from_") or node.args.get("from")
        where_node = node.args.get("where")
        conds = conjuncts(where_node.this) if where_node is not None else []
        source, scope, conds = self._plan_from(from_, node.args.get("joins") or [], conds, parent)
        outer_depth = 0
        where_fn: Fn | None = None
        if conds:
            wc = Compiler(self, scope, "WHERE")
            compiled = [wc.predicate(c, "WHERE") for c in conds]
            where_fn = all_true([c.fn for c in compiled])
            outer_depth = max(outer_depth, wc.outer_depth)

        select_items = self._expand_stars(node.expressions, scope)
        group_node = node.args.get("group")
        having_node = node.args.get("having")
        order_node = node.args.get("order")
        aggregates = _find_aggregates(
            [e for _, e in select_items]
            + ([having_node.this] if having_node is not None else [])
            + ([o.this for o in order_node.expressions] if order_node is not None else [])
        )
        grouped = bool(group_node is not None or having_node is not None or aggregates)
        plan = SelectPlan(columns=[], source=source, where=where_fn, grouped=grouped)

        def canon(n: exp.Expression) -> str | None:
            def replace(sub: exp.Expression) -> exp.Expression:
                if isinstance(sub, exp.Column) and not isinstance(sub.this, exp.Star):
                    hit = scope.find(sub.name, sub.table or None)
                    if hit is not None:
                        return exp.var(f"__col{hit[0]}")
                return sub

            try:
                return n.transform(replace).sql(dialect="postgres")
            except errors.Error:
                return None

        if grouped:
            expr_compiler: Compiler = self._plan_grouping(
                plan, node, scope, select_items, group_node, aggregates, canon, parent
            )
            for sub in (expr_compiler,):
                outer_depth = max(outer_depth, sub.outer_depth)
        else:
            expr_compiler = Compiler(self, scope, "SELECT")
        untyped = set()
        for name, e in select_items:
            item = expr_compiler.compile(e)
            plan.project.append(item.fn)
            plan.columns.append((name, item.type))
            if item.const and item.untyped:
                untyped.add(len(plan.columns) - 1)
        plan.untyped = frozenset(untyped)
        if having_node is not None:
            plan.having = expr_compiler.predicate(having_node.this, "HAVING").fn
        plan.distinct = distinct_node is not None
        if order_node is not None:
            self._plan_order(plan, order_node, select_items, expr_compiler, canon)
        limit_compiler = Compiler(self, Scope([], parent), "LIMIT")
        plan.limit = self._limit(limit_compiler, node.args.get("limit"))
        plan.offset = self._limit(limit_compiler, node.args.get("offset"))
        plan.outer_depth = max(
            outer_depth, expr_compiler.outer_depth, limit_compiler.outer_depth, self._from_depth
        )
        return plan

    _from_depth = 0

    def _plan_order(
        self,
        plan: SelectPlan,
        order_node: exp.Order,
        select_items: list[tuple[str, exp.Expression]],
        compiler: Compiler,
        canon: Callable[[exp.Expression], str | None],
    ) -> None:
        outputs = [(name, None) for name, _ in select_items]
        select_canon = [canon(e.this if isinstance(e, exp.Alias) else e) for _, e in select_items]
        for ordered in order_node.expressions:
            target = ordered.this
            index = self._output_position(target, outputs, select_canon)  # type: ignore[arg-type]
            if index is None:
                key = canon(target)
                if key is not None and key in select_canon:
                    index = select_canon.index(key)
            if index is not None:
                plan.sort_keys.append(_sort_key(ordered, index, None))
                continue
            if plan.distinct:
                raise errors.ProgrammingError(
                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                    sqlstate="42P10",
                )
            compiled = compiler.compile(target)
            plan.sort_keys.append(_sort_key(ordered, None, compiled.fn))

    def _plan_grouping(
        self,
        plan: SelectPlan,
        node: exp.Select,
        scope: Scope,
        select_items: list[tuple[str, exp.Expression]],
        group_node: exp.Group | None,
        aggregates: list[exp.Expression],
        canon: Callable[[exp.Expression], str | None],
        parent: Scope | None,
    ) -> Compiler:
        key_compiler = Compiler(self, scope, "GROUP BY")
        group_fns: list[Fn] = []
        group_exprs: dict[str, tuple[int, SqlType | None]] = {}
        column_slots: dict[int, int] = {}
        for item in group_node.expressions if group_node is not None else []:
            target = item
            if isinstance(item, exp.Literal) and not item.is_string:
                position = int(item.name)
                if not 1 <= position <= len(select_items):
                    raise errors.ProgrammingError(
                        f"GROUP BY position {position} is not in select list", sqlstate="42P10"
                    )
                target = select_items[position - 1][1]
            elif (
                isinstance(item, exp.Column)
                and not item.table
                and scope.find(item.name, None) is None
            ):
                # PostgreSQL: a GROUP BY name is an input column first, else an output alias
                aliased = [
                    e for n, e in select_items if n == item.name and isinstance(e, exp.Alias)
                ]
                if aliased:
                    target = aliased[0]
            if isinstance(target, exp.Alias):
                target = target.this
            if _find_aggregates([target]):
                raise errors.GroupingError("aggregate functions are not allowed in GROUP BY")
            compiled = key_compiler.compile(target)
            slot = len(group_fns)
            group_fns.append(compiled.fn)
            key = canon(target)
            if key is not None:
                group_exprs.setdefault(key, (slot, compiled.type))
            inner = target
            while isinstance(inner, exp.Paren):
                inner = inner.this
            if isinstance(inner, exp.Column):
                hit = scope.find(inner.name, inner.table or None)
                if hit is not None:
                    column_slots.setdefault(hit[0], slot)
        width = len(group_fns)
        aggs: dict[str, tuple[int, SqlType | None]] = {}
        for agg in aggregates:
            key = canon(agg)
            if key is None or key in aggs:
                continue
            arg_fn, filter_fn, factory, result_type = self._plan_aggregate(agg, scope)
            aggs[key] = (width + len(plan.agg_specs), result_type)
            plan.agg_specs.append((arg_fn, filter_fn))
            plan.agg_factories.append(factory)
        if group_fns:
            if len(group_fns) == 1:
                (g,) = group_fns

                def key_fn(row: Row, env: Env) -> Any:
                    return (g(row, env),)

            else:

                def key_fn(row: Row, env: Env) -> Any:
                    return tuple(f(row, env) for f in group_fns)

            plan.group_key = key_fn
        self._from_depth = max(self._from_depth, key_compiler.outer_depth)
        grouped_scope = GroupedScope(scope, column_slots, parent)
        return _GroupedCompiler(self, grouped_scope, group_exprs, aggs, canon, "SELECT")

    def _plan_aggregate(
        self, node: exp.Expression, scope: Scope
    ) -> tuple[Fn | None, Fn | None, Callable[[], Accumulator], SqlType | None]:
        compiler = _NestedAggregateCompiler(self, scope, "an aggregate")
        filter_fn: Fn | None = None
        if isinstance(node, exp.Filter):
            filter_fn = compiler.predicate(node.expression.this, "FILTER").fn
            node = node.this
        names: dict[type, str] = {
            exp.Count: "count",
            exp.Sum: "sum",
            exp.Avg: "avg",
            exp.Min: "min",
            exp.Max: "max",
            exp.LogicalAnd: "bool_and",
            exp.LogicalOr: "bool_or",
            exp.GroupConcat: "string_agg",
        }
        name = names.get(type(node))
        if name is None:
            raise errors.not_supported(f"aggregate {node.sql_name() if hasattr(node, 'sql_name') else node.key}")
        arg = node.this
        distinct = False
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                raise errors.not_supported(f"{name.upper()}(DISTINCT) of several arguments")
            distinct = True
            arg = arg.expressions[0]
        if node.expressions and not isinstance(node, exp.GroupConcat):
            raise errors.UndefinedFunction(f"function {name} with several arguments does not exist")
        if node.args.get("order") or (isinstance(arg, exp.Order)):
            raise errors.not_supported("ORDER BY inside an aggregate")
        separator: str | None = None
        if isinstance(node, exp.GroupConcat):
            sep = compiler.compile(node.args["separator"]) if node.args.get("separator") else None
            if sep is None or not sep.const or not isinstance(sep.value, str):
                raise errors.not_supported("string_agg with a non-constant separator")
            separator = sep.value
        if isinstance(arg, exp.Star):
            if name != "count" or distinct:
                raise errors.SqlSyntaxError(f"{name}(*) is not valid")
            factory, result_type = make_factory("count_star", None, False)
            return None, filter_fn, factory, result_type
        compiled = compiler.compile(arg)
        if compiler.local_refs == 0 and compiler.outer_depth > 0:
            raise errors.not_supported("aggregates over columns of an enclosing query")
        factory, result_type = make_factory(name, compiled.type, distinct, separator)
        self._from_depth = max(self._from_depth, compiler.outer_depth)
        return compiled.fn, filter_fn, factory, result_type

    def _expand_stars(
        self, items: list[exp.Expression], scope: Scope
    ) -> list[tuple[str, exp.Expression]]:
        out: list[tuple[str, exp.Expression]] = []
        order = getattr(scope, "star_order", None) or list(range(len(scope.columns)))
        for item in items:
            if isinstance(item, exp.Star):
                if not scope.columns:
                    raise errors.SqlSyntaxError("SELECT * with no tables specified is not valid")
                for i in order:
                    c = scope.columns[i]
                    if c.star:
                        out.append((c.name, _column_node(c)))
                continue
            if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                qualifier = item.table
                if not scope.has_qualifier(qualifier):
                    raise errors.UndefinedTable(f'missing FROM-clause entry for table "{qualifier}"')
                for c in scope.columns:
                    if c.qualifier == qualifier:
                        out.append((c.name, _column_node(c)))
                continue
            out.append((output_name(item), item))
        return out

    def _plan_from(
        self,
        from_: exp.From | None,
        joins: list[exp.Join],
        conds: list[exp.Expression],
        parent: Scope | None,
    ) -> tuple[Source, Scope, list[exp.Expression]]:
        """The joined source, its scope, and the WHERE terms still to apply."""
        if from_ is None:
            if joins:
                raise errors.SqlSyntaxError("JOIN without FROM")
            return EmptyRowSource(), Scope([], parent), conds
        first = from_.this
        items = [self._from_item(first, parent)]
        qualifiers = [items[0].columns[0].qualifier if items[0].columns else None]
        source: Source = items[0].source
        columns: list[ScopeColumn] = list(items[0].columns)
        star_order = list(range(len(columns)))
        offsets = [0]
        remaining = list(conds)
        on_terms: dict[int, list[exp.Expression]] = {}
        tree_start = 0  # the first FROM item of the current join tree (after the last comma)
        for j, join in enumerate(joins, 1):
            side = (join.side or "").upper()
            kind = (join.kind or "").upper()
            if _is_comma(join):
                tree_start = j
            if side in ("RIGHT", "FULL"):
                raise errors.not_supported(f"{side} JOIN")
            if kind in ("SEMI", "ANTI", "ASOF"):
                raise errors.not_supported(f"{kind} JOIN")
            item = self._from_item(join.this, parent)
            for q in qualifiers:
                if q is not None and item.columns and item.columns[0].qualifier == q:
                    raise errors.ProgrammingError(
                        f'table name "{q}" specified more than once', sqlstate="42712"
                    )
            qualifiers.append(item.columns[0].qualifier if item.columns else None)
            outer = side == "LEFT"
            item.nullable = outer
            offset = len(columns)
            offsets.append(offset)
            left_scope = Scope(list(columns), parent)
            cond_nodes: list[exp.Expression] = []
            using = [u.name for u in join.args.get("using") or []]
            if (join.args.get("method") or "").upper() == "NATURAL":
                right_names = {c.name for c in item.columns}
                using = [c.name for c in columns if c.unqualified and c.name in right_names]
            merged_left: list[int] = []
            for name in using:
                hit = left_scope.find(name, None)
                right_hits = [i for i, c in enumerate(item.columns) if c.name == name]
                if hit is None or not right_hits:
                    raise errors.UndefinedColumn(
                        f'column "{name}" specified in USING clause does not exist'
                    )
                ri = right_hits[0]
                cond_nodes.append(
                    exp.EQ(this=exp.Column(this=exp.Identifier(this=f"__pos{hit[0]}")), expression=exp.Column(this=exp.Identifier(this=f"__pos{offset + ri}")))
                )
                item.columns[ri].star = False
                item.columns[ri].unqualified = False
                merged_left.append(hit[0])
            if merged_left:
                star_order = merged_left + [i for i in star_order if i not in merged_left]
            on = join.args.get("on")
            if on is not None:
                _check_on_scope(on, Scope(list(columns) + list(item.columns), parent), offsets + [offset], tree_start)
                cond_nodes.extend(conjuncts(on))
            columns.extend(item.columns)
            star_order.extend(i + offset for i, c in enumerate(item.columns) if c.star)
            items.append(item)
            if not outer:
                # WHERE terms over tables 0..j that involve table j become join terms
                keep = []
                for cond in remaining:
                    tables = _tables_of(cond, Scope(list(columns), parent), offsets)
                    if tables is not None and j in tables and max(tables) == j:
                        cond_nodes.append(cond)
                    else:
                        keep.append(cond)
                remaining = keep
            on_terms[j] = cond_nodes
            join_scope = Scope(list(columns), parent)
            source = self._make_join(source, item, outer, cond_nodes, join_scope, offset, parent)
        scope = Scope(columns, parent)
        scope.star_order = star_order  # type: ignore[attr-defined]
        # push simple WHERE terms into the scans of tables that are never NULL-extended,
        # and ON terms of a LEFT JOIN into its right-hand table
        for index, item in enumerate(items):
            if item.scan is None:
                continue
            start = offsets[index]
            width = len(item.columns)
            terms_from = [] if item.nullable else list(conds)
            terms_from += [t for t in on_terms.get(index, []) if not _is_using_term(t)]

            def owns(
                col: exp.Column, start: int = start, width: int = width
            ) -> tuple[int, SqlType | None] | None:
                hit = scope.find(col.name, col.table or None)
                if hit is None or not start <= hit[0] < start + width:
                    return None
                return hit[0] - start, hit[1]

            terms = extract_terms(Compiler(self, Scope([], parent), "WHERE"), terms_from, owns)
            item.scan.filter = build_filter(terms)
        return source, scope, remaining

    def _make_join(
        self,
        left: Source,
        item: _FromItem,
        outer: bool,
        cond_nodes: list[exp.Expression],
        scope: Scope,
        offset: int,
        parent: Scope | None,
    ) -> Source:
        left_scope = Scope(scope.columns[:offset], parent)
        right_scope = Scope(scope.columns[offset:], parent)
        left_keys: list[Fn] = []
        right_keys: list[Fn] = []
        residual: list[exp.Expression] = []
        full = _PositionalCompiler(self, scope, "JOIN/ON")
        lc = _PositionalCompiler(self, left_scope, "JOIN/ON")
        rc = _PositionalCompiler(self, right_scope, "JOIN/ON", shift=offset)
        for cond in cond_nodes:
            if isinstance(cond, exp.EQ) and not cond.args.get("negate"):
                sides = [_side_of(cond.this, scope, offset), _side_of(cond.expression, scope, offset)]
                if sides in (["L", "R"], ["R", "L"]):
                    lnode, rnode = (cond.this, cond.expression) if sides[0] == "L" else (cond.expression, cond.this)
                    a = lc.compile(lnode)
                    b = rc.compile(rnode)
                    ca, cb = V.category(a.type), V.category(b.type)
                    full.check_comparable(a, b, "=")
                    if ca is not None and ca == cb and (ca != "time" or a.type == b.type):
                        if ca == "num" and not exactly_comparable(a.type, b.type):
                            # float8 meets numeric: hash both sides as float8, as = compares
                            a, b = converted(a, V.DOUBLE), converted(b, V.DOUBLE)
                        left_keys.append(a.fn)
                        right_keys.append(b.fn)
                        continue
            residual.append(cond)
        residual_fn: Fn | None = None
        if residual:
            residual_fn = all_true([full.predicate(c, "JOIN/ON").fn for c in residual])
        self._from_depth = max(self._from_depth, full.outer_depth, lc.outer_depth, rc.outer_depth)
        return JoinSource(left, item.source, outer, left_keys, right_keys, residual_fn)


class _PositionalCompiler(Compiler):
    """A compiler that also understands the ``__posN`` columns of USING terms."""

    def __init__(self, planner: Planner, scope: Scope, clause: str, shift: int = 0) -> None:
        super().__init__(planner, scope, clause)
        self.shift = shift

    def override(self, node: exp.Expression) -> CExpr | None:
        if isinstance(node, exp.Column) and node.name.startswith("__pos"):
            index = int(node.name[5:]) - self.shift
            return self._column_ref(0, index, self.scope.columns[index].type)
        return None


def _is_using_term(node: exp.Expression) -> bool:
    return any(c.name.startswith("__pos") for c in node.find_all(exp.Column))


def _side_of(node: exp.Expression, scope: Scope, offset: int) -> str | None:
    """'L' or 'R' when ``node`` references only left or only right columns, else None."""
    if node.find(exp.Subquery, exp.Select, exp.Exists) is not None:
        return None
    sides = set()
    for col in node.find_all(exp.Column):
        if col.name.startswith("__pos"):
            index = int(col.name[5:])
        else:
            try:
                hit = scope.find(col.name, col.table or None)
            except errors.Error:
                return None
            if hit is None:
                return None
            index = hit[0]
        sides.add("L" if index < offset else "R")
    if len(sides) != 1:
        return None
    return sides.pop()


def _is_comma(join: exp.Join) -> bool:
    """Whether a join is a comma in the FROM list (no kind, side, method, ON or USING)."""
    return not any(join.args.get(k) for k in ("kind", "side", "method", "on", "using"))


def _check_on_scope(on: exp.Expression, scope: Scope, offsets: list[int], tree_start: int) -> None:
    """ON sees only the tables of its own join tree: JOIN binds tighter than a comma.

    In ``FROM a, b JOIN c ON a.x = c.z`` the ON belongs to ``b JOIN c`` and may not name
    ``a`` (PostgreSQL: 42P01 invalid reference to FROM-clause entry).
    """
    if tree_start == 0:
        return
    # names FROM items of subqueries inside the ON define: their columns resolve there
    local = {t.alias_or_name for t in on.find_all(exp.Table)}
    local |= {q.alias for q in on.find_all(exp.Subquery) if q.alias}
    for col in on.find_all(exp.Column):
        if isinstance(col.this, exp.Star):
            continue
        if _inside_subquery(col, on) and (not col.table or col.table in local):
            continue
        try:
            hit = scope.find(col.name, col.table or None)
        except errors.Error:
            continue  # ambiguity and the like are reported when the ON is compiled
        if hit is None:
            continue  # an outer reference, or an error reported later
        item = max(i for i, start in enumerate(offsets) if start <= hit[0])
        if item < tree_start:
            if col.table:
                raise errors.UndefinedTable(
                    f'invalid reference to FROM-clause entry for table "{col.table}"'
                )
            raise errors.UndefinedColumn(f'column "{col.name}" does not exist')


def _inside_subquery(node: exp.Expression, top: exp.Expression) -> bool:
    """Whether ``node`` sits in a subquery below ``top`` (its names resolve there first)."""
    parent = node.parent
    while parent is not None and parent is not top:
        if isinstance(parent, (exp.Subquery, exp.Select)):
            return True
        parent = parent.parent
    return False


def _tables_of(node: exp.Expression, scope: Scope, offsets: list[int]) -> set[int] | None:
    """Indices of the FROM items ``node`` references; None when it cannot be moved."""
    if node.find(exp.Subquery, exp.Select, exp.Exists) is not None or is_aggregate(node):
        return None
    if _find_aggregates([node]):
        return None
    found: set[int] = set()
    for col in node.find_all(exp.Column):
        if isinstance(col.this, exp.Star):
            return None
        try:
            hit = scope.find(col.name, col.table or None)
        except errors.Error:
            return None
        if hit is None:
            return None
        item = max(i for i, start in enumerate(offsets) if start <= hit[0])
        found.add(item)
    return found or None


def _column_node(c: ScopeColumn) -> exp.Expression:
    return exp.Column(
        this=exp.Identifier(this=c.name, quoted=True),
        table=exp.Identifier(this=c.qualifier, quoted=True) if c.qualifier else None,
    )


def _find_aggregates(nodes: list[exp.Expression]) -> list[exp.Expression]:
    """Aggregate calls in ``nodes``, not looking into subqueries (they have their own)."""
    found: list[exp.Expression] = []

    def visit(n: exp.Expression) -> None:
        if isinstance(n, (exp.Subquery, exp.Select, exp.SetOperation)):
            return
        if is_aggregate(n):
            found.append(n)
            return
        if isinstance(n, exp.Window):
            raise errors.not_supported("window functions")
        for child in n.iter_expressions():
            visit(child)

    for node in nodes:
        visit(node)
    return found


def _sort_key(ordered: exp.Expression, out: int | None, fn: Fn | None) -> SortKey:
    desc = bool(ordered.args.get("desc"))
    nulls_first = ordered.args.get("nulls_first")
    explicit = ordered.meta.get("nulls_explicit")
    if explicit is None:
        # sqlglot fills nulls_first in for the dialect's default; PostgreSQL's default
        # is NULLS LAST for ASC and NULLS FIRST for DESC (NULL sorts as the largest)
        nulls_first = desc if nulls_first is None else bool(nulls_first)
    return SortKey(out, fn, desc, bool(nulls_first))


def all_true(fns: list[Fn]) -> Fn:
    """The conjunction of predicates, as a WHERE filter (TRUE only when all are TRUE)."""
    if len(fns) == 1:
        return fns[0]

    def conj(row: Row, env: Env) -> Any:
        result: Any = True
        for f in fns:
            v = f(row, env)
            if v is False:
                return False
            if v is None:
                result = None
        return result

    return conj


def _never(row: Row, env: Env) -> Any:
    raise errors.InternalError("placeholder expression evaluated")
