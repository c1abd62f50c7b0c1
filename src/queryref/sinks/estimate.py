"""The size guard's pre-flight layer: how large a result will be, before a row moves.

Rows come from the engine's planner (``Backend.estimate``: DuckDB's estimated cardinality,
PostgreSQL's ``Plan Rows``, MySQL/MariaDB's ``EXPLAIN FORMAT=JSON`` for one-table queries) or,
only when asked, from an exact pushed-down ``SELECT COUNT(*)``. Bytes are rows times a row
width: fixed-width columns from the schema; text, binary, nested and JSON columns measured by
the engine itself over a random sample of about 1,000 rows of the result (``random() < p``
with a LIMIT, one row in 16 when the engine has no row estimate; only the summed widths come
back, never the rows), taken only for queries that
stream (no grouping, DISTINCT, window or set operation, so a sample never costs computing the
result twice); else the engine's statistics (PostgreSQL's ``Plan Width``) or a guess.

The sinks refuse through :class:`queryref.sinks.budget.Budget` (stage ``"estimate"``) when a firm
estimate is more than :data:`FAR_OVER` times the budget, or when the engine's smallest unit of
output would by itself cross the budget plus one batch, or (no row estimate: Snowflake, a
MySQL join) when a bounded count in the database finds the rows that at the measured width
are FAR_OVER x the budget; closer calls are left to the fetch layer, which stops the query
the moment the budget is crossed.

>>> import queryref as qr
>>> con = qr.connect()
>>> est = con.sql("SELECT range AS id, range * 2 AS twice FROM range(1000)").estimate()
>>> est.rows, est.bytes, est.method, est.exact
(1000, 16000, 'planner', False)
>>> con.sql("SELECT * FROM range(1000) WHERE range % 7 = 0").estimate(count=True).rows
143
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from queryref.backends._base import PlanEstimate
from queryref.errors import QueryRefError, UnsupportedError
from queryref.sinks.budget import BATCH_BYTES_CAP, Budget, Layout, layout, value_width
from queryref.sinks.count import count as count_rows
from queryref.sinks.relation import Relation, strict_sql
from queryref.sql import rewrite as rw
from queryref.sql.text import column, ident

#: refuse up front only when the estimate is more than this many times the budget
FAR_OVER = 4
#: rows read to measure text widths
SAMPLE_ROWS = 1000
#: bytes a text value is assumed to take when a sample would cost a full scan
TEXT_GUESS = 16
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


def limit_of(tree: exp.Query) -> int | None:
    """The query's own top-level LIMIT, when it is a number."""
    limit = tree.args.get("limit")
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.to_py())
    return None


def _cap_by_limit(tree: exp.Query, rows: int) -> int:
    """The query's own top-level LIMIT bounds the rows (some plans ignore it)."""
    limit = limit_of(tree)
    return rows if limit is None else min(rows, limit)


def _streamed(tree: exp.Query) -> exp.Subquery | None:
    """``(tree) AS _q`` without an ORDER BY no LIMIT needs (:func:`queryref.sql.rewrite.subquery`),
    if the engine can then hand rows over as it reads them (so a LIMIT stops it early); None
    when it cannot."""
    source = rw.subquery(tree)
    return None if source.this.find(*_BLOCKING) else source


@dataclass(frozen=True)
class Widths:
    """Row widths measured in the warehouse over a sample of the result: ``mean`` and
    ``widest`` Arrow bytes per row (fixed columns and offsets included), of ``rows`` rows."""

    mean: float
    widest: int
    rows: int


def _width_expr(field: pa.Field, dialect: str) -> exp.Expr:
    """SQL for the bytes one value of a varying column takes (text, binary, nested, JSON)."""
    col = column(field.name)
    t = field.type
    text = pa.types.is_string(t) or pa.types.is_large_string(t)
    binary = pa.types.is_binary(t) or pa.types.is_large_binary(t)
    if dialect == "duckdb":
        if text:
            return exp.Anonymous(this="strlen", expressions=[col])
        if binary:
            return exp.Anonymous(this="octet_length", expressions=[col])
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            element = value_width(t.value_type)
            if element is not None:
                return exp.Mul(this=exp.Anonymous(this="len", expressions=[col]),
                               expression=exp.Literal.number(element))
        return exp.Anonymous(this="strlen", expressions=[exp.cast(col, "VARCHAR")])
    if dialect == "postgres":
        value = col if binary else exp.cast(col, "TEXT")  # (json, jsonb, arrays: as text)
        return exp.Anonymous(this="octet_length", expressions=[value])
    if dialect == "mysql":
        return exp.Anonymous(this="LENGTH", expressions=[col])
    return exp.Length(this=col if text else exp.cast(col, "VARCHAR"))


#: dialects where ``random() < p`` picks rows at random in one pass
_RANDOM = {"duckdb": "random", "postgres": "random", "mysql": "RAND"}
#: with no row estimate, the sample takes one row in this many (its LIMIT ends the scan)
UNKNOWN_EVERY = 16


def _random(dialect: str) -> exp.Expr | None:
    """SQL for a uniform random number in [0, 1) on each row, where the dialect has one."""
    # (not Snowflake: RANDOM() is a 64-bit integer there, and fakesnow's translation of it
    # overflows a DECIMAL inside this sample now and then; its sample is the first rows)
    name = _RANDOM.get(dialect)
    return exp.Anonymous(this=name) if name else None


def measure_widths(rel: Relation, layout: Layout, rows: int | None) -> Widths | None:
    """Bytes per row of ``q``'s result, measured by the engine over a random sample of about
    SAMPLE_ROWS rows (only the widths come back: no row moves to Python). None when the
    query does not stream (a sample would cost computing it all)."""
    source = _streamed(rel.tree)
    schema = rel.schema
    if source is None or len(set(schema.names)) != len(schema.names):
        return None  # (a column named twice cannot be told apart by name)
    widths = [exp.alias_(exp.Coalesce(this=_width_expr(schema.field(i), rel.dialect),
                                      expressions=[exp.Literal.number(0)]), f"_w{k}")
              for k, i in enumerate(layout.varying)]
    sample = exp.select(*widths).from_(source)
    rand = _random(rel.dialect)
    if rand is not None and (rows is None or rows > SAMPLE_ROWS):
        # rows unknown: one row in UNKNOWN_EVERY, so the sample is not the first rows only
        p = 2 * SAMPLE_ROWS / rows if rows else 1 / UNKNOWN_EVERY
        sample = sample.where(exp.LT(this=rand, expression=exp.Literal.number(p)))
    sample = sample.limit(SAMPLE_ROWS)
    ws = [exp.column(f"_w{k}") for k in range(len(layout.varying))]
    row_sum: exp.Expr = ws[0]
    for w in ws[1:]:
        row_sum = exp.Add(this=row_sum, expression=w)
    stats = exp.select(
        exp.alias_(exp.Count(this=exp.Star()), "_n"),
        *[exp.alias_(exp.Sum(this=w), f"_s{k}") for k, w in enumerate(ws)],
        exp.alias_(exp.Max(this=row_sum), "_max"),
    ).from_(exp.Subquery(this=sample, alias=exp.TableAlias(this=ident("_s"))))
    sql = strict_sql(stats, rel.dialect)
    key = (id(rel.backend), sql)
    cached = _MEASURED.get(key)
    if cached is not None and time.monotonic() - cached[0] < MEASURED_TTL:
        return cached[1]
    try:
        row = rel.first_row(sql)
    except QueryRefError:  # a type the width SQL does not fit: the fetch layer bounds it
        return None
    measured = _widths_of(row, layout, len(ws))
    if len(_MEASURED) >= 256:
        _MEASURED.clear()
    _MEASURED[key] = (time.monotonic(), measured)
    return measured


#: widths measured lately, by connection (its backend) and query: the same query gets the same
#: figure from estimate(), dry_run=True, the pre-flight and the CLI (a random sample differs)
_MEASURED: dict[tuple[int, str], tuple[float, Widths]] = {}
#: seconds a measurement is reused
MEASURED_TTL = 60.0


def _widths_of(row: list[Any] | None, layout: Layout, n_varying: int) -> Widths:
    """Widths from the sample's one row: its count, each column's sum, the widest row."""
    n = int(row[0] or 0) if row else 0
    base = layout.fixed + layout.offsets
    if not n or row is None:
        return Widths(float(base), base, 0)
    total = sum(float(row[1 + k] or 0) for k in range(n_varying))
    return Widths(base + total / n, base + int(float(row[1 + n_varying] or 0)), n)


def _width(rel: Relation, layout: Layout, plan: PlanEstimate, sample: bool
           ) -> tuple[int, str, Widths | None]:
    """Bytes per row, how the varying part was found, and the measured widths if any."""
    base = layout.fixed + layout.offsets
    if not layout.varying:
        return base, "fixed widths from the schema", Widths(base, base, 0)
    widths = measure_widths(rel, layout, plan.rows) if sample else None
    if widths is not None and widths.rows:
        return round(widths.mean), (f"widths measured in the database over a {widths.rows:,}"
                                    "-row random sample"), widths
    if plan.width is not None:
        return max(plan.width, layout.fixed) + layout.offsets, \
            "row width from the engine's statistics", None
    guess = base + TEXT_GUESS * len(layout.varying)
    return guess, f"text widths guessed at {TEXT_GUESS} bytes (a sample would scan it all)", None


def _rows(rel: Relation, count: bool) -> tuple[PlanEstimate, str, bool]:
    """Rows (exact or the planner's), the method's name, and whether exact."""
    if count:
        n = count_rows(rel)
        return PlanEstimate(n, None, "an exact SELECT COUNT(*) run in the database"), \
            "count", True
    plan = rel.backend.estimate(rel.sql())
    if plan.rows is None:
        return plan, "unknown", False
    capped = _cap_by_limit(rel.tree, plan.rows)
    return PlanEstimate(capped, plan.width, plan.detail, plan.firm), "planner", False


def estimate(rel: Relation, *, count: bool = False, strict: bool = False) -> Estimate:
    """The size of ``rel``'s result: see ``QueryRef.estimate``."""
    return _measure(rel, count=count, strict=strict)[0]


def _measure(rel: Relation, *, count: bool = False, strict: bool = False
             ) -> tuple[Estimate, PlanEstimate, Widths | None]:
    """The estimate, the planner's figures behind it, and the widths measured (if any).

    The one computation behind ``estimate()``, ``dry_run=True``, the sinks' pre-flight and the
    CLI's refusal, so they all give the same bytes for the same query.
    """
    plan, method, exact = _rows(rel, count)
    if plan.rows is None:
        if strict:
            msg = (f"no estimate on {rel.backend.describe()}: {plan.detail}; "
                   "estimate(count=True) counts the rows exactly")
            raise UnsupportedError(msg)
        return Estimate(None, None, method, False, plan.detail), plan, None
    row = layout(rel.schema)
    width, how, widths = _width(rel, row, plan, sample=plan.rows > 0)
    details = f"{plan.detail}; {how}; bytes are Arrow bytes (to_arrow's size; to_pandas " \
        "holds about the same for numbers and text)"
    return Estimate(plan.rows, plan.rows * width, method, exact, details), plan, widths


@dataclass(frozen=True)
class Preflight:
    """What the pre-flight learnt for the fetch: rows (when known) and widths (when measured)."""

    rows: int | None
    widths: Widths | None


def preflight(rel: Relation, *, budget: Budget, mode: str | None) -> Preflight:
    """Refuse ``rel`` before it runs when it cannot fit ``budget``.

    Cheap by default (``mode="estimate"``: the planner, and the widths of text, binary and
    nested columns measured by the engine over a random sample; ``"count"`` counts exactly
    first; ``None`` skips the check). Refused, before a row moves:

    - a firm row count times the widths, more than FAR_OVER x the budget (a planner figure
      that rests on guesses, a filter's selectivity, is left to the fetch layer);
    - a result whose smallest unit the engine hands over (DuckDB: a 2,048-row vector) holds
      more than the budget plus one batch, by the widest row sampled: no fetch size could
      bound it.
    """
    limit_bytes = budget.max_bytes
    if limit_bytes is None or mode is None:
        return Preflight(None, None)
    row = layout(rel.schema)
    limit = limit_of(rel.tree)  # a preview's LIMIT 11: no need to ask the engine
    if limit is not None and limit <= SMALL_LIMIT and limit * (
            row.fixed + row.offsets + TEXT_CAP * len(row.varying)) <= limit_bytes:
        return Preflight(limit, None)
    est, plan, widths = _measure(rel, count=mode == "count")
    if plan.rows is None:
        base = row.fixed + row.offsets
        widths = measure_widths(rel, row, None) if row.varying else Widths(base, base, 0)
        _refuse_unit(rel, budget, None, widths, plan)
        _probe(rel, budget, widths, plan)
        return Preflight(None, widths)
    firm = plan.firm or mode == "count"
    assert est.bytes is not None
    if firm and est.bytes > limit_bytes * FAR_OVER:
        _refuse(budget, plan, est, f"refused at more than {FAR_OVER}x the budget")
    _refuse_unit(rel, budget, plan.rows, widths, plan)
    return Preflight(plan.rows if firm else None, widths)


#: a LIMIT this small needs no pre-flight when its rows fit the budget at TEXT_CAP bytes a value
SMALL_LIMIT = 100
#: bytes a text value is assumed to take at most in a small LIMIT (a preview)
TEXT_CAP = 1024


def _refuse_unit(rel: Relation, budget: Budget, rows: int | None, widths: Widths | None,
                 plan: PlanEstimate) -> None:
    """Refuse when one unit of the engine's output (its smallest batch) is over the bound."""
    if widths is None or not widths.rows or budget.max_bytes is None:
        return
    unit = rel.backend.batch_unit
    unit_rows = unit if rows is None else min(rows, unit)
    nbytes = unit_rows * widths.widest
    if nbytes > budget.max_bytes + BATCH_BYTES_CAP:
        detail = (f"(estimated from {plan.detail}; widths measured in the database: rows of up "
                  f"to {widths.widest:,} bytes, and {rel.backend.name} hands rows over "
                  f"{unit:,} at a time, so one batch would hold about {nbytes:,} bytes. "
                  "preflight=None skips this check.)")
        budget.refuse(rows=rows, nbytes=nbytes, detail=detail)


#: the most rows the pre-flight counts to learn that a result with no estimate is too large
PROBE_ROWS = 1_000_000


def _probe(rel: Relation, budget: Budget, widths: Widths | None, plan: PlanEstimate) -> None:
    """Without a row estimate (Snowflake, a MySQL join): count, in the database, whether the
    result has the rows that at the measured width would be FAR_OVER x the budget, and no more
    (``COUNT(*)`` over ``LIMIT k``: the engine stops at ``k``). Refused if it has them.

    Some engines send a whole result at once (fakesnow's server: one response, before the
    first batch could be checked), so only a refusal before the query runs bounds them.
    Only for a query that streams (a LIMIT then stops its scan early) and a probe of at most
    :data:`PROBE_ROWS` rows.
    """
    if widths is None or budget.max_bytes is None or widths.mean <= 0:
        return
    source = _streamed(rel.tree)
    k = int(budget.max_bytes * FAR_OVER / widths.mean) + 1
    if source is None or k > PROBE_ROWS:
        return
    limited = exp.select(exp.Literal.number(1)).from_(source).limit(k)
    tree = exp.select(exp.alias_(exp.Count(this=exp.Star()), "_n")).from_(
        exp.Subquery(this=limited, alias=exp.TableAlias(this=ident("_p"))))
    try:
        row = rel.first_row(tree)
    except QueryRefError:  # the fetch layer bounds what it can
        return
    n = int(row[0]) if row is not None else 0
    if n < k:
        return
    nbytes = int(k * widths.mean)
    detail = (f"({plan.detail}; counted in the database: at least {k:,} rows, at "
              f"{widths.mean:,.0f} bytes a row (widths measured over a {widths.rows:,}-row "
              f"sample), already more than {FAR_OVER}x the budget. preflight=None skips this "
              "check.)")
    budget.refuse(rows=k, nbytes=nbytes, detail=detail)


def _refuse(budget: Budget, plan: PlanEstimate, est: Estimate, why: str) -> None:
    detail = (f"(estimated from {est.details.split('; bytes are')[0]}: {plan.rows:,} rows; "
              f"{why}. If the estimate is wrong: preflight='count' counts exactly first, "
              "preflight=None skips this check.)")
    budget.refuse(rows=plan.rows, nbytes=est.bytes, detail=detail)
