"""``QueryRef``: an immutable handle on a query. Composition methods return new handles.

Nothing here runs a query except the sinks (delegated to ``queryref.sinks.run``) and the
schema lookup that column checking needs (one zero-row query per handle, cached).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import pyarrow as pa
from sqlglot import exp

from queryref import _display
from queryref import explore as _explore
from queryref._expr import Expr, _data_type, _node, _Sort, ordering
from queryref._interop import ArrowInterop
from queryref._options import DEFAULT
from queryref._reshape import ReshapeVerbs
from queryref.errors import ParameterError
from queryref.offload import cache as _cache
from queryref.offload import isolate as _isolate
from queryref.offload import partitions as _partitions
from queryref.sinks import count as _count
from queryref.sinks import estimate as _estimate
from queryref.sinks import files as _files
from queryref.sinks import run as _sinks
from queryref.sinks import streams as _streams
from queryref.sinks.estimate import Estimate
from queryref.sinks.files import CSVWritten, ParquetWritten
from queryref.sinks.relation import Relation
from queryref.sql import compose
from queryref.sql import join as _join
from queryref.sql import rewrite as rw
from queryref.sql.compose import Frame
from queryref.sql.text import column, copy_tree, deep, engine_name, parse_expression, render

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from queryref._connection import Connection
    from queryref._typing import (
        Decimals,
        DtypeBackend,
        JoinHow,
        PartitionsAs,
        Preflight,
        Progress,
        SizeLike,
    )

_tmp_names = (f"_qr_tmp{i}" for i in itertools.count(1))


class QueryRef(ReshapeVerbs, ArrowInterop):
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

    # -- composition --------------------------------------------------------------------
    def select(self, *items: str | Expr, **named: str | Expr) -> QueryRef:
        """Keep (or compute) these columns, in this order.

        Text is a column name when the query has that column, SQL otherwise;
        ``qr.col("*")`` (or ``"*"``) keeps every column. Keywords name computed columns.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.select("g", "id", double=qr.col("v") * 2).to_pandas()
           g  id  double
        0  a   1      10
        1  b   2      14
        2  a   3      18
        """
        out: list[tuple[str, exp.Expr]] = []
        for item in items:
            if (isinstance(item, Expr) and isinstance(item.node, exp.Star)) or (
                isinstance(item, str) and item == "*"
            ):
                out += [(c, column(c)) for c in self.columns]
            else:
                out.append(self._named(item))
        out += [(alias, self._to_node(v)) for alias, v in named.items()]
        if not out:
            raise ParameterError("select() needs at least one column")
        return self._project(out)

    def mutate(self, *exprs: Expr, **named: str | Expr | Any) -> QueryRef:
        """Add or replace columns (a replaced column keeps its place).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 2 AS a").mutate(b=qr.col("a") * 10, a="a + 1")
        >>> q.to_pandas().values.tolist()
        [[3, 20]]
        """
        new: dict[str, exp.Expr] = {}
        for e in exprs:
            name, node = self._named(e)
            new[name] = node
        for alias, value in named.items():
            is_expr = isinstance(value, str | Expr | exp.Expr | QueryRef)
            new[alias] = self._to_node(value) if is_expr else _node(value)
        columns = self.columns
        resolved = {(self._resolve(k) if self._has(k) else k): v for k, v in new.items()}
        items = [(c, resolved.pop(c) if c in resolved else column(c)) for c in columns]
        items += list(resolved.items())
        return self._project(items)

    with_columns = mutate

    def rename(self, mapping: Mapping[str, str] | None = None, /, **renames: str) -> QueryRef:
        """Rename columns: ``rename({"old": "new"})`` or ``rename(old="new")``.

        >>> import queryref as qr
        >>> t = qr.connect().sql("SELECT 1 AS id, 'a' AS name")
        >>> t.rename({"name": "label"}).columns
        ['id', 'label']
        """
        if mapping is not None and not isinstance(mapping, Mapping):
            raise ParameterError(f"rename() takes {{'old': 'new'}} or old='new', not {mapping!r}")
        pairs = {**(mapping or {}), **renames}
        bad = [new for new in pairs.values() if not isinstance(new, str) or not new]
        if bad:
            raise ParameterError(f"rename() needs new names as non-empty text, not {bad[0]!r}")
        resolved = {self._resolve(old): new for old, new in pairs.items()}
        items = [(resolved.get(c, c), column(c)) for c in self.columns]
        return self._project(items)

    def drop(self, *names: str) -> QueryRef:
        """Remove columns (each must exist).

        >>> import queryref as qr
        >>> t = qr.connect().sql("SELECT 1 AS id, 'a' AS name, 2.5 AS amount")
        >>> t.drop("amount").columns
        ['id', 'name']
        """
        gone = {self._resolve(n) for n in names}
        items = [(c, column(c)) for c in self.columns if c not in gone]
        if not items:
            raise ParameterError("drop() would remove every column")
        return self._project(items)

    def cast(self, mapping: Mapping[str, str] | None = None, /, **types: str) -> QueryRef:
        """Change column types: ``cast(amount="DECIMAL(12,2)")`` or ``cast({"amount": ...})``.

        >>> import queryref as qr
        >>> t = qr.connect().sql("SELECT 1 AS id, '2.5' AS amount")
        >>> t.cast(id="VARCHAR", amount="DOUBLE").schema.types
        [DataType(string), DataType(double)]
        """
        pairs = {**(mapping or {}), **types}
        return self.mutate(**{
            self._resolve(n): Expr(exp.cast(column(self._resolve(n)), _data_type(t)))
            for n, t in pairs.items()
        })

    def filter(self, *predicates: str | Expr) -> QueryRef:
        """Keep rows where every predicate holds (Exprs or SQL text, ANDed).

        After an aggregate this becomes HAVING; after a limit, a window or DISTINCT it wraps
        the query, so the result is always what the steps mean in order. An aggregate in a
        predicate is over the whole result (``qr.col("v") > qr.col("v").mean()``). Also
        available as ``where``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.filter(qr.col("v") > 6, "g = 'a'").to_pandas()
           id  g  v
        0   3  a  9
        """
        if not predicates:
            return self
        nodes = [self._to_node(p, sql_text=True) if not isinstance(p, str)
                 else parse_expression(p, self.dialect) for p in predicates]
        self._check(nodes)
        # The predicate's columns are this query's output columns, so an aggregate in it
        # means "over all rows of this result" (as in Polars): a window over the whole query.
        nodes = [compose.aggregates_as_windows(n) for n in nodes]
        if any(rw.contains_window(n) for n in nodes):
            return self._filter_via_column(nodes)
        return self._new(compose.filter_rows(self._frame(), nodes), self._names)

    where = filter

    def _filter_via_column(self, nodes: Sequence[exp.Expr]) -> QueryRef:
        """A predicate with a window: compute it as a column, filter on it, drop it."""
        tmp = next(_tmp_names)
        cond = rw.and_all(list(nodes))
        return self.mutate(**{tmp: Expr(cond)}).filter(Expr(column(tmp))).drop(tmp)

    def group_by(self, *keys: str | Expr, **named_keys: str | Expr) -> GroupBy:
        """Group rows by keys (column names or expressions; keywords name computed keys);
        finish with [`agg`][queryref.GroupBy.agg].

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.group_by("g").agg(total=qr.col("v").sum(), n=qr.count()).order_by("g").to_pandas()
           g  total  n
        0  a   14.0  2
        1  b    7.0  1
        """
        out = [self._named(k) for k in keys]
        out += [(alias, self._to_node(v)) for alias, v in named_keys.items()]
        return GroupBy(self, out)

    def agg(self, *aggs: Expr, **named: str | Expr) -> QueryRef:
        """Aggregate the whole query into one row: ``agg(total=qr.col("x").sum())``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.agg(total=qr.col("v").sum(), n=qr.count()).to_pandas()
           total  n
        0   21.0  3
        """
        return GroupBy(self, []).agg(*aggs, **named)

    def _aggregate(self, keys: Sequence[tuple[str, exp.Expr]],
                   aggs: Sequence[tuple[str, exp.Expr]]) -> QueryRef:
        keys = [(self._engine_name(n), node) for n, node in keys]
        aggs = [(self._engine_name(n), node) for n, node in aggs]
        items = [*keys, *aggs]
        if not aggs and not keys:
            raise ParameterError("agg() needs at least one aggregate")
        names = [n for n, _ in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ParameterError(f"duplicate output column names {dupes}: give each an alias")
        nodes = [node for _, node in items]
        self._check(nodes)
        if any(rw.inner_aggregates(node) for _, node in aggs):
            return self._aggregate_nested(keys, aggs)
        return self._new(compose.aggregate(self._frame(), keys, aggs), names)

    def _aggregate_nested(self, keys: Sequence[tuple[str, exp.Expr]],
                          aggs: Sequence[tuple[str, exp.Expr]]) -> QueryRef:
        """An aggregate inside an aggregate means "per group": compute it first as a window.

        ``agg(x=qr.when(col("v") > col("v").mean(), 1).otherwise(0).sum())`` compares each
        row with its group's mean, as Polars does; SQL cannot nest aggregates, so the inner
        one becomes ``AVG(v) OVER (PARTITION BY keys)`` in a column computed before grouping.
        """
        base = self
        partition = [node.copy() for _, node in keys]
        new_aggs = []
        for name, node in aggs:
            node = node.copy()
            for inner in rw.inner_aggregates(node):
                tmp = next(_tmp_names)
                window = exp.Window(this=inner.copy(), partition_by=[p.copy() for p in partition]
                                    or None)
                base = base.mutate(**{tmp: Expr(window)})
                inner.replace(column(tmp))
            new_aggs.append((name, node))
        return base._aggregate(keys, new_aggs)

    def order_by(self, *keys: str | Expr | _Sort) -> QueryRef:
        """Sort by keys (``qr.desc("x")`` for descending; NULLs last). Also ``sort``.

        Keys are column names, expressions, SQL text or [`asc`][queryref.asc] /
        [`desc`][queryref.desc]; each later key breaks the ties of the ones before it.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.order_by("g", qr.desc("v")).to_pandas()["id"].tolist()
        [3, 1, 2]
        """
        if not keys:
            return self
        ordered = []
        for k in keys:
            if isinstance(k, str) and k not in self.columns:
                ordered.append(exp.Ordered(this=self._to_node(k), desc=False, nulls_first=False))
            else:
                ordered.append(ordering(k))
        f = self._frame()
        f.check([o.this for o in ordered])
        return self._new(compose.order(f, ordered), self._names)

    sort = order_by

    def limit(self, n: int | None, offset: int = 0) -> QueryRef:
        """At most ``n`` rows (after skipping ``offset``); ``n=None``: only the offset.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.order_by("id").limit(1, offset=1).to_pandas()
           id  g  v
        0   2  b  7
        """
        for name, v in (("n", n), ("offset", offset)):
            if (v is not None or name == "offset") and (
                    isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ParameterError(f"limit() {name} must be a non-negative integer, not {v!r}")
        return self._new(compose.limit(self._frame(), n, offset), self._names)

    def head(self, n: int = 5) -> QueryRef:
        """The first ``n`` rows (lazy: the same as ``limit(n)``).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS id FROM range(100)").head(3).count()
        3
        """
        return self.limit(n)

    def distinct(self, *on: str | Expr) -> QueryRef:
        """Drop duplicate rows, or keep the first row for each value of ``on`` (in the
        query's order, if it has one). Also ``unique``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.select("g").distinct().order_by("g").to_pandas()["g"].tolist()
        ['a', 'b']
        >>> t.order_by("id").distinct("g").order_by("id").to_pandas()["id"].tolist()
        [1, 2]
        """
        if on:
            keys = [self._named(k)[1] for k in on]
            self._check(keys)
            s = rw.shape(self._tree)
            order = list(s.select.args["order"].expressions) if s.select is not None \
                and s.ordered else []
            tmp = next(_tmp_names)
            window = exp.Window(this=exp.RowNumber(), partition_by=keys,
                                order=exp.Order(expressions=order) if order else None)
            return self.mutate(**{tmp: Expr(window)}).filter(Expr(column(tmp)).__eq__(1)) \
                .drop(tmp)
        tree = compose.distinct(self._frame())
        return self if tree is self._tree else self._new(tree, self._names)

    unique = distinct

    def join(
        self,
        other: QueryRef,
        on: str | Sequence[str] | Expr | None = None,
        how: JoinHow = "inner",
        *,
        left_on: str | Sequence[str] | None = None,
        right_on: str | Sequence[str] | None = None,
        suffixes: tuple[str, str] = ("", "_right"),
    ) -> QueryRef:
        """Join with another query on the same connection.

        Parameters
        ----------
        other
            The right side: a QueryRef on the same connection.
        on
            A column name (or a list of names) both sides have, kept once in the result, or
            a boolean expression (an Expr or SQL text) over both sides' columns.
        how
            ``"inner"``, ``"left"``, ``"right"``, ``"outer"``, ``"semi"`` / ``"anti"`` (rows
            of this query with / without a match, its columns only) or ``"cross"`` (no
            ``on``).
        left_on, right_on
            Differently named key columns, paired in order (both are kept, as in SQL).
        suffixes
            Added to other names both sides have (left, right).

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> names = con.sql("SELECT * FROM (VALUES ('a', 'Ann'), ('c', 'Cy')) n(g, label)")
        >>> t.join(names, on="g").order_by("id").to_pandas()
           id  g  v label
        0   1  a  5   Ann
        1   3  a  9   Ann
        >>> t.join(names, on="g", how="anti").columns, t.join(names, on="g", how="anti").count()
        (['id', 'g', 'v'], 1)
        """
        if not isinstance(other, QueryRef):
            raise ParameterError(f"join() takes a QueryRef, not {type(other).__name__}")
        self._same_connection(other, "join()")
        tree, names = _join.join(self._frame(), other._frame(),
                                 on=on.node if isinstance(on, Expr) else on, how=how,
                                 left_on=left_on, right_on=right_on, suffixes=suffixes)
        return self._new(tree, names)

    def _same_connection(self, other: QueryRef, what: str) -> None:
        if self._con is not other._con:
            msg = (
                f"{what} needs both queries on the same connection; move one side first "
                "(e.g. con.create_table(name, other.to_arrow()))"
            )
            raise ParameterError(msg)

    def _set_operation(self, other: QueryRef, kind: type[exp.SetOperation], *,
                       distinct: bool) -> QueryRef:
        """UNION / INTERSECT / EXCEPT, columns matched by name when both have the same names."""
        if not isinstance(other, QueryRef):
            raise ParameterError(f"expected a QueryRef, not {type(other).__name__}")
        self._same_connection(other, kind.__name__.lower() + "()")
        lcols, rcols = self.columns, other.columns
        if len(lcols) == len(rcols) and rcols != lcols and sorted(rcols) == sorted(lcols):
            other = other.select(*lcols)
        tree = _join.set_operation(self._frame(), other._frame(), kind, distinct=distinct)
        return self._new(tree, lcols)

    def union(self, other: QueryRef, distinct: bool = False) -> QueryRef:
        """Rows of both queries (``UNION ALL``; ``distinct=True`` for ``UNION``), matched by
        position: both need the same number of columns.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> a, b = con.sql("SELECT 1 AS x"), con.sql("SELECT 2 AS x")
        >>> a.union(b).union(a).order_by("x").to_pandas()["x"].tolist()
        [1, 1, 2]
        >>> a.union(b).union(a, distinct=True).count()
        2
        """
        return self._set_operation(other, exp.Union, distinct=distinct)

    def intersect(self, other: QueryRef, distinct: bool = True) -> QueryRef:
        """Rows in both queries (``INTERSECT``; ``distinct=False`` for ``INTERSECT ALL``).

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> a = con.sql("SELECT * FROM (VALUES (1), (2), (3)) t(x)")
        >>> a.intersect(con.sql("SELECT * FROM (VALUES (2), (3), (4)) t(x)")).count()
        2
        """
        return self._set_operation(other, exp.Intersect, distinct=distinct)

    def except_(self, other: QueryRef, distinct: bool = True) -> QueryRef:
        """Rows of this query that are not in ``other`` (``EXCEPT``; ``distinct=False`` for
        ``EXCEPT ALL``). The trailing underscore keeps clear of Python's ``except``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> a = con.sql("SELECT * FROM (VALUES (1), (2), (3)) t(x)")
        >>> a.except_(con.sql("SELECT 2 AS x")).order_by("x").to_pandas()["x"].tolist()
        [1, 3]
        """
        return self._set_operation(other, exp.Except, distinct=distinct)

    def sample(self, fraction: float, seed: int | None = None) -> QueryRef:
        """A random sample of about ``fraction`` of the rows, drawn in the database
        (Bernoulli: each row kept with that chance; the same ``seed`` draws the same rows).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(10000)")
        >>> 800 < q.sample(0.1, seed=42).count() < 1200
        True
        """
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
                or not 0 <= fraction <= 1:
            raise ParameterError(f"sample() fraction must be between 0 and 1, not {fraction!r}")
        return self._new(compose.sample(self._frame(), fraction, seed), self._names)

    def pipe(self, fn: Callable[..., QueryRef], *args: Any, **kwargs: Any) -> QueryRef:
        """``fn(self, *args, **kwargs)``: chain your own steps.

        >>> import queryref as qr
        >>> def recent(q, n):
        ...     return q.order_by(qr.desc("id")).limit(n)
        >>> qr.connect().sql("SELECT range AS id FROM range(10)").pipe(recent, 2).count()
        2
        """
        return fn(self, *args, **kwargs)

    def as_scalar(self) -> Expr:
        """This one-column query as a scalar subquery, for use inside an expression.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT range AS v FROM range(5)")
        >>> t.filter(qr.col("v") > t.agg(m=qr.col("v").mean()).as_scalar()).count()
        2
        """
        if len(self.columns) != 1:
            msg = f"as_scalar() needs a one-column query; this one has {self.columns}"
            raise ParameterError(msg)
        return Expr(exp.Subquery(this=self._tree.copy()))

    def col(self, name: str) -> Expr:
        """A column of this query, checked now: ``q.col("amount")``, or ``q["amount"]``.

        Unlike [`qr.col`][queryref.col], a name the query lacks raises
        [`UnknownColumnError`][queryref.errors.UnknownColumnError] here, not at the sink.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 1 AS amount")
        >>> (q["amount"] * 2).sql()
        'amount * 2'
        >>> q.col("amout")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        queryref.errors.UnknownColumnError: unknown column 'amout'; ... 'amount' for 'amout'?)
        """
        return Expr(column(self._resolve(name)), name=self._resolve(name))

    def __getitem__(self, name: str) -> Expr:
        return self.col(name)

    # -- sinks (see queryref.sinks.run) ---------------------------------------------------
    @overload
    def to_arrow(self, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                 batch_rows: int = ..., timeout: float | None = ...,
                 preflight: Preflight | None = ...,
                 dry_run: Literal[False] = ...) -> pa.Table: ...
    @overload
    def to_arrow(self, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                 batch_rows: int = ..., timeout: float | None = ...,
                 preflight: Preflight | None = ..., dry_run: Literal[True]) -> Estimate: ...
    def to_arrow(self, *, max_bytes: SizeLike = DEFAULT.max_bytes,
                 max_rows: int | None = DEFAULT.max_rows, batch_rows: int = DEFAULT.batch_rows,
                 timeout: float | None = None, preflight: Preflight | None = DEFAULT.preflight,
                 dry_run: bool = False) -> pa.Table | Estimate:
        """The result as a ``pyarrow.Table``, guarded by the size budget.

        Parameters
        ----------
        max_bytes
            The budget: bytes (``"200MB"``, ``2_000_000``) the result may take; past it the
            query is cancelled in the database and
            [`ResultTooLarge`][queryref.errors.ResultTooLarge] is raised. ``None``: no budget.
        max_rows
            At most this many rows, or ``ResultTooLarge`` (pushed down as
            ``LIMIT max_rows + 1``). ``None``: no limit.
        batch_rows
            Rows per Arrow batch while fetching (the guard counts bytes batch by batch).
        timeout
            Seconds before the query is cancelled in the database and
            [`QueryTimeout`][queryref.errors.QueryTimeout] is raised. ``None``: no limit.
        preflight
            Before the query runs: ``"estimate"`` refuses what the planner puts at more than
            4x ``max_bytes``, ``"count"`` counts exactly first, ``None`` skips the check (see
            [`estimate`][queryref.QueryRef.estimate]).
        dry_run
            Return that estimate (an [`Estimate`][queryref.Estimate]) instead of data.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(1000)")
        >>> q.to_arrow().num_rows
        1000
        >>> q.to_arrow(max_rows=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        queryref.errors.ResultTooLarge: ResultTooLarge: the result passed more than 10 rows...
        """
        if dry_run:
            return _sinks.dry_run(self._relation(), max_rows=max_rows, preflight=preflight)
        return _sinks.to_arrow(self._relation(), max_bytes=max_bytes, max_rows=max_rows,
                               batch_rows=batch_rows, timeout=timeout, preflight=preflight)

    @overload
    def to_pandas(self, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., decimals: Decimals = ...,
                  timeout: float | None = ..., shrink_dtypes: bool = ...,
                  preflight: Preflight | None = ..., dtype_backend: DtypeBackend | None = ...,
                  dry_run: Literal[False] = ...) -> pd.DataFrame: ...
    @overload
    def to_pandas(self, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., decimals: Decimals = ...,
                  timeout: float | None = ..., shrink_dtypes: bool = ...,
                  preflight: Preflight | None = ..., dtype_backend: DtypeBackend | None = ...,
                  dry_run: Literal[True]) -> Estimate: ...
    def to_pandas(self, *, max_bytes: SizeLike = DEFAULT.max_bytes,
                  max_rows: int | None = DEFAULT.max_rows, batch_rows: int = DEFAULT.batch_rows,
                  decimals: Decimals = "float", timeout: float | None = None,
                  shrink_dtypes: bool = False, preflight: Preflight | None = DEFAULT.preflight,
                  dtype_backend: DtypeBackend | None = None,
                  dry_run: bool = False) -> pd.DataFrame | Estimate:
        """The result as a pandas DataFrame, guarded by the size budget.

        No column is Python objects unless asked: decimals become float64, dates
        datetime64, text Arrow-backed ``str``. ``max_bytes``, ``max_rows``, ``batch_rows``,
        ``timeout``, ``preflight`` and ``dry_run`` are [`to_arrow`][queryref.QueryRef.to_arrow]'s:
        what the planner estimates at more than 4x ``max_bytes`` is refused before a row moves.

        Parameters
        ----------
        decimals
            What SQL decimals become: ``"float"`` (float64), ``"object"`` (``Decimal``
            objects) or ``"arrow"`` (exact Arrow decimals).
        shrink_dtypes
            Pick the smallest numpy dtypes (and ``category`` for repetitive text) from
            statistics computed in the warehouse; the shrunk size is what counts against the
            budget.
        dtype_backend
            ``"pyarrow"`` (as in ``pandas.read_sql`` / ``read_parquet``): every column a
            ``pd.ArrowDtype``; dates stay ``date32[pyarrow]``, integers with NULLs stay
            integers, and ``decimals`` still decides what decimals become.

        >>> import queryref as qr
        >>> big = qr.connect().sql("SELECT range AS a, range AS b FROM range(10000000)")
        >>> big.to_pandas(dry_run=True).bytes
        160000000
        >>> big.to_pandas(max_bytes="10MB")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        queryref.errors.ResultTooLarge: ResultTooLarge: the result is estimated at 160.0 MB...
        >>> small = qr.connect().sql("SELECT 1 AS n, DATE '2024-01-31' AS d, 2.5 AS x")
        >>> small.to_pandas().dtypes.astype(str).tolist()
        ['int32', 'datetime64[ms]', 'float64']
        >>> small.to_pandas(dtype_backend="pyarrow").dtypes.astype(str).tolist()
        ['int32[pyarrow]', 'date32[day][pyarrow]', 'double[pyarrow]']
        """
        if dry_run:
            return _sinks.dry_run(self._relation(), max_rows=max_rows, preflight=preflight,
                                  decimals=decimals, dtype_backend=dtype_backend)
        return _sinks.to_pandas(self._relation(), max_bytes=max_bytes, max_rows=max_rows,
                                batch_rows=batch_rows, decimals=decimals, timeout=timeout,
                                shrink_dtypes=shrink_dtypes, preflight=preflight,
                                dtype_backend=dtype_backend)

    @overload
    def to_polars(self, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., timeout: float | None = ...,
                  preflight: Preflight | None = ...,
                  dry_run: Literal[False] = ...) -> pl.DataFrame: ...
    @overload
    def to_polars(self, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., timeout: float | None = ...,
                  preflight: Preflight | None = ..., dry_run: Literal[True]) -> Estimate: ...
    def to_polars(self, *, max_bytes: SizeLike = DEFAULT.max_bytes,
                  max_rows: int | None = DEFAULT.max_rows, batch_rows: int = DEFAULT.batch_rows,
                  timeout: float | None = None, preflight: Preflight | None = DEFAULT.preflight,
                  dry_run: bool = False) -> pl.DataFrame | Estimate:
        """The result as a Polars DataFrame, guarded by the size budget.

        The parameters are [`to_arrow`][queryref.QueryRef.to_arrow]'s.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS id, 'a' AS g").to_polars().to_dicts()
        [{'id': 1, 'g': 'a'}]
        """
        if dry_run:
            return _sinks.dry_run(self._relation(), max_rows=max_rows, preflight=preflight)
        return _sinks.to_polars(self._relation(), max_bytes=max_bytes, max_rows=max_rows,
                                batch_rows=batch_rows, timeout=timeout, preflight=preflight)

    def to_arrow_batches(self, batch_rows: int = DEFAULT.batch_rows, *,
                         timeout: float | None = None,
                         max_batch_bytes: SizeLike = DEFAULT.max_batch_bytes,
                         ) -> pa.RecordBatchReader:
        """Stream the result as Arrow record batches; memory holds one batch at a time.

        ``max_batch_bytes`` also bounds each batch's bytes: the engine's batches are split or
        combined to fit. No size budget applies: nothing is kept. Close the reader (or use it
        in a ``with`` block) to stop the query early.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(250)")
        >>> with q.to_arrow_batches(batch_rows=100) as reader:
        ...     [batch.num_rows for batch in reader]
        [100, 100, 50]
        """
        return _streams.to_arrow_batches(self._relation(), batch_rows=batch_rows, timeout=timeout,
                                       max_batch_bytes=max_batch_bytes)

    def to_pandas_batches(self, batch_rows: int = DEFAULT.batch_rows, *,
                          decimals: Decimals = "float", timeout: float | None = None,
                          shrink_dtypes: bool = False,
                          max_batch_bytes: SizeLike = DEFAULT.max_batch_bytes,
                          dtype_backend: DtypeBackend | None = None,
                          ) -> Iterator[pd.DataFrame]:
        """Stream the result as pandas DataFrames of at most ``batch_rows`` rows each.

        ``decimals``, ``dtype_backend``, ``shrink_dtypes`` and ``max_batch_bytes`` as in
        [`to_pandas`][queryref.QueryRef.to_pandas] /
        [`to_arrow_batches`][queryref.QueryRef.to_arrow_batches]; shrunk batches share their
        dtypes and category codes.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(250)")
        >>> [len(df) for df in q.to_pandas_batches(batch_rows=100)]
        [100, 100, 50]
        """
        return _sinks.to_pandas_batches(self._relation(), batch_rows=batch_rows, decimals=decimals,
                                        timeout=timeout, shrink_dtypes=shrink_dtypes,
                                        max_batch_bytes=max_batch_bytes,
                                        dtype_backend=dtype_backend)

    @overload
    def to_parquet(self, path: str, *, max_bytes: SizeLike = ..., batch_rows: int = ...,
                   timeout: float | None = ..., preflight: Preflight | None = ...,
                   dry_run: Literal[False] = ...) -> ParquetWritten: ...
    @overload
    def to_parquet(self, path: str, *, max_bytes: SizeLike = ..., batch_rows: int = ...,
                   timeout: float | None = ..., preflight: Preflight | None = ...,
                   dry_run: Literal[True]) -> Estimate: ...
    def to_parquet(self, path: str, *, max_bytes: SizeLike = None,
                   batch_rows: int = DEFAULT.batch_rows, timeout: float | None = None,
                   preflight: Preflight | None = DEFAULT.preflight,
                   dry_run: bool = False) -> ParquetWritten | Estimate:
        """Write the result to Parquet, streamed (DuckDB: ``COPY``, no Python in the path).

        No budget unless given: the file, not memory, holds the rows. With a ``max_bytes`` of
        its own, ``preflight`` applies as in [`to_arrow`][queryref.QueryRef.to_arrow];
        ``dry_run=True`` returns the estimate and writes nothing. Rows are written in the
        query's order: with [`order_by`][queryref.QueryRef.order_by], that order; without,
        the order the engine produces them (on DuckDB its threads', so that it never holds
        rows back to keep an order nothing asked for).

        >>> import os, tempfile
        >>> import queryref as qr
        >>> con = qr.connect()
        >>> path = os.path.join(tempfile.mkdtemp(), "ids.parquet")
        >>> con.sql("SELECT range AS id FROM range(1000)").to_parquet(path).rows
        1000
        >>> con.read_parquet(path).count()
        1000
        """
        rel = self._relation()
        if dry_run:
            return _sinks.dry_run(rel, preflight=preflight)
        _files.preflight_file(rel, max_bytes=max_bytes, preflight=preflight)
        return _files.to_parquet(rel, path, max_bytes=max_bytes, batch_rows=batch_rows,
                                 timeout=timeout)

    def to_csv(self, path: str, *, max_bytes: SizeLike = None,
               batch_rows: int = DEFAULT.batch_rows,
               timeout: float | None = None) -> CSVWritten:
        """Write the result to CSV with a header row, streamed like
        [`to_parquet`][queryref.QueryRef.to_parquet].

        DuckDB writes it with ``COPY ... (FORMAT CSV, HEADER)``; other engines stream Arrow
        batches through ``pyarrow.csv.CSVWriter``. The file appears only when complete.

        >>> import os, tempfile
        >>> import queryref as qr
        >>> path = os.path.join(tempfile.mkdtemp(), "ids.csv")
        >>> qr.connect().sql("SELECT range AS id FROM range(3)").to_csv(path).rows
        3
        >>> open(path).read().split()
        ['id', '0', '1', '2']
        """
        return _files.to_csv(self._relation(), path, max_bytes=max_bytes, batch_rows=batch_rows,
                             timeout=timeout)

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

    def partitions(self, by: str | Sequence[str], n: int | None = None) -> list[QueryRef]:
        """This query split into pushed-down filters that together hold every row once.

        One partition per distinct value of ``by`` (found in the warehouse; NULL gets its
        own), or with ``n=k`` about ``k`` ranges of similar size over one orderable column
        (found with a few pushed-down quantiles).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id, range % 2 AS g FROM range(6)")
        >>> [p.count() for p in q.partitions("g")]
        [3, 3]
        """
        return [q for _, q in self._partitions(by, n)]

    def _partitions(self, by: str | Sequence[str], n: int | None) -> list[tuple[str, QueryRef]]:
        """Each partition's label (its filter, as SQL) and query."""
        names = [self._resolve(b) for b in _partitions.names_of(by)]
        return [(p.label, self.filter(Expr(p.predicate)))
                for p in _partitions.split(self._relation(), names, n)]

    def map_partitions(self, fn: Callable[[Any], Any], *, by: str | Sequence[str],
                       n: int | None = None, isolate: bool = True, workers: int = 1,
                       max_bytes: SizeLike = DEFAULT.max_bytes, as_: PartitionsAs = "pandas",
                       progress: Progress = DEFAULT.progress) -> Any:
        """``fn`` on each partition's rows (a pandas DataFrame; ``as_="arrow"``: a Table).

        The results come back as Arrow, in partition order, and are concatenated under
        ``max_bytes`` (a DataFrame, or a Table with ``as_="arrow"``). A partition that fails
        raises [`PartitionError`][queryref.errors.PartitionError] naming it.

        Parameters
        ----------
        fn
            Takes one partition's rows, returns a DataFrame (or a Table); with
            ``isolate=True`` a module-level function, so a child process can import it.
        by
            The column(s) whose distinct values make the partitions, as in
            [`partitions`][queryref.QueryRef.partitions]; ``n=k``: about ``k`` ranges of
            one orderable column instead.
        isolate
            Run each partition in a child process (``spawn``) that gives its memory back to
            the operating system when it exits; ``False``: in this process.
        workers
            How many children run at a time.
        max_bytes
            The budget of the concatenated result.
        as_
            ``"pandas"`` or ``"arrow"``: what ``fn`` gets and what comes back.
        progress
            Show one step per partition (``"auto"``: when a terminal waits).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id, range % 2 AS g FROM range(6)")
        >>> def total(df):
        ...     return df.groupby("g", as_index=False)["id"].sum()
        >>> q.map_partitions(total, by="g", isolate=False).values.tolist()
        [[0, 6], [1, 9]]
        """
        def parts() -> list[_isolate.Part]:
            return [_isolate.Part(label, q._relation()) for label, q in self._partitions(by, n)]

        return _isolate.map_partitions(self._relation(), fn, parts, isolate=isolate,
                                       workers=workers, max_bytes=max_bytes, as_=as_,
                                       progress=progress)

    def estimate(self, count: bool = False, *, strict: bool = False) -> Estimate:
        """Rows and bytes of the result, and how they were found, before running it.

        The engine's planner by default (cheap, never a scan);
        ``count=True`` runs an exact ``SELECT COUNT(*)`` in the database. Where the engine
        has no estimate, ``rows`` and ``bytes`` are None and ``details`` says why
        (``strict=True`` raises [`UnsupportedError`][queryref.errors.UnsupportedError]
        instead).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id, 'x' || range AS s FROM range(100000)")
        >>> est = q.estimate()
        >>> est.rows, est.method, est.bytes > 100000 * 8
        (100000, 'planner', True)
        """
        return _estimate.estimate(self._relation(), count=count, strict=strict)

    def count(self) -> int:
        """The number of rows, counted in the database (``SELECT COUNT(*)``): no rows move.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS id FROM range(1000)").filter("id % 7 = 0").count()
        143
        """
        return _count.count(self._relation())

    def preview(self, n: int = 10) -> pd.DataFrame:
        """The first ``n`` rows as a DataFrame: a LIMIT pushed down, never a full fetch.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS id FROM range(1000000)").preview(3)
           id
        0   0
        1   1
        2   2
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ParameterError(f"preview() takes a non-negative number of rows, not {n!r}")
        return self.limit(n).to_pandas()

    def explain(self) -> str:
        """The database's plan for this query, as text (nothing runs).

        >>> import queryref as qr
        >>> plan = qr.connect().sql("SELECT range AS id FROM range(10)").explain()
        >>> "RANGE" in plan.upper()
        True
        """
        return self._con.backend.explain(render(self._tree, self.dialect))

    def to_snowpark(self) -> Any:
        """A Snowpark DataFrame over this query's SQL (Snowflake only): the work stays there.

        Elsewhere it raises [`ParameterError`][queryref.errors.ParameterError]:

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS x").to_snowpark()
        Traceback (most recent call last):
          ...
        queryref.errors.ParameterError: Snowpark needs a Snowflake connection, not duckdb :memory:
        """
        from queryref.backends.snowflake import to_snowpark

        return to_snowpark(self._con.backend, render(self._tree, self.dialect))


class GroupBy:
    """Grouping keys waiting for their aggregates: ``q.group_by("g").agg(n=qr.count())``."""

    def __init__(self, query: QueryRef, keys: list[tuple[str, exp.Expr]]) -> None:
        self._query = query
        self._keys = keys

    def agg(self, *aggs: Expr, **named: str | Expr) -> QueryRef:
        """One row per group with these aggregates (Exprs or SQL text). Also ``aggregate``.

        An aggregate inside an aggregate is per group: ``(qr.col("v") > qr.col("v").mean())``
        compares each row with its group's mean.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.group_by("g").agg(n=qr.count(), top="max(v)").order_by("g").to_pandas()
           g  n  top
        0  a  2    9
        1  b  1    7
        """
        items = [self._query._named(a) for a in aggs]
        items += [(alias, self._query._to_node(v)) for alias, v in named.items()]
        return self._query._aggregate(self._keys, items)

    aggregate = agg

    def __repr__(self) -> str:
        return f"<GroupBy {[n for n, _ in self._keys]}: finish with .agg(...)>"


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
