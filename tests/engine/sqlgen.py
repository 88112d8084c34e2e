"""A seeded generator of SQL for the PostgreSQL oracle: a small world, then statements.

``World(seed)`` is three tables (``t1``: every column type; ``t2``: a UNIQUE and a NOT
NULL column, rows pointing at ``t1``; ``t3``: no primary key) filled with values chosen
for their edges: NULLs, duplicates, zero and negative numbers, NUMERIC scales, doubles
such as 0.07 that have no exact binary form, empty, accented and mixed-case text, leap
days and month ends. ``World.cases(count)`` then draws statements from the same seed:

- queries: inner/left/cross/comma joins, derived tables and CTEs, WHERE with AND/OR/NOT,
  comparisons across integer/bigint/numeric/float, IS [NOT] DISTINCT FROM, BETWEEN
  [SYMMETRIC], IN lists and subqueries, EXISTS, ANY/ALL, LIKE/ILIKE, scalar and
  correlated subqueries, GROUP BY/HAVING with count/sum/avg/min/max/bool_and/bool_or
  (DISTINCT too), set operations, CASE/COALESCE/NULLIF/GREATEST/LEAST, casts (text with
  edge spellings), arithmetic, text, math, date and timestamp functions, DISTINCT,
  ORDER BY (NULLS FIRST/LAST), LIMIT/OFFSET; and literal-only SELECTs;
- DML: INSERT ... VALUES / SELECT, ON CONFLICT DO NOTHING / DO UPDATE (with
  ``excluded``), RETURNING (with subqueries), UPDATE and DELETE whose SET and WHERE
  hold subqueries, including ones that read the table being written;
- a few statements with a token removed, which must be refused (or accepted) alike.

Everything is a function of the seed, never of an answer, so a seed names its world
and its statements exactly. What the generator avoids on purpose, because PostgreSQL
does not define the answer: LIMIT without an ORDER BY that fixes the order, aggregates
whose result depends on row order, errors whose occurrence depends on evaluation order
(divisors are wrapped in NULLIF(x, 0) except in literal-only SELECTs), UPDATEs that move
several rows' unique values at once (PostgreSQL checks them row by row), and now()-like
values.

Run as a script to print a seed's world and statements as a SQL script:

    python tests/engine/sqlgen.py SEED [COUNT]
"""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass, field

# Families of values; numbers also carry a subtype (int, bigint, numeric, float).
NUM, TEXT, BOOL, DATE, TS, IVL = "num", "text", "bool", "date", "ts", "interval"


@dataclass(frozen=True)
class Col:
    """A column of a generated table."""

    name: str
    sqltype: str
    fam: str
    sub: str = ""
    pk: bool = False
    unique: bool = False
    not_null: bool = False


@dataclass(frozen=True)
class Table:
    """A generated table."""

    name: str
    cols: tuple[Col, ...]

    @property
    def pk(self) -> Col | None:
        return next((c for c in self.cols if c.pk), None)

    def ddl(self) -> str:
        parts = []
        for c in self.cols:
            extra = " PRIMARY KEY" if c.pk else ""
            extra += " UNIQUE" if c.unique else ""
            extra += " NOT NULL" if c.not_null else ""
            parts.append(f"{c.name} {c.sqltype}{extra}")
        return f"CREATE TABLE {self.name} ({', '.join(parts)})"


T1 = Table("t1", (
    Col("id", "INTEGER", NUM, "int", pk=True), Col("i", "INTEGER", NUM, "int"),
    Col("j", "INTEGER", NUM, "int"), Col("big", "BIGINT", NUM, "bigint"),
    Col("n", "NUMERIC(12,2)", NUM, "numeric"), Col("m", "NUMERIC", NUM, "numeric"),
    Col("f", "DOUBLE PRECISION", NUM, "float"), Col("s", "TEXT", TEXT),
    Col("v", "VARCHAR(12)", TEXT), Col("d", "DATE", DATE), Col("ts", "TIMESTAMP", TS),
    Col("b", "BOOLEAN", BOOL),
))  # fmt: skip
T2 = Table("t2", (
    Col("id", "INTEGER", NUM, "int", pk=True), Col("t1_id", "INTEGER", NUM, "int"),
    Col("k", "INTEGER", NUM, "int", unique=True), Col("n", "NUMERIC(10,3)", NUM, "numeric"),
    Col("f", "DOUBLE PRECISION", NUM, "float"), Col("s", "TEXT", TEXT, not_null=True),
    Col("d", "DATE", DATE),
))  # fmt: skip
T3 = Table("t3", (
    Col("x", "INTEGER", NUM, "int"), Col("y", "TEXT", TEXT), Col("z", "NUMERIC", NUM, "numeric"),
    Col("w", "DOUBLE PRECISION", NUM, "float"),
))  # fmt: skip
TABLES = (T1, T2, T3)

INTS = ["0", "1", "-1", "2", "3", "5", "7", "-7", "10", "42", "100", "1000", "-1000"]
BIGINTS = ["0", "1", "-5", "42", "3000000000", "-3000000000", "9007199254740993"]
NUMERICS_12_2 = ["0", "1.50", "-2.25", "0.07", "10.10", "99999.99", "0.01", "-0.50", "3", "2.5"]
NUMERICS = ["0", "1.5", "-2.25", "0.07", "1.000", "123.456789", "0.00001", "0.1", "3", "-0.5",
            "12345678901234567890.123", "2.5"]  # fmt: skip
# Mostly values whose sums are exact in binary, so that a sum's value does not depend on
# the order rows are added in; 0.07 and 0.1 are there because they are not.
FLOATS = ["0", "0.5", "-2.25", "1.75", "3", "12345.5", "0.125", "-0.5", "0.07", "0.1", "2.5"]
# NaN only in statements: offsetdb refuses to store it (0A000), which a statement may
# answer (counted as unsupported) but a world's own rows may not.
FLOAT_SPECIALS = ["'Infinity'", "'-Infinity'", "'-0'"]
TEXTS = ["''", "'a'", "'A'", "'ab'", "'abc'", "'b'", "'B'", "' x '", "'x y'", "'é'", "'ß'",
         "'10'", "'2'", "'%'", "'a_b'", "'Straße'", "'it''s'", "'ÉCOLE'", "'  '", "'a,b,c'"]  # fmt: skip
DATES = ["2024-02-29", "2000-01-01", "1999-12-31", "2024-03-01", "2023-01-31", "1970-01-01",
         "2038-01-19", "2023-12-31"]  # fmt: skip
TIMESTAMPS = ["2024-02-29 12:00:00", "2000-01-01 00:00:00", "1999-12-31 23:59:59.5",
              "2024-03-01 00:00:00.000001", "2023-06-15 08:30:00", "1970-01-01 00:00:00"]  # fmt: skip
# Text that casts interestingly (or fails to): spellings PostgreSQL accepts or refuses.
# The refused ones appear only where nothing but the value decides whether the cast runs
# (see World.loose); elsewhere the valid spellings for each target type.
VALID_TEXT_NUM = {
    "int": ["'12'", "' 7 '", "'+5'", "'-0'", "'00012'", "'-2147483648'"],
    "bigint": ["'12'", "' 7 '", "'+5'", "'2147483648'", "'-9223372036854775808'"],
    "numeric": ["'1.5'", "'1e2'", "'1.'", "'.5'", "'-0'", "'Infinity'", "'NaN'", "' 2.50 '"],
    "float8": ["'1e2'", "'Infinity'", "'NaN'", "'-0'", "'.5'", "'1.5e-3'", "'-inf'"],
}
VALID_TEXT_DATE = ["'2020-01-01'", "'2020-1-1'", "'Jan 5 2020'", "'20200101'", "'epoch'",
                   "'2020-01-01T10:00'", "'2020-01-01 24:00:00'"]  # fmt: skip
VALID_TEXT_TS = [*VALID_TEXT_DATE, "'2020-01-01 10:00:00+02'", "'2020-01-01 10:00:00.123456'"]
CAST_TEXT_NUM = ["'12'", "' 7 '", "'+5'", "'-0'", "'2.0'", "'1.5'", "'1e2'", "'1_000'", "'１２'",
                 "'0x1F'", "'abc'", "''", "'1e309'", "'Infinity'", "'NaN'", "'-2147483648'",
                 "'2147483648'", "'9223372036854775808'", "'00012'", "'1.'", "'.5'"]  # fmt: skip
CAST_TEXT_DATE = ["'2020-01-01'", "'2020-02-30'", "'2020-01-01 25:00'", "'20200101'", "'2020-1-1'",
                  "'Jan 5 2020'", "'2020-01-01T10:00'", "'2020-01-01 24:00:00'", "'epoch'",
                  "'2020-13-01'", "'0001-01-01'", "'2020-01-01 10:00:00+02'"]  # fmt: skip
CAST_TEXT_BOOL = ["'t'", "'yes'", "'off'", "'1'", "'maybe'", "' true '", "'TRUE'"]
INTERVALS = ["INTERVAL '1 day'", "INTERVAL '2 hours'", "INTERVAL '1 month'", "INTERVAL '1 year 2 months'",
             "INTERVAL '-3 days'", "INTERVAL '90 minutes'", "INTERVAL '1 day 12:00:00'",
             "INTERVAL '0.5 seconds'"]  # fmt: skip
LIKE_PATTERNS = ["'a%'", "'%b'", "'_'", "'%\\_%'", "'A%'", "'%'", "'%é%'", "'__'", "'a_b'", "''"]
DATE_PARTS = ["year", "month", "day", "dow", "doy", "quarter", "epoch", "week", "isodow", "century"]
TIME_PARTS = ["hour", "minute", "second", "milliseconds", "microseconds"]
FACTORS = ["2", "3", "-1", "10", "0.5", "1.5", "0.1"]
SMALL = ["0", "1", "-1", "2", "3", "7", "-7", "10"]
TRUNC_UNITS = ["year", "month", "day", "hour", "quarter", "week"]


@dataclass
class Case:
    """One generated statement and how to compare its answer."""

    sql: str
    kind: str  # "query" | "dml" | "mutant"
    ordered: bool = False  # the ORDER BY fixes the order of the rows completely
    target: str | None = None  # the table a DML statement writes


@dataclass
class Scope:
    """What an expression may refer to: columns (as written) and their families."""

    cols: list[tuple[str, Col]] = field(default_factory=list)

    def of(self, fam: str, sub: str | None = None) -> list[tuple[str, Col]]:
        return [(r, c) for r, c in self.cols if c.fam == fam and (sub is None or c.sub == sub)]


class World:
    """The tables and data of one seed, and the statements drawn after them."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.specials = self.rng.random() < 0.25  # doubles NaN, ±Infinity, -0 in the data
        self.rows = {T1.name: self.rng.randint(6, 14), T2.name: self.rng.randint(4, 10),
                     T3.name: self.rng.randint(3, 8)}  # fmt: skip
        self.next_id = {T1.name: self.rows[T1.name] + 1, T2.name: self.rows[T2.name] + 1}
        self.setup = [t.ddl() for t in TABLES] + [self._fill(t) for t in TABLES]
        # Loose: expressions whose every evaluation is certain (literal-only SELECTs, VALUES
        # rows), where casts may fail and divisors be zero. Otherwise PostgreSQL's planner
        # folds constants early and both engines may skip rows a predicate rules out, so an
        # error that depends on which rows are evaluated is not a defined answer: there the
        # generator keeps to expressions that cannot fail on the generated data.
        self.loose = False

    # --- data ---------------------------------------------------------------------------

    def literal(self, col: Col, *, row_id: int | None = None) -> str:
        """A value for ``col`` as SQL text: NULL about one time in seven. ``row_id`` is
        given for the world's own rows."""
        rng = self.rng
        if col.pk and row_id is not None:
            return str(row_id)
        if not col.not_null and rng.random() < 0.15:
            return "NULL"
        if col.name == "t1_id":
            return str(rng.randint(0, self.rows[T1.name] + 2))
        if col.unique:
            return str(rng.randint(1, 30))
        if col.fam == NUM:
            if col.sub == "int":
                return rng.choice(INTS)
            if col.sub == "bigint":
                return rng.choice(BIGINTS)
            if col.sub == "float":
                if self.specials and rng.random() < 0.15:
                    return rng.choice(FLOAT_SPECIALS + ([] if row_id is not None else ["'NaN'"]))
                return rng.choice(FLOATS)
            return rng.choice(NUMERICS_12_2 if "(" in col.sqltype else NUMERICS)
        if col.fam == TEXT:
            if col.sqltype.startswith("VARCHAR"):
                return rng.choice([t for t in TEXTS if len(t) <= 14])
            return rng.choice(TEXTS)
        if col.fam == DATE:
            return f"'{rng.choice(DATES)}'"
        if col.fam == TS:
            return f"'{rng.choice(TIMESTAMPS)}'"
        return rng.choice(["TRUE", "FALSE"])

    def _fill(self, table: Table) -> str:
        rows = []
        keys: set[str] = set()
        for n in range(1, self.rows[table.name] + 1):
            values = []
            for col in table.cols:
                value = self.literal(col, row_id=n)
                if col.unique:
                    while value in keys:
                        value = self.literal(col, row_id=n)
                    if value != "NULL":
                        keys.add(value)
                values.append(value)
            rows.append(f"({', '.join(values)})")
        return f"INSERT INTO {table.name} VALUES {', '.join(rows)}"

    # --- expressions --------------------------------------------------------------------

    def expr(self, fam: str, scope: Scope, depth: int = 0, agg: bool = False,
             sub: str | None = None) -> str:  # fmt: skip
        """An expression of family ``fam`` over ``scope``; aggregates allowed when ``agg``."""
        if fam == NUM:
            return self.num(scope, depth, agg, sub)
        if fam == TEXT:
            return self.text(scope, depth, agg)
        if fam == BOOL:
            return self.pred(scope, depth, agg)
        if fam == DATE:
            return self.date(scope, depth, agg)
        if fam == TS:
            return self.ts(scope, depth, agg)
        return self.interval(scope, depth)

    def _column(self, scope: Scope, fam: str, sub: str | None = None) -> str | None:
        cols = scope.of(fam, sub) or (scope.of(fam) if sub else [])
        return self.rng.choice(cols)[0] if cols else None

    def _pick(self, options: list[tuple[float, object]]) -> object:
        total = sum(w for w, _ in options)
        x = self.rng.random() * total
        for w, option in options:
            x -= w
            if x <= 0:
                return option
        return options[-1][1]

    def num_literal(self, sub: str | None = None) -> str:
        rng = self.rng
        sub = sub or rng.choice(["int", "int", "numeric", "float", "bigint"])
        if sub == "int":
            return rng.choice(INTS[:10])
        if sub == "bigint":
            return rng.choice(["3000000000", "9007199254740993", "-3000000000"])
        if sub == "numeric":
            return rng.choice(["1.5", "0.07", "-2.25", "100.00", "1e3", "0.1", "2.50", "0.333",
                               "1.0", "-0.0", "12345678901234567890.5"])  # fmt: skip
        return rng.choice(["0.1::float8", "CAST(2.5 AS DOUBLE PRECISION)", "'1e3'::float8",
                           "0.07::double precision", "float8 '-0.5'", "1.75::float8"])  # fmt: skip

    def num(self, scope: Scope, depth: int, agg: bool, sub: str | None = None) -> str:
        rng = self.rng
        col = self._column(scope, NUM, sub)
        leaf = depth >= 3 or rng.random() < 0.3 + 0.15 * depth
        if leaf:
            if col is not None and rng.random() < 0.75:
                return col
            return self.num_literal(sub)
        d = depth + 1

        def n() -> str:
            return self.num(scope, d, agg)

        choice = self._pick([
            (5, "arith"), (2, "div"), (1, "mod"), (1, "neg"), (2, "func"), (1, "round"),
            (2, "case"), (2, "coalesce"), (1, "greatest"), (2, "cast"), (1, "textcast"),
            (1, "length"), (1, "extract"), (1, "datediff"), (3 if agg else 0, "agg"),
            (1 if d < 3 else 0, "scalar"),
        ])  # fmt: skip
        if choice == "arith":
            op = rng.choice(["+", "-", "*"])
            if op != "*" or self.loose:
                return f"({n()} {op} {n()})"
            # Bounded products, so that no generated row overflows (see loose).
            ints = scope.of(NUM, "int")
            if ints and rng.random() < 0.3:
                return f"({rng.choice(ints)[0]} * {rng.choice(ints)[0]})"
            return f"({n()} * {rng.choice(FACTORS)})"
        if choice == "div":
            return f"({n()} / NULLIF({n()}, 0))"
        if choice == "mod":
            return f"({self.num(scope, d, agg, 'int')} % NULLIF({self.num(scope, d, agg, 'int')}, 0))"
        if choice == "neg":
            return f"(- {n()})"
        if choice == "func":
            f = rng.choice(["abs({})", "sign({})", "ceil({})", "floor({})", "trunc({})",
                            "sqrt(abs({}))", "power({}, 2)", "cbrt({})", "exp(least({}, 5))",
                            "ln(abs({}) + 1)", "mod({}, 3)", "div({}, 4)", "round({}::numeric, 1)",
                            "trunc({}::numeric, 1)", "abs({}) % 7"])  # fmt: skip
            return f.format(n())
        if choice == "round":
            return f"round({self.num(scope, d, agg, rng.choice(['numeric', 'float']))})"
        if choice == "case":
            return f"CASE WHEN {self.pred(scope, d, agg)} THEN {n()} ELSE {n()} END"
        if choice == "coalesce":
            return f"COALESCE({n()}, {n()})" if rng.random() < 0.7 else f"NULLIF({n()}, {n()})"
        if choice == "greatest":
            return f"{rng.choice(['GREATEST', 'LEAST'])}({n()}, {n()})"
        if choice == "cast":
            target = rng.choice(["INTEGER", "BIGINT", "NUMERIC", "DOUBLE PRECISION", "NUMERIC(8,2)",
                                 "numeric(5,0)", "int8", "float8"])  # fmt: skip
            if self.loose or target in ("NUMERIC", "DOUBLE PRECISION", "float8"):
                return f"CAST({n()} AS {target})"
            return f"CAST({self.clamp(n())} AS {target})"
        if choice == "textcast":
            target = rng.choice(["int", "bigint", "numeric", "float8"])
            pool = CAST_TEXT_NUM if self.loose else VALID_TEXT_NUM[target]
            return f"{rng.choice(pool)}::{target}"
        if choice == "length":
            f = rng.choice(["length({})", "char_length({})", "octet_length({})", "strpos({}, 'b')",
                            "position('a' in {})", "ascii({})"])  # fmt: skip
            return f.format(self.text(scope, d, agg))
        if choice == "extract":
            on_ts = rng.random() < 0.5
            part = rng.choice(DATE_PARTS + TIME_PARTS if on_ts else DATE_PARTS)
            source = self.ts(scope, d, agg) if on_ts else self.date(scope, d, agg)
            if rng.random() < 0.7:
                return f"EXTRACT({part} FROM {source})"
            return f"date_part('{part}', {source})"
        if choice == "datediff":
            return f"({self.date(scope, d, agg)} - {self.date(scope, d, agg)})"
        if choice == "agg":
            arg = self.num(scope, d, False)
            f = rng.choice(["count(*)", "count({})", "sum({})", "avg({})", "min({})", "max({})",
                            "count(DISTINCT {})", "sum(DISTINCT {})", "avg(DISTINCT {})"])  # fmt: skip
            return f.format(arg)
        return self.scalar_subquery(scope, NUM, d)

    def clamp(self, expr: str) -> str:
        """``expr`` bounded to [-1000, 1000], for casts and assignments that could overflow."""
        return f"LEAST(GREATEST({expr}, -1000), 1000)"

    def text(self, scope: Scope, depth: int, agg: bool) -> str:
        rng = self.rng
        col = self._column(scope, TEXT)
        if depth >= 3 or rng.random() < 0.35 + 0.15 * depth:
            return col if col is not None and rng.random() < 0.7 else rng.choice(TEXTS)
        d = depth + 1

        def t() -> str:
            return self.text(scope, d, agg)

        choice = self._pick([
            (3, "concat"), (4, "func"), (2, "num_arg"), (2, "cast"), (1, "case"),
            (1, "coalesce"), (1, "to_char"), (2 if agg else 0, "agg"), (1 if d < 3 else 0, "scalar"),
        ])  # fmt: skip
        if choice == "concat":
            other = t() if rng.random() < 0.6 else self.expr(rng.choice([NUM, DATE, BOOL]), scope, d, agg)
            return f"({t()} || {other})"
        if choice == "func":
            f = rng.choice(["upper({})", "lower({})", "initcap({})", "reverse({})", "md5({})",
                            "trim({})", "ltrim({})", "rtrim({})", "btrim({}, 'a')",
                            "trim(both 'x' from {})", "replace({}, 'a', 'XY')",
                            "translate({}, 'abc', 'x')", "concat({}, '-', NULL, 1)",
                            "concat_ws(',', {}, NULL, 'z')", "split_part({}, ',', 2)"])  # fmt: skip
            return f.format(t())
        if choice == "num_arg":
            k = rng.choice(["-3", "-1", "0", "1", "2", "3", "5"])
            if k == "0" and not self.loose:  # split_part refuses field 0
                k = "1"
            f = rng.choice([f"left({{}}, {k})", f"right({{}}, {k})", f"substr({{}}, {k})",
                            f"substr({{}}, {k}, 2)", f"substring({{}} from {k} for 3)",
                            f"repeat({{}}, {max(int(k), 0)})", f"lpad({{}}, {max(int(k), 0) + 2}, '*')",
                            f"rpad({{}}, {max(int(k), 0) + 1})", f"split_part({{}}, 'b', {k})"])  # fmt: skip
            return f.format(t())
        if choice == "cast":
            fam = rng.choice([NUM, NUM, DATE, TS, BOOL])
            target = rng.choice(["TEXT", "VARCHAR(3)", "varchar"])
            return f"CAST({self.expr(fam, scope, d, agg)} AS {target})"
        if choice == "case":
            return f"CASE WHEN {self.pred(scope, d, agg)} THEN {t()} ELSE {t()} END"
        if choice == "coalesce":
            return f"COALESCE({t()}, {t()})"
        if choice == "to_char":
            fam = rng.choice([DATE, TS, NUM])
            fmt = {DATE: ["'YYYY-MM-DD'", "'DD Mon YYYY'", "'YYYY\"Q\"Q'"],
                   TS: ["'YYYY-MM-DD HH24:MI:SS'", "'HH12:MI AM'", "'YYYY-MM-DD\"T\"HH24:MI:SS.US'"],
                   NUM: ["'999D99'", "'FM9990.00'", "'9999'"]}[fam]  # fmt: skip
            return f"to_char({self.expr(fam, scope, d, agg)}, {rng.choice(fmt)})"
        if choice == "agg":
            arg = self.text(scope, d, False)
            if rng.random() < 0.4:
                return f"string_agg({arg}, ',' ORDER BY {arg})"
            return f"{rng.choice(['min', 'max'])}({arg})"
        return self.scalar_subquery(scope, TEXT, d)

    def pred(self, scope: Scope, depth: int, agg: bool) -> str:
        """A boolean expression, parenthesized: comparisons do not chain in PostgreSQL."""
        text = self._pred(scope, depth, agg)
        return text if " " not in text else f"({text})"

    def _pred(self, scope: Scope, depth: int, agg: bool) -> str:
        rng = self.rng
        d = depth + 1
        if depth >= 3:
            col = self._column(scope, BOOL)
            fam = rng.choice([NUM, NUM, TEXT])
            return col if col and rng.random() < 0.3 else (
                f"{self.expr(fam, scope, 3, agg)} {rng.choice(['=', '<', '>='])} {self.expr(fam, scope, 3, agg)}"
            )
        choice = self._pick([
            (8, "cmp"), (3, "andor"), (1, "not"), (2, "null"), (1, "distinct"), (2, "between"),
            (2, "in"), (1, "like"), (1, "bool"), (1, "is"), (2 if d < 3 else 0, "subq"),
            (1 if agg else 0, "agg"), (1, "starts"),
        ])  # fmt: skip
        if choice == "cmp":
            fam = rng.choice([NUM, NUM, NUM, TEXT, DATE, TS, BOOL])
            op = rng.choice(["=", "<>", "<", "<=", ">", ">=", "!="])
            if fam == DATE and rng.random() < 0.3:
                return f"{self.date(scope, d, agg)} {op} {self.ts(scope, d, agg)}"
            return f"{self.expr(fam, scope, d, agg)} {op} {self.expr(fam, scope, d, agg)}"
        if choice == "andor":
            return f"{self.pred(scope, d, agg)} {rng.choice(['AND', 'OR'])} {self.pred(scope, d, agg)}"
        if choice == "not":
            return f"NOT ({self.pred(scope, d, agg)})"
        if choice == "null":
            fam = rng.choice([NUM, TEXT, DATE, BOOL])
            return f"{self.expr(fam, scope, d, agg)} IS {rng.choice(['', 'NOT '])}NULL"
        if choice == "distinct":
            fam = rng.choice([NUM, TEXT, DATE])
            return f"{self.expr(fam, scope, d, agg)} IS {rng.choice(['', 'NOT '])}DISTINCT FROM {self.expr(fam, scope, d, agg)}"
        if choice == "between":
            fam = rng.choice([NUM, NUM, TEXT, DATE])
            sym = rng.choice(["", "", "SYMMETRIC "])
            neg = rng.choice(["", "", "NOT "])
            x, lo, hi = (self.expr(fam, scope, d, agg) for _ in range(3))
            return f"{x} {neg}BETWEEN {sym}{lo} AND {hi}"
        if choice == "in":
            fam = rng.choice([NUM, NUM, TEXT, DATE])
            neg = rng.choice(["", "NOT "])
            if fam == NUM:
                items = [rng.choice(["NULL", "0", "1", "2", "3", "1.5", "0.07", "10", "-1"]) for _ in range(rng.randint(1, 4))]
            elif fam == TEXT:
                items = [rng.choice(["NULL", *TEXTS[:8]]) for _ in range(rng.randint(1, 4))]
            else:
                items = [rng.choice(["NULL", *(f"'{x}'" for x in DATES[:4]), f"TIMESTAMP '{TIMESTAMPS[1]}'"])
                         for _ in range(rng.randint(1, 3))]  # fmt: skip
            return f"{self.expr(fam, scope, d, agg)} {neg}IN ({', '.join(items)})"
        if choice == "like":
            op = rng.choice(["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"])
            return f"{self.text(scope, d, agg)} {op} {rng.choice(LIKE_PATTERNS)}"
        if choice == "bool":
            col = self._column(scope, BOOL)
            return col or rng.choice(["TRUE", "FALSE", "NULL::boolean"])
        if choice == "is":
            test = rng.choice(["TRUE", "NOT TRUE", "FALSE", "NOT FALSE", "UNKNOWN", "NOT UNKNOWN"])
            return f"{self.pred(scope, d, agg)} IS {test}"
        if choice == "starts":
            return f"starts_with({self.text(scope, d, agg)}, {rng.choice(TEXTS[:6])})"
        if choice == "agg":
            f = rng.choice(["bool_and({})", "bool_or({})", "every({})"])
            return f.format(self.pred(scope, d, False))
        return self.subquery_pred(scope, d)

    def date(self, scope: Scope, depth: int, agg: bool) -> str:
        rng = self.rng
        col = self._column(scope, DATE)
        if depth >= 3 or rng.random() < 0.45 + 0.15 * depth:
            if col is not None and rng.random() < 0.75:
                return col
            return rng.choice([f"DATE '{rng.choice(DATES)}'", f"'{rng.choice(DATES)}'::date"])
        d = depth + 1
        choice = self._pick([(3, "plus"), (1, "make"), (1, "cast"), (1, "case"), (1, "textcast"),
                             (1 if agg else 0, "agg")])  # fmt: skip
        if choice == "plus":
            # date +/- integer: a small literal or an integer column (never a bigint: PostgreSQL
            # has no date + bigint), so that no row leaves the date range.
            ints = scope.of(NUM, "int")
            days = rng.choice(ints)[0] if ints and rng.random() < 0.5 else rng.choice(SMALL)
            return f"({self.date(scope, d, agg)} {rng.choice(['+', '-'])} {days})"
        if choice == "make":
            if self.loose:
                y = rng.choice(["2024", "2023", "1999", "1", "10000", "0", "-44"])
                m, dd = rng.choice(["1", "2", "12", "13"]), rng.choice(["1", "28", "29", "31", "0"])
            else:
                y, m, dd = rng.choice(["2024", "2023", "1999"]), rng.choice(["1", "2", "12"]), rng.choice(["1", "28"])
            return f"make_date({y}, {m}, {dd})"
        if choice == "cast":
            return f"CAST({self.ts(scope, d, agg)} AS DATE)"
        if choice == "case":
            return f"COALESCE({self.date(scope, d, agg)}, {self.date(scope, d, agg)})"
        if choice == "textcast":
            return f"{rng.choice(CAST_TEXT_DATE if self.loose else VALID_TEXT_DATE)}::date"
        return f"{rng.choice(['min', 'max'])}({self.date(scope, d, False)})"

    def ts(self, scope: Scope, depth: int, agg: bool) -> str:
        rng = self.rng
        col = self._column(scope, TS)
        if depth >= 3 or rng.random() < 0.45 + 0.15 * depth:
            if col is not None and rng.random() < 0.75:
                return col
            return f"TIMESTAMP '{rng.choice(TIMESTAMPS)}'"
        d = depth + 1
        choice = self._pick([(3, "plus"), (2, "trunc"), (1, "cast"), (1, "textcast"),
                             (1 if agg else 0, "agg")])  # fmt: skip
        if choice == "plus":
            base = self.ts(scope, d, agg) if rng.random() < 0.6 else self.date(scope, d, agg)
            return f"({base} {rng.choice(['+', '-'])} {rng.choice(INTERVALS)})"
        if choice == "trunc":
            return f"date_trunc('{rng.choice(TRUNC_UNITS)}', {self.ts(scope, d, agg)})"
        if choice == "cast":
            return f"CAST({self.date(scope, d, agg)} AS TIMESTAMP)"
        if choice == "textcast":
            return f"{rng.choice(CAST_TEXT_DATE if self.loose else VALID_TEXT_TS)}::timestamp"
        return f"{rng.choice(['min', 'max'])}({self.ts(scope, d, False)})"

    def interval(self, scope: Scope, depth: int) -> str:
        rng = self.rng
        d = depth + 1
        choice = rng.choice(["tsdiff", "literal", "scaled", "sum"])
        if choice == "tsdiff":
            return f"({self.ts(scope, d, False)} - {self.ts(scope, d, False)})"
        if choice == "literal":
            return rng.choice(INTERVALS)
        if choice == "scaled":
            return f"({rng.choice(INTERVALS)} * {rng.choice(['2', '-1', '0.5', '3'])})"
        return f"({rng.choice(INTERVALS)} + {rng.choice(INTERVALS)})"

    # --- subqueries -----------------------------------------------------------------------

    def _other_table(self) -> tuple[Table, str]:
        table = self.rng.choice(TABLES)
        return table, f"{table.name}_{self.rng.randint(1, 99)}"

    def _table_scope(self, table: Table, alias: str) -> Scope:
        return Scope([(f"{alias}.{c.name}", c) for c in table.cols])

    def _correlation(self, inner: Scope, outer: Scope, depth: int) -> str:
        """A predicate tying a subquery to its enclosing row, or a plain one."""
        rng = self.rng
        if outer.cols and rng.random() < 0.7:
            fam = rng.choice([NUM, NUM, TEXT])
            left, right = self._column(inner, fam), self._column(outer, fam)
            if left and right:
                return f"{left} {rng.choice(['=', '<', '<>', '>='])} {right}"
        return self.pred(inner, max(depth, 2), False)

    def scalar_subquery(self, outer: Scope, fam: str, depth: int) -> str:
        """A subquery of one column that returns at most one row (an aggregate), or an
        unconstrained one, which may fail with 21000 alike on both."""
        table, alias = self._other_table()
        inner = self._table_scope(table, alias)
        where = self._correlation(inner, outer, depth)
        value = self.expr(fam, inner, max(depth, 2), False)
        if fam == NUM:
            value = f"{self.rng.choice(['max', 'min', 'sum', 'count', 'avg'])}({value})"
        else:
            value = f"{self.rng.choice(['max', 'min'])}({value})"
        return f"(SELECT {value} FROM {table.name} {alias} WHERE {where})"

    def subquery_pred(self, outer: Scope, depth: int) -> str:
        rng = self.rng
        table, alias = self._other_table()
        inner = self._table_scope(table, alias)
        where = self._correlation(inner, outer, depth)
        kind = rng.choice(["exists", "in", "in", "any"])
        if kind == "exists":
            return f"{rng.choice(['', 'NOT '])}EXISTS (SELECT 1 FROM {table.name} {alias} WHERE {where})"
        fam = rng.choice([NUM, NUM, TEXT])
        if not inner.of(fam):
            fam = NUM
        left = self.expr(fam, outer, 3, False) if outer.cols else self.expr(fam, Scope(), 3, False)
        column = self._column(inner, fam)
        if kind == "in":
            neg = rng.choice(["", "NOT "])
            return f"{left} {neg}IN (SELECT {column} FROM {table.name} {alias} WHERE {where})"
        op = rng.choice(["=", "<>", "<", ">="])
        quant = rng.choice(["ANY", "ALL", "SOME"])
        return f"{left} {op} {quant} (SELECT {column} FROM {table.name} {alias} WHERE {where})"

    # --- queries ----------------------------------------------------------------------------

    def from_clause(self) -> tuple[str, Scope]:
        """FROM: one table, joins of two or three, a derived table or a CTE reference."""
        rng = self.rng
        shape = rng.random()
        first = rng.choice(TABLES)
        if shape < 0.35:
            alias = "a"
            return f"{first.name} {alias}", self._table_scope(first, alias)
        if shape < 0.85:
            sql = f"{first.name} a"
            scope = self._table_scope(first, "a")
            # What an ON condition may name: JOIN binds tighter than a comma, so after
            # "a, b" a following ON sees b (and what joins to it), not a.
            visible = Scope(list(scope.cols))
            for alias in ["b", "c"][: rng.choice([1, 1, 2])]:
                table = rng.choice(TABLES)
                right = self._table_scope(table, alias)
                join = rng.choice(["JOIN", "INNER JOIN", "LEFT JOIN", "LEFT OUTER JOIN", "CROSS JOIN", ","])
                if join == ",":
                    sql += f", {table.name} {alias}"
                    visible = Scope(list(right.cols))
                elif join == "CROSS JOIN":
                    sql += f" CROSS JOIN {table.name} {alias}"
                    visible = Scope(visible.cols + right.cols)
                else:
                    on = self._join_condition(visible, right)
                    sql += f" {join} {table.name} {alias} ON {on}"
                    visible = Scope(visible.cols + right.cols)
                scope = Scope(scope.cols + right.cols)
            return sql, scope
        # A derived table: a grouped or filtered query over one table, with named columns.
        table = first
        inner = self._table_scope(table, "x")
        num_col = self._column(inner, NUM)
        text_col = self._column(inner, TEXT)
        if rng.random() < 0.5:
            body = (f"SELECT {text_col} AS g, count(*) AS cnt, sum({num_col}) AS total "
                    f"FROM {table.name} x GROUP BY {text_col}")  # fmt: skip
            cols = [Col("g", "TEXT", TEXT), Col("cnt", "BIGINT", NUM, "bigint"), Col("total", "NUMERIC", NUM, "numeric")]
        else:
            body = (f"SELECT {num_col} AS g, {text_col} AS label FROM {table.name} x "
                    f"WHERE {self.pred(inner, 2, False)}")  # fmt: skip
            cols = [Col("g", "NUMERIC", NUM, "numeric"), Col("label", "TEXT", TEXT)]
        scope = Scope([(f"q.{c.name}", c) for c in cols])
        if rng.random() < 0.5:
            return f"({body}) AS q", scope
        return f"__CTE__{body}", scope

    def _join_condition(self, left: Scope, right: Scope) -> str:
        rng = self.rng
        if rng.random() < 0.75:
            fam = rng.choice([NUM, NUM, NUM, TEXT, DATE])
            a, b = self._column(left, fam), self._column(right, fam)
            if a and b:
                cond = f"{a} {rng.choice(['=', '=', '=', '<', '<>'])} {b}"
                if rng.random() < 0.25:
                    cond += f" AND {self.pred(Scope(left.cols + right.cols), 2, False)}"
                return cond
        return self.pred(Scope(left.cols + right.cols), 1, False)

    def select_list(self, scope: Scope, grouped: list[tuple[str, Col]] | None) -> list[str]:
        """Output expressions; in a grouped query, of the grouping columns and aggregates."""
        rng = self.rng
        out = []
        for _ in range(rng.randint(1, 4)):
            fam = rng.choice([NUM, NUM, NUM, TEXT, TEXT, BOOL, DATE, TS, IVL])
            if grouped is not None:
                if grouped and rng.random() < 0.4:
                    key = Scope(list(grouped))
                    fam = rng.choice([c.fam for _, c in grouped])
                    out.append(self.expr(fam, key, 2, False))
                else:
                    out.append(self.aggregate(scope))
            else:
                out.append(self.expr(fam, scope, 0, False))
        return out

    def aggregate(self, scope: Scope) -> str:
        rng = self.rng
        fam = rng.choice([NUM, NUM, NUM, TEXT, DATE, BOOL])
        arg = self.expr(fam, scope, 2, False)
        if fam == NUM:
            f = rng.choice(["count(*)", "count({})", "sum({})", "avg({})", "min({})", "max({})",
                            "count(DISTINCT {})", "sum(DISTINCT {})",
                            "sum({}) FILTER (WHERE {filter})", "avg({}::numeric)", "avg({}::float8)"])  # fmt: skip
        elif fam == BOOL:
            f = rng.choice(["bool_and({})", "bool_or({})", "every({})", "count({})"])
        elif fam == TEXT:
            f = rng.choice(["min({})", "max({})", "count(DISTINCT {})", "string_agg({}, '|' ORDER BY {})"])
        else:
            f = rng.choice(["min({})", "max({})", "count({})"])
        return f.format(arg, arg, filter=self.pred(scope, 2, False))

    def query(self, depth: int = 0) -> Case:
        """A SELECT (or set operation) with its comparison mode."""
        rng = self.rng
        shape = rng.random()
        if shape < 0.15:
            return self._literal_select()
        if shape < 0.27 and depth == 0:
            return self._set_operation()
        from_sql, scope = self.from_clause()
        cte = ""
        if from_sql.startswith("__CTE__"):
            cte = f"WITH q AS ({from_sql[len('__CTE__'):]}) "
            from_sql = "q"
        where = f" WHERE {self.pred(scope, 0, False)}" if rng.random() < 0.75 else ""
        grouped: list[tuple[str, Col]] | None = None
        group_sql = ""
        if rng.random() < 0.3:
            keys = rng.sample(scope.cols, k=min(len(scope.cols), rng.choice([0, 1, 1, 2])))
            grouped = keys
            if keys:
                group_sql = " GROUP BY " + ", ".join(r for r, _ in keys)
            if rng.random() < 0.4:
                group_sql += f" HAVING {self.pred(Scope(list(keys)), 2, True) if keys else self.aggregate(scope) + ' IS NOT NULL'}"
        items = self.select_list(scope, grouped)
        distinct = "DISTINCT " if rng.random() < 0.12 else ""
        sql = f"{cte}SELECT {distinct}{', '.join(items)} FROM {from_sql}{where}{group_sql}"
        order = rng.random()
        if order < 0.45:
            return Case(sql, "query")
        positions = list(range(1, len(items) + 1))
        rng.shuffle(positions)
        keys_sql = [f"{p}{rng.choice(['', ' ASC', ' DESC'])}{rng.choice(['', '', ' NULLS FIRST', ' NULLS LAST'])}"
                    for p in positions]  # fmt: skip
        if order < 0.6:  # a partial order: compared as a multiset, never with LIMIT
            return Case(f"{sql} ORDER BY {keys_sql[0]}", "query")
        limit = ""
        if rng.random() < 0.5:
            limit = f" LIMIT {rng.randint(0, 5)}"
            if rng.random() < 0.5:
                limit += f" OFFSET {rng.randint(0, 3)}"
        elif rng.random() < 0.2:
            limit = f" OFFSET {rng.randint(1, 4)} ROWS FETCH FIRST {rng.randint(1, 3)} ROWS ONLY"
        return Case(f"{sql} ORDER BY {', '.join(keys_sql)}{limit}", "query", ordered=True)

    def _literal_select(self) -> Case:
        """Expressions over literals only: functions, casts and operators at their edges.
        Here a division may be by zero, since nothing else decides whether it runs."""
        rng = self.rng
        empty = Scope()
        if rng.random() < 0.15:
            # Alone in its statement, so that no other error can come first: a division by
            # a literal that may be zero, or a subquery that may return several rows (21000).
            if rng.random() < 0.6:
                a, b = self.num_literal(), rng.choice(["0", "0.0", "0::float8", "3", "-1"])
                return Case(f"SELECT {a} {rng.choice(['/', '%'])} {b}", "query")
            table, alias = self._other_table()
            inner = self._table_scope(table, alias)
            value = self.expr(rng.choice([NUM, TEXT]), inner, 3, False)
            return Case(f"SELECT (SELECT {value} FROM {table.name} {alias} WHERE {self.pred(inner, 2, False)})", "query")
        items = []
        self.loose = True
        try:
            for _ in range(rng.randint(1, 3)):
                items.append(self.expr(rng.choice([NUM, NUM, TEXT, TEXT, BOOL, DATE, TS, IVL]), empty, 0, False))
        finally:
            self.loose = False
        return Case(f"SELECT {', '.join(items)}", "query")

    def _set_operation(self) -> Case:
        rng = self.rng
        fams = [rng.choice([NUM, NUM, TEXT, DATE]) for _ in range(rng.randint(1, 2))]
        parts = []
        for _ in range(rng.randint(2, 3)):
            table = rng.choice(TABLES)
            scope = self._table_scope(table, "s")
            cols = [self.expr(f, scope, 1, False) for f in fams]
            where = f" WHERE {self.pred(scope, 1, False)}" if rng.random() < 0.6 else ""
            parts.append(f"SELECT {', '.join(cols)} FROM {table.name} s{where}")
        sql = parts[0]
        for part in parts[1:]:
            sql += f" {rng.choice(['UNION', 'UNION ALL', 'INTERSECT', 'EXCEPT', 'INTERSECT ALL', 'EXCEPT ALL'])} {part}"
        if rng.random() < 0.4:
            positions = ", ".join(str(p) for p in range(1, len(fams) + 1))
            limit = f" LIMIT {rng.randint(1, 4)}" if rng.random() < 0.5 else ""
            return Case(f"{sql} ORDER BY {positions}{limit}", "query", ordered=True)
        return Case(sql, "query")

    # --- DML ----------------------------------------------------------------------------

    def _new_id(self, table: Table) -> str:
        if self.rng.random() < 0.25:  # an existing key, maybe
            return str(self.rng.randint(1, self.next_id[table.name]))
        self.next_id[table.name] += 1
        return str(self.next_id[table.name])

    def _returning(self, table: Table, scope: Scope) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return ""
        if rng.random() < 0.3:
            return " RETURNING *"
        items = [self.expr(rng.choice([NUM, TEXT, BOOL]), scope, 1, False) for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.3:
            items.append(f"(SELECT count(*) FROM {table.name})")
        return " RETURNING " + ", ".join(items)

    def dml(self) -> Case:
        rng = self.rng
        table = rng.choice([T1, T1, T2, T2, T3])
        scope = Scope([(c.name, c) for c in table.cols])
        kind = rng.random()
        if kind < 0.4:
            return self._insert(table, scope)
        if kind < 0.75:
            return self._update(table, scope)
        where = f" WHERE {self.pred(scope, 0, False)}" if rng.random() < 0.9 else ""
        return Case(f"DELETE FROM {table.name}{where}{self._returning(table, scope)}", "dml", target=table.name)

    def _insert(self, table: Table, scope: Scope) -> Case:
        rng = self.rng
        if rng.random() < 0.25:
            # Each source row its own key (the source's key, shifted), so that which of two
            # rows with one key is kept never depends on the order the SELECT yields them.
            source = rng.choice([T1, T2])
            src = self._table_scope(source, "src")
            values = []
            for col in table.cols:
                if col.pk or col.unique:
                    values.append(f"src.id + {rng.choice([100, 1000, 0, 3])}")
                elif col.not_null and rng.random() < 0.8:
                    values.append(f"COALESCE({self.expr(col.fam, src, 2, False, col.sub or None)}, 'x')"
                                  if col.fam == TEXT else self.expr(col.fam, src, 2, False, col.sub or None))
                else:
                    values.append(self.assigned(col, self.expr(col.fam, src, 2, False, col.sub or None)))
            where = f" WHERE {self.pred(src, 1, False)}"
            sql = f"INSERT INTO {table.name} SELECT {', '.join(values)} FROM {source.name} src{where}"
            return Case(sql + self._conflict(table, scope) + self._returning(table, scope), "dml", target=table.name)
        names = [c for c in table.cols if c.pk or c.not_null or rng.random() < 0.75]
        rows = []
        count = rng.randint(1, 3)
        for _ in range(count):
            values = []
            for col in names:
                if col.pk:
                    values.append(self._new_id(table))
                elif rng.random() < 0.2 and count == 1:
                    # One row: it is evaluated whole, so its expressions may fail (loose).
                    self.loose = True
                    try:
                        values.append(self.expr(col.fam, Scope(), 1, False, col.sub or None))
                    finally:
                        self.loose = False
                elif rng.random() < 0.2:
                    # Several rows: which row's error comes first is not defined (PostgreSQL
                    # folds constants before inserting any row), so these cannot fail.
                    value = self.assigned(col, self.expr(col.fam, Scope(), 1, False, col.sub or None))
                    values.append(f"left({value}, 12)" if col.sqltype.startswith("VARCHAR") else value)
                else:
                    values.append(self.literal(col))
            rows.append(f"({', '.join(values)})")
        columns = f" ({', '.join(c.name for c in names)})" if rng.random() < 0.8 or len(names) < len(table.cols) else ""
        if not columns and len(names) < len(table.cols):
            columns = f" ({', '.join(c.name for c in names)})"
        sql = f"INSERT INTO {table.name}{columns} VALUES {', '.join(rows)}"
        return Case(sql + self._conflict(table, scope) + self._returning(table, scope), "dml", target=table.name)

    def _conflict(self, table: Table, scope: Scope) -> str:
        rng = self.rng
        keys = [c for c in table.cols if c.pk or c.unique]
        if not keys or rng.random() < 0.5:
            return ""
        if rng.random() < 0.4:
            target = f" ({rng.choice(keys).name})" if rng.random() < 0.7 else ""
            return f" ON CONFLICT{target} DO NOTHING"
        key = rng.choice(keys)
        settable = [c for c in table.cols if not c.pk and not c.unique]
        col = rng.choice(settable)
        excluded = Scope([(f"excluded.{c.name}", c) for c in table.cols] + [(f"{table.name}.{c.name}", c) for c in table.cols])
        value = self.assigned(col, self.expr(col.fam, excluded, 1, False, col.sub or None))
        where = f" WHERE {self.pred(excluded, 2, False)}" if rng.random() < 0.3 else ""
        return f" ON CONFLICT ({key.name}) DO UPDATE SET {col.name} = {value}{where}"

    def assigned(self, col: Col, value: str) -> str:
        """``value`` for column ``col``, bounded where the column's type could overflow or
        its length be exceeded: PostgreSQL folds a constant one at plan time and fails
        even when no row is written, so here it must not fail at all (see loose)."""
        if value == col.name:
            return value
        if col.fam == NUM and (col.sub in ("int", "bigint") or "(" in col.sqltype):
            return self.clamp(value)
        if col.sqltype.startswith("VARCHAR"):
            return f"left({value}, 12)"
        return value

    def _update(self, table: Table, scope: Scope) -> Case:
        rng = self.rng
        pk = table.pk
        if pk is not None and rng.random() < 0.1:  # move one row's key
            return Case(f"UPDATE {table.name} SET {pk.name} = {self._new_id(table)} "
                        f"WHERE {pk.name} = {rng.randint(1, self.next_id[table.name])}"
                        f"{self._returning(table, scope)}", "dml", target=table.name)  # fmt: skip
        settable = [c for c in table.cols if not c.pk and not c.unique]
        sets = []
        for col in rng.sample(settable, k=rng.randint(1, min(2, len(settable)))):
            if rng.random() < 0.25:  # a subquery, perhaps reading the table being written
                other = table if rng.random() < 0.5 else rng.choice(TABLES)
                alias = "o"
                inner = self._table_scope(other, alias)
                source = self._column(inner, col.fam, col.sub or None)
                if source is None:
                    value = self.expr(col.fam, scope, 1, False, col.sub or None)
                else:
                    agg = "max" if rng.random() < 0.5 else "min"
                    link = ""
                    same = self._column(inner, NUM, "int")
                    mine = self._column(Scope([(f"{table.name}.{c.name}", c) for c in table.cols]), NUM, "int")
                    if same and mine and rng.random() < 0.7:
                        link = f" WHERE {same} {rng.choice(['<>', '=', '<'])} {mine}"
                    value = f"(SELECT {agg}({source}) FROM {other.name} {alias}{link})"
                    if col.fam == NUM and rng.random() < 0.5:
                        value = f"{value} + {rng.choice(['1', '10', '0.5'])}"
            else:
                value = self.expr(col.fam, scope, 1, False, col.sub or None)
            sets.append(f"{col.name} = {self.assigned(col, value)}")
        unique = [c for c in table.cols if c.unique]
        where = f" WHERE {self.pred(scope, 0, False)}" if rng.random() < 0.85 else ""
        if unique and pk is not None and rng.random() < 0.15:  # a unique value, one row at a time
            sets.append(f"{unique[0].name} = {rng.choice(['NULL', str(rng.randint(1, 30))])}")
            where = f" WHERE {pk.name} = {rng.randint(1, self.next_id[table.name])}"
        sql = f"UPDATE {table.name} SET {', '.join(sets)}{where}{self._returning(table, scope)}"
        return Case(sql, "dml", target=table.name)

    # --- the sequence ---------------------------------------------------------------------

    def mutant(self) -> Case:
        """A generated query with one token removed: still valid, or refused alike."""
        sql = self.query().sql
        tokens = sql.split(" ")
        for _ in range(10):
            if len(tokens) <= 2:
                break
            cut = self.rng.randrange(1, len(tokens))
            mutated = tokens[:cut] + tokens[cut + 1 :]
            # Not a name followed by a string ("b.v '__'"): PostgreSQL reads that as a literal
            # of the type named b.v, so the error would be about a missing type or schema.
            if not re.search(r"[\w\"] '", " ".join(mutated[max(cut - 1, 0) : cut + 1])):
                return Case(" ".join(mutated), "mutant")
        return Case(sql, "mutant")

    def cases(self, count: int) -> list[Case]:
        """``count`` statements: about 60% queries, 33% DML, 7% mutants."""
        out = []
        for _ in range(count):
            x = self.rng.random()
            if x < 0.6:
                out.append(self.query())
            elif x < 0.93:
                out.append(self.dml())
            else:
                out.append(self.mutant())
        return out


def main(argv: list[str]) -> None:
    """Print a seed's world and statements as a SQL script."""
    if not argv or not argv[0].lstrip("-").isdigit():
        raise SystemExit("usage: python tests/engine/sqlgen.py SEED [COUNT]")
    seed, count = int(argv[0]), int(argv[1]) if len(argv) > 1 else 20
    world = World(seed)
    print(f"-- world of seed {seed}")
    for sql in world.setup:
        print(f"{sql};")
    for n, case in enumerate(world.cases(count)):
        print(f"-- case {n} ({case.kind}{', ordered' if case.ordered else ''})\n{case.sql};")


if __name__ == "__main__":
    main(sys.argv[1:])
