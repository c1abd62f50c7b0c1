"""The size guard's pre-flight layer: how large a result will be, before a row moves.

Rows come from the engine's planner (``Backend.estimate``: DuckDB's estimated cardinality,
PostgreSQL's ``Plan Rows``, MySQL/MariaDB's ``EXPLAIN FORMAT=JSON`` for one-table queries) or,
only when asked, from an exact pushed-down ``SELECT COUNT(*)``. Bytes are rows times a row
width: fixed-width columns from the schema; text, binary and nested columns from the engine's
statistics (PostgreSQL's ``Plan Width``) or from a small sample (``LIMIT 1000``, its ORDER BY
dropped), taken only for queries that stream (no grouping, DISTINCT, window or set operation,
so a sample never costs a full scan) and only when the figure could change a decision.

The sinks refuse with :class:`~queryref.errors.ResultTooLarge` (stage ``"estimate"``) when the
estimate is more than :data:`FAR_OVER` times the budget; closer calls are left to the fetch
layer (:mod:`queryref._guard`), which stops the query the moment the budget is crossed.

>>> import queryref as qr
>>> con = qr.connect()
>>> est = con.sql("SELECT range AS id, range * 2 AS twice FROM range(1000)").estimate()
>>> est.rows, est.bytes, est.method, est.exact
(1000, 16000, 'planner', False)
>>> con.sql("SELECT * FROM range(1000) WHERE range % 7 = 0").estimate(count=True).rows
143
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from queryref import _guard
from queryref._sql import ident
from queryref.backends._base import PlanEstimate
from queryref.errors import UnsupportedError

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

#: refuse up front only when the estimate is more than this many times the budget
FAR_OVER = 4
#: rows read to measure text widths
SAMPLE_ROWS = 1000
#: bytes a text value is assumed to take when a sample would cost a full scan
TEXT_GUESS = 16
#: text values longer than this on average are not assumed when deciding whether to sample
TEXT_CAP = 1024
#: nodes that make an engine compute the whole result before its first rows
_BLOCKING = (exp.Group, exp.Distinct, exp.AggFunc, exp.Window, exp.Order, exp.SetOperation)


@dataclass(frozen=True)
class Estimate:
    """A result's size before it runs: ``rows``, ``bytes`` and how they were obtained.

    ``method`` is ``"planner"`` (the engine's estimate), ``"count"`` (an exact pushed-down
    ``COUNT(*)``) or ``"unknown"``; ``exact`` says the row count is exact (bytes are always
    an estimate: rows times the schema's widths, text widths sampled or from the engine's
    statistics); ``details`` says where each figure came from, or why there is none.
    """

    rows: int | None
    bytes: int | None
    method: str
    exact: bool
    details: str

    @property
    def known(self) -> bool:
        """Whether the engine gave figures at all."""
        return self.rows is not None


@dataclass(frozen=True)
class _Layout:
    """Bytes a row takes in Arrow: fixed values, offsets, and which columns vary."""

    fixed: int
    offsets: int
    varying: tuple[int, ...]


def _layout(schema: pa.Schema) -> _Layout:
    fixed = offsets = 0
    varying = []
    for i, field in enumerate(schema):
        t = field.type
        if pa.types.is_boolean(t) or pa.types.is_null(t):
            fixed += 1
            continue
        try:
            fixed += max(t.bit_width // 8, 1)
        except ValueError:  # strings, binary, lists, structs ...
            varying.append(i)
            large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
            offsets += 8 if large else 4
    return _Layout(fixed, offsets, tuple(varying))


def _limit_of(tree: exp.Query) -> int | None:
    """The query's own top-level LIMIT, when it is a number."""
    limit = tree.args.get("limit")
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.to_py())
    return None


def _cap_by_limit(tree: exp.Query, rows: int) -> int:
    """The query's own top-level LIMIT bounds the rows (some plans ignore it)."""
    limit = _limit_of(tree)
    return rows if limit is None else min(rows, limit)


def _streams(tree: exp.Query) -> exp.Query | None:
    """``tree`` without its top-level ORDER BY, if the engine can then hand rows over as it
    reads them (so a LIMIT stops it early); None when it cannot."""
    inner = tree.copy()
    if inner.args.get("order") and not (inner.args.get("limit") or inner.args.get("offset")):
        inner.set("order", None)
    if inner.find(*_BLOCKING):
        return None
    return inner


def _sample_widths(q: QueryRef, layout: _Layout) -> list[float] | None:
    """Average Arrow bytes per row of each varying column, from a LIMITed sample."""
    from queryref._sinks import _strict_sql

    inner = _streams(q.tree)
    if inner is None:
        return None
    sample = exp.select(exp.Star()).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=ident("_q")))).limit(SAMPLE_ROWS)
    totals = [0] * len(layout.varying)
    rows = 0
    with q.connection.backend.stream(_strict_sql(sample, q.dialect), SAMPLE_ROWS) as stream:
        for batch in stream:
            for k, i in enumerate(layout.varying):
                totals[k] += batch.column(i).nbytes
            rows += batch.num_rows
            if rows >= SAMPLE_ROWS:
                break
    return [t / rows for t in totals] if rows else [0.0] * len(totals)


def _width(q: QueryRef, layout: _Layout, plan: PlanEstimate, sample: bool) -> tuple[int, str]:
    """Bytes per row, and how the text part was found."""
    base = layout.fixed + layout.offsets
    if not layout.varying:
        return base, "fixed widths from the schema"
    if plan.width is not None:
        return max(plan.width, layout.fixed) + layout.offsets, \
            "row width from the engine's statistics"
    widths = _sample_widths(q, layout) if sample else None
    if widths is None:
        guess = base + TEXT_GUESS * len(layout.varying)
        return guess, f"text widths guessed at {TEXT_GUESS} bytes (a sample would scan it all)"
    return layout.fixed + round(sum(widths)), \
        f"text widths from a {SAMPLE_ROWS:,}-row sample"


def _rows(q: QueryRef, count: bool) -> tuple[PlanEstimate, str, bool]:
    """Rows (exact or the planner's), the method's name, and whether exact."""
    from queryref._sinks import _strict_sql

    if count:
        n = q.count()
        return PlanEstimate(n, None, "an exact SELECT COUNT(*) run in the database"), \
            "count", True
    plan = q.connection.backend.estimate(_strict_sql(q.tree, q.dialect))
    if plan.rows is None:
        return plan, "unknown", False
    capped = _cap_by_limit(q.tree, plan.rows)
    return PlanEstimate(capped, plan.width, plan.detail, plan.firm), "planner", False


def estimate(q: QueryRef, *, count: bool = False, strict: bool = False) -> Estimate:
    """The size of ``q``'s result: see :meth:`QueryRef.estimate`."""
    plan, method, exact = _rows(q, count)
    if plan.rows is None:
        if strict:
            msg = (f"no estimate on {q.connection.backend.describe()}: {plan.detail}; "
                   "estimate(count=True) counts the rows exactly")
            raise UnsupportedError(msg)
        return Estimate(None, None, method, False, plan.detail)
    layout = _layout(q.schema)
    width, how = _width(q, layout, plan, sample=plan.rows > 0)
    return Estimate(plan.rows, plan.rows * width, method, exact, f"{plan.detail}; {how}")


def preflight(q: QueryRef, *, budget: int | None, mode: str | None) -> None:
    """Refuse ``q`` before it runs when it is estimated at more than FAR_OVER x ``budget``.

    Cheap by default (``mode="estimate"``: the planner, never a scan); ``"count"`` counts
    exactly first; ``None`` skips the check. A planner figure that rests on guesses (a
    filter's selectivity) is never refused on: the fetch layer decides. A text sample runs
    only when its answer could turn the decision: the row count times the fixed widths is
    under the line, and text values of up to TEXT_CAP bytes would cross it.
    """
    if budget is None or mode is None:
        return
    line = budget * FAR_OVER
    layout = _layout(q.schema)
    limit = _limit_of(q.tree)  # a preview's LIMIT 11: no need to ask the engine
    if limit is not None and limit * (layout.fixed + layout.offsets
                                      + TEXT_CAP * len(layout.varying)) <= line:
        return
    plan, _, _ = _rows(q, mode == "count")
    if plan.rows is None or not plan.firm:
        return
    low = plan.rows * (max(plan.width or 0, layout.fixed) + layout.offsets)
    if low > line:
        _refuse(plan, low, budget, "the schema's fixed widths")
    if not layout.varying or plan.width is not None or \
            low + plan.rows * TEXT_CAP * len(layout.varying) <= line:
        return
    width, how = _width(q, layout, plan, sample=True)
    if plan.rows * width > line:
        _refuse(plan, plan.rows * width, budget, how)


def _refuse(plan: PlanEstimate, nbytes: int, budget: int, how: str) -> None:
    detail = (f"(estimated from {plan.detail}: {plan.rows:,} rows, {how}; refused at more "
              f"than {FAR_OVER}x the budget. If the estimate is wrong: preflight='count' "
              "counts exactly first, preflight=None skips this check.)")
    _guard.refuse_up_front(rows=plan.rows, nbytes=nbytes, max_bytes=budget, max_rows=None,
                           detail=detail)
