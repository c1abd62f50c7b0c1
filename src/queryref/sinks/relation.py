"""What the sinks run: a query's sqlglot tree, the backend it runs on, and its schema.

``QueryRef`` hands its sinks a :class:`Relation` (``QueryRef._relation()``). Everything below
``QueryRef`` (the sinks, the estimate, ``shrink_dtypes``, the offload layer) works on these
values and on pure tree rewrites: it never builds a ``QueryRef`` nor calls back into one. The
rewrites the sinks need (a LIMIT for ``max_rows``, casts done by the engine) are here, as
functions from relation to relation, made by the composition steps QueryRef's own verbs use
(:mod:`queryref.sql.compose`), so whether they wrap the query is decided in the one place.

>>> from queryref.backends.duckdb import DuckDBBackend
>>> rel = Relation(exp.select("*").from_("range(5)"), DuckDBBackend.open(":memory:"))
>>> rel.columns, with_limit(rel, 2).sql()
(['range'], 'SELECT * FROM RANGE(5) LIMIT 2')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.errors import UnsupportedError as SqlglotUnsupported

from queryref.backends import Backend, Stream
from queryref.backends._base import CAST_TO_DOUBLE
from queryref.errors import UnsupportedError
from queryref.sql import compose
from queryref.sql.text import column, render


@dataclass(frozen=True, eq=False)
class Relation:
    """A query as the sinks see it: ``tree`` in ``backend``'s dialect.

    ``lookup`` learns the result's schema when first asked (QueryRef passes its own cached
    lookup; None: a zero-row query through the backend); ``names`` are the column names when
    known without it. ``track`` is told of every stream a sink opens, so the connection can
    stop it when it closes first.
    """

    tree: exp.Query
    backend: Backend
    lookup: Callable[[], pa.Schema] | None = None
    names: tuple[str, ...] | None = None
    track: Callable[[Stream], object] | None = None

    @property
    def dialect(self) -> str:
        """The SQL dialect of the backend's engine."""
        return self.backend.dialect

    @cached_property
    def schema(self) -> pa.Schema:
        """The result's Arrow schema (asked for once)."""
        if self.lookup is not None:
            return self.lookup()
        return self.backend.schema(render(self.tree, self.dialect))

    @property
    def columns(self) -> list[str]:
        """The result's column names."""
        return list(self.names) if self.names is not None else list(self.schema.names)

    def with_tree(self, tree: exp.Query, schema: pa.Schema | None = None) -> Relation:
        """The same result's rows through another tree: the schema is this one's unless
        given (a LIMIT keeps it; a cast changes it)."""
        if schema is None:
            return dataclasses.replace(self, tree=tree, lookup=lambda: self.schema)
        return dataclasses.replace(self, tree=tree, lookup=lambda: schema,
                                   names=tuple(schema.names))

    def frame(self) -> compose.Frame:
        """This query as the composition steps take it (its columns found when a step needs
        them)."""
        return compose.Frame(self.tree, lambda: self.columns, self.dialect,
                             self.backend.case_insensitive)

    def new(self, tree: exp.Query) -> Relation:
        """Another query on the same backend (its own schema, asked for when needed)."""
        return Relation(tree, self.backend, track=self.track)

    def sql(self) -> str:
        """The SQL to run (see :func:`strict_sql`)."""
        return strict_sql(self.tree, self.dialect)

    def open(self, sql: str, batch_rows: int, **options: Any) -> Stream:
        """The backend's stream over ``sql``, tracked (stopped if the connection closes first)."""
        stream = self.backend.stream(sql, batch_rows, **options)
        if self.track is not None:
            self.track(stream)
        return stream

    def first_row(self, query: exp.Query | str) -> list[Any] | None:
        """The first row of a small helper query (a count, statistics; a tree or its SQL), by
        position (Snowflake upper-cases names); None when it has no rows. Tracked as every
        stream is: closing the connection stops a long one (a count over a big join)."""
        sql = query if isinstance(query, str) else strict_sql(query, self.dialect)
        with self.open(sql, 16) as stream:
            return next(([c[0].as_py() for c in b.columns] for b in stream if b.num_rows), None)

    def fetch(self, tree: exp.Query) -> pa.Table:
        """A small helper query's whole result (distinct values, boundaries): no budget."""
        with self.open(strict_sql(tree, self.dialect), 4096) as stream:
            return pa.Table.from_batches(list(stream), schema=stream.schema)


def strict_sql(tree: exp.Query, dialect: str) -> str:
    """The SQL to run: what the dialect cannot express raises instead of being dropped."""
    try:
        return render(tree, dialect, unsupported_level=ErrorLevel.RAISE)
    except SqlglotUnsupported as err:
        msg = f"{dialect} cannot run this query as written: {err}"
        raise UnsupportedError(msg) from None


# -- the sinks' rewrites: relation in, relation out ------------------------------------------
def with_limit(rel: Relation, n: int) -> Relation:
    """``rel`` with at most ``n`` rows (``max_rows + 1``, a preview), its order kept: what
    ``QueryRef.limit`` does."""
    return rel.with_tree(compose.limit(rel.frame(), n))


def with_casts(rel: Relation, types: Mapping[str, tuple[str, pa.DataType]]) -> Relation:
    """``rel`` with the columns in ``types`` cast by the engine (``name -> (SQL type, the Arrow
    type that arrives)``), each in its place, the order kept: what ``QueryRef.mutate`` does.
    A result with a column name twice is left as it is (the casts cannot name one of the two)."""
    columns = rel.columns
    if not types or len(set(columns)) != len(columns):
        return rel
    items = [(c, exp.cast(column(c), exp.DataType.build(types[c][0])) if c in types
              else column(c)) for c in columns]
    fields = [f.with_type(types[f.name][1]) if f.name in types else f for f in rel.schema]
    return rel.with_tree(compose.project(rel.frame(), items), pa.schema(fields))


def decimals_as_double(rel: Relation) -> Relation:
    """``rel`` with its DECIMAL columns cast to DOUBLE by the engine.

    The engine casts in parallel and sends half the bytes; casting decimal128 in Arrow
    afterwards took longer than fetching the columns (TPC-H lineitem: 1.0-1.3 s vs 0.9 s).
    Columns the backend marks ``CAST_TO_DOUBLE`` (PostgreSQL's NUMERIC without a precision,
    reported as float64) are cast too: the driver would format each value as text and
    queryref parse it back (4M values: 3.3 s of client CPU against 0.6 s as float8).
    """
    decimal = {f.name: ("double", pa.float64()) for f in rel.schema
               if pa.types.is_decimal(f.type) or CAST_TO_DOUBLE in (f.metadata or {})}
    return with_casts(rel, decimal)
