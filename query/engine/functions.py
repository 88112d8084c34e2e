"""Scalar functions: string, math and date/time functions, by sqlglot node or by name.

sqlglot parses many functions into typed nodes (``LOWER`` into ``exp.Lower``, ``ltrim``
into ``exp.Trim``); the rest arrive as ``exp.Anonymous`` with their name. Both are
mapped here to a Python implementation. Unless marked otherwise a function is *strict*:
any NULL argument makes the result NULL without calling it, as PostgreSQL's are.
Unknown functions raise 42883 naming the function.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from sqlglot import exp

from offsetdb import errors, numeric
from offsetdb.types import SqlType

from . import values as V
from .datetimes import date_trunc, extract
from .expressions import Compiler, _fold, common_type, converted
from .formatting import to_char_datetime, to_char_number
from .runtime import CExpr, Env, Row, constant


def call(
    name: str,
    impl: Callable[..., Any],
    args: list[CExpr],
    result_type: SqlType | None,
    strict: bool = True,
    volatile: bool = False,
) -> CExpr:
    """A compiled call of ``impl`` on the compiled ``args``."""
    fns = [a.fn for a in args]
    if len(fns) == 1:
        (f0,) = fns

        def call1(row: Row, env: Env) -> Any:
            v = f0(row, env)
            if v is None and strict:
                return None
            return impl(v)

        fn = call1
    elif len(fns) == 2:
        f0, f1 = fns

        def call2(row: Row, env: Env) -> Any:
            a = f0(row, env)
            b = f1(row, env)  # every argument is evaluated, as PostgreSQL does
            if strict and (a is None or b is None):
                return None
            return impl(a, b)

        fn = call2
    else:

        def calln(row: Row, env: Env) -> Any:
            vals = [f(row, env) for f in fns]
            if strict and None in vals:
                return None
            return impl(*vals)

        fn = calln
    compiled = CExpr(fn, result_type)
    return compiled if volatile else _fold(compiled, args)


def _text_arg(v: Any) -> str:
    return v if type(v) is str else V.to_text(v)


def _int_arg(v: Any, what: str = "argument") -> int:
    if type(v) is int:
        return v
    if isinstance(v, (float, Decimal)) and not isinstance(v, bool):
        return int(Decimal(str(v)).to_integral_value(rounding=ROUND_HALF_UP))
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise errors.UndefinedFunction(f"{what} must be an integer, got {V.type_name(v)}")


def _num_arg(v: Any) -> Any:
    if type(v) in (int, float, Decimal):
        return v
    if isinstance(v, str):
        return V.cast(v, V.NUMERIC)
    raise errors.UndefinedFunction(f"function expects a number, got {V.type_name(v)}")


def _arity(name: str, args: list[Any], lo: int, hi: int) -> None:
    if not lo <= len(args) <= hi:
        raise errors.UndefinedFunction(
            f"function {name} with {len(args)} arguments does not exist"
        )


# --- string functions ---------------------------------------------------------------


def _substring(s: Any, start: Any, length: Any = None) -> str:
    text = _text_arg(s)
    begin = _int_arg(start)
    if length is None:
        return text[max(begin - 1, 0) :]
    count = _int_arg(length)
    if count < 0:
        raise errors.DataError("negative substring length not allowed", sqlstate="22011")
    end = begin - 1 + count
    return text[max(begin - 1, 0) : max(end, 0)]


def _left(s: Any, n: Any) -> str:
    text, k = _text_arg(s), _int_arg(n)
    return text[:k] if k >= 0 else text[: max(len(text) + k, 0)]


def _right(s: Any, n: Any) -> str:
    text, k = _text_arg(s), _int_arg(n)
    if k >= 0:
        return text[max(len(text) - k, 0) :] if k else ""
    return text[-k:]


# PostgreSQL's largest value (MaxAllocSize, 1 GB less a header); longer results are 54000
# "requested length too large" there, and here, before any memory is spent on them.
MAX_TEXT_BYTES = 0x3FFFFFFF - 4
_MAX_CHAR_BYTES = 4  # UTF-8


def _too_large() -> errors.Error:
    return errors.ProgramLimitExceeded("requested length too large")


def _pad(left: bool) -> Callable[..., str]:
    def pad(s: Any, n: Any, fill: Any = " ") -> str:
        text, width, filler = _text_arg(s), _int_arg(n), _text_arg(fill)
        if width * _MAX_CHAR_BYTES > MAX_TEXT_BYTES:
            raise _too_large()
        if width <= len(text):
            return text[: max(width, 0)]
        if not filler:
            return text
        need = width - len(text)
        padding = (filler * (need // len(filler) + 1))[:need]
        return padding + text if left else text + padding

    return pad


def _split_part(s: Any, sep: Any, n: Any) -> str:
    text, delim, k = _text_arg(s), _text_arg(sep), _int_arg(n)
    if k == 0:
        raise errors.DataError("field position must not be zero", sqlstate="22023")
    parts = text.split(delim) if delim else [text]
    if k < 0:
        k = len(parts) + k + 1
    return parts[k - 1] if 1 <= k <= len(parts) else ""


def _initcap(s: Any) -> str:
    out = []
    start = True
    for ch in _text_arg(s):
        out.append(_simple_case(ch, start))
        start = not ch.isalnum()
    return "".join(out)


def _repeat(s: Any, n: Any) -> str:
    text, count = _text_arg(s), max(_int_arg(n), 0)
    if count and len(text.encode()) * count > MAX_TEXT_BYTES:
        raise _too_large()
    return text * count


_SIMPLE_LOWER_EXCEPTIONS = {"\u0130": "i"}  # capital I with dot: simple mapping is plain i
_CASE_CACHE: dict[tuple[str, bool], str] = {}


def _simple_case(ch: str, upper: bool) -> str:
    """One character's simple (one-to-one) case mapping, as C's towupper/towlower give.

    Python's str.upper uses the full mappings (ß -> SS); PostgreSQL maps character by
    character and leaves characters without a single-character mapping alone.
    """
    key = (ch, upper)
    cached = _CASE_CACHE.get(key)
    if cached is not None:
        return cached
    mapped = ch.upper() if upper else ch.lower()
    if len(mapped) != 1:
        if upper:
            titled = ch.title()
            mapped = titled if len(titled) == 1 else ch
        else:
            mapped = _SIMPLE_LOWER_EXCEPTIONS.get(ch, ch)
    _CASE_CACHE[key] = mapped
    return mapped


def _upper(s: Any) -> str:
    text = _text_arg(s)
    if text.isascii():
        return text.upper()
    return "".join(_simple_case(ch, True) for ch in text)


def _lower(s: Any) -> str:
    text = _text_arg(s)
    if text.isascii():
        return text.lower()
    return "".join(_simple_case(ch, False) for ch in text)


def _strpos(s: Any, sub: Any) -> int:
    return _text_arg(s).find(_text_arg(sub)) + 1


def _length(s: Any) -> int:
    if type(s) is bytes:
        return len(s)
    return len(_text_arg(s))


def _octet_length(s: Any) -> int:
    if type(s) is bytes:
        return len(s)
    return len(_text_arg(s).encode())


def _trim(chars: str | None, where: str) -> Callable[..., str]:
    def trim(s: Any, set_: Any = None) -> str:
        text = _text_arg(s)
        strip = chars if set_ is None else _text_arg(set_)
        if where == "LEADING":
            return text.lstrip(strip)
        if where == "TRAILING":
            return text.rstrip(strip)
        return text.strip(strip)

    return trim


def _concat_ws(sep: Any, *parts: Any) -> Any:
    if sep is None:
        return None
    return _text_arg(sep).join(_text_arg(p) for p in parts if p is not None)


def _md5(s: Any) -> str:
    data = s if type(s) is bytes else _text_arg(s).encode()
    return hashlib.md5(data).hexdigest()


def _chr(n: Any) -> str:
    code = _int_arg(n)
    if code == 0:
        raise errors.ProgramLimitExceeded("null character not permitted")
    if code < 0:
        raise errors.ProgramLimitExceeded("character number must be positive")
    if code > 0x10FFFF:
        raise errors.ProgramLimitExceeded("requested character too large for encoding: " f"{code}")
    if 0xD800 <= code <= 0xDFFF:
        raise errors.ProgramLimitExceeded(f"requested character not valid for encoding: {code}")
    return chr(code)


def _ascii(s: Any) -> int:
    text = _text_arg(s)
    return ord(text[0]) if text else 0


def _translate(s: Any, source: Any, target: Any) -> str:
    text, frm, to = _text_arg(s), _text_arg(source), _text_arg(target)
    table: dict[int, str | None] = {}
    for i, ch in enumerate(frm):
        if ord(ch) not in table:  # the first occurrence of a character decides
            table[ord(ch)] = to[i] if i < len(to) else None
    return text.translate(table)


# --- math ---------------------------------------------------------------------------


def _signed(result: int, x: float) -> float:
    """An integral float result keeping a zero's sign, as C's rint/ceil/trunc do (-0.5 -> -0)."""
    return math.copysign(0.0, x) if result == 0 else float(result)


def _round(x: Any, n: Any = None) -> Any:
    x = _num_arg(x)
    if n is None and type(x) is not Decimal:
        # round(integer) resolves to round(double precision), which is rint: halves to even
        x = float(x)
        return x if not math.isfinite(x) else _signed(round(x), x)
    if type(x) is float:
        raise errors.UndefinedFunction("function round(double precision, integer) does not exist")
    places = 0 if n is None else _int_arg(n)
    return numeric.round_to(Decimal(x), places)


def _trunc(x: Any, n: Any = None) -> Any:
    x = _num_arg(x)
    if n is None and type(x) is not Decimal:
        x = float(x)
        return x if not math.isfinite(x) else _signed(math.trunc(x), x)
    if type(x) is float:
        raise errors.UndefinedFunction("function trunc(double precision, integer) does not exist")
    places = 0 if n is None else _int_arg(n)
    return numeric.round_to(Decimal(x), places, ROUND_DOWN)


def _ceil(x: Any) -> Any:
    x = _num_arg(x)
    if type(x) is Decimal:
        return numeric.round_to(x, 0, ROUND_CEILING)
    x = float(x)
    return x if not math.isfinite(x) else _signed(math.ceil(x), x)


def _floor(x: Any) -> Any:
    x = _num_arg(x)
    if type(x) is Decimal:
        return numeric.round_to(x, 0, ROUND_FLOOR)
    x = float(x)
    return x if not math.isfinite(x) else _signed(math.floor(x), x)


def _sign(x: Any) -> Any:
    x = _num_arg(x)
    s = (x > 0) - (x < 0)
    return Decimal(s) if type(x) is Decimal else float(s)


def _sqrt(x: Any) -> Any:
    x = _num_arg(x)
    if type(x) is Decimal:
        return numeric.sqrt(x)
    x = float(x)
    if x < 0:
        raise errors.DataError("cannot take square root of a negative number", sqlstate="2201F")
    return math.sqrt(x)


def _exp(x: Any) -> Any:
    x = _num_arg(x)
    if type(x) is Decimal:
        return numeric.exp(x)
    x = float(x)
    try:
        result = math.exp(x)
    except OverflowError:
        raise errors.NumericValueOutOfRange("value out of range: overflow") from None
    if result == 0.0 and not math.isinf(x):
        raise errors.NumericValueOutOfRange("value out of range: underflow")
    return result


def _ln(x: Any) -> Any:
    x = _num_arg(x)
    if type(x) is Decimal:
        return numeric.ln(x)
    x = float(x)
    if x <= 0:
        raise errors.DataError(
            "cannot take logarithm of zero" if x == 0 else "cannot take logarithm of a negative number",
            sqlstate="2201E",
        )
    return math.log(x)


def _log(a: Any, b: Any = None) -> Any:
    if b is None:
        x = _num_arg(a)
        if type(x) is Decimal:
            return numeric.log(Decimal(10), x)
        x = float(x)
        if x <= 0:
            raise errors.DataError(
                "cannot take logarithm of zero" if x == 0 else "cannot take logarithm of a negative number",
                sqlstate="2201E",
            )
        return math.log10(x)
    base, x = _num_arg(a), _num_arg(b)
    return numeric.log(_as_decimal(base), _as_decimal(x))


def _as_decimal(v: Any) -> Decimal:
    if type(v) is float:
        return numeric.from_float(v)
    return Decimal(v)


def _abs(x: Any) -> Any:
    x = _num_arg(x)
    return numeric.normalize(x.copy_abs()) if type(x) is Decimal else abs(x)


def _cbrt(x: Any) -> float:
    return math.cbrt(float(_num_arg(x)))


def _mod(a: Any, b: Any) -> Any:
    return V.mod(a, b)


def _div(a: Any, b: Any) -> Any:
    return numeric.int_div(_as_decimal(_num_arg(a)), _as_decimal(_num_arg(b)))


def _make_date(y: Any, m: Any, d: Any) -> dt.date:
    year, month, day = _int_arg(y), _int_arg(m), _int_arg(d)
    if year < 0 or year > 9999:
        raise errors.not_supported("dates outside years 1 to 9999")
    try:
        return dt.date(year, month, day)
    except (ValueError, OverflowError):
        raise errors.DataError(
            f"date field value out of range: {year}-{month:02d}-{day:02d}", sqlstate="22008"
        ) from None


def _to_char(value: Any, fmt: Any) -> str:
    """``to_char`` of a timestamp, date or number (see :mod:`.formatting`)."""
    template = _text_arg(fmt)
    if isinstance(value, dt.date):
        return to_char_datetime(value, template)
    if type(value) in (int, float, Decimal):
        return to_char_number(value, template)
    raise errors.UndefinedFunction(f"function to_char({V.type_name(value)}, text) does not exist")


# --- dispatch ------------------------------------------------------------------------


def _args(c: Compiler, node: exp.Expression, *keys: str) -> list[CExpr]:
    out: list[CExpr] = []
    for key in keys:
        value = node.args.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            out.extend(c.compile(v) for v in value)
        else:
            out.append(c.compile(value))
    return out


def _unit_text(node: exp.Expression | None) -> str:
    if node is None:
        raise errors.SqlSyntaxError("missing date/time unit")
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    return node.name


def _simple(name: str, impl: Callable[..., Any], keys: tuple[str, ...], rtype: Any) -> Any:
    def handler(c: Compiler, node: exp.Expression) -> CExpr:
        args = _args(c, node, *keys)
        if len(args) != len(keys):
            raise errors.UndefinedFunction(
                f"function {name} with {len(args)} arguments does not exist"
            )
        result_type = rtype(args) if callable(rtype) else rtype
        return call(name, impl, args, result_type)

    return handler


def _same_type(args: list[CExpr]) -> SqlType | None:
    return args[0].type if args else None


def _numeric_result(args: list[CExpr]) -> SqlType | None:
    """round/trunc/ceil/floor/sign: numeric for numeric (and for round(int, n)), else float8."""
    t = args[0].type if args else None
    if t is None:
        return None
    if t.kind is V.NUMERIC.kind or (len(args) > 1 and t.kind in V.INT_KINDS):
        return V.NUMERIC
    return V.DOUBLE


def _float_or_numeric(args: list[CExpr]) -> SqlType | None:
    t = args[0].type if args else None
    if t is None:
        return None
    return V.NUMERIC if t.kind is V.NUMERIC.kind else V.DOUBLE


def _trim_handler(c: Compiler, node: exp.Expression) -> CExpr:
    where = str(node.args.get("position") or "BOTH").upper()
    args = _args(c, node, "this", "expression")
    return call("trim", _trim(" ", where), args, V.TEXT)


def _substring_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "start", "length")
    if len(args) == 1:
        raise errors.not_supported("SUBSTRING without a start position")
    return call("substring", _substring, args, V.TEXT)


def _strpos_handler(c: Compiler, node: exp.Expression) -> CExpr:
    if node.args.get("position") is not None or node.args.get("occurrence") is not None:
        raise errors.not_supported("position with a start offset")
    args = _args(c, node, "this", "substr")
    return call("strpos", _strpos, args, V.INTEGER)


def _pad_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "expression", "fill_pattern")
    return call("pad", _pad(bool(node.args.get("is_left"))), args, V.TEXT)


def _concat_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "expressions")

    def concat(*vals: Any) -> str:
        return "".join(_text_arg(v) for v in vals if v is not None)

    return call("concat", concat, args, V.TEXT, strict=False)


def _concat_ws_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "expressions")
    return call("concat_ws", _concat_ws, args, V.TEXT, strict=False)


def _greatest_least(pick_max: bool) -> Callable[[Compiler, exp.Expression], CExpr]:
    def handler(c: Compiler, node: exp.Expression) -> CExpr:
        args = _args(c, node, "this", "expressions")
        rtype = common_type(args, "GREATEST" if pick_max else "LEAST")
        args = [converted(a, rtype) for a in args]

        def pick(*vals: Any) -> Any:
            best = None
            for v in vals:
                if v is None:
                    continue  # PostgreSQL's GREATEST/LEAST ignore NULLs
                if best is None or (V.sql_gt(v, best) if pick_max else V.sql_lt(v, best)):
                    best = v
            return best

        return call("greatest" if pick_max else "least", pick, args, rtype, strict=False)

    return handler


def _extract_handler(c: Compiler, node: exp.Expression) -> CExpr:
    unit = _unit_text(node.this)
    args = _args(c, node, "expression")
    return call("extract", lambda v: extract(unit, v), args, V.NUMERIC)


def _date_trunc_handler(c: Compiler, node: exp.Expression) -> CExpr:
    unit = _unit_text(node.args.get("unit"))
    args = _args(c, node, "this")
    if args and args[0].const and args[0].untyped:
        raise errors.ProgrammingError(
            "function date_trunc(unknown, unknown) is not unique: cast the value to "
            "timestamp or interval",
            sqlstate="42725",
        )
    return call("date_trunc", lambda v: date_trunc(unit, v), args, V.TIMESTAMP)


def _now_handler(c: Compiler, node: exp.Expression) -> CExpr:
    def now(row: Row, env: Env) -> Any:
        return env.now()

    return CExpr(now, V.TIMESTAMP)


def _current_date_handler(c: Compiler, node: exp.Expression) -> CExpr:
    def today(row: Row, env: Env) -> Any:
        return env.now().date()

    return CExpr(today, V.DATE)


def _random_handler(c: Compiler, node: exp.Expression) -> CExpr:
    if node.args.get("this") is not None:
        raise errors.UndefinedFunction("function random(integer) does not exist")

    def rand(row: Row, env: Env) -> Any:
        return random.random()

    return CExpr(rand, V.DOUBLE)


def _round_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "decimals")
    return call("round", _round, args, _numeric_result(args))


def _trunc_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "decimals")
    return call("trunc", _trunc, args, _numeric_result(args))


def _log_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "expression")
    return call("log", _log, args, _float_or_numeric(args))


def _abs_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this")
    rtype = _same_type(args)
    if rtype is not None and rtype.kind in V.INT_KINDS:
        int_type = rtype
        return call("abs", lambda v: V.check_int(abs(v), int_type), args, rtype)
    return call("abs", _abs, args, rtype)


def _function_cast(c: Compiler, node: exp.Expression, target: SqlType) -> CExpr:
    """``date(x)``: PostgreSQL's function-style cast (``timestamp(x)`` is a type there)."""
    args = _args(c, node, "this", "expressions")
    if len(args) != 1:
        raise errors.UndefinedFunction(
            f"function {V.static_type_name(target)} with {len(args)} arguments does not exist"
        )
    return call(V.static_type_name(target), lambda v: V.cast(v, target), args, target)


def _initcap_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this")
    return call("initcap", _initcap, args, V.TEXT)


def _no_float_args(name: str, args: list[CExpr]) -> None:
    """42883 for div()/mod() of a float: PostgreSQL defines them on integers and numerics."""
    if any(a.type is not None and a.type.kind in V.FLOAT_KINDS for a in args):
        shown = ", ".join(V.static_type_name(a.type) for a in args)
        raise errors.UndefinedFunction(f"function {name}({shown}) does not exist")


def _intdiv_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "expression")
    _no_float_args("div", args)
    return call("div", _div, args, V.NUMERIC)


def _mod_handler(c: Compiler, node: exp.Expression) -> CExpr:
    args = _args(c, node, "this", "expression")
    if len(args) != 2:
        raise errors.UndefinedFunction(f"function mod with {len(args)} arguments does not exist")
    _no_float_args("mod", args)
    return call("mod", _mod, args, _same_type(args))


_NODE_HANDLERS: dict[type, Callable[[Compiler, exp.Expression], CExpr]] = {
    exp.Lower: _simple("lower", _lower, ("this",), V.TEXT),
    exp.Upper: _simple("upper", _upper, ("this",), V.TEXT),
    exp.StartsWith: _simple(
        "starts_with", lambda s, p: _text_arg(s).startswith(_text_arg(p)), ("this", "expression"), V.BOOLEAN
    ),
    exp.Translate: _simple("translate", _translate, ("this", "from_", "to"), V.TEXT),
    exp.Ascii: _simple("ascii", _ascii, ("this",), V.INTEGER),
    exp.Chr: _simple("chr", _chr, ("expressions",), V.TEXT),
    exp.Cbrt: _simple("cbrt", _cbrt, ("this",), V.DOUBLE),
    exp.Length: _simple("length", _length, ("this",), V.INTEGER),
    exp.Substring: _substring_handler,
    exp.Trim: _trim_handler,
    exp.Replace: _simple(
        "replace",
        lambda s, a, b: _text_arg(s).replace(_text_arg(a), _text_arg(b)) if a != "" else _text_arg(s),
        ("this", "expression", "replacement"),
        V.TEXT,
    ),
    exp.StrPosition: _strpos_handler,
    exp.Left: _simple("left", _left, ("this", "expression"), V.TEXT),
    exp.Right: _simple("right", _right, ("this", "expression"), V.TEXT),
    exp.Concat: _concat_handler,
    exp.ConcatWs: _concat_ws_handler,
    exp.Pad: _pad_handler,
    exp.SplitPart: _simple("split_part", _split_part, ("this", "delimiter", "part_index"), V.TEXT),
    exp.Reverse: _simple("reverse", lambda s: _text_arg(s)[::-1], ("this",), V.TEXT),
    exp.Repeat: _simple("repeat", _repeat, ("this", "times"), V.TEXT),
    exp.Initcap: _initcap_handler,
    exp.MD5: _simple("md5", _md5, ("this",), V.TEXT),
    exp.Abs: _abs_handler,
    exp.Sign: _simple("sign", _sign, ("this",), _numeric_result),
    exp.Sqrt: _simple("sqrt", _sqrt, ("this",), _float_or_numeric),
    exp.Exp: _simple("exp", _exp, ("this",), _float_or_numeric),
    exp.Ln: _simple("ln", _ln, ("this",), _float_or_numeric),
    exp.Log: _log_handler,
    exp.Round: _round_handler,
    exp.Trunc: _trunc_handler,
    exp.Ceil: _simple("ceil", _ceil, ("this",), _numeric_result),
    exp.Floor: _simple("floor", _floor, ("this",), _numeric_result),
    exp.Mod: _mod_handler,
    exp.Pi: lambda c, node: constant(math.pi, V.DOUBLE),
    exp.Greatest: _greatest_least(True),
    exp.Least: _greatest_least(False),
    exp.Extract: _extract_handler,
    exp.TimestampTrunc: _date_trunc_handler,
    exp.DateTrunc: _date_trunc_handler,
    exp.CurrentTimestamp: _now_handler,
    exp.Localtimestamp: _now_handler,
    exp.CurrentDate: _current_date_handler,
    exp.Rand: _random_handler,
    exp.IntDiv: _intdiv_handler,
    exp.Date: lambda c, node: _function_cast(c, node, V.DATE),
}

# name -> (implementation, min args, max args, result type or function of arg types)
_NAMED: dict[str, tuple[Callable[..., Any], int, int, Any]] = {
    "octet_length": (_octet_length, 1, 1, V.INTEGER),
    "strpos": (_strpos, 2, 2, V.INTEGER),
    "chr": (_chr, 1, 1, V.TEXT),
    "ascii": (_ascii, 1, 1, V.INTEGER),
    "make_date": (_make_date, 3, 3, V.DATE),
    "cbrt": (_cbrt, 1, 1, V.DOUBLE),
    "degrees": (lambda x: math.degrees(float(_num_arg(x))), 1, 1, V.DOUBLE),
    "radians": (lambda x: math.radians(float(_num_arg(x))), 1, 1, V.DOUBLE),
    "sin": (lambda x: math.sin(float(_num_arg(x))), 1, 1, V.DOUBLE),
    "cos": (lambda x: math.cos(float(_num_arg(x))), 1, 1, V.DOUBLE),
    "tan": (lambda x: math.tan(float(_num_arg(x))), 1, 1, V.DOUBLE),
    "atan": (lambda x: math.atan(float(_num_arg(x))), 1, 1, V.DOUBLE),
    "atan2": (lambda y, x: math.atan2(float(_num_arg(y)), float(_num_arg(x))), 2, 2, V.DOUBLE),
    "translate": (_translate, 3, 3, V.TEXT),
    # PostgreSQL's function-style casts: a type's name called as a function
    **{
        name: ((lambda v, t=sql_type: V.cast(v, t)), 1, 1, sql_type)
        for name, sql_type in (
            ("date", V.DATE), ("text", V.TEXT),
            ("float8", V.DOUBLE), ("float4", V.REAL), ("int4", V.INTEGER), ("int8", V.BIGINT),
            ("numeric", V.NUMERIC), ("bool", V.BOOLEAN),
        )
    },
    "to_char": (_to_char, 2, 2, V.TEXT),
    "starts_with": (lambda s, p: _text_arg(s).startswith(_text_arg(p)), 2, 2, V.BOOLEAN),
    "date_part": (lambda unit, v: float(extract(_text_arg(unit), v)), 2, 2, V.DOUBLE),
    "btrim": (_trim(" ", "BOTH"), 1, 2, V.TEXT),
    "ltrim": (_trim(" ", "LEADING"), 1, 2, V.TEXT),
    "rtrim": (_trim(" ", "TRAILING"), 1, 2, V.TEXT),
}


def compile_function(c: Compiler, node: exp.Expression) -> CExpr:
    """Compile a function call node, or 42883 naming an unknown function.

    Args:
        c: the compiler of the enclosing expression.
        node: an ``exp.Func`` node (typed or ``exp.Anonymous``).

    Returns:
        The compiled call.

    """
    handler = _NODE_HANDLERS.get(type(node))
    if handler is not None:
        return handler(c, node)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        entry = _NAMED.get(name)
        if entry is None:
            raise errors.UndefinedFunction(f"function {name}() does not exist")
        impl, lo, hi, rtype = entry
        args = [c.compile(e) for e in node.expressions]
        _arity(name, args, lo, hi)
        return call(name, impl, args, rtype)
    name = node.sql_name().lower() if hasattr(node, "sql_name") else node.key
    raise errors.UndefinedFunction(f"function {name}() does not exist")
