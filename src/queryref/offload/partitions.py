"""``q.partitions(by)``: a query split into pushed-down filters that hold every row exactly once.

Two ways to split, both decided in the warehouse:

- by value (the default): one partition per distinct value (or combination of values) of
  ``by``, found with ``SELECT DISTINCT``; each partition is ``q.filter(by = value)``, and rows
  where ``by`` is NULL get a partition of their own (``by IS NULL``).
- by range (``n=k``): about ``k`` partitions of similar size over one orderable column
  (numbers, dates, timestamps, text). Boundaries come from one ``NTILE(k)`` window over the
  column; the partitions are ``by < b1``, ``b1 <= by < b2``, ..., ``by >= bk`` (open at both
  ends, so rows added later are not lost), plus ``by IS NULL`` when there are NULLs. Ties never
  straddle a boundary, so a heavily repeated value can give fewer than ``k`` partitions. Hash
  buckets are not offered: every engine hashes differently, ranges work everywhere.

The partitions are disjoint and together equal ``q`` (``UNION ALL`` of them has ``q``'s rows).

>>> import queryref as qr
>>> con = qr.connect()
>>> q = con.sql("SELECT range AS id, range % 3 AS g FROM range(10)")
>>> [p.count() for p in q.partitions("g")]
[4, 3, 3]
>>> [p.count() for p in q.partitions("id", n=2)]
[5, 5]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._expr import Expr
from queryref.errors import ParameterError
from queryref.sql.text import column, literal

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

#: more distinct values than this is almost surely a mistake (an id column): use n= instead
MAX_PARTITIONS = 10_000


@dataclass(frozen=True)
class Partition:
    """One partition: the filter that defines it (SQL text, for messages) and its query."""

    label: str
    query: QueryRef


def split(q: QueryRef, by: str | Sequence[str], n: int | None = None,
          max_partitions: int = MAX_PARTITIONS) -> list[Partition]:
    """The partitions of ``q`` by the values of ``by`` (or ``n`` range buckets over it)."""
    names = _names(q, by)
    if n is None:
        return _by_value(q, names, max_partitions)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"partitions() n must be a positive integer, not {n!r}")
    if len(names) != 1:
        raise ParameterError(f"partitions(n=...) splits one column into ranges, not {names}")
    return _by_range(q, names[0], n)


def _names(q: QueryRef, by: str | Sequence[str]) -> list[str]:
    items = [by] if isinstance(by, str) else list(by) if isinstance(by, list | tuple) else []
    if not items or not all(isinstance(b, str) for b in items):
        raise ParameterError(f"partitions() by= takes a column name or a list of them, not {by!r}")
    return [q._resolve(b) for b in items]


def _partition(q: QueryRef, predicate: exp.Expr) -> Partition:
    return Partition(predicate.sql(dialect=q.dialect), q.filter(Expr(predicate)))


def _by_value(q: QueryRef, names: list[str], max_partitions: int) -> list[Partition]:
    keys = q.select(*names).distinct().order_by(*names).limit(max_partitions + 1)
    table = keys.to_arrow(max_bytes=None)
    if table.num_rows > max_partitions:
        msg = (
            f"partitions(by={names}) would make more than {max_partitions:,} partitions "
            f"(one per distinct value); use n=... for range buckets over the column"
        )
        raise ParameterError(msg)
    columns = [table.column(i).to_pylist() for i in range(len(names))]
    out = []
    for row in zip(*columns, strict=True):
        conditions = [_equals(name, value) for name, value in zip(names, row, strict=True)]
        out.append(_partition(q, exp.and_(*conditions) if len(conditions) > 1
                              else conditions[0]))
    return out


def _equals(name: str, value: Any) -> exp.Expr:
    if value is None:
        return exp.Is(this=column(name), expression=exp.Null())
    try:
        return exp.EQ(this=column(name), expression=literal(value))
    except ParameterError as err:
        msg = f"cannot partition by {name!r}: its value {value!r} has no SQL literal ({err})"
        raise ParameterError(msg) from None


def _by_range(q: QueryRef, name: str, n: int) -> list[Partition]:
    bounds = _boundaries(q, name, n)
    ranges: list[exp.Expr] = []
    if not bounds:
        ranges.append(exp.Not(this=exp.Is(this=column(name), expression=exp.Null())))
    else:
        ranges.append(exp.LT(this=column(name), expression=literal(bounds[0])))
        for lo, hi in itertools.pairwise(bounds):
            ranges.append(exp.and_(exp.GTE(this=column(name), expression=literal(lo)),
                                   exp.LT(this=column(name), expression=literal(hi))))
        ranges.append(exp.GTE(this=column(name), expression=literal(bounds[-1])))
    out = [_partition(q, r) for r in ranges]
    is_null = exp.Is(this=column(name), expression=exp.Null())
    if q.filter(Expr(is_null.copy())).limit(1).to_arrow(max_bytes=None).num_rows:
        out.append(_partition(q, is_null))
    return out


def _boundaries(q: QueryRef, name: str, n: int) -> list[Any]:
    """The lowest value of buckets 2..n of ``NTILE(n)`` over the column's non-NULL values."""
    if n == 1:
        return []
    bucket = "_qr_bucket"
    window = exp.Window(this=exp.Ntile(this=exp.Literal.number(n)),
                        order=exp.Order(expressions=[exp.Ordered(this=column(name))]))
    not_null = exp.Not(this=exp.Is(this=column(name), expression=exp.Null()))
    mins = (q.select(name).filter(Expr(not_null))
            .mutate(**{bucket: Expr(window)})
            .group_by(bucket).agg(lo=Expr(exp.Min(this=column(name))))
            .order_by("lo"))
    values = mins.to_arrow(max_bytes=None).column(1).to_pylist()
    # the first bucket's lowest value is the column's minimum: no partition starts below it
    return sorted(set(values) - set(values[:1]))
