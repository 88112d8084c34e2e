"""Syntax PostgreSQL rejects and sqlglot's lenient parser lets through.

sqlglot is built to read many dialects, so it forgives: a dangling comma is dropped
(``SELECT 1,``), a reserved word becomes an alias (``SELECT 1 LIMIT``), empty lists
parse (``x IN ()``, ``UPDATE t SET``, ``GROUP BY``). PostgreSQL answers all of these
with 42601, and a database that runs something other than what was written gives wrong
answers, so each is checked here, on the tokens and on the tree, before planning.
"""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from offsetdb import errors

from .dialect import DIALECT

_TYPE_TOKENS = frozenset(DIALECT.parser_class.TYPE_TOKENS)

# Tokens that end a list: a comma right before one of them is dangling.
_LIST_ENDERS = frozenset(
    (
        TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.HAVING,
        TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET, TokenType.UNION,
        TokenType.INTERSECT, TokenType.EXCEPT, TokenType.R_PAREN, TokenType.RETURNING,
        TokenType.COMMA, TokenType.ON,
    )
)
# Tokens that start a list: a comma right after one of them is dangling.
_LIST_STARTERS = frozenset((TokenType.SELECT, TokenType.L_PAREN, TokenType.COMMA, TokenType.SET, TokenType.DISTINCT))
# A select list may be empty (SELECT FROM t), but not after DISTINCT.
# Keywords that must be followed by an expression.
_NEEDS_OPERAND = frozenset((TokenType.LIMIT, TokenType.OFFSET))


def _syntax_error(token: Token | None) -> errors.SqlSyntaxError:
    if token is None:
        return errors.SqlSyntaxError("syntax error at end of input")
    return errors.SqlSyntaxError(
        f'syntax error at or near "{token.text}" (line {token.line}, column {token.col})'
    )


# PostgreSQL 16's numeric literals: underscores between digits, 0x/0o/0b integers.
_NUMBER_LITERAL = re.compile(
    r"0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+"
    r"|(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?"
)
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_\x80-\U0010FFFF$]")


def normalize_number_literals(sql: str, tokens: list[Token]) -> str:
    """``sql`` with numeric literals as sqlglot reads them: no underscores, decimal digits.

    sqlglot stops a number at an underscore, so ``SELECT 1_000`` became ``SELECT 1 AS
    _000`` (the answer 1). A literal followed directly by letters or digits is 42601
    "trailing junk after numeric literal", as in PostgreSQL.
    """
    edits: list[tuple[int, int, str]] = []
    for token in tokens:
        if token.token_type not in (TokenType.NUMBER, TokenType.HEX_STRING, TokenType.BIT_STRING):
            continue
        start = token.start
        if token.token_type is not TokenType.NUMBER and sql[start] != "0":
            continue  # X'1F' and B'101' are bit strings, not numbers
        if start > 0 and sql[start - 1] == "." and token.token_type is TokenType.NUMBER and (
            start > 1 and sql[start - 2].isdigit()
        ):
            continue  # the fraction of a number already handled
        match = _NUMBER_LITERAL.match(sql, start)
        if match is None:
            continue
        end = match.end()
        if end < len(sql) and _IDENTIFIER_CHAR.match(sql, end):
            raise errors.SqlSyntaxError(
                f'trailing junk after numeric literal at or near "{sql[start : end + 1]}"'
            )
        text = match.group(0)
        plain = text.replace("_", "")
        if plain[:2].lower() in ("0x", "0o", "0b"):
            plain = str(int(plain[2:], {"x": 16, "o": 8, "b": 2}[plain[1].lower()]))
        if plain != text:
            edits.append((start, end, plain))
    for start, end, plain in reversed(edits):
        sql = sql[:start] + plain + sql[end:]
    return sql


def group_typed_literals(sql: str, tokens: list[Token]) -> str:
    """``float8 '-0.5'::numeric`` with the typed literal in parentheses.

    sqlglot binds ``::`` to the string before the type name applies, reading it as
    ``float8 ('-0.5'::numeric)``; PostgreSQL's ``type 'text'`` is one constant.
    """
    edits: list[tuple[int, int]] = []
    for first, second, third in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (
            first.token_type in _TYPE_TOKENS
            and second.token_type is TokenType.STRING
            and third.token_type is TokenType.DCOLON
        ):
            edits.append((first.start, second.end + 1))
    for start, end in reversed(edits):
        sql = sql[:start] + "(" + sql[start:end] + ")" + sql[end:]
    return sql


def check_adjacent_strings(sql: str, tokens: list[Token]) -> None:
    """42601 for ``'a' 'b'``: PostgreSQL joins string literals only across a newline."""
    for first, second in zip(tokens, tokens[1:], strict=False):
        if (
            first.token_type is TokenType.STRING
            and second.token_type is TokenType.STRING
            and "\n" not in sql[first.end + 1 : second.start]
        ):
            raise _syntax_error(second)


_JOIN_NEEDS_NO_ON = frozenset((TokenType.CROSS, TokenType.NATURAL))
_JOIN_ENDERS = frozenset(
    (
        TokenType.WHERE, TokenType.GROUP_BY, TokenType.HAVING, TokenType.ORDER_BY,
        TokenType.LIMIT, TokenType.OFFSET, TokenType.UNION, TokenType.INTERSECT,
        TokenType.EXCEPT, TokenType.COMMA, TokenType.RETURNING, TokenType.FETCH,
    )
)


def _check_join_conditions(tokens: list[Token]) -> None:
    """42601 for ``a JOIN b`` without ON or USING (sqlglot reads it as a cross join).

    Counts, per parenthesis depth, the joins still waiting for their condition; one is
    still waiting when the FROM clause ends.
    """
    waiting = [0]
    for i, token in enumerate(tokens):
        kind = token.token_type
        if kind is TokenType.L_PAREN:
            waiting.append(0)
        elif kind is TokenType.R_PAREN:
            if waiting[-1] > 0:
                raise _syntax_error(token)
            if len(waiting) > 1:
                waiting.pop()
        elif kind is TokenType.JOIN:
            before = {t.token_type for t in tokens[max(i - 3, 0) : i]}
            if not before & _JOIN_NEEDS_NO_ON:
                waiting[-1] += 1
        elif kind in (TokenType.ON, TokenType.USING) and waiting[-1] > 0:
            waiting[-1] -= 1
        elif kind in _JOIN_ENDERS and waiting[-1] > 0:
            raise _syntax_error(token)
    if waiting[-1] > 0:
        raise _syntax_error(None)


# Tokens that end the expression a BETWEEN or a CASE ... WHEN is part of.
_EXPRESSION_ENDERS = frozenset(
    (
        TokenType.THEN, TokenType.ELSE, TokenType.END, TokenType.WHEN, TokenType.COMMA,
        TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.HAVING,
        TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET, TokenType.UNION,
        TokenType.INTERSECT, TokenType.EXCEPT, TokenType.RETURNING, TokenType.ON,
    )
)


# Tokens that can end an operand: "NOT NULL" right after one is a postfix NOT NULL.
_OPERAND_ENDS = frozenset(
    (
        TokenType.VAR, TokenType.NUMBER, TokenType.STRING, TokenType.R_PAREN, TokenType.NULL,
        TokenType.TRUE, TokenType.FALSE, TokenType.IDENTIFIER, TokenType.END,
    )
)


def _check_pairs(tokens: list[Token]) -> None:
    """42601 for ``x BETWEEN a b`` (no AND) and ``CASE WHEN c x`` (no THEN).

    sqlglot reads both; PostgreSQL requires the second keyword before the expression
    ends (at the same parenthesis depth).
    """
    n = len(tokens)
    for i, token in enumerate(tokens):
        kind = token.token_type
        if kind is TokenType.BETWEEN:
            partner, enders = TokenType.AND, _EXPRESSION_ENDERS
        elif kind is TokenType.WHEN:
            partner, enders = TokenType.THEN, _EXPRESSION_ENDERS - {TokenType.THEN}
        else:
            continue
        depth = 0  # parentheses and nested CASE ... END blocks
        for j in range(i + 1, n + 1):
            nxt = tokens[j] if j < n else None
            if nxt is None:
                raise _syntax_error(None)
            if nxt.token_type in (TokenType.L_PAREN, TokenType.CASE):
                depth += 1
            elif nxt.token_type in (TokenType.R_PAREN, TokenType.END):
                if depth == 0:
                    raise _syntax_error(nxt)
                depth -= 1
            elif depth == 0 and nxt.token_type is partner:
                break
            elif depth == 0 and nxt.token_type in enders:
                raise _syntax_error(nxt)
    if tokens and tokens[0].token_type in (TokenType.CREATE, TokenType.ALTER):
        return  # NOT NULL is a column constraint there
    for i, token in enumerate(tokens):
        # "x NOT NULL" (without IS) is not PostgreSQL; sqlglot reads it as IS NOT NULL
        if (
            token.token_type is TokenType.NOT
            and i + 1 < n
            and tokens[i + 1].token_type is TokenType.NULL
            and i > 0
            and tokens[i - 1].token_type in _OPERAND_ENDS
        ):
            raise _syntax_error(token)


def _check_keywords(tokens: list[Token]) -> None:
    """Keywords sqlglot completes and PostgreSQL does not (42601/42704)."""
    for i, token in enumerate(tokens):
        kind = token.token_type
        before = tokens[i - 1].token_type if i > 0 else None
        if kind is TokenType.FROM and before is TokenType.DISTINCT and i > 1 and tokens[i - 2].token_type is TokenType.SELECT:
            raise _syntax_error(token)  # SELECT DISTINCT FROM t (an empty list after DISTINCT)
        if kind is TokenType.OUTER and before not in (TokenType.LEFT, TokenType.RIGHT, TokenType.FULL):
            raise _syntax_error(token)  # "a OUTER JOIN b" needs LEFT, RIGHT or FULL
        if kind is TokenType.DOUBLE and token.text.lower() == "double":
            raise errors.ProgrammingError('type "double" does not exist', sqlstate="42704")
        if kind is TokenType.FETCH:
            # FETCH {FIRST|NEXT} [n] {ROW|ROWS} {ONLY|WITH TIES}
            rest = tokens[i + 1 :]
            kinds = [t.token_type for t in rest]
            if not kinds or kinds[0] not in (TokenType.FIRST, TokenType.NEXT) and rest[0].text.upper() not in ("FIRST", "NEXT"):
                raise _syntax_error(rest[0] if rest else None)
            rows_at = next((k for k, t in enumerate(kinds) if t in (TokenType.ROW, TokenType.ROWS)), None)
            if rows_at is None:
                raise _syntax_error(None)
            after = rest[rows_at + 1] if rows_at + 1 < len(rest) else None
            if after is None or (after.token_type is not TokenType.ONLY and after.text.upper() != "WITH"):
                raise _syntax_error(after)
        if (
            kind is TokenType.WITH
            and i + 3 < len(tokens)
            and tokens[i + 2].token_type is TokenType.L_PAREN
            and tokens[i + 3].token_type is TokenType.SELECT
        ):
            raise _syntax_error(tokens[i + 3])  # WITH q (SELECT ...): AS is missing


def check_tokens(tokens: list[Token]) -> None:
    """42601 for what sqlglot forgives in the token stream.

    Dangling commas, LIMIT/OFFSET without a value, JOIN without ON, and BETWEEN or
    CASE WHEN missing their AND or THEN.
    """
    _check_join_conditions(tokens)
    _check_pairs(tokens)
    _check_keywords(tokens)
    n = len(tokens)
    for i, token in enumerate(tokens):
        kind = token.token_type
        if kind is TokenType.COMMA:
            after = tokens[i + 1] if i + 1 < n else None
            before = tokens[i - 1] if i > 0 else None
            if after is None or after.token_type in _LIST_ENDERS:
                raise _syntax_error(after)
            if before is None or before.token_type in _LIST_STARTERS:
                raise _syntax_error(token)
        elif kind in _NEEDS_OPERAND:
            if i > 0 and tokens[i - 1].token_type is TokenType.ALIAS:
                continue  # "AS limit" names a column
            after = tokens[i + 1] if i + 1 < n else None
            if after is None or after.token_type in (TokenType.R_PAREN, TokenType.SEMICOLON):
                raise _syntax_error(after)


def check_tree(tree: exp.Expression) -> None:
    """42601 / 0A000 / 42809 for statement shapes PostgreSQL does not accept."""
    if isinstance(tree, exp.Update) and not tree.expressions:
        raise errors.SqlSyntaxError("syntax error at end of input: UPDATE needs SET assignments")
    if isinstance(tree, exp.Insert):
        target = tree.this
        if isinstance(target, exp.Schema) and not target.expressions:
            raise errors.SqlSyntaxError('syntax error at or near ")": an empty column list')
    for values in tree.find_all(exp.Values):
        if any(isinstance(t, exp.Tuple) and not t.expressions for t in values.expressions):
            raise errors.SqlSyntaxError('syntax error at or near ")": an empty VALUES row')
    if isinstance(tree, exp.Delete) and not isinstance(tree.this, exp.Table):
        raise errors.SqlSyntaxError("syntax error: DELETE needs FROM before the table name")
    for node in tree.walk():
        if isinstance(node, exp.In) and not node.expressions and node.args.get("query") is None \
                and node.args.get("unnest") is None and node.args.get("field") is None:
            raise errors.SqlSyntaxError('syntax error at or near ")": IN needs at least one value')
        elif isinstance(node, exp.Group) and not any(
            node.args.get(k) for k in ("expressions", "grouping_sets", "cube", "rollup", "all")
        ):
            raise errors.SqlSyntaxError("syntax error: GROUP BY needs at least one expression")
        elif isinstance(node, exp.TableSample):
            raise errors.not_supported("TABLESAMPLE")
        elif isinstance(node, exp.Count) and node.this is None and not node.expressions:
            raise errors.ProgrammingError(
                "count(*) must be used to call a parameterless aggregate function",
                sqlstate="42809",
            )
        elif isinstance(node, (exp.Select, exp.SetOperation)):
            _check_query_clauses(node)
        elif isinstance(node, exp.Alias) and not isinstance(node.parent, (exp.Select, exp.Returning)):
            # "(1 null)" parses as an alias inside parentheses; only output lists name things
            raise errors.SqlSyntaxError(f'syntax error at or near "{node.alias}"')


def _check_query_clauses(query: exp.Expression) -> None:
    """A query's own ORDER BY and GROUP BY (not an aggregate's) take no constants but integers."""
    order = query.args.get("order")
    for item in order.expressions if order is not None else ():
        if _is_non_integer_constant(item.this if isinstance(item, exp.Ordered) else item):
            raise errors.SqlSyntaxError("non-integer constant in ORDER BY")
    group = query.args.get("group")
    for item in group.expressions if group is not None else ():
        if _is_non_integer_constant(item):
            raise errors.SqlSyntaxError("non-integer constant in GROUP BY")


def _is_non_integer_constant(node: exp.Expression | None) -> bool:
    """A literal other than an integer (PostgreSQL reads an integer as a column number)."""
    if isinstance(node, exp.Literal):
        return node.is_string or not node.this.isdigit()
    return isinstance(node, (exp.Boolean, exp.Null))
