"""Free functions that build expressions without a column: ranks, buckets, offsets."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from queryref._expr.base import _into_node, _node
from queryref._expr.core import Expr
from queryref.errors import ParameterError

__all__ = ["dense_rank", "lag", "lead", "ntile", "percent_rank", "rank", "row_number"]


def row_number() -> Expr:
    """``ROW_NUMBER()``: use with ``.over(...)``.

    >>> import queryref as qr
    >>> qr.row_number().over(order_by="x").sql()
    'ROW_NUMBER() OVER (ORDER BY x ASC)'
    """
    return Expr(exp.RowNumber())


def rank() -> Expr:
    """``RANK()``: use with ``.over(...)``; ties share a rank and leave gaps.

    >>> import queryref as qr
    >>> qr.rank().over(partition_by="g", order_by=qr.desc("v")).sql()
    'RANK() OVER (PARTITION BY g ORDER BY v DESC)'
    """
    return Expr(exp.Anonymous(this="RANK", expressions=[]))


def dense_rank() -> Expr:
    """``DENSE_RANK()``: use with ``.over(...)``; ties share a rank, no gaps.

    >>> import queryref as qr
    >>> qr.dense_rank().over(order_by="v").sql()
    'DENSE_RANK() OVER (ORDER BY v ASC)'
    """
    return Expr(exp.Anonymous(this="DENSE_RANK", expressions=[]))


def ntile(n: int) -> Expr:
    """``NTILE(n)``: the bucket (1 to ``n``) of the row when the window's rows are split in
    order into ``n`` groups as equal as possible, the first ones one larger; use with
    ``.over(order_by=...)`` (NULL keys sort last, in the last buckets). Rows tied on the order
    may fall in two buckets. [`Expr.ntile`][queryref.Expr.ntile] buckets a value's non-NULL
    values.

    >>> import queryref as qr
    >>> q = qr.connect().sql("SELECT range AS v FROM range(5)")
    >>> q.mutate(b=qr.ntile(2).over(order_by="v")).order_by("v").to_pandas()["b"].tolist()
    [1, 1, 1, 2, 2]
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ParameterError(f"ntile() takes a whole number of buckets >= 1, not {n!r}")
    return Expr(exp.Ntile(this=exp.Literal.number(n)))


def percent_rank() -> Expr:
    """``PERCENT_RANK()``: ``(rank - 1) / (rows - 1)`` in the window's order, from 0 to 1 (0
    for a single row); use with ``.over(order_by=...)``. Ties share the lowest.
    [`Expr.percent_rank`][queryref.Expr.percent_rank] ranks a value among its non-NULL values.

    >>> import queryref as qr
    >>> q = qr.connect().sql("SELECT * FROM (VALUES (10), (20), (20), (30)) t(v)")
    >>> q.mutate(p=qr.percent_rank().over(order_by="v")).order_by("v").to_pandas()["p"].tolist()
    [0.0, 0.3333333333333333, 0.3333333333333333, 1.0]
    """
    return Expr(exp.PercentRank())


def lag(expr: str | Expr, offset: int = 1, default: Any = None) -> Expr:
    """The value ``offset`` rows before, within the window: use with ``.over(...)``.

    >>> import queryref as qr
    >>> q = qr.connect().sql("SELECT range AS day, range * 10 AS v FROM range(3)")
    >>> q.mutate(prev=qr.lag("v").over(order_by="day")).order_by("day").to_pandas()["prev"].tolist()
    [nan, 0.0, 10.0]
    """
    extra = {} if default is None else {"default": _node(default)}
    return Expr(exp.Lag(this=_into_node(expr), offset=exp.Literal.number(offset), **extra))


def lead(expr: str | Expr, offset: int = 1, default: Any = None) -> Expr:
    """The value ``offset`` rows after, within the window: use with ``.over(...)``.

    >>> import queryref as qr
    >>> qr.lead("v", 2, default=0).over(order_by="day").sql()
    'LEAD(v, 2, 0) OVER (ORDER BY day ASC)'
    """
    extra = {} if default is None else {"default": _node(default)}
    return Expr(exp.Lead(this=_into_node(expr), offset=exp.Literal.number(offset), **extra))
