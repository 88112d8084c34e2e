"""Statement parameters: the three placeholder styles and binding values to slots.

A statement uses one style: qmark (``?``, numbered by occurrence), PostgreSQL numbered
(``$1``; the same number may appear twice) or named (``:name``, bound from a mapping).
Each placeholder node is tagged with its slot (``node.meta["slot"]``) at prepare time, so
the expression compiler turns it into ``env.params[slot]`` without knowing the style.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlglot import exp

from offsetdb import errors

_PLAIN = frozenset((type(None), bool, int, float, Decimal, str, bytes, dt.date, dt.datetime, dt.timedelta))


class ParamSpec:
    """The parameters of one statement: style, count and (for named style) the names."""

    __slots__ = ("style", "count", "names")

    def __init__(self, style: str | None, count: int, names: tuple[str, ...]) -> None:
        self.style = style
        self.count = count
        self.names = names

    def bind(self, params: Sequence[Any] | Mapping[str, Any] | None) -> Sequence[Any]:
        """The parameter values in slot order, or 08P01 when they do not fit the statement.

        Args:
            params: a sequence (qmark and ``$n`` styles), a mapping (named style) or None.

        Returns:
            A sequence indexed by slot.

        """
        # the common case first: a positional sequence of the right length
        if (
            (type(params) is tuple or type(params) is list)
            and len(params) == self.count
            and self.style != "named"
        ):
            return normalize_values(params)
        if params is None:
            if self.count:
                raise _count_error(self.count, 0)
            return ()
        if isinstance(params, Mapping):
            if self.style != "named":
                if not params and not self.count:
                    return ()
                raise errors.ProgrammingError(
                    "a mapping of parameters needs :name placeholders", sqlstate="08P01"
                )
            try:
                return normalize_values([params[name] for name in self.names])
            except KeyError as e:
                raise errors.ProgrammingError(
                    f"no value supplied for parameter :{e.args[0]}", sqlstate="08P01"
                ) from None
        if isinstance(params, (str, bytes)):
            raise errors.ProgrammingError(
                "parameters must be a sequence or a mapping, not a string", sqlstate="08P01"
            )
        if self.style == "named" and self.count:
            raise errors.ProgrammingError(
                "named (:name) placeholders need a mapping of parameters", sqlstate="08P01"
            )
        if not isinstance(params, Sequence):
            raise errors.ProgrammingError(
                "parameters must be a sequence (a tuple or list) or a mapping, not "
                f"{type(params).__name__}",
                sqlstate="08P01",
            )
        if len(params) != self.count:
            raise _count_error(self.count, len(params))
        return normalize_values(params)


def normalize_values(values: Sequence[Any]) -> Sequence[Any]:
    """Parameter values as plain Python values of the types offsetdb stores.

    A subclass (an ``enum.StrEnum`` member, a ``numpy.float64``, a pandas ``Timestamp``)
    becomes its plain base value before anything is planned or appended: every node
    decodes plain values from the log, so the committing node must hold the same ones.
    Text must be valid UTF-8 without NUL (22021), as PostgreSQL requires.
    """
    # a plain loop, not all(...): this runs for every statement and executemany row
    for v in values:
        t = type(v)
        if t is int or t is float or v is None:
            continue
        if t is str:
            if "\x00" in v or not (v.isascii() or _encodes(v)):
                break
            continue
        if t not in _PLAIN or (t is Decimal and not v.is_finite()):
            break
    else:
        return values
    return [normalize_value(v) for v in values]


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_value(value: Any) -> Any:
    """One parameter as a plain value (see :func:`normalize_values`), or an error naming it."""
    t = type(value)
    if isinstance(value, str):
        plain = value[:] if t is not str else value  # a slice of a str subclass is a str
        check_text(plain)
        return plain
    if value is None or t in (bool, int, float, bytes, dt.timedelta, dt.date, dt.datetime):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise errors.not_supported(f"the numeric value {value}")
        return Decimal(value)
    if isinstance(value, dt.datetime):
        return dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, tzinfo=value.tzinfo,
        )
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dt.timedelta):
        return dt.timedelta(value.days, value.seconds, value.microseconds)
    raise errors.ProgrammingError(
        f"cannot bind a parameter of type {t.__module__}.{t.__qualname__}: offsetdb takes "
        "None, bool, int, float, Decimal, str, bytes, date, datetime and timedelta",
        sqlstate="08P01",
    )


def check_text(text: str) -> None:
    """22021 for text PostgreSQL cannot hold: NUL characters, lone surrogates."""
    if "\x00" in text:
        raise errors.CharacterNotInRepertoire('invalid byte sequence for encoding "UTF8": 0x00')
    if not text.isascii() and not _encodes(text):
        raise errors.CharacterNotInRepertoire(
            'invalid byte sequence for encoding "UTF8": a lone surrogate in the text'
        )


def _count_error(expected: int, got: int) -> errors.ProgrammingError:
    return errors.ProgrammingError(
        f"statement expects {expected} parameters, got {got}", sqlstate="08P01"
    )


def tag_parameters(tree: exp.Expression) -> ParamSpec:
    """Give every placeholder in ``tree`` its slot and describe the style used.

    qmark placeholders were already rewritten to ``$n`` in text order (see
    :func:`offsetdb.query.engine.prepare.split_statements`), because sqlglot's tree does
    not keep the textual order of its nodes.

    Args:
        tree: a parsed statement; its placeholder nodes get ``meta["slot"]``.

    Returns:
        The statement's :class:`ParamSpec`.

    """
    style: str | None = None
    highest = 0
    names: list[str] = []
    for node in tree.walk():
        if isinstance(node, exp.Placeholder):
            if not node.name or node.name == "?":
                raise errors.SqlSyntaxError(f'syntax error at or near "{node.name or node.sql()}"')
            this_style = "named"
            name = node.name.lower()
            if name not in names:
                names.append(name)
            node.meta["slot"] = names.index(name)
        elif isinstance(node, exp.Parameter):
            this_style = "numeric"
            try:
                number = int(node.name)
            except ValueError:
                raise errors.not_supported(f"parameter {node.sql()}") from None
            if number < 1:
                raise errors.SqlSyntaxError(f"there is no parameter ${number}")
            node.meta["slot"] = number - 1
            highest = max(highest, number)
        else:
            continue
        if style is not None and style != this_style:
            raise errors.ProgrammingError(
                "a statement cannot mix placeholder styles (?, $n, :name)", sqlstate="08P01"
            )
        style = this_style
    count = highest if style == "numeric" else len(names)
    return ParamSpec(style, count, tuple(names))
