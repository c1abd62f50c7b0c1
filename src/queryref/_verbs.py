"""Composition verbs of ``QueryRef``: select, mutate, filter, group_by/agg, order_by,
limit, distinct, joins, set operations, sample. Mixed into ``QueryRef``; each verb is a pure
SQL rewrite (``queryref.sql``) wrapped into a new ``QueryRef``, nothing runs."""

# mypy: disable-error-code="misc"
# (methods take ``self: QueryRef``: the class they are mixed into; mypy checks the bodies
# against it but refuses a self type that is a subclass, which is what a mixin needs)
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._expr import Expr, _data_type, _node, _Sort, ordering
from queryref.errors import ParameterError
from queryref.sql import compose
from queryref.sql import join as _join
from queryref.sql import rewrite as rw
from queryref.sql.text import column, parse_expression

if TYPE_CHECKING:

    from queryref._typing import (
        JoinHow,
    )


if TYPE_CHECKING:
    from queryref._queryref import QueryRef

_tmp_names = (f"_qr_tmp{i}" for i in itertools.count(1))


class ComposeVerbs:
    """Mixed into ``QueryRef``: the verbs that compose a new query."""

    __slots__ = ()

    def select(self: QueryRef, *items: str | Expr, **named: str | Expr) -> QueryRef:
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

    def mutate(self: QueryRef, *exprs: Expr, **named: str | Expr | Any) -> QueryRef:
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
            is_expr = isinstance(value, str | Expr | exp.Expr | ComposeVerbs)
            new[alias] = self._to_node(value) if is_expr else _node(value)
        columns = self.columns
        resolved = {(self._resolve(k) if self._has(k) else k): v for k, v in new.items()}
        items = [(c, resolved.pop(c) if c in resolved else column(c)) for c in columns]
        items += list(resolved.items())
        return self._project(items)

    with_columns = mutate

    def rename(self: QueryRef, mapping: Mapping[str, str] | None = None, /,
               **renames: str) -> QueryRef:
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

    def drop(self: QueryRef, *names: str) -> QueryRef:
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

    def cast(self: QueryRef, mapping: Mapping[str, str] | None = None, /, **types: str) -> QueryRef:
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

    def filter(self: QueryRef, *predicates: str | Expr) -> QueryRef:
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

    def _filter_via_column(self: QueryRef, nodes: Sequence[exp.Expr]) -> QueryRef:
        """A predicate with a window: compute it as a column, filter on it, drop it."""
        tmp = next(_tmp_names)
        cond = rw.and_all(list(nodes))
        return self.mutate(**{tmp: Expr(cond)}).filter(Expr(column(tmp))).drop(tmp)

    def group_by(self: QueryRef, *keys: str | Expr, **named_keys: str | Expr) -> GroupBy:
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

    def agg(self: QueryRef, *aggs: Expr, **named: str | Expr) -> QueryRef:
        """Aggregate the whole query into one row: ``agg(total=qr.col("x").sum())``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a', 5), (2, 'b', 7), (3, 'a', 9)) t(id, g, v)")
        >>> t.agg(total=qr.col("v").sum(), n=qr.count()).to_pandas()
           total  n
        0   21.0  3
        """
        return GroupBy(self, []).agg(*aggs, **named)

    def _aggregate(self: QueryRef, keys: Sequence[tuple[str, exp.Expr]],
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

    def _aggregate_nested(self: QueryRef, keys: Sequence[tuple[str, exp.Expr]],
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

    def order_by(self: QueryRef, *keys: str | Expr | _Sort) -> QueryRef:
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

    def limit(self: QueryRef, n: int | None, offset: int = 0) -> QueryRef:
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

    def head(self: QueryRef, n: int = 5) -> QueryRef:
        """The first ``n`` rows (lazy: the same as ``limit(n)``).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS id FROM range(100)").head(3).count()
        3
        """
        return self.limit(n)

    def distinct(self: QueryRef, *on: str | Expr) -> QueryRef:
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
        self: QueryRef,
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
        if not isinstance(other, ComposeVerbs):  # (every QueryRef is one)
            raise ParameterError(f"join() takes a QueryRef, not {type(other).__name__}")
        self._same_connection(other, "join()")
        tree, names = _join.join(self._frame(), other._frame(),
                                 on=on.node if isinstance(on, Expr) else on, how=how,
                                 left_on=left_on, right_on=right_on, suffixes=suffixes)
        return self._new(tree, names)

    def _same_connection(self: QueryRef, other: QueryRef, what: str) -> None:
        if self._con is not other._con:
            msg = (
                f"{what} needs both queries on the same connection; move one side first "
                "(e.g. con.create_table(name, other.to_arrow()))"
            )
            raise ParameterError(msg)

    def _set_operation(self: QueryRef, other: QueryRef, kind: type[exp.SetOperation], *,
                       distinct: bool) -> QueryRef:
        """UNION / INTERSECT / EXCEPT, columns matched by name when both have the same names."""
        if not isinstance(other, ComposeVerbs):  # (every QueryRef is one)
            raise ParameterError(f"expected a QueryRef, not {type(other).__name__}")
        self._same_connection(other, kind.__name__.lower() + "()")
        lcols, rcols = self.columns, other.columns
        if len(lcols) == len(rcols) and rcols != lcols and sorted(rcols) == sorted(lcols):
            other = other.select(*lcols)
        tree = _join.set_operation(self._frame(), other._frame(), kind, distinct=distinct)
        return self._new(tree, lcols)

    def union(self: QueryRef, other: QueryRef, distinct: bool = False) -> QueryRef:
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

    def intersect(self: QueryRef, other: QueryRef, distinct: bool = True) -> QueryRef:
        """Rows in both queries (``INTERSECT``; ``distinct=False`` for ``INTERSECT ALL``).

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> a = con.sql("SELECT * FROM (VALUES (1), (2), (3)) t(x)")
        >>> a.intersect(con.sql("SELECT * FROM (VALUES (2), (3), (4)) t(x)")).count()
        2
        """
        return self._set_operation(other, exp.Intersect, distinct=distinct)

    def except_(self: QueryRef, other: QueryRef, distinct: bool = True) -> QueryRef:
        """Rows of this query that are not in ``other`` (``EXCEPT``; ``distinct=False`` for
        ``EXCEPT ALL``). The trailing underscore keeps clear of Python's ``except``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> a = con.sql("SELECT * FROM (VALUES (1), (2), (3)) t(x)")
        >>> a.except_(con.sql("SELECT 2 AS x")).order_by("x").to_pandas()["x"].tolist()
        [1, 3]
        """
        return self._set_operation(other, exp.Except, distinct=distinct)

    def sample(self: QueryRef, fraction: float, seed: int | None = None) -> QueryRef:
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

    def pipe(self: QueryRef, fn: Callable[..., QueryRef], *args: Any, **kwargs: Any) -> QueryRef:
        """``fn(self, *args, **kwargs)``: chain your own steps.

        >>> import queryref as qr
        >>> def recent(q, n):
        ...     return q.order_by(qr.desc("id")).limit(n)
        >>> qr.connect().sql("SELECT range AS id FROM range(10)").pipe(recent, 2).count()
        2
        """
        return fn(self, *args, **kwargs)

    def as_scalar(self: QueryRef) -> Expr:
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

    def col(self: QueryRef, name: str) -> Expr:
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

    def __getitem__(self: QueryRef, name: str) -> Expr:
        return self.col(name)



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

