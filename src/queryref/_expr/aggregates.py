"""Aggregates on every expression: ``sum``, ``mean``, ``median``, ``quantile`` ...

Use them in ``agg`` (per group, or on the whole query) or with ``.over(...)`` (per row, over a
window). NULLs are skipped, as pandas skips its missing values; NaN is a number (as in
Polars): a sum or mean with NaN is NaN, and NaN sorts above every number (so ``max`` is NaN and
a median may be). MariaDB has no NaN.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlglot import exp

from queryref._expr.base import ExprBase, _as_list, _node, ordering
from queryref.errors import ParameterError
from queryref.sql import portable_math as pm

if TYPE_CHECKING:
    from queryref._expr.base import _Sort
    from queryref._expr.core import Expr

    OrderBy: TypeAlias = str | Expr | _Sort | Sequence[str | Expr | _Sort]


def _reverse(key: exp.Ordered) -> exp.Ordered:
    """The same key the other way round (NULLs keep their place: last unless asked)."""
    flipped = key.copy()
    flipped.set("desc", not key.args.get("desc"))
    return flipped


def _double(expr: ExprBase) -> exp.Expr:
    """The value as a double: spreads are computed on doubles, as pandas does."""
    return exp.cast(expr._copy(), exp.DataType.Type.DOUBLE)


def _keys(order_by: Any, name: str) -> list[exp.Ordered]:
    keys = [ordering(k) for k in _as_list(order_by)]
    if not keys:
        msg = (f"{name}() needs order_by=: rows in SQL have no order of their own (a column "
               "name, an expression, qr.desc(...), or a list of them)")
        raise ParameterError(msg)
    return keys


class AggregateMethods(ExprBase):
    """Mixed into ``Expr``: aggregate functions (use in ``agg`` or with ``over``)."""

    __slots__ = ()

    def sum(self) -> Expr:
        """Sum of the values (an aggregate: use in ``agg`` or with ``over``).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (NULL)) t(x)")
        >>> q.agg(total=qr.col("x").sum()).to_pandas()["total"].tolist()
        [3.0]
        """
        return self._new(exp.Sum(this=self._copy()))

    def mean(self) -> Expr:
        """Mean of the non-NULL values (``AVG``), a double on every engine (MariaDB's ``AVG``
        of integers or decimals is a decimal cut to a few more digits). Also ``avg``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (NULL)) t(x)")
        >>> q.agg(m=qr.col("x").mean()).to_pandas()["m"].tolist()
        [1.5]
        """
        return self._new(pm.Mean(this=self._copy()))

    avg = mean

    def min(self) -> Expr:
        """Smallest value.

        >>> import queryref as qr
        >>> qr.col("x").min().sql()
        'MIN(x)'
        """
        return self._new(exp.Min(this=self._copy()))

    def max(self) -> Expr:
        """Largest value.

        >>> import queryref as qr
        >>> qr.col("x").max().sql()
        'MAX(x)'
        """
        return self._new(exp.Max(this=self._copy()))

    def count(self) -> Expr:
        """Number of non-NULL values ([`qr.count()`][queryref.count] counts rows).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (NULL)) t(x)")
        >>> q.agg(n=qr.col("x").count(), rows=qr.count()).to_pandas().values.tolist()
        [[2, 3]]
        """
        return self._new(exp.Count(this=self._copy()))

    def count_distinct(self) -> Expr:
        """Number of distinct non-NULL values. Also ``nunique``.

        >>> import queryref as qr
        >>> qr.col("g").count_distinct().sql()
        'COUNT(DISTINCT g)'
        """
        return self._new(exp.Count(this=exp.Distinct(expressions=[self._copy()])))
    nunique = count_distinct

    # -- order statistics and spread ----------------------------------------------------------
    def median(self) -> Expr:
        """The median: the middle value, or the mean of the two middle ones (as pandas).

        Computed on doubles (a number column), exact on every engine that has it (MariaDB's
        is rounded to 10 decimals); MariaDB computes it only over a window
        (``.over(partition_by=...)``), PostgreSQL only as an aggregate (both raise
        ``UnsupportedError`` otherwise). MySQL has none.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (10), (20), (NULL)) t(x)")
        >>> q.agg(m=qr.col("x").median()).to_pandas()["m"].tolist()
        [6.0]
        """
        return self._new(pm.QuantileCont(this=self._copy(), quantile=exp.Literal.number(0.5)))

    def quantile(self, q: float) -> Expr:
        """The ``q`` quantile (0 <= q <= 1), interpolated linearly between the two nearest
        values: pandas' default (``interpolation="linear"``), on doubles (DuckDB's
        ``QUANTILE_CONT`` of a decimal would keep its scale: 0.1666... as 0.1).

        Exact on every engine: ``QUANTILE_CONT`` (DuckDB), ``PERCENTILE_CONT ... WITHIN GROUP``
        (PostgreSQL, Snowflake, MariaDB over a window only), ``PERCENTILE`` (Spark); nowhere an
        approximation.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (10), (20)) t(x)")
        >>> q.agg(p=qr.col("x").quantile(0.25)).to_pandas()["p"].tolist()
        [1.75]
        """
        value = q if isinstance(q, numbers.Real) and not isinstance(q, bool) else None
        if value is None or not 0 <= value <= 1:
            raise ParameterError(f"quantile() takes a number from 0 to 1, not {q!r}")
        node = pm.QuantileCont(this=self._copy(), quantile=exp.Literal.number(float(value)))
        return self._new(node)

    def std(self) -> Expr:
        """Sample standard deviation (n - 1 in the denominator, pandas' ``ddof=1``): NULL for
        fewer than two values. Computed on doubles, as pandas does (MariaDB's ``STDDEV_SAMP`` of
        integers or decimals is cut to 4 more decimals than the input).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (3), (4)) t(x)")
        >>> round(float(q.agg(s=qr.col("x").std()).to_pandas()["s"][0]), 6)
        1.290994
        """
        return self._new(exp.AnonymousAggFunc(this="STDDEV_SAMP", expressions=[_double(self)]))

    def var(self) -> Expr:
        """Sample variance (n - 1 in the denominator, pandas' ``ddof=1``): NULL for fewer than
        two values (``VAR_SAMP``: MariaDB's ``VARIANCE`` is the population variance), on doubles as
        ``std``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (3), (4)) t(x)")
        >>> round(float(q.agg(v=qr.col("x").var()).to_pandas()["v"][0]), 6)
        1.666667
        """
        return self._new(exp.AnonymousAggFunc(this="VAR_SAMP", expressions=[_double(self)]))

    # -- by position in an order -------------------------------------------------------------
    def first(self, order_by: OrderBy) -> Expr:
        """The first value that is not NULL, in the order of ``order_by`` (NULLs skipped, as
        pandas' ``groupby().first()`` and Ibis' ``first()``; ``first_value()`` over a window
        is the value on the first row, NULL or not).

        ``order_by`` is a column name, an expression, ``qr.desc(...)`` or a list of them; NULL
        keys sort last. Rows tied on ``order_by`` are ordered by the value itself, in the
        direction of the last key, so the answer is the same on every engine but Snowflake.
        Engines: DuckDB ``FIRST(x ORDER BY ...)``, PostgreSQL ``ARRAY_AGG(...)[1]``, Spark
        ``MIN_BY``/``MAX_BY`` (every key in one direction), Snowflake ``MIN_BY``/``MAX_BY``
        (one key; rows tied on it give any one of their values: order by a unique key there).
        MariaDB has no ordered aggregate (``UnsupportedError``): use
        ``first_value().over(...)``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (3, 'c'), (1, NULL), (2, 'b')) t(k, v)")
        >>> q.agg(f=qr.col("v").first(order_by="k"), l=qr.col("v").last(order_by="k")).to_pandas()
           f  l
        0  b  c
        """
        return self._new(pm.FirstBy(this=self._copy(), expressions=_keys(order_by, "first")))

    def last(self, order_by: OrderBy) -> Expr:
        """The last value that is not NULL in the order of ``order_by``: ``first`` with every
        key reversed (NULL keys still sort last, so the last row is the one with the largest
        key that is not NULL). Engines and ties: as [`first`][queryref.Expr.first].

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (3, 'c'), (1, 'a'), (NULL, 'z')) t(k, v)")
        >>> q.agg(l=qr.col("v").last(order_by="k")).to_pandas()["l"].tolist()
        ['c']
        """
        keys = [_reverse(k) for k in _keys(order_by, "last")]
        return self._new(pm.FirstBy(this=self._copy(), expressions=keys))

    # -- booleans and text --------------------------------------------------------------------
    def any(self) -> Expr:
        """True if any value is true; NULLs are skipped, so no values at all give false (as
        pandas and Polars; SQL's ``BOOL_OR`` would give NULL).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (5), (NULL)) t(x)")
        >>> q.agg(a=(qr.col("x") > 4).any(), b=(qr.col("x") > 9).any()).to_pandas().values.tolist()
        [[True, False]]
        """
        return self._new(exp.Coalesce(this=exp.LogicalOr(this=self._copy()),
                                      expressions=[exp.false()]))

    def all(self) -> Expr:
        """True if every value is true; NULLs are skipped, so no values at all give true (as
        pandas and Polars; SQL's ``BOOL_AND`` would give NULL).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (5), (NULL)) t(x)")
        >>> q.agg(a=(qr.col("x") > 0).all(), b=(qr.col("x") > 4).all()).to_pandas().values.tolist()
        [[True, False]]
        """
        return self._new(exp.Coalesce(this=exp.LogicalAnd(this=self._copy()),
                                      expressions=[exp.true()]))

    def string_agg(self, sep: str = "", order_by: OrderBy | None = None) -> Expr:
        """The values as text joined by ``sep``, NULLs skipped (NULL when there are none).

        Joined in the order of ``order_by`` (rows tied on it by the value), or of the value
        itself without one: never in an order the engine happens to read. Non-text values are
        cast to text by the engine (cast first to choose the format). MariaDB/MySQL cut the
        result at ``group_concat_max_len`` (MariaDB's default: 1 MiB).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (2, 'b'), (1, 'a'), (3, NULL)) t(k, v)")
        >>> q.agg(s=qr.col("v").string_agg(", ", order_by=qr.desc("k"))).to_pandas()["s"].tolist()
        ['b, a']
        """
        if not isinstance(sep, str):
            raise ParameterError(f"string_agg() takes a text separator, not {sep!r}")
        keys = [ordering(k) for k in _as_list(order_by)]
        last_desc = bool(keys[-1].args.get("desc")) if keys else False
        keys.append(exp.Ordered(this=self._copy(), desc=last_desc, nulls_first=False))
        text = exp.cast(self._copy(), exp.DataType.Type.VARCHAR)
        return self._new(exp.GroupConcat(this=exp.Order(this=text, expressions=keys),
                                         separator=_node(sep)))
