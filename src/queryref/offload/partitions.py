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
:func:`split` gives each partition's predicate; ``QueryRef`` filters itself by them.

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
from typing import Any

import pyarrow as pa
from sqlglot import exp

from queryref._options import _UNSET
from queryref.errors import ParameterError
from queryref.sinks import run as _run
from queryref.sinks.relation import Relation
from queryref.sql import rewrite as rw
from queryref.sql.text import column, ident, literal

#: more distinct values than this is almost surely a mistake (an id column): use n= instead
MAX_PARTITIONS = 10_000


@dataclass(frozen=True)
class Partition:
    """One partition: the filter that defines it, as SQL text (for messages) and as a tree."""

    label: str
    predicate: exp.Expr


def names_of(by: str | Sequence[str]) -> list[str]:
    """``by`` as a list of column names (a name, or a list or tuple of them)."""
    items = [by] if isinstance(by, str) else list(by) if isinstance(by, list | tuple) else []
    if not items or not all(isinstance(b, str) for b in items):
        raise ParameterError(f"partitions() by= takes a column name or a list of them, not {by!r}")
    return items


def split(rel: Relation, names: list[str], n: int | None = None,
          max_partitions: int = MAX_PARTITIONS) -> list[Partition]:
    """The partitions of ``rel`` by the values of the columns ``names`` (as the query names
    them), or ``n`` range buckets over the one column."""
    if n is None:
        return _by_value(rel, names, max_partitions)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"partitions() n must be a positive integer, not {n!r}")
    if len(names) != 1:
        raise ParameterError(f"partitions(n=...) splits one column into ranges, not {names}")
    return _by_range(rel, names[0], n)


def _fetch(rel: Relation, tree: exp.Query) -> pa.Table:
    """A helper query's rows, as ``to_arrow(max_bytes=None)`` would fetch them."""
    return _run.to_arrow(rel.new(tree), max_bytes=None, max_rows=_UNSET, batch_rows=_UNSET)


def _partition(rel: Relation, predicate: exp.Expr) -> Partition:
    return Partition(predicate.sql(dialect=rel.dialect), predicate)


def _by_value(rel: Relation, names: list[str], max_partitions: int) -> list[Partition]:
    keys = (exp.select(*[column(n) for n in names]).distinct().from_(rw.subquery(rel.tree))
            .order_by(*[exp.Ordered(this=column(n), desc=False, nulls_first=False)
                        for n in names])
            .limit(max_partitions + 1))
    table = _fetch(rel, keys)
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
        out.append(_partition(rel, exp.and_(*conditions) if len(conditions) > 1
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


def _by_range(rel: Relation, name: str, n: int) -> list[Partition]:
    bounds = _boundaries(rel, name, n)
    ranges: list[exp.Expr] = []
    if not bounds:
        ranges.append(exp.Not(this=exp.Is(this=column(name), expression=exp.Null())))
    else:
        ranges.append(exp.LT(this=column(name), expression=literal(bounds[0])))
        for lo, hi in itertools.pairwise(bounds):
            ranges.append(exp.and_(exp.GTE(this=column(name), expression=literal(lo)),
                                   exp.LT(this=column(name), expression=literal(hi))))
        ranges.append(exp.GTE(this=column(name), expression=literal(bounds[-1])))
    out = [_partition(rel, r) for r in ranges]
    is_null = exp.Is(this=column(name), expression=exp.Null())
    any_null = exp.select(exp.Literal.number(1)).from_(rw.subquery(rel.tree)) \
        .where(is_null.copy()).limit(1)
    if _fetch(rel, any_null).num_rows:
        out.append(_partition(rel, is_null))
    return out


def _boundaries(rel: Relation, name: str, n: int) -> list[Any]:
    """The lowest value of buckets 2..n of ``NTILE(n)`` over the column's non-NULL values."""
    if n == 1:
        return []
    bucket = "_qr_bucket"
    window = exp.Window(this=exp.Ntile(this=exp.Literal.number(n)),
                        order=exp.Order(expressions=[exp.Ordered(this=column(name))]))
    not_null = exp.Not(this=exp.Is(this=column(name), expression=exp.Null()))
    bucketed = exp.select(column(name), exp.alias_(window, bucket)) \
        .from_(rw.subquery(rel.tree)).where(not_null)
    mins = (exp.select(exp.alias_(exp.Min(this=column(name)), "lo"))
            .from_(exp.Subquery(this=bucketed, alias=exp.TableAlias(this=ident("_b"))))
            .group_by(column(bucket))
            .order_by(exp.Ordered(this=column("lo"), desc=False, nulls_first=False)))
    values = _fetch(rel, mins).column(0).to_pylist()
    # the first bucket's lowest value is the column's minimum: no partition starts below it
    return sorted(set(values) - set(values[:1]))
