"""``q.count()``: ``SELECT COUNT(*)`` over the query, run in the database.

>>> from queryref.backends.duckdb import DuckDBBackend
>>> from queryref.sinks.relation import Relation
>>> count(Relation(exp.select("*").from_("range(7)"), DuckDBBackend.open(":memory:")))
7
"""

from __future__ import annotations

from sqlglot import exp

from queryref.sinks.relation import Relation
from queryref.sql import rewrite as rw
from queryref.sql.text import ident


def count(rel: Relation) -> int:
    """The number of rows of ``rel``'s result, counted by the engine."""
    n = exp.Alias(this=exp.Count(this=exp.Star()), alias=ident("n"))
    row = rel.first_row(exp.select(n).from_(rw.subquery(rel.tree)))
    return int(row[0]) if row is not None else 0
