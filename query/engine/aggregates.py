"""Aggregate functions for hash aggregation: one accumulator object per group and call.

Accumulators skip NULL inputs (COUNT(*) counts rows); over no input COUNT gives 0 and
every other aggregate NULL. Result types follow PostgreSQL: SUM of INTEGER is BIGINT,
SUM of BIGINT or NUMERIC is NUMERIC (exact, ``Decimal``), SUM and AVG of floats are
DOUBLE PRECISION; AVG of integers or numerics is NUMERIC with the scale of PostgreSQL's
numeric division (:func:`offsetdb.numeric.div`); MIN/MAX keep their argument's type.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from offsetdb import errors, numeric
from offsetdb.types import Kind, SqlType

from . import values as V


class Accumulator:
    """State of one aggregate over one group."""

    __slots__ = ()

    def add(self, value: Any) -> None:
        """Fold one non-NULL input value in."""
        raise NotImplementedError

    def result(self) -> Any:
        """The aggregate's value for the group."""
        raise NotImplementedError


class _Count(Accumulator):
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, value: Any) -> None:
        self.n += 1

    def result(self) -> Any:
        return self.n


class _Sum(Accumulator):
    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total: Any = None

    def add(self, value: Any) -> None:
        if self.total is None:
            self.total = value
        elif type(value) is int and type(self.total) is int:
            self.total += value  # exact; the result type's range is checked at the end
        else:
            self.total = V.add(self.total, value)

    def result(self) -> Any:
        return self.total


class _SumToBigint(_Sum):
    """SUM(integer): a BIGINT, 22003 past its range."""

    __slots__ = ()

    def result(self) -> Any:
        return None if self.total is None else V.check_int(self.total, V.BIGINT)


class _SumToNumeric(_Sum):
    """SUM(bigint) and SUM(numeric): NUMERIC."""

    __slots__ = ()

    def result(self) -> Any:
        total = self.total
        return numeric.from_int(total) if type(total) is int else total


class _Avg(Accumulator):
    __slots__ = ("total", "n")

    def __init__(self) -> None:
        self.total: Any = 0
        self.n = 0

    def add(self, value: Any) -> None:
        if not self.n:
            self.total = value
        elif type(value) is int and type(self.total) is int:
            self.total += value
        else:
            self.total = V.add(self.total, value)
        self.n += 1

    def result(self) -> Any:
        if not self.n:
            return None
        if type(self.total) is float:
            return self.total / self.n
        return numeric.div(Decimal(self.total), Decimal(self.n))


class _Min(Accumulator):
    __slots__ = ("best",)

    def __init__(self) -> None:
        self.best: Any = None

    def add(self, value: Any) -> None:
        if self.best is None or V.sql_lt(value, self.best):
            self.best = value

    def result(self) -> Any:
        return self.best


class _Max(Accumulator):
    __slots__ = ("best",)

    def __init__(self) -> None:
        self.best: Any = None

    def add(self, value: Any) -> None:
        if self.best is None or V.sql_gt(value, self.best):
            self.best = value

    def result(self) -> Any:
        return self.best


class _BoolAnd(Accumulator):
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None

    def add(self, value: Any) -> None:
        self.value = bool(value) if self.value is None else (self.value and bool(value))

    def result(self) -> Any:
        return self.value


class _BoolOr(_BoolAnd):
    __slots__ = ()

    def add(self, value: Any) -> None:
        self.value = bool(value) if self.value is None else (self.value or bool(value))


class _StringAgg(Accumulator):
    __slots__ = ("parts", "separator")

    def __init__(self, separator: str) -> None:
        self.parts: list[str] = []
        self.separator = separator

    def add(self, value: Any) -> None:
        self.parts.append(V.to_text(value))

    def result(self) -> Any:
        return self.separator.join(self.parts) if self.parts else None


class _Distinct(Accumulator):
    """DISTINCT wrapper: feeds each distinct value once to the inner accumulator."""

    __slots__ = ("inner", "seen")

    def __init__(self, inner: Accumulator) -> None:
        self.inner = inner
        self.seen: set[Any] = set()

    def add(self, value: Any) -> None:
        if value not in self.seen:
            self.seen.add(value)
            self.inner.add(value)

    def result(self) -> Any:
        return self.inner.result()


def make_factory(
    name: str, arg_type: SqlType | None, distinct: bool, separator: str | None = None
) -> tuple[Callable[[], Accumulator], SqlType | None]:
    """A factory of fresh accumulators for aggregate ``name``, and its result type.

    Args:
        name: count, count_star, sum, avg, min, max, bool_and, bool_or, string_agg.
        arg_type: the static type of the argument (None when unknown).
        distinct: whether the call was ``name(DISTINCT ...)``.
        separator: string_agg's separator.

    """
    kind = arg_type.kind if arg_type is not None else None
    factory: Callable[[], Accumulator]
    result_type: SqlType | None
    if name in ("count", "count_star"):
        factory, result_type = _Count, V.BIGINT
    elif name == "sum":
        if kind is not None and kind not in V.NUMBER_KINDS:
            raise errors.UndefinedFunction(
                f"function sum({V.static_type_name(arg_type)}) does not exist"
            )
        factory = _Sum
        if kind is Kind.INTEGER:
            factory, result_type = _SumToBigint, V.BIGINT
        elif kind in (Kind.BIGINT, Kind.NUMERIC):
            factory, result_type = _SumToNumeric, V.NUMERIC
        elif kind in V.FLOAT_KINDS:
            result_type = V.DOUBLE
        else:
            result_type = None
    elif name == "avg":
        if kind is not None and kind not in V.NUMBER_KINDS:
            raise errors.UndefinedFunction(
                f"function avg({V.static_type_name(arg_type)}) does not exist"
            )
        factory = _Avg
        result_type = V.DOUBLE if kind in V.FLOAT_KINDS else (V.NUMERIC if kind else None)
    elif name in ("min", "max"):
        if kind is Kind.BOOLEAN:
            raise errors.UndefinedFunction(f"function {name}(boolean) does not exist")
        factory, result_type = (_Min if name == "min" else _Max), arg_type
    elif name == "bool_and":
        factory, result_type = _BoolAnd, V.BOOLEAN
    elif name == "bool_or":
        factory, result_type = _BoolOr, V.BOOLEAN
    elif name == "string_agg":
        sep = separator or ""

        def factory() -> Accumulator:
            return _StringAgg(sep)

        result_type = V.TEXT
    else:
        raise errors.UndefinedFunction(f"function {name}() does not exist")
    if distinct:
        inner = factory

        def distinct_factory() -> Accumulator:
            return _Distinct(inner())

        return distinct_factory, result_type
    return factory, result_type
