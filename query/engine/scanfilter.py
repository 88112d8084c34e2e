"""From a WHERE clause to a :class:`~offsetdb.query.context.ScanFilter`, and key values.

The scan filter is what the transaction records as the predicate it read (SERIALIZABLE
certification), so the narrower the better; but it is only a hint, and the engine always
re-applies the whole WHERE clause. A term is kept only when its value converts *exactly*
to the column's type; anything doubtful is dropped, which only widens the predicate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp

from offsetdb.query.context import Conjunct, ConjunctOp, ScanFilter
from offsetdb.types import INT64_MAX, INT64_MIN, Kind, SqlType, coerce

from . import values as V
from .expressions import Compiler
from .runtime import Env, Fn

NO_MATCH = object()  # a value no row's column can equal (NULL, 2.5 for an integer)
# A value that rows may equal without being equal as a key: a float8 meeting a NUMERIC
# key compares in float8, where many numerics round to one float. Look-ups must scan.
NOT_A_KEY = object()

_FLIP: dict[str, ConjunctOp] = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_OPS: dict[type, ConjunctOp] = {exp.EQ: "=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}


def key_value(value: Any, t: SqlType) -> Any:
    """``value`` converted exactly to column type ``t``, or NO_MATCH.

    A string is parsed as the column's type, as PostgreSQL parses an untyped literal;
    one that cannot be parsed raises 22P02 (``WHERE id = 'abc'``).
    """
    if value is None:
        return NO_MATCH
    kind = t.kind
    vt = type(value)
    if vt is str and kind not in V.TEXT_KINDS:
        if kind in V.INT_KINDS:
            value = V.cast(value, t)  # '2.0' is 22P02 for an integer column
            vt = type(value)
        else:
            converted = coerce(value, t)
            if kind is Kind.NUMERIC and converted != Decimal(value.strip()):
                return NO_MATCH
            return converted
    if kind in V.INT_KINDS:
        if vt is int:
            lo, hi = (-(2**31), 2**31 - 1) if kind is Kind.INTEGER else (INT64_MIN, INT64_MAX)
            return value if lo <= value <= hi else NO_MATCH
        if vt in (float, Decimal):
            if value != value or value in (float("inf"), float("-inf")):
                return NO_MATCH
            return key_value(int(value), t) if value == int(value) else NO_MATCH
        raise V.operator_error(value, "=", 0)
    if kind in V.FLOAT_KINDS:
        if vt in (int, float, Decimal):
            return float(value)
        raise V.operator_error(value, "=", 0.0)
    if kind is Kind.NUMERIC:
        if vt is int or vt is Decimal:
            converted = coerce(value, t)
            return converted if converted == value else NO_MATCH
        if vt is float:
            return NOT_A_KEY
        raise V.operator_error(value, "=", Decimal(0))
    if kind in V.TEXT_KINDS:
        if vt is not str:
            raise V.operator_error(value, "=", "")
        if t.length is not None and len(value) > t.length:
            return NO_MATCH
        return value
    if kind is Kind.DATE:
        if vt is dt.date:
            return value
        if vt is dt.datetime:
            return value.date() if value.time() == dt.time() else NO_MATCH
        raise V.operator_error(value, "=", dt.date(2000, 1, 1))
    if kind is Kind.TIMESTAMP:
        if vt is dt.datetime or vt is dt.date:
            return coerce(value, t)
        raise V.operator_error(value, "=", dt.datetime(2000, 1, 1))
    if kind is Kind.BOOLEAN:
        if vt is bool:
            return value
        raise V.operator_error(value, "=", True)
    if vt is bytes:
        return value
    raise V.operator_error(value, "=", b"")


@dataclass
class Term:
    """One pushable term: column ``column`` ``op`` the values of ``getters``."""

    column: int
    op: ConjunctOp
    getters: list[Fn]
    type: SqlType


def extract_terms(
    compiler: Compiler, conds: list[exp.Expression],
    owns: Callable[[exp.Column], tuple[int, SqlType | None] | None],
) -> list[Term]:
    """The terms of ``conds`` of the form ``column op constant-or-parameter``.

    Args:
        compiler: compiles the constant side (parameters, literals).
        conds: AND-ed conditions.
        owns: (table column index, type) of a column node, None when not this table's.

    """
    terms: list[Term] = []

    def value_side(node: exp.Expression) -> Fn | None:
        if node.find(exp.Column, exp.Subquery, exp.Select) is not None:
            return None
        try:
            compiled = compiler.compile(node)
        except Exception:
            return None
        if compiled.const and not compiled.untyped and compiled.type is None:
            return None
        if compiled.const or compiled.param is not None:
            return compiled.fn
        return None

    def column_of(node: exp.Expression) -> tuple[int, SqlType] | None:
        while isinstance(node, exp.Paren):
            node = node.this
        if not isinstance(node, exp.Column):
            return None
        try:
            hit = owns(node)
        except Exception:
            return None
        if hit is None or hit[1] is None:
            return None
        return hit[0], hit[1]

    for cond in conds:
        if cond.args.get("negate"):
            continue
        if isinstance(cond, tuple(_OPS)):
            op = _OPS[type(cond)]
            left = column_of(cond.this)
            if left is not None:
                getter = value_side(cond.expression)
                if getter is not None:
                    terms.append(Term(left[0], op, [getter], left[1]))
                continue
            right = column_of(cond.expression)
            if right is not None:
                getter = value_side(cond.this)
                if getter is not None:
                    terms.append(Term(right[0], _FLIP[op], [getter], right[1]))
        elif isinstance(cond, exp.Between) and not cond.args.get("symmetric"):
            col = column_of(cond.this)
            lo = value_side(cond.args["low"])
            hi = value_side(cond.args["high"])
            if col is not None and lo is not None and hi is not None:
                terms.append(Term(col[0], ">=", [lo], col[1]))
                terms.append(Term(col[0], "<=", [hi], col[1]))
        elif isinstance(cond, exp.In) and cond.args.get("query") is None:
            col = column_of(cond.this)
            getters = [value_side(e) for e in cond.expressions]
            if col is not None and getters and all(g is not None for g in getters):
                terms.append(Term(col[0], "IN", [g for g in getters if g is not None], col[1]))
        elif isinstance(cond, exp.Is) and isinstance(cond.expression, exp.Null):
            col = column_of(cond.this)
            if col is not None:
                terms.append(Term(col[0], "IS NULL", [], col[1]))
    return terms


_EMPTY = ScanFilter()


def build_filter(terms: list[Term]) -> Callable[[Env], ScanFilter]:
    """A function of the execution giving the ScanFilter for ``terms``."""
    if not terms:
        return lambda env: _EMPTY

    def make(env: Env) -> ScanFilter:
        out: list[Conjunct] = []
        for term in terms:
            if term.op == "IS NULL":
                out.append(Conjunct(term.column, "IS NULL", ()))
                continue
            try:
                vals = [key_value(g((), env), term.type) for g in term.getters]
            except Exception:
                continue  # the executor reports the error with its own words
            if any(v is NOT_A_KEY for v in vals):
                continue  # dropping a term only widens the scan
            if term.op == "IN":
                vals = [v for v in vals if v is not NO_MATCH]
                if len(vals) != len(term.getters):
                    continue
                out.append(Conjunct(term.column, "IN", tuple(vals)))
            elif vals[0] is not NO_MATCH:
                out.append(Conjunct(term.column, term.op, (vals[0],)))
        return ScanFilter(conjuncts=tuple(out))

    if all(_is_constant(t) for t in terms):
        fixed = make(None)  # type: ignore[arg-type]
        return lambda env: fixed
    return make


def _is_constant(term: Term) -> bool:
    try:
        for g in term.getters:
            g((), None)  # type: ignore[arg-type]
    except Exception:
        return False
    return True
