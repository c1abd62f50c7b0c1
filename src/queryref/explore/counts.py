"""``value_counts()`` and ``histogram()``: counting in the warehouse, only the counts cross.

>>> import queryref as qr
>>> con = qr.connect()
>>> q = con.sql("SELECT * FROM (VALUES ('a'), ('b'), ('b'), ('c'), ('c'), ('c')) t(s)")
>>> value_counts(q, "s", n=2)
         s  count
0        c      3
1        b      2
2  (other)      1
>>> h = histogram(con.sql("SELECT range AS x FROM range(10)"), "x", bins=3)
>>> h["count"].tolist(), h["bin_start"].tolist()
([3, 3, 4], [0.0, 3.0, 6.0])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from queryref._expr import Expr, asc, col, count, desc
from queryref.errors import ParameterError, QueryRefError

if TYPE_CHECKING:
    import pandas as pd

    from queryref._queryref import QueryRef

#: the label of the row that sums the values past the first ``n``
OTHER = "(other)"
#: what a result of counts may take
COUNTS_BUDGET = 64 * 2**20
#: the most bins (the counts of more would not be looked at; a range too narrow for float64
#: to tell its edges apart compares each value with every edge, a CASE of this many branches)
MAX_BINS = 10_000


def _column(q: QueryRef, column: str) -> str:
    if not isinstance(column, str):
        raise ParameterError(f"column must be a column name, not {column!r}")
    q.select(column)  # (an unknown or ambiguous name fails here, with the usual error)
    return column


def value_counts(q: QueryRef, column: str, n: int = 20, *, dropna: bool = True
                 ) -> pd.DataFrame:
    """The ``n`` most frequent values of ``column`` with their counts (columns ``[column,
    "count"]``, most frequent first, ties by value, NULL after the values it ties with, on
    every engine), and a last row ``"(other)"`` with the count of all the other values when
    there are more than ``n`` (``"((other))"`` ... if a value shown is ``"(other)"`` itself).
    NULLs are left out, as in pandas, unless ``dropna=False`` (then they count as one value,
    shown as None). NaN is a value, not NULL (pandas drops it as it drops NULL). Text values
    are told apart by their characters, also on MariaDB (whose collation ignores case)."""
    import pandas as pd

    name = _column(q, column)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ParameterError(f"n must be a positive integer, not {n!r}")
    source = q.filter(col(name).not_null()) if dropna else q
    label = "count" if name != "count" else "count_"
    tally = "_qr_n" if name.lower() != "_qr_n" else "_qr_n2"  # (not the column's own name)
    exact = exact_text(q, name)
    if exact is None:
        counted = (source.group_by(name).agg(**{tally: count()})
                   .order_by(desc(tally), asc(name, nulls_first=False)).limit(n))
    else:  # (ties by the bytes: code point order, as Python sorts text)
        counted = (source.group_by(**{exact_key(name): exact})
                   .agg(**{name: col(name).min(), tally: count()})
                   .order_by(desc(tally), asc(exact_key(name), nulls_first=False)).limit(n)
                   .select(name, tally))
    top = counted.to_arrow(max_bytes=COUNTS_BUDGET, preflight=None)
    values, counts = top.column(0).to_pylist(), [int(c) for c in top.column(1).to_pylist()]
    totals = source.agg(_qr_rows=count()).to_arrow(max_bytes=COUNTS_BUDGET, preflight=None)
    rest = int(totals.column(0)[0].as_py() or 0) - sum(counts)
    frame = pd.DataFrame({name: top.column(0).to_pandas(), label: counts})
    if rest > 0:
        other = OTHER
        while other in values:  # (a value shown is the label itself: make the label unique)
            other = f"({other})"
        frame = pd.DataFrame({name: [*values, other], label: [*counts, rest]})
    return frame


def histogram(q: QueryRef, column: str, bins: int = 30) -> pd.DataFrame:
    """Counts of ``column``'s values in ``bins`` equal-width bins between its minimum and
    maximum (columns ``bin_start``, ``bin_end``, ``count``): the same edges and counts as
    ``numpy.histogram(values, bins, range=(min, max))``, the last bin closed, NULLs left out.
    A column holding NaN or an infinity has no finite range: ParameterError (as numpy raises),
    saying to filter them out first.

    Two queries: the range, then one grouped count whose bin is found by arithmetic and
    checked against numpy's own edges (so a value on an edge lands where numpy puts it). A
    source that gives other rows each time it runs (``random()``) can have values outside the
    range the first query found: they count in the first or last bin."""
    return _histogram(q, column, bins, [])


def _histogram(q: QueryRef, column: str, bins: int, queries: list[str]) -> pd.DataFrame:
    """:func:`histogram`, the SQL of each query it runs appended to ``queries``."""
    import pandas as pd

    name = _column(q, column)
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= MAX_BINS:
        raise ParameterError(f"bins must be an integer from 1 to {MAX_BINS:,}, not {bins!r}")
    t = _type_of(q, name)
    if t is not None and not (pa.types.is_integer(t) or pa.types.is_floating(t)
                              or pa.types.is_decimal(t)):
        raise ParameterError(f"histogram() needs a numeric column; {name!r} is {t}")
    value = exp.cast(col(name).node, exp.DataType.Type.DOUBLE)
    values = q.filter(col(name).not_null())
    span = values.agg(_qr_lo=Expr(exp.Min(this=value.copy())),
                      _qr_hi=Expr(exp.Max(this=value.copy())))
    queries.append(span.sql)
    ends = span.to_arrow(max_bytes=COUNTS_BUDGET, preflight=None)  # (one scan, both ends)
    lo, hi = (ends.column(i)[0].as_py() for i in range(2))
    if lo is None:
        return pd.DataFrame({"bin_start": pd.Series(dtype="float64"),
                             "bin_end": pd.Series(dtype="float64"),
                             "count": pd.Series(dtype="int64")})
    if not (math.isfinite(lo) and math.isfinite(hi)):
        msg = (f"histogram() of {name!r}: its values run from {lo!r} to {hi!r}, and bins need "
               f"a finite range (numpy.histogram raises too); filter out NaN and infinities "
               f"first, e.g. .filter(~qr.col({name!r}).is_nan() & "
               f"(qr.col({name!r}).abs() < float('inf')))")
        raise ParameterError(msg)
    try:
        edges = np.histogram_bin_edges(np.array([lo, hi], dtype="float64"), bins=bins,
                                       range=(float(lo), float(hi)))
    except ValueError as err:  # (as numpy.histogram: too many bins for float64 to tell apart)
        msg = (f"histogram() of {name!r}: its values run from {lo!r} to {hi!r}, too narrow a "
               f"range for {bins} bins of float64 ({err}); ask for fewer bins")
        raise ParameterError(msg) from None
    counted = (values.mutate(_qr_bin=Expr(_bin_of(value, edges))).group_by("_qr_bin")
               .agg(_qr_n=count()))
    queries.append(counted.sql)
    got = counted.to_arrow(max_bytes=COUNTS_BUDGET, preflight=None)
    counts = np.zeros(bins, dtype="int64")
    for b, c in zip(got.column(0).to_pylist(), got.column(1).to_pylist(), strict=True):
        if not 0 <= int(b) < bins:  # (never: a negative index would count in the last bin)
            raise QueryRefError(f"histogram(): the engine put a value in bin {b} of {bins}")
        counts[int(b)] += int(c)
    return pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "count": counts})


def exact_text(q: QueryRef, name: str) -> Expr | None:
    """On MySQL/MariaDB, a text column as its bytes (``CAST(c AS BINARY)``), to group or count
    values as pandas tells them apart: the default collation there makes ``a``, ``A``, ``á``
    and ``a `` one value. None elsewhere, and for other types."""
    t = _type_of(q, name)
    if q.dialect != "mysql" or t is None or not (pa.types.is_string(t)
                                                 or pa.types.is_large_string(t)):
        return None
    return Expr(exp.cast(col(name).node, exp.DataType.build("BINARY", dialect="mysql")))


def exact_key(name: str) -> str:
    """The name of :func:`exact_text`'s grouping key, other than ``name``."""
    return "_qr_k" if name.lower() != "_qr_k" else "_qr_k2"


def _type_of(q: QueryRef, name: str) -> pa.DataType | None:
    """The type of column ``name`` (matched as written, else ignoring case, as engines that
    fold names do), or None if it cannot be told."""
    fields = [f for f in q.schema if f.name == name] or [
        f for f in q.schema if f.name.lower() == name.lower()]
    return fields[0].type if len(fields) == 1 else None


def _bin_of(value: exp.Expr, edges: np.ndarray) -> exp.Expr:
    """The bin of numpy's ``edges`` that holds ``value`` (the last bin closed), as numpy
    finds it: a guess from arithmetic, then one step down or up where the value falls on the
    other side of an edge (numpy's edges are ``k * step + first``, and the engine computes
    the same float64 operations, so the comparisons agree with numpy's to the last bit).
    Where the guess could be more than one bin off (edges a few float64 steps apart, or a
    range wider than float64 can hold), each value is compared with every edge instead: a
    CASE as long as the bins are many, which an engine like Spark cannot compile for
    thousands of bins, so only where nothing else is exact."""
    bins = len(edges) - 1
    if bins == 1:
        return exp.Literal.number(0)
    first, last = float(edges[0]), float(edges[-1])
    step = (last - first) / bins
    ours = np.arange(bins + 1, dtype="float64") * step + first
    ours[-1] = last
    tiny = 8 * float(np.spacing(max(abs(first), abs(last))))
    if not (math.isfinite(step) and np.array_equal(ours, edges)
            and float(np.diff(edges).min()) > tiny):
        return exp.Case(ifs=[
            exp.If(this=exp.LT(this=value.copy(), expression=_double(edges[i + 1])),
                   true=exp.Literal.number(i))
            for i in range(bins - 1)], default=exp.Literal.number(bins - 1))
    # the guess, unclamped: -1 .. bins for a value in the range (float64 rounding); a value
    # outside it (a source that changed between the two queries) counts in an end bin
    guess = exp.cast(exp.Floor(this=exp.Div(
        this=exp.Paren(this=exp.Sub(this=value.copy(), expression=_double(first))),
        expression=_double(step))), exp.DataType.Type.BIGINT)

    def n(k: int) -> exp.Expr:
        return exp.Literal.number(k)

    def edge(k: exp.Expr) -> exp.Expr:
        return exp.Add(this=exp.Mul(this=exp.cast(k, exp.DataType.Type.DOUBLE),
                                    expression=_double(step)), expression=_double(first))

    def either(below: exp.Expr, low: int) -> exp.Expr:  # low, or low + 1 from ``below`` up
        return exp.Case(ifs=[exp.If(this=exp.LT(this=value.copy(), expression=below),
                                    true=n(low))], default=n(low + 1))

    def g() -> exp.Expr:
        return guess.copy()

    return exp.Case(ifs=[
        exp.If(this=exp.GTE(this=g(), expression=n(bins - 1)),
               true=either(_double(edges[bins - 1]), bins - 2)),
        exp.If(this=exp.LTE(this=g(), expression=n(0)), true=either(_double(edges[1]), 0)),
        exp.If(this=exp.GTE(this=value.copy(), expression=edge(exp.Add(this=g(), expression=n(1)))),
               true=exp.Add(this=g(), expression=n(1))),
        exp.If(this=exp.LT(this=value.copy(), expression=edge(g())),
               true=exp.Sub(this=g(), expression=n(1))),
    ], default=g())


def _double(value: Any) -> exp.Expr:
    """A float64 as a SQL literal that reads back as the same float64 on every engine."""
    return exp.cast(exp.Literal.number(repr(float(value))), exp.DataType.Type.DOUBLE)
