"""Compiling sqlglot expression trees into Python closures, once per plan.

:class:`Compiler` turns a node into a :class:`~.runtime.CExpr` against a
:class:`~.scope.Scope`. Per-row evaluation never looks at the sqlglot tree again. NULL
handling and SQL's three-valued logic live here: comparisons and arithmetic return
``None`` when an operand is NULL, AND/OR follow the truth tables (NULL AND FALSE is
FALSE, NULL OR TRUE is TRUE), and callers that filter keep a row only when the
predicate ``is True``.

Constant subtrees are folded at compile time; a fold that raises is left to run time, so
an error in a branch that never runs (``CASE WHEN false THEN 1/0 END``) is never raised.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from offsetdb import errors, numeric
from offsetdb.types import INT64_MAX, INT64_MIN, Kind, SqlType, coerce, to_float4, type_from_name

from . import values as V
from .datetimes import parse_interval
from .runtime import CExpr, Env, Fn, Row, constant
from .scope import Scope, resolve_error

if TYPE_CHECKING:
    from .select import Planner, QueryPlan


def is_aggregate(node: exp.Expression) -> bool:
    """True for an aggregate call (including one wrapped in FILTER)."""
    if isinstance(node, exp.Filter):
        return is_aggregate(node.this)
    return isinstance(node, exp.AggFunc)


def sql_type_of(data_type: exp.DataType) -> SqlType:
    """The SqlType a sqlglot DataType names (0A000 naming it when unsupported)."""
    dtype = data_type.this
    name = dtype.name.lower() if hasattr(dtype, "name") else str(dtype).lower()
    # sqlglot spells REAL as FLOAT and FLOAT as DOUBLE; PostgreSQL's names are wanted here.
    name = {"float": "real", "double": "double precision", "tinyint": "smallint"}.get(name, name)
    if name in ("serial", "bigserial", "smallserial"):
        raise errors.not_supported(f"type {name.upper()}")
    params = [p.this for p in data_type.expressions if isinstance(p, exp.DataTypeParam)]
    if params and name not in ("varchar", "char", "nchar", "nvarchar", "character varying", "decimal", "numeric"):
        raise errors.SqlSyntaxError(f'type modifier is not allowed for type "{name}"')
    nums: list[int] = []
    for p in params:
        if not isinstance(p, exp.Literal) or p.is_string or not p.name.isdigit():
            raise errors.SqlSyntaxError(f"invalid type modifier in {data_type.sql(dialect='postgres')}")
        nums.append(int(p.name))
    if name in ("varchar", "char", "nchar", "nvarchar", "character varying"):
        return type_from_name(name, length=nums[0] if nums else None)
    if name in ("decimal", "numeric"):
        return type_from_name(
            name, precision=nums[0] if nums else None, scale=nums[1] if len(nums) > 1 else 0
        )
    return type_from_name(name)


def _flatten_and(node: exp.Expression) -> list[exp.Expression]:
    """The AND-ed terms of a predicate."""
    out: list[exp.Expression] = []
    stack = [node]
    while stack:
        n = stack.pop()
        while isinstance(n, exp.Paren):
            n = n.this
        if isinstance(n, exp.And):
            stack.append(n.expression)
            stack.append(n.this)
        else:
            out.append(n)
    return out


conjuncts = _flatten_and


def _fold(result: CExpr, parts: list[CExpr]) -> CExpr:
    """``result`` replaced by its constant value when every operand is constant."""
    if result.const or not all(p.const for p in parts):
        return result
    try:
        value = result.fn((), None)  # type: ignore[arg-type]
    except errors.Error:
        return result  # raise at run time, and only if it is really evaluated
    return constant(value, result.type)


_CMP_OPS: dict[type, tuple[str, Callable[[Any, Any], Any], Callable[[Any, Any], bool]]] = {
    exp.EQ: ("=", operator.eq, V.sql_eq),
    exp.NEQ: ("<>", operator.ne, V.sql_ne),
    exp.LT: ("<", operator.lt, V.sql_lt),
    exp.LTE: ("<=", operator.le, V.sql_le),
    exp.GT: (">", operator.gt, V.sql_gt),
    exp.GTE: (">=", operator.ge, V.sql_ge),
}
_FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class Compiler:
    """Compiles expressions evaluated on the rows of one scope.

    Args:
        planner: the statement planner (for subqueries and the table catalog).
        scope: the columns of the rows the expressions will see.
        clause: the clause being compiled, for error messages ("WHERE").

    """

    def __init__(self, planner: Planner, scope: Scope, clause: str = "this context") -> None:
        self.planner = planner
        self.scope = scope
        self.clause = clause
        # deepest enclosing level referenced (1: the parent scope); tells a subquery
        # whether it is correlated, and how its results may be cached
        self.outer_depth = 0
        self.local_refs = 0

    # --- entry points -----------------------------------------------------------------

    def compile(self, node: exp.Expression) -> CExpr:
        """Compile ``node`` into a closure over this scope's rows."""
        special = self.override(node)
        if special is not None:
            return special
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            compiled = handler(self, node)
            if node.args.get("negate") and not isinstance(node, (exp.Like, exp.ILike)):
                # sqlglot spells "x IS NOT NULL" and friends as the node with negate=True
                return _negate(compiled)
            return compiled
        from . import functions

        if isinstance(node, exp.Window):
            raise errors.not_supported("window functions")
        if is_aggregate(node):
            return self.aggregate(node)
        if isinstance(node, (exp.Func, exp.IntDiv)):
            return functions.compile_function(self, node)
        raise errors.not_supported(f"expression {node.key.upper()}")

    def predicate(self, node: exp.Expression, clause: str) -> CExpr:
        """Compile a condition (WHERE, ON, HAVING): its type must be boolean (42804)."""
        compiled = self.compile(node)
        if compiled.type is not None and compiled.type.kind is not Kind.BOOLEAN:
            raise errors.DatatypeMismatch(
                f"argument of {clause} must be type boolean, not type "
                f"{V.static_type_name(compiled.type)}"
            )
        return compiled

    def override(self, node: exp.Expression) -> CExpr | None:
        """Hook for subclasses: a replacement compilation of ``node``, or None."""
        return None

    def aggregate(self, node: exp.Expression) -> CExpr:
        """An aggregate where none is allowed (42803); the grouped compiler overrides it."""
        raise errors.GroupingError(f"aggregate functions are not allowed in {self.clause}")

    # --- columns and parameters -------------------------------------------------------

    def column(self, node: exp.Column) -> CExpr:
        """A column reference, local or from an enclosing query (correlation)."""
        if isinstance(node.this, exp.Star):
            raise errors.SqlSyntaxError(f"{node.sql()} is not allowed in {self.clause}")
        name = node.name
        qualifier = node.table or None
        if node.args.get("db"):
            raise errors.not_supported(f"qualified name {node.sql()}")
        scope: Scope | None = self.scope
        depth = 0
        while scope is not None:
            hit = scope.lookup(name, qualifier)
            if hit is not None:
                index, sql_type = hit
                return self._column_ref(depth, index, sql_type)
            scope = scope.parent
            depth += 1
        raise resolve_error(name, qualifier, self.scope)

    def _column_ref(self, depth: int, index: int, sql_type: SqlType | None) -> CExpr:
        if depth == 0:
            self.local_refs += 1
            getter = operator.itemgetter(index)

            def local(row: Row, env: Env) -> Any:
                return getter(row)

            return CExpr(local, sql_type)
        self.outer_depth = max(self.outer_depth, depth)
        back = -depth

        def outer(row: Row, env: Env) -> Any:
            return env.outer[back][index]

        return CExpr(outer, sql_type)

    def parameter(self, node: exp.Expression) -> CExpr:
        """A placeholder: ``env.params[slot]``, typed by context."""
        slot = node.meta.get("slot")
        if slot is None:
            raise errors.InternalError("placeholder without a slot")

        def param(row: Row, env: Env) -> Any:
            return env.params[slot]

        return CExpr(param, None, untyped=True, param=slot)

    # --- literals ---------------------------------------------------------------------

    def literal(self, node: exp.Literal) -> CExpr:
        """A number or string literal (numbers with a point or exponent are NUMERIC)."""
        text = node.this
        if node.is_string:
            return constant(text, V.TEXT, untyped=True)
        if text.isascii() and text.isdigit():
            if len(text) <= 19:
                number = int(text)
                if number < 2**31:
                    return constant(number, V.INTEGER)
                if number <= INT64_MAX:
                    return constant(number, V.BIGINT)
            return constant(numeric.parse(text), V.NUMERIC)
        try:
            return constant(numeric.parse(text), V.NUMERIC)
        except errors.InvalidTextRepresentation:
            raise errors.SqlSyntaxError(f'syntax error at or near "{text}"') from None

    # --- helpers for typed operands ---------------------------------------------------

    def resolve_untyped(self, a: CExpr, b: CExpr) -> tuple[CExpr, CExpr]:
        """A string literal meeting a typed operand is parsed as that type (22P02 if not)."""
        if a.const and a.untyped and isinstance(a.value, str) and b.type is not None:
            a = self._literal_as(a, b.type)
        if b.const and b.untyped and isinstance(b.value, str) and a.type is not None:
            b = self._literal_as(b, a.type)
        return a, b

    def _literal_as(self, lit: CExpr, target: SqlType) -> CExpr:
        if V.category(target) == "text":
            return constant(lit.value, V.TEXT)
        if target.kind in V.INT_KINDS:
            # an untyped literal takes the integer type: '2.0' is 22P02, as in PostgreSQL
            return constant(V.cast(lit.value, target), target)
        if target.kind is Kind.NUMERIC:
            target = V.NUMERIC  # compare at full precision, not the column's scale
        return constant(coerce(lit.value, target, "literal"), target)

    def check_comparable(self, a: CExpr, b: CExpr, op: str) -> bool:
        """True when both operands have the same comparison family (a fast path is safe).

        Raises 42883 when both types are known and cannot be compared at all.
        """
        ca = V.category(a.type)
        cb = V.category(b.type)
        if ca is None or cb is None:
            return False
        if ca != cb:
            raise errors.UndefinedFunction(
                f"operator does not exist: {V.static_type_name(a.type)} {op} "
                f"{V.static_type_name(b.type)}"
            )
        if ca == "time":
            return a.type == b.type
        if ca == "num":
            # float8 meets numeric/integer: compared in float8, not by Python's exact ==
            assert a.type is not None and b.type is not None
            return (a.type.kind in V.FLOAT_KINDS) == (b.type.kind in V.FLOAT_KINDS)
        return True

    # --- subqueries ---------------------------------------------------------------------

    def subquery(self, node: exp.Expression) -> tuple[QueryPlan, Callable[[Row, Env], list[Row]]]:
        """Plan a subquery whose enclosing level is this scope; return it and a runner.

        The runner gives the subquery's rows for the current row, computed once per
        execution when uncorrelated, once per distinct outer row when correlated.
        """
        plan = self.planner.plan_query(node, parent=self.scope)
        if plan.outer_depth > 1:
            self.outer_depth = max(self.outer_depth, plan.outer_depth - 1)
        correlated = plan.outer_depth > 0
        key = object()

        if not correlated:

            def run(row: Row, env: Env) -> list[Row]:
                cached = env.cache.get(key)
                if cached is None:
                    cached = env.cache[key] = list(plan.rows(env.child(row)))
                return cached

            return plan, run

        def run_correlated(row: Row, env: Env) -> list[Row]:
            cache_key = (key, env.outer, row)
            try:
                cached = env.cache.get(cache_key)
            except TypeError:  # an unhashable value: no caching for this row
                return list(plan.rows(env.child(row)))
            if cached is None:
                cached = env.cache[cache_key] = list(plan.rows(env.child(row)))
            return cached

        return plan, run_correlated


# --- node handlers ------------------------------------------------------------------


def _column(c: Compiler, node: exp.Expression) -> CExpr:
    assert isinstance(node, exp.Column)
    return c.column(node)


def _literal(c: Compiler, node: exp.Expression) -> CExpr:
    assert isinstance(node, exp.Literal)
    return c.literal(node)


def _raw_string(c: Compiler, node: exp.Expression) -> CExpr:
    # a dollar-quoted string ($$text$$): an untyped literal, like 'text'
    return constant(node.this, V.TEXT, untyped=True)


def _boolean(c: Compiler, node: exp.Expression) -> CExpr:
    return constant(bool(node.this), V.BOOLEAN)


def _null(c: Compiler, node: exp.Expression) -> CExpr:
    return constant(None, None)


def _paren(c: Compiler, node: exp.Expression) -> CExpr:
    return c.compile(node.this)


def _parameter(c: Compiler, node: exp.Expression) -> CExpr:
    return c.parameter(node)


def _placeholder(c: Compiler, node: exp.Expression) -> CExpr:
    return c.parameter(node)


def _alias(c: Compiler, node: exp.Expression) -> CExpr:
    return c.compile(node.this)


def _not(c: Compiler, node: exp.Expression) -> CExpr:
    inner = c.predicate(node.this, "NOT")
    f = inner.fn

    def not_(row: Row, env: Env) -> Any:
        v = f(row, env)
        return None if v is None else not v

    return _fold(CExpr(not_, V.BOOLEAN), [inner])


def _negate(inner: CExpr) -> CExpr:
    f = inner.fn

    def not_(row: Row, env: Env) -> Any:
        v = f(row, env)
        return None if v is None else not v

    return _fold(CExpr(not_, V.BOOLEAN), [inner])


def _and(c: Compiler, node: exp.Expression) -> CExpr:
    a = c.predicate(node.this, "AND")
    b = c.predicate(node.expression, "AND")
    fa, fb = a.fn, b.fn

    def and_(row: Row, env: Env) -> Any:
        x = fa(row, env)
        if x is False:
            return False
        y = fb(row, env)
        if y is False:
            return False
        if x is None or y is None:
            return None
        return True

    return _fold(CExpr(and_, V.BOOLEAN), [a, b])


def _or(c: Compiler, node: exp.Expression) -> CExpr:
    a = c.predicate(node.this, "OR")
    b = c.predicate(node.expression, "OR")
    fa, fb = a.fn, b.fn

    def or_(row: Row, env: Env) -> Any:
        x = fa(row, env)
        if x is True:
            return True
        y = fb(row, env)
        if y is True:
            return True
        if x is None or y is None:
            return None
        return False

    return _fold(CExpr(or_, V.BOOLEAN), [a, b])


def _comparison(c: Compiler, node: exp.Expression) -> CExpr:
    op, fast, generic = _CMP_OPS[type(node)]
    right_node = node.expression
    if isinstance(right_node, (exp.Any, exp.All)):
        return _quantified(c, node.this, op, right_node)
    if isinstance(node.this, (exp.Any, exp.All)):
        return _quantified(c, right_node, _FLIPPED[op], node.this)
    a, b = c.resolve_untyped(c.compile(node.this), c.compile(right_node))
    return compare(c, a, b, op)


def compare(c: Compiler, a: CExpr, b: CExpr, op: str) -> CExpr:
    """``a op b`` with NULL propagation; op is one of = <> < <= > >=."""
    fast, generic = {
        "=": (operator.eq, V.sql_eq),
        "<>": (operator.ne, V.sql_ne),
        "<": (operator.lt, V.sql_lt),
        "<=": (operator.le, V.sql_le),
        ">": (operator.gt, V.sql_gt),
        ">=": (operator.ge, V.sql_ge),
    }[op]
    same = c.check_comparable(a, b, op)
    cmp: Callable[[Any, Any], Any] = fast if same else generic
    fa, fb = a.fn, b.fn
    if b.const:
        k = b.value
        if k is None:
            return constant(None, V.BOOLEAN)

        def cmp_const(row: Row, env: Env) -> Any:
            x = fa(row, env)
            if x is None:
                return None
            return cmp(x, k)

        return _fold(CExpr(cmp_const, V.BOOLEAN), [a, b])

    def cmp_(row: Row, env: Env) -> Any:
        # both operands are evaluated, as PostgreSQL evaluates a strict operator's
        # arguments: an error on the right (a subquery's 21000) is not hidden by a NULL
        x = fa(row, env)
        y = fb(row, env)
        if x is None or y is None:
            return None
        return cmp(x, y)

    return _fold(CExpr(cmp_, V.BOOLEAN), [a, b])


def _quantified(c: Compiler, left: exp.Expression, op: str, q: exp.Expression) -> CExpr:
    """``x op ANY (subquery)`` / ``x op ALL (subquery)`` with three-valued logic."""
    target = q.this
    while isinstance(target, exp.Paren):
        target = target.this
    if isinstance(target, exp.Subquery):
        target = target.this
    if not isinstance(target, (exp.Select, exp.SetOperation)):
        raise errors.not_supported(f"{q.key.upper()} over an array")
    a = c.compile(left)
    plan, run = c.subquery(target)
    if len(plan.columns) != 1:
        raise errors.SqlSyntaxError("subquery has too many columns")
    generic = {
        "=": V.sql_eq,
        "<>": V.sql_ne,
        "<": V.sql_lt,
        "<=": V.sql_le,
        ">": V.sql_gt,
        ">=": V.sql_ge,
    }[op]
    is_all = isinstance(q, exp.All)
    fa = a.fn

    def quantified(row: Row, env: Env) -> Any:
        x = fa(row, env)
        rows = run(row, env)
        if not rows:
            return is_all
        if x is None:
            return None
        saw_null = False
        for (y,) in rows:
            if y is None:
                saw_null = True
                continue
            r = generic(x, y)
            if is_all and not r:
                return False
            if not is_all and r:
                return True
        if saw_null:
            return None
        return is_all

    return CExpr(quantified, V.BOOLEAN)


def _null_safe(c: Compiler, node: exp.Expression) -> CExpr:
    a, b = c.resolve_untyped(c.compile(node.this), c.compile(node.expression))
    c.check_comparable(a, b, "IS DISTINCT FROM")
    fa, fb = a.fn, b.fn
    want_equal = isinstance(node, exp.NullSafeEQ)

    def distinct(row: Row, env: Env) -> Any:
        x = fa(row, env)
        y = fb(row, env)
        equal = (x is None and y is None) if x is None or y is None else V.sql_eq(x, y)
        return equal if want_equal else not equal

    return _fold(CExpr(distinct, V.BOOLEAN), [a, b])


def _is(c: Compiler, node: exp.Expression) -> CExpr:
    a = c.compile(node.this)
    fa = a.fn
    target = node.expression
    if isinstance(target, exp.Null):

        def is_null(row: Row, env: Env) -> Any:
            return fa(row, env) is None

        return _fold(CExpr(is_null, V.BOOLEAN), [a])
    if isinstance(target, exp.Boolean):
        want = bool(target.this)

        def is_bool(row: Row, env: Env) -> Any:
            return fa(row, env) is want

        return _fold(CExpr(is_bool, V.BOOLEAN), [a])
    raise errors.not_supported(f"IS {target.sql()}")


def _int_result_type(a: SqlType | None, b: SqlType | None) -> SqlType | None:
    if a is None or b is None:
        return None
    if a.kind is Kind.INTEGER and b.kind is Kind.INTEGER:
        return V.INTEGER
    return V.BIGINT


def arith_type(op: str, a: SqlType | None, b: SqlType | None) -> SqlType | None:
    """The static result type of ``a op b`` (None when it depends on run-time values)."""
    if a is None or b is None:
        return None
    ka, kb = a.kind, b.kind
    if ka in V.NUMBER_KINDS and kb in V.NUMBER_KINDS:
        if op == "%" and (ka in V.FLOAT_KINDS or kb in V.FLOAT_KINDS):
            raise errors.UndefinedFunction(
                f"operator does not exist: {V.static_type_name(a)} % {V.static_type_name(b)}"
            )
        if ka in V.INT_KINDS and kb in V.INT_KINDS:
            return _int_result_type(a, b) if op != "^" else V.DOUBLE
        # real op real stays real; real with anything else is double precision
        if op != "^" and ka is Kind.REAL and kb is Kind.REAL:
            return V.REAL
        if ka in V.FLOAT_KINDS or kb in V.FLOAT_KINDS:
            return V.DOUBLE
        return V.NUMERIC
    if op in "+-":
        if ka is Kind.DATE and kb is Kind.INTEGER:  # date +- bigint does not exist
            return V.DATE
        if ka is Kind.INTEGER and kb is Kind.DATE and op == "+":
            return V.DATE
        if ka is Kind.DATE and kb is Kind.DATE and op == "-":
            return V.INTEGER
        if ka in V.TIME_KINDS and kb in V.TIME_KINDS and op == "-":
            return None  # an interval, which has no column type
    raise errors.UndefinedFunction(
        f"operator does not exist: {V.static_type_name(a)} {op} {V.static_type_name(b)}"
    )


_ARITH: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    exp.Add: ("+", V.add),
    exp.Sub: ("-", V.sub),
    exp.Mul: ("*", V.mul),
    exp.Div: ("/", V.div),
    exp.Mod: ("%", V.mod),
    exp.Pow: ("^", V.power),
}


def _arith(c: Compiler, node: exp.Expression) -> CExpr:
    op, generic = _ARITH[type(node)]
    a, b = c.compile(node.this), c.compile(node.expression)
    if op == "+":
        # timestamp + 'text' reads the text as an interval (the only + a timestamp has);
        # date + 'text' could be date + integer or date + interval: PostgreSQL refuses
        for typed, lit in ((a, b), (b, a)):
            if lit.const and lit.untyped and isinstance(lit.value, str) and typed.type is not None:
                if typed.type.kind is Kind.TIMESTAMP:
                    interval = constant(parse_interval(lit.value), None)
                    a, b = (typed, interval) if typed is a else (interval, typed)
                    return arithmetic(a, b, op, generic)
                if typed.type.kind is Kind.DATE:
                    raise errors.ProgrammingError(
                        "operator is not unique: date + unknown", sqlstate="42725"
                    )
    a, b = c.resolve_untyped(a, b)
    return arithmetic(a, b, op, generic)


def arithmetic(a: CExpr, b: CExpr, op: str, generic: Callable[[Any, Any], Any]) -> CExpr:
    """``a op b`` with NULL propagation and integer overflow checks."""
    if _is_interval(a) or _is_interval(b):
        result_type: SqlType | None = None
        if op in "+-" and (_is_time(a.type) or _is_time(b.type)):
            result_type = V.TIMESTAMP
    else:
        result_type = arith_type(op, a.type, b.type)
    fa, fb = a.fn, b.fn
    checks_int = result_type is None or result_type.kind in V.INT_KINDS
    rtype = result_type

    def arith(row: Row, env: Env) -> Any:
        x = fa(row, env)
        y = fb(row, env)  # evaluated even after a NULL, as PostgreSQL does (see cmp_)
        if x is None or y is None:
            return None
        r = generic(x, y)
        if checks_int and type(r) is int:
            return V.check_int(r, rtype)
        return r

    if result_type is not None and result_type.kind is Kind.REAL:

        def arith_real(row: Row, env: Env) -> Any:
            r = arith(row, env)
            return None if r is None else to_float4(r)

        return _fold(CExpr(arith_real, result_type), [a, b])
    return _fold(CExpr(arith, result_type), [a, b])


def _is_interval(e: CExpr) -> bool:
    return e.const and type(e.value).__name__ in ("timedelta", "Interval")


def _is_time(t: SqlType | None) -> bool:
    return t is not None and t.kind in V.TIME_KINDS


def _neg(c: Compiler, node: exp.Expression) -> CExpr:
    a = c.compile(node.this)
    if a.const and isinstance(a.value, (int, Decimal)) and not isinstance(a.value, bool):
        value = V.neg(a.value)
        if a.type is not None and a.type.kind in V.INT_KINDS and not _is_literal(node.this):
            # the negation of a typed integer keeps its type: -(bigint min) overflows
            return constant(V.check_int(value, a.type), a.type)
        # fold -2147483648 into an INTEGER literal and -9223372036854775808 into a BIGINT
        # one, as PostgreSQL's grammar does
        if isinstance(value, Decimal) and _is_literal(node.this) and _innermost(node.this).this.isdigit():
            as_int = int(value)  # an integer literal too large for bigint until negated
            if INT64_MIN <= as_int <= INT64_MAX:
                value = as_int
        if isinstance(value, int) and -(2**31) <= value < 2**31:
            return constant(value, V.INTEGER)
        if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
            return constant(value, V.BIGINT)
        if isinstance(value, int):
            return constant(numeric.from_int(value), V.NUMERIC)
        return constant(value, a.type)
    fa = a.fn
    rtype = a.type

    def neg(row: Row, env: Env) -> Any:
        x = fa(row, env)
        if x is None:
            return None
        r = V.neg(x)
        if type(r) is int:
            return V.check_int(r, rtype)
        return r

    return _fold(CExpr(neg, a.type), [a])


def _innermost(node: exp.Expression) -> exp.Expression:
    while isinstance(node, (exp.Paren, exp.Neg)):
        node = node.this
    return node


def _is_literal(node: exp.Expression) -> bool:
    """A numeric literal under parentheses and minus signs.

    PostgreSQL's grammar folds those into one constant: ``-(-2147483648)`` is the bigint
    2147483648, not an integer negated twice.
    """
    node = _innermost(node)
    return isinstance(node, exp.Literal) and not node.is_string


def _concat(c: Compiler, node: exp.Expression) -> CExpr:
    a = c.compile(node.this)
    b = c.compile(node.expression)
    fa, fb = a.fn, b.fn
    to_text = V.to_text

    def concat(row: Row, env: Env) -> Any:
        x = fa(row, env)
        if x is None:
            return None
        y = fb(row, env)
        if y is None:
            return None
        if type(x) is bytes and type(y) is bytes:
            return x + y
        return to_text(x) + to_text(y)

    both_bytes = a.type == V.BYTEA and b.type == V.BYTEA
    return _fold(CExpr(concat, V.BYTEA if both_bytes else V.TEXT), [a, b])


def _both(first: Fn, second: Fn) -> Fn:
    """``first AND second`` in three-valued logic (``second`` unevaluated after a FALSE)."""

    def both(row: Row, env: Env) -> Any:
        p = first(row, env)
        if p is False:
            return False
        q = second(row, env)
        if q is False:
            return False
        if p is None or q is None:
            return None
        return True

    return both


def _between(c: Compiler, node: exp.Expression) -> CExpr:
    x = c.compile(node.this)
    lo = c.compile(node.args["low"])
    hi = c.compile(node.args["high"])
    x1, lo = c.resolve_untyped(x, lo)
    x2, hi = c.resolve_untyped(x, hi)
    between = _both(compare(c, x1, lo, ">=").fn, compare(c, x2, hi, "<=").fn)
    if not node.args.get("symmetric"):
        return _fold(CExpr(between, V.BOOLEAN), [x, lo, hi])
    # BETWEEN SYMMETRIC: x between the two bounds in either order
    backward = _both(compare(c, x2, hi, ">=").fn, compare(c, x1, lo, "<=").fn)

    def between_symmetric(row: Row, env: Env) -> Any:
        forward = between(row, env)
        if forward is True:
            return True
        reverse = backward(row, env)
        if reverse is True:
            return True
        return None if forward is None or reverse is None else False

    return _fold(CExpr(between_symmetric, V.BOOLEAN), [x, lo, hi])


def _in(c: Compiler, node: exp.Expression) -> CExpr:
    """``x IN (list)`` / ``x IN (subquery)``: TRUE on a match, else NULL if a NULL was seen."""
    x = c.compile(node.this)
    fx = x.fn
    query = node.args.get("query")
    if query is not None:
        target = query.this if isinstance(query, exp.Subquery) else query
        plan, run = c.subquery(target)
        if len(plan.columns) != 1:
            raise errors.SqlSyntaxError("subquery has too many columns")
        c.check_comparable(x, CExpr(fx, plan.columns[0][1]), "=")
        set_key = object()

        def in_subquery(row: Row, env: Env) -> Any:
            v = fx(row, env)
            rows = run(row, env)
            if not rows:
                return False
            if v is None:
                return None
            cache_key = (set_key, id(rows))
            entry = env.cache.get(cache_key)
            if entry is None or entry[0] is not rows:
                members = [r[0] for r in rows]
                has_null = any(m is None for m in members)
                try:
                    lookup: Any = frozenset(m for m in members if m is not None)
                except TypeError:
                    lookup = [m for m in members if m is not None]
                entry = env.cache[cache_key] = (rows, lookup, has_null)
            _, lookup, has_null = entry
            if isinstance(lookup, frozenset) and _hash_safe(v, lookup):
                if v in lookup:
                    return True
                return None if has_null else False
            for m in lookup:
                if V.sql_eq(v, m):
                    return True
            return None if has_null else False

        return CExpr(in_subquery, V.BOOLEAN)
    compiled_items = [c.compile(e) for e in node.expressions]
    typed = [i for i in compiled_items if not (i.const and i.untyped)]
    resolved = common_type([x, *typed], "IN") if typed else x.type
    target = CExpr(x.fn, resolved) if resolved is not None else x
    items = [c.resolve_untyped(target, i)[1] for i in compiled_items]
    for item in items:
        c.check_comparable(x, item, "=")
    if all(i.const for i in items):
        consts = [i.value for i in items]
        has_null = any(v is None for v in consts)
        non_null = [v for v in consts if v is not None]
        same_kind = all(exactly_comparable(x.type, i.type) for i in items)
        if same_kind:
            members = frozenset(non_null)

            def in_set(row: Row, env: Env) -> Any:
                v = fx(row, env)
                if v is None:
                    return None
                if v in members:
                    return True
                return None if has_null else False

            return _fold(CExpr(in_set, V.BOOLEAN), [x])

        def in_consts(row: Row, env: Env) -> Any:
            v = fx(row, env)
            if v is None:
                return None
            for m in non_null:
                if V.sql_eq(v, m):
                    return True
            return None if has_null else False

        return _fold(CExpr(in_consts, V.BOOLEAN), [x])
    fns = [i.fn for i in items]

    def in_list(row: Row, env: Env) -> Any:
        v = fx(row, env)
        if v is None:
            return None
        saw_null = False
        for f in fns:
            m = f(row, env)
            if m is None:
                saw_null = True
            elif V.sql_eq(v, m):
                return True
        return None if saw_null else False

    return CExpr(in_list, V.BOOLEAN)


_EXACT_NUMBERS = frozenset((int, Decimal))


def _hash_safe(v: Any, members: frozenset[Any]) -> bool:
    """Whether ``v in members`` answers SQL's ``=`` (same Python types; int/numeric mix)."""
    tv = type(v)
    for m in members:
        tm = type(m)
        if tm is not tv and not (tv in _EXACT_NUMBERS and tm in _EXACT_NUMBERS):
            return False
    return tv is not str or all(type(m) is str for m in members)


def exactly_comparable(a: SqlType | None, b: SqlType | None) -> bool:
    """Whether Python's ``==`` and hashing agree with SQL's ``=`` on values of these types."""
    ca = V.category(a)
    if ca is None or ca != V.category(b) or ca == "time":
        return False
    if ca == "num":
        assert a is not None and b is not None
        return (a.kind in V.FLOAT_KINDS) == (b.kind in V.FLOAT_KINDS)
    return True


def _exists(c: Compiler, node: exp.Expression) -> CExpr:
    target = node.this
    if isinstance(target, exp.Subquery):
        target = target.this
    plan = c.planner.plan_query(target, parent=c.scope)
    if plan.outer_depth > 1:
        c.outer_depth = max(c.outer_depth, plan.outer_depth - 1)
    correlated = plan.outer_depth > 0
    key = object()

    def exists(row: Row, env: Env) -> Any:
        if not correlated:
            cached = env.cache.get(key)
            if cached is not None:
                return cached
        for _ in plan.rows(env.child(row)):
            result = True
            break
        else:
            result = False
        if not correlated:
            env.cache[key] = result
        return result

    return CExpr(exists, V.BOOLEAN)


def _scalar_subquery(c: Compiler, node: exp.Expression) -> CExpr:
    target = node.this
    plan, run = c.subquery(target)
    if len(plan.columns) != 1:
        raise errors.SqlSyntaxError("subquery must return only one column")

    def scalar(row: Row, env: Env) -> Any:
        rows = run(row, env)
        if not rows:
            return None
        if len(rows) > 1:
            raise errors.CardinalityViolation(
                "more than one row returned by a subquery used as an expression"
            )
        return rows[0][0]

    return CExpr(scalar, plan.columns[0][1])


def _like(c: Compiler, node: exp.Expression) -> CExpr:
    escape: str | None = "\\"
    like_node = node
    if isinstance(node, exp.Escape):
        like_node = node.this
        esc = c.compile(node.expression)
        if not esc.const or not isinstance(esc.value, str) or len(esc.value) > 1:
            raise errors.DataError("invalid escape string", sqlstate="22025")
        escape = esc.value or None
    negate = bool(like_node.args.get("negate"))
    insensitive = isinstance(like_node, exp.ILike)
    a = c.compile(like_node.this)
    p = c.compile(like_node.expression)
    fa, fp = a.fn, p.fn
    flags = re.DOTALL | (re.IGNORECASE if insensitive else 0)
    if p.const:
        if p.value is None:
            return constant(None, V.BOOLEAN)
        matcher = like_regex(V.to_text(p.value), escape, flags).fullmatch

        def like_const(row: Row, env: Env) -> Any:
            v = fa(row, env)
            if v is None:
                return None
            hit = matcher(v if type(v) is str else V.to_text(v)) is not None
            return hit is not negate

        return _fold(CExpr(like_const, V.BOOLEAN), [a])

    def like(row: Row, env: Env) -> Any:
        v = fa(row, env)
        if v is None:
            return None
        pattern = fp(row, env)
        if pattern is None:
            return None
        hit = like_regex(V.to_text(pattern), escape, flags).fullmatch(V.to_text(v)) is not None
        return hit is not negate

    return CExpr(like, V.BOOLEAN)


_LIKE_CACHE: dict[tuple[str, str | None, int], re.Pattern[str]] = {}


def like_regex(pattern: str, escape: str | None, flags: int) -> re.Pattern[str]:
    """The regular expression equivalent of a LIKE pattern (% any run, _ one character)."""
    key = (pattern, escape, flags)
    cached = _LIKE_CACHE.get(key)
    if cached is not None:
        return cached
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape:
            i += 1
            if i == len(pattern):
                raise errors.DataError(
                    "LIKE pattern must not end with escape character", sqlstate="22025"
                )
            out.append(re.escape(pattern[i]))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    compiled = re.compile("".join(out), flags)
    if len(_LIKE_CACHE) > 4096:
        _LIKE_CACHE.clear()
    _LIKE_CACHE[key] = compiled
    return compiled


def _regex(c: Compiler, node: exp.Expression) -> CExpr:
    a = c.compile(node.this)
    p = c.compile(node.expression)
    fa, fp = a.fn, p.fn
    flags = re.IGNORECASE if isinstance(node, exp.RegexpILike) else 0

    def regex(row: Row, env: Env) -> Any:
        v = fa(row, env)
        pattern = fp(row, env)
        if v is None or pattern is None:
            return None
        try:
            return re.search(pattern, V.to_text(v), flags) is not None
        except re.error as e:
            raise errors.DataError(f"invalid regular expression: {e}", sqlstate="2201B") from None

    return _fold(CExpr(regex, V.BOOLEAN), [a, p])


def common_type(parts: list[CExpr], what: str) -> SqlType | None:
    """The result type of CASE/COALESCE branches (the first known, checked for family)."""
    # an untyped literal ('1999-12-31') takes the type of the others, as PostgreSQL's
    # "unknown" does; only when all are literals is the result text
    known = [p.type for p in parts if p.type is not None and not (p.const and p.untyped)]
    if not known:
        return next((p.type for p in parts if p.type is not None), None)
    first = known[0]
    result = first
    for t in known[1:]:
        if V.category(t) != V.category(first):
            raise errors.DatatypeMismatch(
                f"{what} types {V.static_type_name(first)} and {V.static_type_name(t)} "
                "cannot be matched"
            )
        if t != result and V.category(t) == "num":
            result = arith_type("+", result, t) or result
        elif t != result and V.category(t) == "time":
            result = V.TIMESTAMP
        elif t != result and V.category(t) == "text":
            result = V.TEXT
    return result


def converted(e: CExpr, target: SqlType | None) -> CExpr:
    """``e`` with its values converted to ``target``, the type resolved for its column."""
    convert = V.converter(e.type, target)
    if convert is None:
        return e
    if e.const:
        return constant(None if e.value is None else convert(e.value), target)
    f = e.fn

    def convert_value(row: Row, env: Env) -> Any:
        v = f(row, env)
        return None if v is None else convert(v)

    return CExpr(convert_value, target)


def _case(c: Compiler, node: exp.Expression) -> CExpr:
    subject = node.args.get("this")
    whens: list[tuple[Fn, Fn]] = []
    parts: list[CExpr] = []
    results: list[CExpr] = []
    subject_c = c.compile(subject) if subject is not None else None
    for when in node.args.get("ifs") or []:
        if subject_c is not None:
            s, v = c.resolve_untyped(subject_c, c.compile(when.this))
            cond = compare(c, s, v, "=")
        else:
            cond = c.predicate(when.this, "CASE/WHEN")
        result = c.compile(when.args["true"])
        whens.append((cond.fn, result.fn))
        parts += [cond, result]
        results.append(result)
    default_node = node.args.get("default")
    default = c.compile(default_node) if default_node is not None else constant(None, None)
    results.append(default)
    parts.append(default)
    rtype = common_type(results, "CASE")
    whens = [(cond, converted(result, rtype).fn) for (cond, _), result in zip(whens, results, strict=False)]
    fd = converted(default, rtype).fn

    def case(row: Row, env: Env) -> Any:
        for cond, result in whens:
            if cond(row, env) is True:
                return result(row, env)
        return fd(row, env)

    return _fold(CExpr(case, rtype), parts)


def _coalesce(c: Compiler, node: exp.Expression) -> CExpr:
    args = [c.compile(node.this)] + [c.compile(e) for e in node.expressions]
    rtype = common_type(args, "COALESCE")
    fns = [converted(a, rtype).fn for a in args]

    def coalesce(row: Row, env: Env) -> Any:
        for f in fns:
            v = f(row, env)
            if v is not None:
                return v
        return None

    return _fold(CExpr(coalesce, rtype), args)


def _nullif(c: Compiler, node: exp.Expression) -> CExpr:
    a, b = c.resolve_untyped(c.compile(node.this), c.compile(node.expression))
    c.check_comparable(a, b, "=")
    # PostgreSQL returns the first argument of the implied "=", promoted to the type
    # the comparison resolved: NULLIF(numeric, float8) is a float8
    a = converted(a, common_type([a, b], "NULLIF"))
    fa, fb = a.fn, b.fn

    def nullif(row: Row, env: Env) -> Any:
        x = fa(row, env)
        if x is None:
            return None
        y = fb(row, env)
        if y is not None and V.sql_eq(x, y):
            return None
        return x

    return _fold(CExpr(nullif, a.type), [a, b])


def _cast(c: Compiler, node: exp.Expression) -> CExpr:
    to = node.args["to"]
    if to.this == exp.DataType.Type.INTERVAL:
        inner = c.compile(node.this)
        if inner.const and isinstance(inner.value, str):
            return constant(parse_interval(inner.value), None)
        raise errors.not_supported("cast to interval")
    target = sql_type_of(to)
    a = c.compile(node.this)
    if a.const and a.untyped and isinstance(a.value, str):
        # a string literal is read by the type's input function when the statement is
        # parsed, so its errors come even from a branch that never runs
        return constant(V.cast(a.value, target), target)
    fa = a.fn
    cast_value = V.cast

    def cast(row: Row, env: Env) -> Any:
        v = fa(row, env)
        if v is None:
            return None
        return cast_value(v, target)

    return _fold(CExpr(cast, target), [a])


def _interval(c: Compiler, node: exp.Expression) -> CExpr:
    value = c.compile(node.this)
    unit = node.args.get("unit")
    if not value.const or not isinstance(value.value, str):
        if value.const and isinstance(value.value, (int, Decimal)) and unit is not None:
            text = f"{value.value} {unit.name}"
        else:
            raise errors.not_supported("INTERVAL with a non-constant value")
    else:
        text = value.value if unit is None else f"{value.value} {unit.name}"
    return constant(parse_interval(text), None)


def _subquery_node(c: Compiler, node: exp.Expression) -> CExpr:
    return _scalar_subquery(c, node)


def _tuple(c: Compiler, node: exp.Expression) -> CExpr:
    raise errors.not_supported("row constructors")


_HANDLERS: dict[type, Callable[[Compiler, exp.Expression], CExpr]] = {
    exp.Column: _column,
    exp.Literal: _literal,
    exp.RawString: _raw_string,
    exp.Boolean: _boolean,
    exp.Null: _null,
    exp.Paren: _paren,
    exp.Parameter: _parameter,
    exp.Placeholder: _placeholder,
    exp.Alias: _alias,
    exp.Not: _not,
    exp.And: _and,
    exp.Or: _or,
    exp.EQ: _comparison,
    exp.NEQ: _comparison,
    exp.LT: _comparison,
    exp.LTE: _comparison,
    exp.GT: _comparison,
    exp.GTE: _comparison,
    exp.NullSafeEQ: _null_safe,
    exp.NullSafeNEQ: _null_safe,
    exp.Is: _is,
    exp.Add: _arith,
    exp.Sub: _arith,
    exp.Mul: _arith,
    exp.Div: _arith,
    exp.Mod: _arith,
    exp.Pow: _arith,
    exp.Neg: _neg,
    exp.DPipe: _concat,
    exp.Between: _between,
    exp.In: _in,
    exp.Exists: _exists,
    exp.Subquery: _subquery_node,
    exp.Like: _like,
    exp.ILike: _like,
    exp.Escape: _like,
    exp.RegexpLike: _regex,
    exp.RegexpILike: _regex,
    exp.Case: _case,
    exp.Coalesce: _coalesce,
    exp.Nullif: _nullif,
    exp.Cast: _cast,
    exp.Interval: _interval,
    exp.Tuple: _tuple,
}
