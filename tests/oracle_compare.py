"""Comparing offsetdb's answer to a statement with PostgreSQL's.

An :class:`Answer` is what one engine said: rows (or none, for a statement without a
result), the row count and command tag, or an error with its SQLSTATE. :func:`compare`
decides whether two answers agree, and says how they differ when they do not.

How values are compared (:func:`canonical`):

- The Python class is part of the value: ``2`` (integer), ``Decimal('2')`` (numeric)
  and ``2.0`` (double precision) differ, because the result type is part of
  PostgreSQL's answer (``sum(int)`` is bigint, ``avg(int)`` numeric, ``1/2`` is 0).
- NUMERIC compares exactly, digits *and* scale, as PostgreSQL prints it: ``1.50`` is
  not ``1.5``, ``-0`` is not ``0``; NaN and the infinities by name. Generated
  statements that group or deduplicate compare the value alone, since there PostgreSQL's
  own choice of scale depends on row order (:func:`scale_is_defined`).
- DOUBLE PRECISION compares within ``rel_tol=1e-12``, ``abs_tol=1e-9``
  (:data:`FLOAT_REL_TOL`, :data:`FLOAT_ABS_TOL`); NaN equals NaN and infinities their own
  sign. Both engines compute in IEEE doubles, but a sum or average adds its inputs in
  whatever order the rows arrive, and that order is not part of the answer; a
  difference larger than the tolerance is a different answer. Generated data keeps
  magnitudes small enough (|x| < 1e5, tens of rows) for that absolute bound to hold.
- Intervals compare as PostgreSQL's ``=`` does: months, then days and time together
  (``1 day`` equals ``24:00:00``); a month is never 30 days.
- Text, booleans, dates, timestamps and bytea compare exactly (the oracle's collation is
  code-point order, so text sorts as Python's ``str`` does).

Rows compare as multisets unless the caller says the statement's ORDER BY fixes their
order completely. Errors compare by SQLSTATE: its class (the first two characters) for
generated statements, all five characters for hand-written cases that pin them. An
offsetdb error of class 0A000 (feature not supported) is *unsupported*: counted, not
compared. A Python exception escaping offsetdb (anything not an ``offsetdb.Error``)
always disagrees: every error a user can meet must carry a SQLSTATE.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from postgres_oracle import OutOfRange, PgInterval, interval_of

FLOAT_REL_TOL = 1e-12
FLOAT_ABS_TOL = 1e-9
UNSUPPORTED = "0A000"
_SHOWN_ROWS = 12


@dataclass
class Answer:
    """One engine's answer to one statement."""

    rows: list[tuple[Any, ...]] | None = None  # None: the statement returns no result set
    width: int = 0
    rowcount: int | None = None
    status: str = ""
    sqlstate: str | None = None
    error: str | None = None
    raw: bool = False  # a Python exception, not a database error

    @property
    def failed(self) -> bool:
        """Whether the statement failed."""
        return self.error is not None

    @property
    def unsupported(self) -> bool:
        """Whether offsetdb refused the statement as not supported (0A000)."""
        return self.sqlstate == UNSUPPORTED

    def describe(self) -> str:
        """The answer, for a failure's report."""
        if self.failed:
            return f"ERROR {self.sqlstate or '-----'}: {self.error}"
        if self.rows is None:
            return f"{self.status or 'OK'} (rowcount {self.rowcount})"
        shown = "\n".join(f"    {row!r}" for row in self.rows[:_SHOWN_ROWS])
        more = f"\n    ... {len(self.rows) - _SHOWN_ROWS} more" if len(self.rows) > _SHOWN_ROWS else ""
        return f"{self.status or 'rows'}: {len(self.rows)} row(s)\n{shown}{more}"


def ask_offsetdb(execute: Callable[[], Any]) -> Answer:
    """Run ``execute`` (returns a DB-API cursor or an engine ``Result``) as an Answer."""
    from offsetdb import errors

    try:
        out = execute()
    except errors.Error as e:
        return Answer(sqlstate=e.sqlstate, error=f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - exactly what the oracle must report
        return Answer(error=f"raw Python {type(e).__name__}: {e}", raw=True)
    try:
        if hasattr(out, "fetchall"):  # a cursor of the driver
            if out.description is None:
                return Answer(rowcount=out.rowcount, status=out.statusmessage or "")
            rows = [tuple(r) for r in out.fetchall()]
            return Answer(rows, len(out.description), out.rowcount, out.statusmessage or "")
        # an engine Result (the in-memory context of the engine's unit tests)
        if not out.columns:
            return Answer(rowcount=out.rowcount, status=out.status)
        return Answer([tuple(r) for r in out.rows], len(out.columns), out.rowcount, out.status)
    except errors.Error as e:
        return Answer(sqlstate=e.sqlstate, error=f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001
        return Answer(error=f"raw Python {type(e).__name__} while fetching: {e}", raw=True)


def ask_postgres(conn: Any, sql: str) -> Answer:
    """Run ``sql`` on a psycopg connection as an Answer."""
    import psycopg

    try:
        cur = conn.execute(sql)
        if cur.description is None:
            return Answer(rowcount=cur.rowcount, status=cur.statusmessage or "")
        rows = [tuple(r) for r in cur.fetchall()]
        return Answer(rows, len(cur.description), cur.rowcount, cur.statusmessage or "")
    except psycopg.Error as e:
        if e.sqlstate is None:  # not the server's answer: the connection itself failed
            raise
        message = e.diag.message_primary or str(e)
        return Answer(sqlstate=e.sqlstate, error=f"{type(e).__name__}: {message}")


# --- values -----------------------------------------------------------------------------


def numeric_text(value: Decimal) -> str:
    """A NUMERIC as PostgreSQL prints it: positional notation, scale kept."""
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "-Infinity" if value < 0 else "Infinity"
    return format(value, "f")


def canonical(value: Any, scale: bool = True) -> Any:
    """A value in the form answers are compared in (see the module doc); without ``scale``
    a NUMERIC is its value alone (``1.50`` is ``1.5``, ``-0`` is ``0``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, Decimal):
        if not scale and value.is_finite():
            value = value.normalize() + 0
        return ("numeric", numeric_text(value))
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, OutOfRange):
        return ("datetime text", str(value))
    if isinstance(value, str):
        return ("text", value)
    if isinstance(value, dt.datetime):
        return ("timestamp", value)
    if isinstance(value, dt.date):
        return ("date", value)
    if isinstance(value, bytes | bytearray | memoryview):
        return ("bytea", bytes(value))
    interval = value if isinstance(value, PgInterval) else interval_of(value)
    if interval is not None:
        return ("interval", interval.months, interval.days * 86_400_000_000 + interval.micros)
    return ("other", type(value).__name__, repr(value))


def floats_equal(a: float, b: float) -> bool:
    """Equal doubles, within the tolerance the module doc explains."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=FLOAT_ABS_TOL)


def values_equal(a: Any, b: Any) -> bool:
    """Two canonical values are the same answer."""
    if a is None or b is None:
        return a is b
    if a[0] == "float" and b[0] == "float":
        return floats_equal(a[1], b[1])
    return bool(a == b)


def rows_equal(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Two canonical rows are the same answer."""
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))


def _sort_key(row: Sequence[Any]) -> tuple[Any, ...]:
    key = []
    for v in row:
        if v is None:
            key.append((1, "", ()))
        elif v[0] == "float":
            f = v[1]
            key.append((0, "float", (0, float(f"{f:.9g}")) if math.isfinite(f) else (1, str(f))))
        else:
            key.append((0, v[0], tuple(str(x) if isinstance(x, bytes) else x for x in v[1:])))
    return tuple(key)


def same_rows(ours: Sequence[tuple[Any, ...]], theirs: Sequence[tuple[Any, ...]], ordered: bool,
              scale: bool = True) -> bool:  # fmt: skip
    """The same rows: in the same order when ``ordered``, else as multisets; NUMERIC
    scale counts unless ``scale`` is False."""
    a = [tuple(canonical(v, scale) for v in row) for row in ours]
    b = [tuple(canonical(v, scale) for v in row) for row in theirs]
    if len(a) != len(b):
        return False
    if ordered:
        if all(rows_equal(x, y) for x, y in zip(a, b, strict=True)):
            return True
        # Rows whose sort keys are equal by value (17 and 17.00) have no defined order
        # between them: the same multiset, in the same order by value, agrees.
        by_value_a = [tuple(canonical(v, False) for v in row) for row in ours]
        by_value_b = [tuple(canonical(v, False) for v in row) for row in theirs]
        return all(rows_equal(x, y) for x, y in zip(by_value_a, by_value_b, strict=True)) and (
            same_rows(ours, theirs, False, scale)
        )
    a.sort(key=_sort_key)
    b.sort(key=_sort_key)
    if all(rows_equal(x, y) for x, y in zip(a, b, strict=True)):
        return True
    # Doubles that differ in their last bits may sort apart: match greedily instead.
    unmatched = list(b)
    for row in a:
        for i, other in enumerate(unmatched):
            if rows_equal(row, other):
                del unmatched[i]
                break
        else:
            return False
    return True


# --- answers ----------------------------------------------------------------------------


class Verdict(enum.Enum):
    """How offsetdb's answer relates to PostgreSQL's."""

    AGREE = "agree"
    UNSUPPORTED = "unsupported"
    DISAGREE = "disagree"


@dataclass
class Comparison:
    """The verdict, and what differs when the answers disagree."""

    verdict: Verdict
    difference: str = ""


def compare(
    ours: Answer, theirs: Answer, *, ordered: bool = False, sqlstate_digits: int = 2,
    check_status: bool = True, numeric_scale: bool = True,
) -> Comparison:  # fmt: skip
    """Whether offsetdb's answer (``ours``) agrees with PostgreSQL's (``theirs``).

    Args:
        ours: offsetdb's answer.
        theirs: PostgreSQL's answer.
        ordered: the statement's ORDER BY fixes the order of its rows completely.
        sqlstate_digits: how much of the SQLSTATE must match when both fail (2: the class).
        check_status: compare command tags and row counts (``INSERT 0 3``, ``UPDATE 2``).
        numeric_scale: compare NUMERIC scale too. Off where PostgreSQL itself leaves it
            open (see :func:`scale_is_defined`).
    """
    if ours.raw:
        return Comparison(Verdict.DISAGREE, "offsetdb raised a Python exception, not a SQLSTATE error")
    if ours.unsupported:
        return Comparison(Verdict.UNSUPPORTED)
    if ours.failed or theirs.failed:
        if not (ours.failed and theirs.failed):
            who = "offsetdb" if ours.failed else "PostgreSQL"
            return Comparison(Verdict.DISAGREE, f"only {who} failed")
        assert ours.sqlstate is not None and theirs.sqlstate is not None
        if ours.sqlstate[:sqlstate_digits] != theirs.sqlstate[:sqlstate_digits]:
            return Comparison(Verdict.DISAGREE, f"SQLSTATE {ours.sqlstate} is not {theirs.sqlstate}")
        return Comparison(Verdict.AGREE)
    if (ours.rows is None) != (theirs.rows is None):
        return Comparison(Verdict.DISAGREE, "only one returned a result set")
    if check_status and ours.status and ours.status != theirs.status:
        return Comparison(Verdict.DISAGREE, f"command tag {ours.status!r} is not {theirs.status!r}")
    if ours.rows is None or theirs.rows is None:
        return Comparison(Verdict.AGREE)
    if ours.width != theirs.width:
        return Comparison(Verdict.DISAGREE, f"{ours.width} columns, not {theirs.width}")
    if not same_rows(ours.rows, theirs.rows, ordered, numeric_scale):
        how = "rows (in order)" if ordered else "rows (as multisets)"
        return Comparison(Verdict.DISAGREE, f"different {how}{_hint(ours.rows, theirs.rows, ordered)}")
    return Comparison(Verdict.AGREE)


_SCALE_OPEN = re.compile(
    r"\bDISTINCT\b|\bGROUP BY\b|\bUNION\b(?! ALL)|\bINTERSECT\b|\bEXCEPT\b|\b(min|max)\(",
    re.IGNORECASE,
)


def scale_is_defined(sql: str) -> bool:
    """Whether PostgreSQL defines the NUMERIC scale of every value ``sql`` returns.

    Where equal values meet — DISTINCT, GROUP BY, UNION/INTERSECT/EXCEPT, min()/max() —
    PostgreSQL keeps whichever of ``1.5`` and ``1.50`` its plan met first, so the scale
    of such a result depends on row order and plan, not on the SQL. There the generated
    statements compare NUMERIC values without their scale.
    """
    return _SCALE_OPEN.search(sql) is None


def _loosely(value: Any, keep_types: bool, digits: int | None = None) -> Any:
    """A number as its value alone: NUMERIC scale dropped, the type too unless kept, and
    rounded to ``digits`` significant digits if given."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if keep_types and not isinstance(value, Decimal):
        return value
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        return number
    if digits is not None and number:
        number = round(number, digits - 1 - number.adjusted())
    return number.normalize() + 0  # + 0 turns -0 into 0


_HINTS = (
    (True, None, "NUMERIC scale or sign of zero"),
    (False, None, "result types (integer/numeric/double)"),
    (False, 12, "digits past the 12th significant one (NUMERIC precision or scale)"),
)


def _hint(ours: Sequence[tuple[Any, ...]], theirs: Sequence[tuple[Any, ...]], ordered: bool) -> str:
    """What the rows differ in, when it is only how numbers are typed, scaled or rounded."""
    for keep_types, digits, what in _HINTS:
        a = [tuple(_loosely(v, keep_types, digits) for v in row) for row in ours]
        b = [tuple(_loosely(v, keep_types, digits) for v in row) for row in theirs]
        if same_rows(a, b, ordered):
            return f"; equal but for {what}"
    if not ordered and len(ours) != len(theirs):
        return f"; {len(ours)} rows, not {len(theirs)}"
    return ""


def unmatched(ours: Sequence[tuple[Any, ...]], theirs: Sequence[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """The rows of each side that the other lacks (as multisets)."""
    only_ours = list(ours)
    only_theirs = []
    for row in theirs:
        b = tuple(canonical(v) for v in row)
        for i, other in enumerate(only_ours):
            if rows_equal(tuple(canonical(v) for v in other), b):
                del only_ours[i]
                break
        else:
            only_theirs.append(row)
    return only_ours, only_theirs


def report(sql: str, ours: Answer, theirs: Answer, difference: str) -> str:
    """A disagreement, for a failure's message: rows that differ, when both have rows."""
    text = f"{difference}\n  SQL: {sql}\n"
    if ours.rows is not None and theirs.rows is not None and "multisets" in difference:
        only_ours, only_theirs = unmatched(ours.rows, theirs.rows)
        shown = [f"  {len(theirs.rows)} rows from PostgreSQL, {len(ours.rows)} from offsetdb; "
                 f"{len(only_theirs)} only in PostgreSQL's, {len(only_ours)} only in offsetdb's"]  # fmt: skip
        shown += [f"    PostgreSQL only: {row!r}" for row in only_theirs[:_SHOWN_ROWS]]
        shown += [f"    offsetdb only:   {row!r}" for row in only_ours[:_SHOWN_ROWS]]
        return text + "\n".join(shown)
    return text + f"  PostgreSQL: {theirs.describe()}\n  offsetdb:   {ours.describe()}"


# --- hand-written differential cases ------------------------------------------------------


def split_statements(script: str) -> list[str]:
    """A script's statements, split at semicolons outside quotes."""
    statements, current, quote = [], [], ""
    for ch in script:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            text = "".join(current).strip()
            if text:
                statements.append(text)
            current = []
            continue
        current.append(ch)
    text = "".join(current).strip()
    if text:
        statements.append(text)
    return statements


class Differential:
    """The same SQL on offsetdb and on PostgreSQL, asserting that the answers agree.

    ``run_ours(sql)`` executes one statement on offsetdb and returns its cursor or engine
    ``Result``; ``pg`` is a psycopg connection (autocommit) in a schema of its own.
    """

    def __init__(self, run_ours: Callable[[str], Any], pg: Any) -> None:
        self.run_ours = run_ours
        self.pg = pg
        self.refused = False  # whether offsetdb refused the last checked statement (0A000)

    def setup(self, script: str) -> None:
        """Run every statement of ``script`` on both; each must succeed on both."""
        for sql in split_statements(script):
            ours, theirs = ask_offsetdb(lambda sql=sql: self.run_ours(sql)), ask_postgres(self.pg, sql)
            assert not ours.failed and not theirs.failed, report(sql, ours, theirs, "setup failed")

    def check(self, sql: str, *, ordered: bool = False, sqlstate_digits: int = 5,
              unsupported_ok: bool = False) -> Answer:  # fmt: skip
        """Assert that offsetdb answers ``sql`` as PostgreSQL does; PostgreSQL's answer.

        Errors must carry the same full SQLSTATE unless ``sqlstate_digits`` says less; a
        0A000 from offsetdb fails here, as hand-written cases are meant to be supported,
        unless ``unsupported_ok`` (a construct offsetdb may refuse rather than implement).
        """
        ours, theirs = ask_offsetdb(lambda: self.run_ours(sql)), ask_postgres(self.pg, sql)
        result = compare(ours, theirs, ordered=ordered, sqlstate_digits=sqlstate_digits)
        self.refused = result.verdict is Verdict.UNSUPPORTED
        if result.verdict is Verdict.UNSUPPORTED and unsupported_ok:
            return theirs
        if result.verdict is Verdict.UNSUPPORTED:
            raise AssertionError(report(sql, ours, theirs, "offsetdb does not support this"))
        assert result.verdict is Verdict.AGREE, report(sql, ours, theirs, result.difference)
        return theirs

    def fails(self, sql: str, sqlstate: str) -> Answer:
        """Assert that both refuse ``sql`` with SQLSTATE ``sqlstate``; offsetdb's answer."""
        ours, theirs = ask_offsetdb(lambda: self.run_ours(sql)), ask_postgres(self.pg, sql)
        assert theirs.sqlstate == sqlstate, report(sql, ours, theirs, f"PostgreSQL's is not {sqlstate}")
        assert ours.sqlstate == sqlstate, report(sql, ours, theirs, f"offsetdb's is not {sqlstate}")
        return ours


# --- the generated cases' tally ------------------------------------------------------------


@dataclass
class OracleStats:
    """What the generated statements of this run came to (printed in the terminal summary)."""

    worlds: int = 0
    statements: int = 0
    agreed: int = 0
    disagreed: int = 0
    unsupported: Counter[str] = field(default_factory=Counter)

    def summary(self) -> list[str]:
        """Lines for the terminal summary: totals, then unsupported statements by message."""
        lines = [
            f"{self.statements} generated statements in {self.worlds} worlds: {self.agreed} agreed "
            f"with PostgreSQL, {self.disagreed} disagreed, "
            f"{sum(self.unsupported.values())} unsupported by offsetdb (0A000, not compared)"
        ]
        for message, count in self.unsupported.most_common(15):
            lines.append(f"  {count:5d}  0A000 {message}")
        return lines


STATS_KEY = pytest.StashKey[OracleStats]()


def stats_of(config: pytest.Config) -> OracleStats:
    """This run's tally (created on first use)."""
    if STATS_KEY not in config.stash:
        config.stash[STATS_KEY] = OracleStats()
    return config.stash[STATS_KEY]
