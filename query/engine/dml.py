"""INSERT (with ON CONFLICT), UPDATE and DELETE, each with RETURNING.

Writes go through the :class:`~offsetdb.query.context.TxnContext`, which coerces values
and enforces NOT NULL and uniqueness. UPDATE and DELETE first collect every target row
and only then write (the Halloween problem: a write must never be seen by the scan that
chose the rows). ``WHERE pk = ...`` uses :meth:`TxnContext.get` rather than a scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import sqlglot
from sqlglot import exp

from offsetdb import errors
from offsetdb.materializers.sources import is_system_table
from offsetdb.types import SqlType, coerce

from .dialect import DIALECT
from .expressions import Compiler, conjuncts
from .pointlookup import KeyLookup, match_key
from .result import Result, ResultColumn
from .runtime import CExpr, Env, Fn, Row
from .scanfilter import NOT_A_KEY, build_filter, extract_terms
from .scope import Scope, ScopeColumn

if TYPE_CHECKING:
    from offsetdb.materializers.catalog import TableDef

    from .select import Planner, QueryPlan

DEFAULT = object()  # the DEFAULT keyword in a VALUES list


def compile_default(planner: Planner, table: TableDef, index: int) -> Fn | None:
    """The compiled DEFAULT expression of column ``index`` (None when it has none)."""
    text = table.columns[index].default
    if text is None:
        return None
    try:
        node = cast(exp.Expression, sqlglot.parse_one(text, read=DIALECT))
    except sqlglot.errors.ParseError as e:
        raise errors.InternalError(f"stored DEFAULT does not parse: {text!r}") from e
    return Compiler(planner, Scope([]), "DEFAULT expressions").compile(node).fn


def table_scope(table: TableDef, qualifier: str) -> Scope:
    """The scope of one table's rows under ``qualifier``."""
    return Scope([ScopeColumn(qualifier, c.name, c.type) for c in table.columns])


def coerce_row(table: TableDef, row: Sequence[Any]) -> Row:
    """``row`` in the table's column types (what storage will hold), for RETURNING."""
    return tuple(
        coerce(v, c.type, c.name) if v is not None else None
        for v, c in zip(row, table.columns, strict=True)
    )


@dataclass
class Returning:
    """A compiled RETURNING list."""

    columns: list[ResultColumn]
    fns: list[Fn]

    def apply(self, row: Row, env: Env) -> Row:
        """The RETURNING values for one written row."""
        return tuple(f(row, env) for f in self.fns)


def plan_returning(planner: Planner, node: exp.Expression, scope: Scope) -> Returning | None:
    """Compile the RETURNING clause of ``node``, if any."""
    returning = node.args.get("returning")
    if returning is None:
        return None
    from .select import Planner as _Planner

    items = _Planner._expand_stars(planner, returning.expressions, scope)
    compiler = Compiler(planner, scope, "RETURNING")
    compiled = [compiler.compile(e) for _, e in items]
    return Returning(
        [ResultColumn(name, c.type) for (name, _), c in zip(items, compiled, strict=True)],
        [c.fn for c in compiled],
    )


def _result(tag: str, count: int, returning: Returning | None, rows: list[Row]) -> Result:
    if returning is None:
        return Result([], [], count, tag)
    return Result(returning.columns, rows, count, tag)


# --- INSERT ---------------------------------------------------------------------------


@dataclass
class Conflict:
    """A compiled ON CONFLICT clause."""

    constraints: list[tuple[int, ...]]  # checked in order; the first with a match wins
    primary: tuple[int, ...]
    update: bool
    sets: list[tuple[int, Fn]] = field(default_factory=list)
    where: Fn | None = None


@dataclass
class InsertPlan:
    """A planned INSERT."""

    table: TableDef
    targets: list[int]  # table column of each supplied value
    defaults: list[Fn | None]
    values: list[list[Any]] | None  # VALUES rows: compiled fns or DEFAULT
    query: QueryPlan | None
    conflict: Conflict | None
    returning: Returning | None
    # bulk path: (param slot or None, constant) per table column, when VALUES is one
    # tuple of parameters and constants
    bulk: list[tuple[int | None, Any]] | None = None

    def _source(self, env: Env) -> Iterable[list[Any]]:
        if self.query is not None:
            return (list(r) for r in self.query.rows(env))
        assert self.values is not None
        return ([v if v is DEFAULT else v((), env) for v in tup] for tup in self.values)

    def _row(self, supplied: list[Any], env: Env) -> list[Any]:
        row: list[Any] = [None] * len(self.table.columns)
        filled = [False] * len(row)
        for index, value in zip(self.targets, supplied, strict=True):
            if value is not DEFAULT:
                row[index] = value
                filled[index] = True
        for i, fn in enumerate(self.defaults):
            if not filled[i] and fn is not None:
                row[i] = fn((), env)
        return row

    def execute(self, env: Env) -> Result:
        """Insert every source row."""
        ctx = env.ctx
        table = self.table
        out: list[Row] = []
        count = 0
        touched: set[bytes] = set()
        for supplied in list(self._source(env)):
            row = self._row(supplied, env)
            if self.conflict is None and self.returning is None:
                ctx.insert(table, tuple(row))
                count += 1
                continue
            # NOT NULL and types are checked before ON CONFLICT arbitration, as in PostgreSQL
            final = table.coercer()(tuple(row)) if self.conflict is not None else coerce_row(table, row)
            if self.conflict is not None:
                existing = self._find_conflict(ctx, final)
                if existing is not None:
                    key, old = existing
                    if not self.conflict.update:
                        continue
                    if key in touched:
                        raise errors.CardinalityViolation(
                            "ON CONFLICT DO UPDATE command cannot affect row a second time"
                        )
                    combined = old + final
                    where = self.conflict.where
                    if where is not None and where(combined, env) is not True:
                        continue
                    new = list(old)
                    for index, fn in self.conflict.sets:
                        new[index] = fn(combined, env)
                    new_row = coerce_row(table, new)
                    touched.add(ctx.update(table, key, new_row))
                    count += 1
                    if self.returning is not None:
                        out.append(self.returning.apply(new_row, env))
                    continue
            touched.add(ctx.insert(table, final))
            count += 1
            if self.returning is not None:
                out.append(self.returning.apply(final, env))
        return _result(f"INSERT 0 {count}", count, self.returning, out)

    def _find_conflict(self, ctx: Any, row: Row) -> tuple[bytes, Row] | None:
        assert self.conflict is not None
        for cols in self.conflict.constraints:
            values = [row[i] for i in cols]
            if any(v is None for v in values):
                continue  # NULLs never conflict
            # find_unique, not get: arbitration sees this statement's own inserts
            hit = ctx.find_unique(self.table, cols, values)
            if hit is not None:
                return hit
        return None

    def execute_many(self, env: Env, seq_of_params: Iterable[Any], bind: Any) -> int:
        """Run once per parameter set; a tight loop for ``VALUES (?, ?, ...)``."""
        if self.bulk is None or self.returning is not None or self.conflict is not None:
            total = 0
            for params in seq_of_params:
                env.params = bind(params)
                env.ctx.begin_statement()  # each parameter set is a statement of its own
                env.cache.clear()
                total += self.execute(env).rowcount
            return total
        ctx = env.ctx
        insert = ctx.insert
        table = self.table
        slots = self.bulk
        width = len(slots)
        straight = all(slot == i for i, (slot, _) in enumerate(slots))
        defaults = [
            (i, fn) for i, fn in enumerate(self.defaults) if fn is not None and slots[i][0] is None
        ]
        count = 0
        if straight and not defaults:
            # every column is the parameter in its position: the row is the parameters
            for params in seq_of_params:
                values = bind(params)
                if len(values) != width:
                    raise errors.ProgrammingError(
                        f"statement expects {width} parameters, got {len(values)}", sqlstate="08P01"
                    )
                insert(table, tuple(values))
                count += 1
            return count
        for params in seq_of_params:
            values = bind(params)
            env.params = values
            row = [values[slot] if slot is not None else const for slot, const in slots]
            for i, fn in defaults:
                row[i] = fn((), env)
            insert(table, tuple(row))
            count += 1
        return count


def plan_insert(planner: Planner, node: exp.Insert) -> InsertPlan:
    """Plan an INSERT statement."""
    for key, what in (("overwrite", "INSERT OVERWRITE"), ("ignore", "INSERT IGNORE")):
        if node.args.get(key):
            raise errors.not_supported(what)
    target = node.this
    column_nodes: list[exp.Expression] = []
    if isinstance(target, exp.Schema):
        column_nodes = list(target.expressions)
        target = target.this
    if not isinstance(target, exp.Table):
        raise errors.not_supported(f"INSERT INTO {target.sql()}")
    table = _writable(planner.table(target.name))
    alias = target.args.get("alias")
    qualifier = alias.name if alias is not None and alias.name else table.name
    if column_nodes:
        targets = []
        for c in column_nodes:
            index = table.column_index(c.name)
            if index in targets:
                raise errors.DuplicateColumn(f'column "{c.name}" specified more than once')
            targets.append(index)
    else:
        targets = list(range(len(table.columns)))
    defaults = [compile_default(planner, table, i) for i in range(len(table.columns))]
    values: list[list[Any]] | None = None
    query = None
    source = node.expression
    if node.args.get("default"):
        targets = []
        values = [[]]
    elif isinstance(source, exp.Values):
        compiler = Compiler(planner, Scope([]), "VALUES")
        values = []
        for tup in source.expressions:
            items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
            if len(items) > len(targets):
                raise errors.SqlSyntaxError("INSERT has more expressions than target columns")
            if len(items) < len(targets) and column_nodes:
                raise errors.SqlSyntaxError("INSERT has more target columns than expressions")
            row: list[Any] = []
            for item in items:
                if isinstance(item, exp.Var) and item.name.upper() == "DEFAULT":
                    row.append(DEFAULT)
                else:
                    row.append(compiler.compile(item))
            values.append(row)
        width = max(len(v) for v in values)
        if any(len(v) != width for v in values):
            raise errors.SqlSyntaxError("VALUES lists must all be the same length")
        targets = targets[:width]
    elif source is not None:
        query = planner.plan_query(source)
        if len(query.columns) > len(targets):
            raise errors.SqlSyntaxError("INSERT has more expressions than target columns")
        if len(query.columns) < len(targets) and column_nodes:
            raise errors.SqlSyntaxError("INSERT has more target columns than expressions")
        targets = targets[: len(query.columns)]
    else:
        raise errors.not_supported("this form of INSERT")
    bulk = None
    if values is not None and len(values) == 1:
        bulk = _bulk_slots(values[0], targets, len(table.columns))
    compiled_values = (
        [[v if v is DEFAULT else v.fn for v in row] for row in values] if values is not None else None
    )
    scope = table_scope(table, qualifier)
    conflict = _plan_conflict(planner, node.args.get("conflict"), table, scope)
    returning = plan_returning(planner, node, scope)
    return InsertPlan(table, targets, defaults, compiled_values, query, conflict, returning, bulk)


def _bulk_slots(
    row: list[Any], targets: list[int], width: int
) -> list[tuple[int | None, Any]] | None:
    slots: list[tuple[int | None, Any]] = [(None, None)] * width
    for value, index in zip(row, targets, strict=True):
        if value is DEFAULT:
            continue
        assert isinstance(value, CExpr)
        if value.param is not None:
            slots[index] = (value.param, None)
        elif value.const:
            slots[index] = (None, value.value)
        else:
            return None
    return slots


def _plan_conflict(
    planner: Planner, node: exp.OnConflict | None, table: TableDef, scope: Scope
) -> Conflict | None:
    if node is None:
        return None
    if node.args.get("duplicate"):
        raise errors.not_supported("ON DUPLICATE KEY")
    if node.args.get("constraint") is not None:
        raise errors.not_supported("ON CONFLICT ON CONSTRAINT")
    action = str(node.args.get("action") or "").upper()
    update = "UPDATE" in action
    keys = node.args.get("conflict_keys") or []
    all_constraints = ([table.primary_key] if table.primary_key else []) + list(table.unique)
    if keys:
        wanted = set()
        for k in keys:
            col = k.this if isinstance(k, exp.Ordered) else k
            if not isinstance(col, (exp.Column, exp.Identifier)):
                raise errors.not_supported("ON CONFLICT on an expression")
            wanted.add(table.column_index(col.name))
        matching = [c for c in all_constraints if set(c) == wanted]
        if not matching:
            raise errors.ProgrammingError(
                "there is no unique or exclusion constraint matching the ON CONFLICT "
                "specification",
                sqlstate="42P10",
            )
        constraints = matching[:1]
    else:
        if update:
            raise errors.SqlSyntaxError("ON CONFLICT DO UPDATE requires inference specification")
        constraints = all_constraints
    conflict = Conflict(constraints, table.primary_key, update)
    if not update:
        return conflict
    excluded = Scope(
        scope.columns + [ScopeColumn("excluded", c.name, c.type) for c in table.columns]
    )
    compiler = Compiler(planner, excluded, "ON CONFLICT DO UPDATE")
    for assignment in node.expressions:
        if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
            raise errors.not_supported(f"SET {assignment.sql()}")
        conflict.sets.append(
            (table.column_index(assignment.this.name), compiler.compile(assignment.expression).fn)
        )
    where = node.args.get("where")
    if where is not None:
        conflict.where = compiler.predicate(where.this, "WHERE").fn
    return conflict


# --- UPDATE and DELETE ----------------------------------------------------------------


@dataclass
class TargetRows:
    """How UPDATE/DELETE find their rows: a key lookup or a filtered scan."""

    table: TableDef
    lookup: KeyLookup | None
    filter: Any
    where: Fn | None

    def collect(self, env: Env) -> list[tuple[bytes, Row]]:
        """Every target row, materialized before any write."""
        where = self.where
        candidates: Iterable[tuple[bytes, Row]]
        hit = self.lookup.fetch(env) if self.lookup is not None else NOT_A_KEY
        if hit is None:
            candidates = []
        elif hit is not NOT_A_KEY:
            assert isinstance(hit, tuple)
            candidates = [hit]
        elif self.lookup is not None:
            candidates = env.ctx.scan(self.table)  # a key that cannot be looked up: scan
        else:
            candidates = env.ctx.scan(self.table, self.filter(env))
        if where is None:
            return list(candidates)
        return [(k, r) for k, r in candidates if where(r, env) is True]


def _plan_targets(planner: Planner, node: exp.Expression, table: TableDef, scope: Scope) -> TargetRows:
    where_node = node.args.get("where")
    compiler = Compiler(planner, scope, "WHERE")
    if where_node is None:
        return TargetRows(table, None, build_filter([]), None)
    conds = conjuncts(where_node.this)
    where = compiler.predicate(where_node.this, "WHERE").fn
    if where_node.find(exp.Subquery, exp.Exists, exp.Select) is None:
        matched = match_key(planner, table, compiler, conds)
        if matched is not None:
            return TargetRows(table, matched[0], None, where)

    def owns(col: exp.Column) -> tuple[int, SqlType | None] | None:
        return scope.find(col.name, col.table or None)

    terms = extract_terms(Compiler(planner, Scope([]), "WHERE"), conds, owns)
    return TargetRows(table, None, build_filter(terms), where)


def _writable(table: TableDef) -> TableDef:
    """``table``, unless it is a system table (42501: offsetdb alone writes those)."""
    if is_system_table(table.name):
        raise errors.ProgrammingError(
            f'permission denied: "{table.name}" is a system table; offsetdb writes it itself', "42501"
        )
    return table


def _target_table(planner: Planner, node: exp.Expression) -> tuple[TableDef, Scope]:
    target = node.this
    if not isinstance(target, exp.Table):
        raise errors.not_supported(f"{node.key.upper()} of {target.sql()}")
    table = _writable(planner.table(target.name))
    alias = target.args.get("alias")
    qualifier = alias.name if alias is not None and alias.name else table.name
    return table, table_scope(table, qualifier)


@dataclass
class UpdatePlan:
    """A planned UPDATE."""

    targets: TargetRows
    sets: list[tuple[int, Fn]]
    returning: Returning | None

    def execute(self, env: Env) -> Result:
        """Compute every new row from its old row, then write them."""
        table = self.targets.table
        ctx = env.ctx
        out: list[Row] = []
        rows = self.targets.collect(env)
        for key, old in rows:
            new = list(old)
            for index, fn in self.sets:
                new[index] = fn(old, env)
            if self.returning is not None:
                final = coerce_row(table, new)
                ctx.update(table, key, final)
                out.append(self.returning.apply(final, env))
            else:
                ctx.update(table, key, tuple(new))
        return _result(f"UPDATE {len(rows)}", len(rows), self.returning, out)


def plan_update(planner: Planner, node: exp.Update) -> UpdatePlan:
    """Plan an UPDATE statement."""
    if node.args.get("from_") or node.args.get("from"):
        raise errors.not_supported("UPDATE ... FROM")
    for key in ("order", "limit", "joins"):
        if node.args.get(key):
            raise errors.not_supported(f"UPDATE ... {key.upper()}")
    table, scope = _target_table(planner, node)
    compiler = Compiler(planner, scope, "UPDATE")
    sets: list[tuple[int, Fn]] = []
    seen: set[int] = set()
    for assignment in node.expressions:
        if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
            raise errors.not_supported(f"SET {assignment.sql()}")
        index = table.column_index(assignment.this.name)
        if index in seen:
            raise errors.ProgrammingError(
                f'multiple assignments to same column "{assignment.this.name}"', sqlstate="42601"
            )
        seen.add(index)
        value = assignment.expression
        if isinstance(value, exp.Var) and value.name.upper() == "DEFAULT":
            default = compile_default(planner, table, index)
            sets.append((index, default if default is not None else _null_fn))
            continue
        sets.append((index, compiler.compile(value).fn))
    targets = _plan_targets(planner, node, table, scope)
    return UpdatePlan(targets, sets, plan_returning(planner, node, scope))


def _null_fn(row: Row, env: Env) -> Any:
    return None


@dataclass
class DeletePlan:
    """A planned DELETE."""

    targets: TargetRows
    returning: Returning | None

    def execute(self, env: Env) -> Result:
        """Collect the target rows, then delete them."""
        table = self.targets.table
        ctx = env.ctx
        rows = self.targets.collect(env)
        out: list[Row] = []
        for key, old in rows:
            ctx.delete(table, key)
            if self.returning is not None:
                out.append(self.returning.apply(old, env))
        return _result(f"DELETE {len(rows)}", len(rows), self.returning, out)


def plan_delete(planner: Planner, node: exp.Delete) -> DeletePlan:
    """Plan a DELETE statement."""
    if node.args.get("using"):
        raise errors.not_supported("DELETE ... USING")
    for key in ("order", "limit"):
        if node.args.get(key):
            raise errors.not_supported(f"DELETE ... {key.upper()}")
    table, scope = _target_table(planner, node)
    targets = _plan_targets(planner, node, table, scope)
    return DeletePlan(targets, plan_returning(planner, node, scope))
