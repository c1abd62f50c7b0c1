"""``shrink_dtypes=True``: the smallest pandas dtypes that hold the result, chosen in the warehouse.

One aggregate query over the result decides, per column (every figure computed by the engine):

- integers: ``MIN``/``MAX`` pick the smallest signed type that holds them (int8, int16, int32,
  int64), as pandas' nullable ``Int8``...``Int64`` when the column has NULLs (plain pandas would
  make those float64). The engine casts (``CAST(c AS SMALLINT)``...), so the Arrow batches
  arrive small; engines without a 1-byte integer (PostgreSQL) are narrowed in Arrow after.
- floats (float64): float32 when every value survives the round trip exactly
  (``CAST(CAST(c AS REAL) AS DOUBLE) = c``, inside a CASE that first keeps values outside
  float32's normal range, NaN and infinities out of the cast). Only on engines with a 4-byte
  float (DuckDB, PostgreSQL, Trino/Presto, Spark); Snowflake's, SQL Server's and SQLite's FLOAT
  are 8 bytes, so there floats stay float64.
- text: ``category`` when it has at most 32,767 distinct values and at most one distinct value
  per two non-NULL rows (``COUNT(DISTINCT c) * 2 <= COUNT(c)``): codes of 1 or 2 bytes plus the
  categories then never take more than the text. The categories are fetched from the warehouse
  (``SELECT DISTINCT``, one small query per such column) and sorted as pandas sorts them, so
  every batch maps to the same codes (``pyarrow.compute.index_in``).

Booleans, dates, timestamps and everything else keep the dtypes of a plain ``to_pandas()``.
The budget counts the shrunk bytes (and the categories). The saving is reported in
``df.attrs["queryref"]["shrink"]`` and logged at INFO on the ``queryref`` logger.

The statistics and the rows come from two queries: a query whose result changes between them
(``random()``, an unseeded ``sample``, concurrent writes) can raise an error instead of
shrinking. Values are never changed: a value outside the measured range raises.

>>> import queryref as qr
>>> q = qr.connect().sql("SELECT range AS id, 'k' || (range % 3) AS k FROM range(300)")
>>> df = q.to_pandas(shrink_dtypes=True)
>>> df.dtypes.astype(str).tolist()
['int16', 'category']
>>> df.attrs["queryref"]["shrink"]["columns"]["k"]["to"]
'category'
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from queryref._options import _UNSET, resolve
from queryref._sizes import format_bytes
from queryref.errors import QueryRefError
from queryref.sinks import convert as _convert
from queryref.sinks.budget import Budget
from queryref.sinks.memory import release_free_memory
from queryref.sinks.relation import Relation, decimals_as_double, with_casts
from queryref.sinks.streams import collect, to_arrow_batches
from queryref.sql import rewrite as rw
from queryref.sql.text import column

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("queryref")

#: text becomes category with at most this many distinct values (int16 codes) ...
CATEGORY_MAX_DISTINCT = 32_767
#: ... and at least this many non-NULL rows per distinct value
CATEGORY_MIN_ROWS_PER_VALUE = 2
#: dialects whose CAST(x AS FLOAT) (sqlglot's FLOAT) is a 4-byte float
_FLOAT32_DIALECTS = frozenset({"duckdb", "postgres", "trino", "presto", "spark", "databricks"})
_FLOAT32_MIN_NORMAL = 1.1754943508222875e-38
_FLOAT32_MAX = 3.4028234663852886e38
_ARROW_NAMES = {"double": "float64", "float": "float32", "string": "str", "large_string": "str",
                "string_view": "str"}
_INT_TYPES = ((pa.int8(), "TINYINT"), (pa.int16(), "SMALLINT"), (pa.int32(), "INT"),
              (pa.int64(), "BIGINT"))


@dataclass(frozen=True)
class ColumnPlan:
    """What one column becomes: ``kind`` is ``"int"``, ``"float32"`` or ``"category"``."""

    kind: str
    source: pa.DataType
    target: pa.DataType  # the integer type, float32, or the categories' codes type
    nullable: bool = False
    categories: pa.Array | None = None

    def describe(self) -> str:
        if self.kind == "category":
            return "category"
        name = str(self.target) if self.kind == "int" else "float32"
        return name.capitalize() if self.nullable else name


@dataclass
class Plan:
    """Per-column decisions (by position) and the query that casts in the engine."""

    query: Relation
    columns: dict[int, ColumnPlan] = field(default_factory=dict)

    @property
    def reserved_bytes(self) -> int:
        """The categories' bytes: part of the frame before any row arrives."""
        return sum(p.categories.nbytes for p in self.columns.values()
                   if p.categories is not None)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _smallest_int(lo: int, hi: int) -> tuple[pa.DataType, str] | None:
    for t, sql_name in _INT_TYPES:
        bits = t.bit_width - 1
        if -(2**bits) <= lo and hi < 2**bits:
            return t, sql_name
    return None


def _float32_inexact(c: exp.Expr) -> exp.Expr:
    """1 where the value would change as float32 (or cannot be cast safely), else 0."""
    double = exp.DataType.build("double")
    real = exp.DataType.build("float")

    def num(v: float) -> exp.Expr:
        return exp.cast(exp.Literal.number(repr(v)), double)

    zero, one = exp.Literal.number(0), exp.Literal.number(1)
    in_range = exp.Between(this=exp.Abs(this=c.copy()), low=num(_FLOAT32_MIN_NORMAL),
                           high=num(_FLOAT32_MAX))
    round_trip = exp.cast(exp.cast(c.copy(), real), double)
    return exp.Case(ifs=[
        exp.If(this=exp.Is(this=c.copy(), expression=exp.Null()), true=zero),
        exp.If(this=exp.EQ(this=c.copy(), expression=zero.copy()), true=zero.copy()),
        exp.If(this=exp.Not(this=exp.Paren(this=in_range)), true=one),
        exp.If(this=exp.EQ(this=round_trip, expression=c.copy()), true=zero.copy()),
    ], default=one.copy())


def plan(rel: Relation, budget: int | None = None) -> Plan:
    """Measure ``rel`` in the warehouse and decide each column's dtype (see the module doc)."""
    schema = rel.schema
    names = list(schema.names)
    unique = {n for n in names if names.count(n) == 1}
    floats_ok = rel.dialect in _FLOAT32_DIALECTS
    aggs: list[exp.Expr] = [exp.Count(this=exp.Star())]
    wanted: list[tuple[int, str, int]] = []  # (position, kind, index of its first aggregate)
    for i, f in enumerate(schema):
        if f.name not in unique:
            continue
        c = column(f.name)
        if pa.types.is_integer(f.type):
            kind, parts = "int", [exp.Min(this=c), exp.Max(this=c.copy()), exp.Count(this=c.copy())]
        elif pa.types.is_float64(f.type) and floats_ok:
            kind, parts = "float32", [exp.Max(this=_float32_inexact(c))]
        elif _is_text(f.type):
            distinct = exp.Count(this=exp.Distinct(expressions=[c]))
            kind, parts = "category", [distinct, exp.Count(this=c.copy())]
        else:
            continue
        wanted.append((i, kind, len(aggs)))
        aggs += parts
    result = Plan(query=rel)
    if not wanted:
        return result
    stats_tree = exp.select(*[exp.alias_(a, f"_s{k}") for k, a in enumerate(aggs)]).from_(
        rw.subquery(rel.tree))
    stats = rel.fetch(stats_tree)
    row = [stats.column(k)[0].as_py() if stats.num_rows else None for k in range(len(aggs))]
    total = int(row[0] or 0)
    for i, kind, k in wanted:
        source = schema.field(i).type
        if kind == "int":
            lo, hi, nonnull = row[k], row[k + 1], int(row[k + 2] or 0)
            chosen = _smallest_int(int(lo), int(hi or 0)) if lo is not None else _INT_TYPES[0]
            if chosen is not None:
                result.columns[i] = ColumnPlan("int", source, chosen[0],
                                               nullable=nonnull < total)
        elif kind == "float32":
            if not row[k]:
                result.columns[i] = ColumnPlan("float32", source, pa.float32())
        else:
            n_distinct, n_text = int(row[k] or 0), int(row[k + 1] or 0)
            if 0 < n_distinct <= CATEGORY_MAX_DISTINCT \
                    and n_distinct * CATEGORY_MIN_ROWS_PER_VALUE <= n_text:
                cats = _categories(rel, names[i], budget)
                result.columns[i] = ColumnPlan("category", source, _codes_type(len(cats)),
                                               categories=cats)
    result.query = _cast_in_engine(rel, result.columns)
    return result


def _categories(rel: Relation, name: str, budget: int | None) -> pa.Array:
    """The column's distinct non-NULL values, fetched from the warehouse, sorted."""
    tree = exp.select(column(name)).distinct().from_(rw.subquery(rel.tree))
    values = rel.fetch(tree).column(0).combine_chunks()
    Budget(budget, what=f"the categories of {name!r}").add(nbytes=values.nbytes)
    values = pc.drop_null(values).cast(pa.string())
    return pc.take(values, pc.sort_indices(values))


def _codes_type(n: int) -> pa.DataType:
    return pa.int8() if n <= 127 else (pa.int16() if n <= 32_767 else pa.int32())


def _cast_in_engine(rel: Relation, columns: dict[int, ColumnPlan]) -> Relation:
    """``rel`` with its narrowed integers and float32 columns cast by the engine."""
    casts: dict[str, tuple[str, pa.DataType]] = {}
    for i, p in columns.items():
        name = rel.schema.field(i).name
        if p.kind == "int" and p.target != p.source:
            casts[name] = (dict(_INT_TYPES)[p.target], p.target)
        elif p.kind == "float32":
            casts[name] = ("float", pa.float32())
    return with_casts(rel, casts)


class ShrinkBuilder:
    """Like :class:`queryref.sinks.convert.FrameBuilder`, with the plan's columns shrunk.

    ``measure(batch)`` is the guard's ``size_of``: the shrunk bytes of the batch (and it
    keeps the unshrunk figure for the report).
    """

    def __init__(self, schema: pa.Schema, plan: Plan, decimals: str = "float") -> None:
        self.schema = schema
        self.plan = plan.columns
        self._plain = _convert.FrameBuilder(schema, decimals)
        self._cats = {i: p.categories for i, p in self.plan.items() if p.categories is not None}
        self._extra: dict[int, list[str]] = {}  # values the engine's DISTINCT merged (collation)
        self._chunks: list[list[Any]] = [[] for _ in schema]
        self.before = [0] * len(schema)
        self.after = [0] * len(schema)

    # -- the guard's side ----------------------------------------------------------------
    def measure(self, batch: pa.RecordBatch) -> int:
        n = batch.num_rows
        total = 0
        for i, arr in enumerate(batch.columns):
            p = self.plan.get(i)
            if p is not None and p.kind != "category":  # what plain to_pandas makes of it
                plain = n * (8 if arr.null_count else p.source.bit_width // 8)
            else:
                plain = _convert.pandas_nbytes(pa.RecordBatch.from_arrays([arr], names=["c"]))
            if p is None:
                size = plain
            else:
                size = n * (p.target.bit_width // 8) + (n if p.nullable else 0)
            self.before[i] += plain
            self.after[i] += size
            total += size
        return total

    def add(self, batch: pa.RecordBatch) -> None:
        for i, field_ in enumerate(self.schema):
            arr = batch.column(i)
            p = self.plan.get(i)
            if p is None:
                self._chunks[i].append(self._plain._convert(arr, field_.type))
            elif p.kind == "category":
                self._chunks[i].append(self._codes(i, arr))
            else:
                self._chunks[i].append(self._numbers(i, arr, p))

    def clear(self) -> None:
        self._chunks = [[] for _ in self.schema]

    # -- conversion ------------------------------------------------------------------------
    def _numbers(self, i: int, arr: pa.Array, p: ColumnPlan) -> Any:
        try:
            arr = pc.cast(arr, p.target)
        except pa.ArrowInvalid:
            raise self._changed(i) from None
        if p.kind == "int" and p.nullable:
            values = arr.fill_null(0).to_numpy(zero_copy_only=False).copy()
            return values, arr.is_null().to_numpy(zero_copy_only=False)
        if p.kind == "int" and arr.null_count:
            raise self._changed(i)
        return arr.to_numpy(zero_copy_only=False).copy()

    def _codes(self, i: int, arr: pa.Array) -> np.ndarray:
        cats = self._cats[i]
        arr = arr.cast(pa.string())
        codes = pc.index_in(arr, value_set=cats)
        missed = pc.and_(pc.is_valid(arr), pc.is_null(codes))
        if pc.any(missed).as_py():  # the engine's DISTINCT merged values Python tells apart
            new = pc.unique(pc.filter(arr, missed))
            self._extra.setdefault(i, []).extend(new.to_pylist())
            cats = pa.concat_arrays([cats, new])
            self._cats[i] = cats
            codes = pc.index_in(arr, value_set=cats)
        width = _codes_type(len(cats))
        return codes.fill_null(-1).cast(width).to_numpy(zero_copy_only=False)

    def _changed(self, i: int) -> QueryRefError:
        name = self.schema.field(i).name
        msg = (
            f"shrink_dtypes: column {name!r} has values outside what was measured before "
            "fetching (the query's result changed between its two runs); run it without "
            "shrink_dtypes, or cache() it first"
        )
        return QueryRefError(msg)

    def finish(self) -> pd.DataFrame:
        import pandas as pd

        data: dict[str, Any] = {}
        for i, field_ in enumerate(self.schema):
            pieces, self._chunks[i] = self._chunks[i], []
            p = self.plan.get(i)
            if p is None:
                if pieces:
                    data[f"{i}"] = _convert.join_pieces(pieces, field_.type)
                else:  # no rows: the dtype a plain to_pandas() gives an empty result
                    empty = _convert.FrameBuilder(pa.schema([field_]), self._plain.decimals)
                    data[f"{i}"] = empty.finish().iloc[:, 0].array
            elif p.kind == "category":
                data[f"{i}"] = self._categorical(i, pieces)
            elif p.kind == "int" and p.nullable:
                values = _concat([v for v, _ in pieces], p.target)
                mask = _concat([m for _, m in pieces], pa.bool_())
                data[f"{i}"] = pd.arrays.IntegerArray(values, mask)
            else:
                data[f"{i}"] = _concat(pieces, p.target)
            del pieces
            release_free_memory()  # the pieces' pages, before the next column is joined
        frame = pd.DataFrame(data, copy=False)
        frame.columns = self.schema.names
        return frame

    def _categorical(self, i: int, pieces: list[np.ndarray]) -> pd.Categorical:
        import pandas as pd

        cats = self._cats[i]
        codes = _concat(pieces, _codes_type(len(cats)))
        index = pd.Index(pd.array(cats, dtype=_convert.text_dtype()))
        out = pd.Categorical.from_codes(codes, categories=index)
        if i in self._extra:
            out = out.reorder_categories(index.sort_values())
        return out

    def report(self) -> dict[str, Any]:
        """``{"bytes_before", "bytes_after", "columns": {name: {...}}}`` for what was measured."""
        columns: dict[str, Any] = {}
        for i, p in self.plan.items():
            extra = p.categories.nbytes if p.categories is not None else 0
            columns[self.schema.field(i).name] = {
                "from": _ARROW_NAMES.get(str(p.source), str(p.source)), "to": p.describe(),
                "bytes_before": self.before[i], "bytes_after": self.after[i] + extra,
            }
        reserved = sum(c.nbytes for c in self._cats.values())
        return {"bytes_before": sum(self.before), "bytes_after": sum(self.after) + reserved,
                "columns": columns}


def _concat(pieces: list[np.ndarray], t: pa.DataType) -> np.ndarray:
    if not pieces:
        return np.empty(0, dtype=t.to_pandas_dtype())
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces)


def _attach(frame: pd.DataFrame, report: dict[str, Any]) -> None:
    frame.attrs.setdefault("queryref", {})["shrink"] = report


def _log(report: dict[str, Any], what: str) -> None:
    before, after = report["bytes_before"], report["bytes_after"]
    if log.isEnabledFor(logging.INFO):
        changed = ", ".join(f"{n} {c['from']}->{c['to']}" for n, c in report["columns"].items())
        log.info("shrink_dtypes (%s): %s -> %s (%.0f%% saved)%s", what, format_bytes(before),
                 format_bytes(after), 100 * (1 - after / before) if before else 0.0,
                 f": {changed}" if changed else "")


def to_pandas(rel: Relation, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
              decimals: str, timeout: float | None = None) -> pd.DataFrame:
    """``to_pandas(shrink_dtypes=True)``: measured, cast in the engine, guarded on shrunk bytes."""
    _convert.check_mode(decimals)
    if decimals == "float":
        rel = decimals_as_double(rel)
    budget = resolve("max_bytes", max_bytes)
    shrink = plan(rel, budget)
    remaining = None if budget is None else budget - shrink.reserved_bytes
    if remaining is not None and remaining < 0:
        Budget(budget, what="the categories alone").add(nbytes=shrink.reserved_bytes)
    holder: list[ShrinkBuilder] = []

    def sink_for(schema: pa.Schema) -> ShrinkBuilder:
        holder.append(ShrinkBuilder(schema, shrink, decimals))
        return holder[0]

    builder = collect(shrink.query, sink_for, max_bytes=remaining, max_rows=max_rows,
                      batch_rows=batch_rows, size_of=lambda b: holder[0].measure(b),
                      timeout=timeout)
    frame = builder.finish()
    report = builder.report()
    _attach(frame, report)
    _log(report, f"{len(frame):,} rows")
    return frame


def to_pandas_batches(rel: Relation, *, batch_rows: Any, decimals: str,
                      timeout: float | None = None,
                      max_batch_bytes: Any = _UNSET) -> Iterator[pd.DataFrame]:
    """``to_pandas_batches(shrink_dtypes=True)``: every batch with the same dtypes and codes."""
    _convert.check_mode(decimals)
    if decimals == "float":
        rel = decimals_as_double(rel)
    shrink = plan(rel)
    reader = to_arrow_batches(shrink.query, batch_rows=batch_rows, timeout=timeout,
                              max_batch_bytes=max_batch_bytes)

    def frames() -> Iterator[pd.DataFrame]:
        before = after = 0
        rows = 0
        last: dict[str, Any] = {"bytes_before": 0, "bytes_after": 0, "columns": {}}
        with reader:
            for batch in reader:
                builder = ShrinkBuilder(reader.schema, shrink, decimals)
                builder.measure(batch)
                builder.add(batch)
                del batch
                frame = builder.finish()
                last = builder.report()
                _attach(frame, last)
                before += last["bytes_before"]
                after += last["bytes_after"]
                rows += len(frame)
                yield frame
        _log({**last, "bytes_before": before, "bytes_after": after}, f"{rows:,} rows in batches")

    return frames()
