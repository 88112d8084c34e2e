"""The SQL engine: parse, plan and execute SQL against a :class:`TxnContext`.

Entry point: :func:`prepare` turns SQL text into :class:`Statement` objects (cached by
text); ``Statement.execute(ctx, params)`` runs one in a transaction. The engine reads and
writes only through :mod:`offsetdb.query.context`.

Modules, in the order a statement meets them:

- :mod:`.prepare` splits, parses and classifies statements; :mod:`.params` binds values;
- :mod:`.statement` caches each statement's plan per table version;
- :mod:`.select` plans queries (:mod:`.pointlookup` short-circuits primary-key lookups,
  :mod:`.scanfilter` derives scan predicates), :mod:`.dml` and :mod:`.ddl` the rest;
- :mod:`.expressions` compiles expressions into closures, with :mod:`.functions`,
  :mod:`.aggregates`, :mod:`.values` (operators and casts) and :mod:`.datetimes`;
- :mod:`.scope` resolves names; :mod:`.runtime` holds what an execution carries.

>>> [s.kind.name for s in prepare("BEGIN; SELECT 1; COMMIT")]
['BEGIN', 'QUERY', 'COMMIT']
"""

from __future__ import annotations

from .prepare import prepare
from .result import Result, ResultColumn, StatementKind
from .statement import Statement

__all__ = ["Result", "ResultColumn", "Statement", "StatementKind", "prepare"]
