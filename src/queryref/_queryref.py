"""``QueryRef``: an immutable handle on a query. Composition methods return new handles.

Nothing here runs a query except the sinks (delegated to ``queryref.sinks.run``) and the
schema lookup that column checking needs (one zero-row query per handle, cached).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from queryref import _display
from queryref import explore as _explore
from queryref._expr import Expr
from queryref._interop import ArrowInterop
from queryref._outputs import Outputs
from queryref._reshape import ReshapeVerbs
from queryref._verbs import ComposeVerbs
from queryref.errors import ParameterError
from queryref.offload import cache as _cache
from queryref.sinks.relation import Relation
from queryref.sql import compose
from queryref.sql import rewrite as rw
from queryref.sql.compose import Frame
from queryref.sql.text import column, copy_tree, deep, engine_name, parse_expression, render

if TYPE_CHECKING:
    import pandas as pd

    from queryref._connection import Connection

class QueryRef(ComposeVerbs, Outputs, ReshapeVerbs, ArrowInterop):
    """A query held as a sqlglot tree plus the connection it runs on. Nothing runs until a sink.

    >>> import queryref as qr
    >>> con = qr.connect()
    >>> q = con.sql("SELECT range AS id, range % 3 AS g FROM range(10)")
    >>> top = q.filter(qr.col("g") == 1).select("id").order_by(qr.desc("id")).limit(2)
    >>> top.to_pandas()["id"].tolist()
    [7, 4]
    """

    __slots__ = ("_con", "_names", "_schema", "_tree")

    def __init__(
        self,
        tree: exp.Query,
        con: Connection,
        *,
        names: Sequence[str] | None = None,
        schema: pa.Schema | None = None,
    ) -> None:
        self._tree = tree
        self._con = con
        self._schema = schema
        self._names: tuple[str, ...] | None = (
            tuple(schema.names) if schema is not None else (tuple(names) if names else None)
        )

    # -- identity ---------------------------------------------------------------------
    @property
    def tree(self) -> exp.Query:
        """The sqlglot tree (shared: copy it before changing it).

        >>> import queryref as qr
        >>> type(qr.connect().sql("SELECT 1 AS x").tree).__name__
        'Select'
        """
        return self._tree

    @property
    def connection(self) -> Connection:
        """The connection this query runs on.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> con.sql("SELECT 1 AS x").connection is con
        True
        """
        return self._con

    @property
    def dialect(self) -> str:
        """The SQL dialect of the connection's engine (sqlglot's name).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS x").dialect
        'duckdb'
        """
        return self._con.dialect

    @property
    def sql(self) -> str:
        """The SQL that will run, in the connection's dialect, pretty-printed.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> con.execute("CREATE TABLE orders AS SELECT 1 AS id, 10 AS amount")
        >>> print(con.table("orders").filter(qr.col("amount") > 5).select("id").sql)
        SELECT
          id
        FROM orders
        WHERE
          amount > 5
        """
        return render(self._tree, self.dialect, pretty=True)

    def compile(self, dialect: str | None = None, *, pretty: bool = True) -> str:
        """The query as SQL text for ``dialect`` (default: the connection's), as sqlglot
        transpiles it; ``pretty=False`` puts it on one line.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 1 AS x").limit(5)
        >>> q.compile("tsql", pretty=False)
        'SELECT TOP 5 1 AS x'
        """
        try:
            if dialect is None or dialect == self.dialect:
                return render(self._tree, self.dialect, pretty=pretty)
            with deep():
                return self._tree.sql(dialect=dialect, pretty=pretty)
        except ValueError as err:  # unknown dialect
            raise ParameterError(str(err)) from None

    def __repr__(self) -> str:
        return f"<QueryRef on {self._con.describe()}>\n{self.sql}"

    def __str__(self) -> str:
        return self.sql

    def _repr_html_(self) -> str:
        """In a notebook: the SQL, then columns, types and a LIMIT-bounded preview."""
        return _display.query_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain text: the same parts as the HTML (``repr()`` itself runs nothing)."""
        p.text(_display.query_text(self))

    # -- keeping a result in the warehouse ---------------------------------------------
    def cache(self) -> CachedQueryRef:
        """Keep the result in the warehouse: a table with a generated name, and a QueryRef
        over it.

        The table lives as long as the connection, as a temporary table would: it goes with
        ``release()`` / the end of a ``with`` block, ``con.close()``, the connection's garbage
        collection or interpreter exit. It is a real table (``UNLOGGED`` on PostgreSQL) where
        the connection uses several sessions (a pool), so every pooled connection and thread
        reads it; temporary on Snowflake (one session), in an attached in-memory database on
        DuckDB.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> cached = con.sql("SELECT range AS id FROM range(1000)").cache()
        >>> cached.filter(qr.col("id") < 3).count()
        3
        >>> cached.release()
        """
        con = self._con
        owner = _cache.Owner(con.backend, con._session_tables, lambda: con._finalizer.alive)
        handle = _cache.create(self.tree, owner)
        return CachedQueryRef(exp.select("*").from_(handle.table.copy()), con,
                              names=self.columns if self._names is not None else None,
                              handle=handle)

    # -- exploring without loading (queryref.explore) ----------------------------------------
    def describe(self) -> pd.DataFrame:
        """Statistics of every column, laid out as pandas' ``describe(include="all")`` plus
        null counts, computed in the warehouse (only the figures cross).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 'a'), (3, 'b'), (5, 'b')) t(n, s)")
        >>> q.describe().loc[["count", "mean", "50%", "top"]]
                 n    s
        count  3.0    3
        mean   3.0  NaN
        50%    3.0  NaN
        top    NaN    b
        """
        return _explore.describe(self)

    def value_counts(self, column: str, n: int = 20, *, dropna: bool = True) -> pd.DataFrame:
        """The ``n`` most frequent values of ``column`` and their counts, counted in the
        warehouse; a last ``"(other)"`` row sums the rest.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES ('a'), ('b'), ('b')) t(s)")
        >>> q.value_counts("s")
           s  count
        0  b      2
        1  a      1
        """
        return _explore.value_counts(self, column, n, dropna=dropna)

    def histogram(self, column: str, bins: int = 30) -> pd.DataFrame:
        """Counts in ``bins`` equal-width bins (``bin_start``, ``bin_end``, ``count``): the
        same as ``numpy.histogram`` over the range, computed in the warehouse.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS x FROM range(10)").histogram("x", bins=2)
           bin_start  bin_end  count
        0        0.0      4.5      5
        1        4.5      9.0      5
        """
        return _explore.histogram(self, column, bins)

    @property
    def plot(self) -> _explore.Plot:
        """Charts whose data the warehouse computes: ``.hist``, ``.bar``, ``.line``,
        ``.scatter``, ``.box`` (Altair charts; only the bins or groups cross).

        >>> import queryref as qr
        >>> chart = qr.connect().sql("SELECT range AS x FROM range(100)").plot.hist("x", bins=4)
        >>> chart.data["count"].tolist()
        [25, 25, 25, 25]
        """
        return _explore.Plot(self)

    def grid(self, page_size: int = 50) -> Any:
        """A notebook widget that pages, sorts and filters in the warehouse (anywidget).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS x FROM range(120)").grid(page_size=50).page_info
        'rows 1-50 of 120'
        """
        from queryref.explore.grid import Grid  # (anywidget: an optional dependency)

        return Grid(self, page_size=page_size)

    def __bool__(self) -> bool:
        msg = (
            "a QueryRef has no truth value: nothing has run. Use .count(), .preview() or a "
            "sink such as .to_pandas() to look at its rows"
        )
        raise TypeError(msg)

    def __len__(self) -> int:
        msg = "len() would run the query: use .count(), which counts in the database"
        raise TypeError(msg)

    def __iter__(self) -> Iterator[Any]:
        msg = "iterating would fetch every row: use .to_arrow_batches() or .to_pandas_batches()"
        raise TypeError(msg)

    def _new(self, tree: exp.Query, names: Sequence[str] | None = None) -> QueryRef:
        fold = str.lower if self._con.backend.case_insensitive else str
        if names is not None and len({fold(n) for n in names}) != len(names):
            names = None  # engines rename duplicates in a subquery (DuckDB: a, a_1): ask it
        return QueryRef(tree, self._con, names=names)

    def _relation(self) -> Relation:
        """This query as the sinks take it: its tree and backend, its schema asked for here
        (and cached here) only when a sink needs it, its streams tracked by the connection."""
        return Relation(self.tree, self._con.backend, lambda: self.schema, names=self._names,
                        track=self._con._streams.add)

    # -- schema -----------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        """The result's Arrow schema, from the engine's metadata or a zero-row query (cached).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS id, 'a' AS name").schema
        id: int32
        name: string
        """
        if self._schema is None:
            self._schema = self._con.backend.schema(render(self._tree, self.dialect))
            self._names = tuple(self._schema.names)
        return self._schema

    @property
    def columns(self) -> list[str]:
        """The result's column names (no rows are fetched).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS id, 'a' AS name").columns
        ['id', 'name']
        """
        if self._names is None:
            return list(self.schema.names)
        return list(self._names)

    def _frame(self) -> Frame:
        """This query as the composition steps below QueryRef see it (tree, columns, rules)."""
        columns = self._names if self._names is not None else (lambda: self.columns)
        return Frame(self.tree, columns, self.dialect, self._con.backend.case_insensitive)

    def _resolve(self, name: str) -> str:
        """The column's name as the query has it; raises UnknownColumnError."""
        return self._frame().resolve(name)

    def _lookup(self, name: str) -> str | None:
        """The column's name as the query has it, or None (no error built: this is hot)."""
        return self._frame().lookup(name)

    def _engine_name(self, name: str) -> str:
        """What the engine calls a name the user wrote (``queryref.sql.text.engine_name``)."""
        try:
            return engine_name(name, self.dialect)
        except ParameterError:
            return name

    def _has(self, name: str) -> bool:
        return self._frame().has(name)

    def _check(self, nodes: Sequence[exp.Expr]) -> None:
        """Raise UnknownColumnError if an expression names a column the query lacks (names
        the engine matches ignoring case are respelled in place: see ``Frame.check``)."""
        self._frame().check(nodes)

    def _to_node(self, value: Any, *, sql_text: bool = True) -> exp.Expr:
        """An Expr, a column name, or SQL text as a tree in this connection's dialect."""
        if isinstance(value, Expr):
            return copy_tree(value.node)
        if isinstance(value, exp.Expr):
            return copy_tree(value)
        if isinstance(value, str):
            if value in self.columns or not sql_text:
                return column(value)
            return parse_expression(value, self.dialect)
        if isinstance(value, QueryRef):
            return value.as_scalar().node
        raise ParameterError(f"expected an expression, a column name or SQL text, not {value!r}")

    def _named(self, value: Any) -> tuple[str, exp.Expr]:
        """A projection item with its output name."""
        if isinstance(value, str) and self._has(value):
            name = self._resolve(value)
            return name, column(name)
        node = self._to_node(value)
        if isinstance(value, Expr) and value._name and not isinstance(node, exp.Column):
            return value._name, node
        if isinstance(node, exp.Column) and not node.table and self._has(node.name):
            name = self._resolve(node.name)
            alias = value._name if isinstance(value, Expr) and value._name != node.name else None
            return alias or name, column(name)
        if isinstance(value, Expr) and value.output_name:
            return value.output_name, node
        if isinstance(node, exp.Alias):
            return node.alias, node.this
        name = rw.output_name(node) or node.sql(dialect=self.dialect)
        return name, node

    def _project(self, items: Sequence[tuple[str, exp.Expr]]) -> QueryRef:
        """A new projection: ``items`` are (output name, expression over current columns)."""
        items = [(self._engine_name(n), node) for n, node in items]
        names = [n for n, _ in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ParameterError(f"duplicate output column names {dupes}: give each an alias")
        f = self._frame()
        f.check([node for _, node in items])
        return self._new(compose.project(f, items), names)



class CachedQueryRef(QueryRef):
    """A QueryRef over a table that holds a query's result (see
    [`QueryRef.cache`][queryref.QueryRef.cache]); everything a QueryRef does, it does.

    ``release()`` drops the table (again is fine); so does the end of a ``with`` block.
    Using it afterwards raises [`CacheReleased`][queryref.errors.CacheReleased]. Queries
    composed from it read the same table: run them before releasing it.

    >>> import queryref as qr
    >>> con = qr.connect()
    >>> q = con.sql("SELECT range AS id FROM range(5)")
    >>> with q.filter(qr.col("id") > 2).cache() as cached:
    ...     cached.to_pandas()["id"].tolist()
    [3, 4]
    >>> cached.released
    True
    """

    __slots__ = ("_handle",)

    def __init__(self, tree: exp.Query, con: Connection, *, handle: _cache.CacheHandle,
                 names: Any = None, schema: pa.Schema | None = None) -> None:
        super().__init__(tree, con, names=names, schema=schema)
        self._handle = handle

    @property
    def table_name(self) -> str:
        """The generated name of the table.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS x").cache().table_name.startswith("_qr")
        True
        """
        return self._handle.name

    @property
    def released(self) -> bool:
        """Whether ``release()`` has dropped the table.

        >>> import queryref as qr
        >>> cached = qr.connect().sql("SELECT 1 AS x").cache()
        >>> cached.released
        False
        """
        return self._handle.released

    def release(self) -> None:
        """Drop the table now. Releasing twice is fine.

        >>> import queryref as qr
        >>> cached = qr.connect().sql("SELECT 1 AS x").cache()
        >>> cached.release()
        >>> cached.count()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        queryref.errors.CacheReleased: ...
        """
        self._handle.release()

    def __enter__(self) -> CachedQueryRef:
        self._handle.check()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # Everything that runs or composes goes through these: after release they refuse.
    @property
    def tree(self) -> exp.Query:
        """The sqlglot tree (raises once released)."""
        self._handle.check()
        return self._tree

    @property
    def schema(self) -> pa.Schema:
        """The result's Arrow schema (raises once released)."""
        self._handle.check()
        return super().schema

    @property
    def columns(self) -> list[str]:
        """The result's column names (raises once released)."""
        self._handle.check()
        return super().columns

    def _new(self, tree: exp.Query, names: Any = None) -> QueryRef:
        self._handle.check()
        return super()._new(tree, names)

    def explain(self) -> str:
        """The database's plan (raises once released)."""
        self._handle.check()
        return super().explain()

    def __repr__(self) -> str:
        state = "released" if self.released else "live"
        return f"<CachedQueryRef ({state}) on {self._con.describe()}>\n{self.sql}"
