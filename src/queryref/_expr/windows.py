"""Window functions: ``over`` on every expression, running totals, ranks of a value, and the
first or last value of a window.

What the methods settle, the same on every engine:

- ``over(partition_by, order_by, rows=(start, end))`` frames count rows from the current one
  (``-2`` two before, ``0`` the current row, ``1`` the next, ``None`` unbounded); without
  ``rows=`` an aggregate with ``order_by`` runs from the start of the partition to the current
  row and the rows tied with it (SQL's default), without ``order_by`` it covers the partition;
- ``cum_sum``/``cum_min``/``cum_max``/``cum_count`` take ``order_by=`` (and ``partition_by=``)
  themselves and count row by row (``ROWS``), as pandas' ``cumsum`` does: order by a unique key,
  since rows tied on it get their running values in an order the engine chooses;
- ``first_value``/``last_value`` look at the whole partition unless ``rows=`` says otherwise
  (SQL's default frame would make ``last_value`` the current row), NULL keys sort last, and
  rows tied on ``order_by`` are ordered by the value itself, as ``first``/``last`` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlglot import exp

from queryref._expr.base import ExprBase, _as_list, _into_node, ordering
from queryref.errors import ParameterError
from queryref.sql import portable_math as pm

if TYPE_CHECKING:
    from queryref._expr.base import _Sort
    from queryref._expr.core import Expr

    Keys: TypeAlias = str | Expr | Sequence[str | Expr]
    OrderBy: TypeAlias = str | Expr | _Sort | Sequence[str | Expr | _Sort]

#: functions that number or offset rows: a frame means nothing to them
_RANKING: tuple[type[exp.Expr], ...] = (
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.Ntile, exp.PercentRank, exp.CumeDist, exp.Lag,
    exp.Lead)
_RANKING_NAMES = {"RANK", "DENSE_RANK", "ROW_NUMBER", "NTILE", "PERCENT_RANK", "CUME_DIST"}


def _is_ranking(node: exp.Expr) -> bool:
    if isinstance(node, exp.Anonymous):
        return str(node.this).upper() in _RANKING_NAMES
    return isinstance(node, _RANKING)


def _bound(offset: int | None, unbounded_side: str) -> tuple[str | exp.Expr, str | None]:
    """A frame end as sqlglot's WindowSpec holds it: (value, side)."""
    if offset is None:
        return "UNBOUNDED", unbounded_side
    if offset == 0:
        return "CURRENT ROW", None
    side = "PRECEDING" if offset < 0 else "FOLLOWING"
    return exp.Literal.number(abs(offset)), side


def _frame(rows: Any) -> exp.WindowSpec:
    """``ROWS BETWEEN ...`` from ``rows=(start, end)``."""
    ok = isinstance(rows, tuple | list) and len(rows) == 2 and all(
        r is None or (isinstance(r, int) and not isinstance(r, bool)) for r in rows)
    if not ok:
        msg = (f"rows= takes (start, end): whole numbers of rows from the current one (-2 two "
               f"before, 0 the current row, 1 the next) or None for unbounded, not {rows!r}")
        raise ParameterError(msg)
    start, end = rows
    if start is not None and end is not None and start > end:
        raise ParameterError(f"rows=(start, end) needs start <= end, not {rows!r}")
    start_value, start_side = _bound(start, "PRECEDING")
    end_value, end_side = _bound(end, "FOLLOWING")
    return exp.WindowSpec(kind="ROWS", start=start_value, start_side=start_side,
                          end=end_value, end_side=end_side)


_RUNNING = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                          end="CURRENT ROW")
_WHOLE = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                        end="UNBOUNDED", end_side="FOLLOWING")


def _window(node: exp.Expr, parts: list[exp.Expr], orders: list[exp.Ordered],
            spec: exp.WindowSpec | None) -> exp.Window:
    kind = exp.Window if spec is None else pm.FramedWindow
    return kind(this=node, partition_by=[p.copy() for p in parts] or None,
                      order=exp.Order(expressions=[o.copy() for o in orders]) if orders else None,
                      spec=spec.copy() if spec is not None else None)


def _outermost(node: exp.Expr, kind: type[exp.Expr]) -> list[exp.Expr]:
    """The ``kind`` nodes in ``node`` not inside another one or a subquery."""
    found: list[exp.Expr] = []
    stack = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, kind):
            found.append(sub)
        elif not isinstance(sub, exp.Query | exp.Subquery):
            stack.extend(sub.iter_expressions())
    return found


class WindowMethods(ExprBase):
    """Mixed into ``Expr``: ``over``, running aggregates, ranks, first and last values."""

    __slots__ = ()

    def _no_window(self, name: str) -> None:
        if _outermost(self.node, exp.Window):
            msg = (f"{name}: {self.node.sql()} is a window function already: give partition_by"
                   "/order_by/rows in one over() (cum_* take order_by= themselves)")
            raise ParameterError(msg)

    def over(
        self,
        partition_by: Keys | None = None,
        order_by: OrderBy | None = None,
        rows: tuple[int | None, int | None] | None = None,
    ) -> Expr:
        """Turn an aggregate or ranking function into a window function.

        ``rows=(start, end)`` frames the window in rows from the current one: ``(-2, 0)`` is
        the two rows before and this one (a 3-row moving average with ``mean()``), ``None``
        unbounded on that side; it needs ``order_by``. An expression of several aggregates
        (``(qr.col("x").sum() / qr.count())``) computes each over the same window.

        >>> import queryref as qr
        >>> qr.row_number().over(partition_by="g", order_by=qr.desc("v")).sql("postgres")
        'ROW_NUMBER() OVER (PARTITION BY g ORDER BY v DESC NULLS LAST)'
        >>> q = qr.connect().sql("SELECT range AS day, range * 10 AS v FROM range(4)")
        >>> moving = qr.col("v").mean().over(order_by="day", rows=(-1, 0))
        >>> q.mutate(m=moving).order_by("day").to_pandas()["m"].tolist()
        [0.0, 5.0, 15.0, 25.0]
        """
        self._no_window("over()")
        parts = [_into_node(p) for p in _as_list(partition_by)]
        orders = [ordering(o) for o in _as_list(order_by)]
        node = self._copy()
        if node.find(pm.FirstBy, exp.GroupConcat):
            msg = ("first()/last()/string_agg() are aggregates for agg(): over a window use "
                   "first_value()/last_value()")
            raise ParameterError(msg)
        whole = isinstance(node, exp.AggFunc | exp.RowNumber | exp.Anonymous)
        targets = [node] if whole else _outermost(node, exp.AggFunc)
        if not targets:
            msg = (f"over() makes a window of an aggregate or a ranking function; "
                   f"{node.sql()} has none (use e.g. .sum().over(...) or qr.rank().over(...))")
            raise ParameterError(msg)
        spec = None
        if rows is not None:
            if not orders:
                raise ParameterError("rows= frames count rows in an order: give order_by= too")
            spec = _frame(rows)
            if any(_is_ranking(t) for t in targets):
                raise ParameterError("rows= frames apply to aggregates and first/last_value, "
                                     "not to ranks, ntile, lag or lead")
        # each target moves into its window: a placeholder holds its place meanwhile
        for target in targets:
            holder = None if whole else exp.Window()
            if holder is not None:
                target.replace(holder)
            if isinstance(target, exp.FirstValue | exp.LastValue):
                window = self._value_window(target, parts, orders, rows)
            else:
                window = _window(target, parts, orders, spec)
            if holder is None:
                return self._new(window)
            holder.replace(window)
        return self._new(node)

    @staticmethod
    def _value_window(node: exp.Expr, parts: list[exp.Expr], orders: list[exp.Ordered],
                      rows: Any) -> exp.Window:
        name = "first_value()" if isinstance(node, exp.FirstValue) else "last_value()"
        if not orders:
            raise ParameterError(f"{name} needs order_by= in over(): rows in SQL have no order")
        tie = exp.Ordered(this=node.this.copy(), desc=bool(orders[-1].args.get("desc")),
                          nulls_first=False)
        keys = [*orders, tie]
        if rows is not None:
            return _window(node, parts, keys, _frame(rows))
        if isinstance(node, exp.LastValue):
            # the last row of the partition with NULL keys first is the one with the largest
            # key that is not NULL: the row last() picks
            keys = [k.copy() for k in keys]
            for key in keys:
                key.set("nulls_first", not key.args.get("nulls_first"))
        return _window(node, parts, keys, _WHOLE)

    # -- running aggregates -------------------------------------------------------------------
    def _running(self, agg: exp.Expr, name: str, order_by: Any, partition_by: Any,
                 keep_nulls: bool = True) -> Expr:
        self._no_window(f"{name}()")
        orders = [ordering(o) for o in _as_list(order_by)]
        if not orders:
            msg = (f"{name}() needs order_by=: rows in SQL have no order of their own (a column "
                   "name, an expression, qr.desc(...), or a list of them; partition_by= too)")
            raise ParameterError(msg)
        parts = [_into_node(p) for p in _as_list(partition_by)]
        window = _window(agg, parts, orders, _RUNNING)
        if not keep_nulls:
            return self._new(window)
        is_null = exp.Is(this=self._copy(), expression=exp.Null())
        return self._new(exp.Case(ifs=[exp.If(this=is_null, true=exp.Null())], default=window))

    def cum_sum(self, order_by: OrderBy | None = None, partition_by: Keys | None = None) -> Expr:
        """Running sum in the order of ``order_by`` (within each ``partition_by`` group), row
        by row; a NULL value gives NULL on its row and the sum goes on (pandas' ``cumsum``).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 5), (2, NULL), (3, 2)) t(k, v)")
        >>> q.mutate(c=qr.col("v").cum_sum(order_by="k")).order_by("k").to_pandas()["c"].tolist()
        [5.0, nan, 7.0]
        """
        return self._running(exp.Sum(this=self._copy()), "cum_sum", order_by, partition_by)

    def cum_min(self, order_by: OrderBy | None = None, partition_by: Keys | None = None) -> Expr:
        """Running minimum in the order of ``order_by``, row by row (NULL rows stay NULL).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 5), (2, 7), (3, 2)) t(k, v)")
        >>> q.mutate(c=qr.col("v").cum_min(order_by="k")).order_by("k").to_pandas()["c"].tolist()
        [5, 5, 2]
        """
        return self._running(exp.Min(this=self._copy()), "cum_min", order_by, partition_by)

    def cum_max(self, order_by: OrderBy | None = None, partition_by: Keys | None = None) -> Expr:
        """Running maximum in the order of ``order_by``, row by row (NULL rows stay NULL).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 5), (2, 7), (3, 2)) t(k, v)")
        >>> q.mutate(c=qr.col("v").cum_max(order_by="k")).order_by("k").to_pandas()["c"].tolist()
        [5, 7, 7]
        """
        return self._running(exp.Max(this=self._copy()), "cum_max", order_by, partition_by)

    def cum_count(self, order_by: OrderBy | None = None,
                  partition_by: Keys | None = None) -> Expr:
        """Running count of the non-NULL values so far, this row included (Polars'
        ``cum_count``; pandas' ``groupby().cumcount()`` numbers rows from 0: use
        ``qr.row_number().over(...) - 1``).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 5), (2, NULL), (3, 2)) t(k, v)")
        >>> q.mutate(c=qr.col("v").cum_count(order_by="k")).order_by("k").to_pandas()["c"].tolist()
        [1, 1, 2]
        """
        return self._running(exp.Count(this=self._copy()), "cum_count", order_by, partition_by,
                             keep_nulls=False)

    # -- ranks of the value -------------------------------------------------------------------
    def _value_rank(self, func: exp.Expr, partition_by: Any, descending: bool) -> Expr:
        self._no_window("a rank")
        # NULL values are ranked apart (and give NULL): the others' ranks count only them
        is_null = exp.Is(this=self._copy(), expression=exp.Null())
        parts = [*(_into_node(p) for p in _as_list(partition_by)), is_null.copy()]
        order = exp.Ordered(this=self._copy(), desc=descending, nulls_first=False)
        window = _window(func, parts, [order], None)
        return self._new(exp.Case(ifs=[exp.If(this=is_null, true=exp.Null())], default=window))

    def percent_rank(self, partition_by: Keys | None = None, descending: bool = False) -> Expr:
        """The value's relative rank from 0 to 1, ``(rank - 1) / (n - 1)`` among the non-NULL
        values (of its ``partition_by`` group): ties share the lowest; NULL for NULL.

        The free function [`qr.percent_rank()`][queryref.percent_rank] takes any order.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (10), (20), (20), (30), (NULL)) t(v)")
        >>> q.select("v", p=qr.col("v").percent_rank()).order_by("v").to_pandas()["p"].tolist()
        [0.0, 0.3333333333333333, 0.3333333333333333, 1.0, nan]
        """
        return self._value_rank(exp.PercentRank(), partition_by, descending)

    def ntile(self, n: int, partition_by: Keys | None = None, descending: bool = False) -> Expr:
        """The bucket (1 to ``n``) of the value when the non-NULL values (of its
        ``partition_by`` group) are split in order into ``n`` groups as equal as possible,
        the first ones one larger; NULL for NULL. Tied values may fall in two buckets.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (10), (20), (30), (40), (50)) t(v)")
        >>> q.select("v", b=qr.col("v").ntile(2)).order_by("v").to_pandas()["b"].tolist()
        [1, 1, 1, 2, 2]
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ParameterError(f"ntile() takes a whole number of buckets >= 1, not {n!r}")
        return self._value_rank(exp.Ntile(this=exp.Literal.number(n)), partition_by, descending)

    # -- values by position ---------------------------------------------------------------------
    def first_value(self) -> Expr:
        """The value on the first row of the window: use with ``.over(order_by=...)``.

        Covers the whole partition unless ``rows=`` is given; NULL keys sort last; rows tied
        on ``order_by`` are ordered by the value itself (in the last key's direction), so every
        engine gives the same answer.

        >>> import queryref as qr
        >>> rows = "VALUES ('a', 2, 5), ('a', 1, 7), ('b', 3, 1)"
        >>> q = qr.connect().sql(f"SELECT * FROM ({rows}) t(g, k, v)")
        >>> f = qr.col("v").first_value().over(partition_by="g", order_by="k")
        >>> q.mutate(f=f).order_by("g", "k").to_pandas()["f"].tolist()
        [7, 7, 1]
        """
        return self._new(exp.FirstValue(this=self._copy()))

    def last_value(self) -> Expr:
        """The value on the last row of the window: use with ``.over(order_by=...)``.

        Covers the whole partition unless ``rows=`` is given (SQL's default frame ends at the
        current row, so its ``LAST_VALUE`` is usually the row itself); the last row is the one
        with the largest key that is not NULL, as for [`last`][queryref.Expr.last].

        >>> import queryref as qr
        >>> rows = "VALUES ('a', 2, 5), ('a', 1, 7), ('b', 3, 1)"
        >>> q = qr.connect().sql(f"SELECT * FROM ({rows}) t(g, k, v)")
        >>> l = qr.col("v").last_value().over(partition_by="g", order_by="k")
        >>> q.mutate(l=l).order_by("g", "k").to_pandas()["l"].tolist()
        [5, 5, 1]
        """
        return self._new(exp.LastValue(this=self._copy()))
