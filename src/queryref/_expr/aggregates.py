"""Aggregates on every expression: ``sum``, ``mean``, ``median``, ``quantile`` ..."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from queryref._expr.base import ExprBase

if TYPE_CHECKING:
    from queryref._expr.core import Expr


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
        """Mean of the non-NULL values (``AVG``). Also ``avg``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (2), (NULL)) t(x)")
        >>> q.agg(m=qr.col("x").mean()).to_pandas()["m"].tolist()
        [1.5]
        """
        return self._new(exp.Avg(this=self._copy()))

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
