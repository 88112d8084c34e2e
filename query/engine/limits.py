"""How deeply a statement may nest, and the Python recursion it needs for that.

Parsing (sqlglot's recursive descent), planning and the compiled closures all recurse
once or more per level of nesting: about 25 Python frames per parenthesis in the
parser, a few per operator in a left-deep chain like ``a + a + a ...``. Python's default
limit of 1000 frames stopped offsetdb at 46 nested parentheses with a raw
RecursionError. Before parsing, the tokens tell how deep a statement can go; the limit
is raised (never lowered: other threads may rely on it) to what that depth needs, up to
:data:`MAX_NESTING` levels of parentheses and :data:`MAX_CHAIN` chained operators.
Beyond those, and for any RecursionError that still escapes, the answer is 54001
(statement too complex), never a crash. Python 3.11 runs Python-to-Python calls
without growing the C stack, which is what makes a higher limit safe.
"""

from __future__ import annotations

import sys
import threading

from sqlglot.tokens import Token, TokenType

from offsetdb import errors

MAX_NESTING = 1000  # levels of parentheses (subqueries, expressions)
MAX_CHAIN = 20000  # binary operators in one statement (a + b + ..., x = 1 OR x = 2 ...)
_FRAMES_PER_LEVEL = 40
_FRAMES_PER_OPERATOR = 4
_BASE_FRAMES = 2000

_CHAIN_TOKENS = frozenset(
    (
        TokenType.PLUS, TokenType.DASH, TokenType.STAR, TokenType.SLASH, TokenType.MOD,
        TokenType.CARET, TokenType.DPIPE, TokenType.AND, TokenType.OR, TokenType.EQ,
        TokenType.NEQ, TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE,
    )
)
_lock = threading.Lock()


def too_complex() -> errors.StatementTooComplex:
    """54001 naming the documented limits."""
    return errors.StatementTooComplex(
        f"statement too complex: offsetdb accepts up to {MAX_NESTING} levels of nested "
        f"parentheses and {MAX_CHAIN} chained operators per statement"
    )


def allow_depth(tokens: list[Token]) -> None:
    """Raise Python's recursion limit for what ``tokens`` can need, or 54001 past the limits."""
    depth = deepest = operators = 0
    for token in tokens:
        kind = token.token_type
        if kind is TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif kind is TokenType.R_PAREN:
            depth -= 1
        elif kind in _CHAIN_TOKENS:
            operators += 1
    if deepest > MAX_NESTING or operators > MAX_CHAIN:
        raise too_complex()
    needed = _BASE_FRAMES + deepest * _FRAMES_PER_LEVEL + operators * _FRAMES_PER_OPERATOR
    if needed > sys.getrecursionlimit():
        with _lock:
            if needed > sys.getrecursionlimit():
                sys.setrecursionlimit(needed)
