"""Syntax PostgreSQL rejects and sqlglot's lenient parser lets through.

sqlglot is built to read many dialects, so it forgives: a dangling comma is dropped
(``SELECT 1,``), a reserved word becomes an alias (``SELECT 1 LIMIT``), empty lists
parse (``x IN ()``, ``UPDATE t SET``, ``GROUP BY``). PostgreSQL answers all of these
with 42601, and a database that runs something other than what was written gives wrong
answers, so each is checked here, on the tokens and on the tree, before planning.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from offsetdb import errors

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
# Keywords that must be followed by an expression.
_NEEDS_OPERAND = frozenset((TokenType.LIMIT, TokenType.OFFSET))


def _syntax_error(token: Token | None) -> errors.SqlSyntaxError:
    if token is None:
        return errors.SqlSyntaxError("syntax error at end of input")
    return errors.SqlSyntaxError(
        f'syntax error at or near "{token.text}" (line {token.line}, column {token.col})'
    )


def check_tokens(tokens: list[Token]) -> None:
    """42601 for dangling commas and for LIMIT/OFFSET without a value."""
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
