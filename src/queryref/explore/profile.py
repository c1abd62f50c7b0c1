"""``describe()``: pandas' ``describe(include="all")`` computed in the warehouse.

One aggregate query gives every column's count, nulls, distinct values, mean, standard
deviation (sample, as pandas), minimum, quartiles (linear interpolation, as pandas:
``PERCENTILE_CONT``, exact) and maximum; the most frequent value of each text or boolean
column (``top``/``freq``) is one small grouped query per such column. On MySQL/MariaDB, where
``PERCENTILE_CONT`` is a window function only, the quartiles are one more query per numeric
column (still exact). Only the figures cross: a few rows whatever the table's size.

>>> import queryref as qr
>>> con = qr.connect()
>>> q = con.sql("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'b'), (NULL, NULL)) t(n, s)")
>>> describe(q)
          n    s
count   3.0    3
unique  NaN    2
top     NaN    b
freq    NaN    2
mean    2.0  NaN
std     1.0  NaN
min     1.0  NaN
25%     1.5  NaN
50%     2.0  NaN
75%     2.5  NaN
max     3.0  NaN
nulls   1.0    1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from queryref._expr import Expr, col, count, desc
from queryref.errors import ParameterError
from queryref.explore.counts import exact_key, exact_text

if TYPE_CHECKING:
    import pandas as pd

    from queryref._queryref import QueryRef

#: the rows of the profile, in pandas' order, then the null counts
ROWS = ("count", "unique", "top", "freq", "mean", "std", "min", "25%", "50%", "75%", "max",
        "nulls")
QUARTILES = {"25%": 0.25, "50%": 0.5, "75%": 0.75}
_NAN = float("nan")
#: what one statistics row may take (the results are a handful of values)
STATS_BUDGET = 16 * 2**20


def kind(t: pa.DataType) -> str:
    """``"number"``, ``"time"`` (dates, timestamps: count and range), ``"category"`` (text and
    booleans: distinct values and the most frequent one) or ``"other"`` (counts only)."""
    if pa.types.is_boolean(t):
        return "category"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_temporal(t):
        return "time"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "category"
    return "other"


def _double(name: str, nan: bool = False) -> exp.Expr:
    """``name`` as a DOUBLE; with ``nan``, NULL where it is NaN (pandas leaves NaN out of
    every statistic, as a missing value)."""
    value = exp.cast(col(name).node, exp.DataType.Type.DOUBLE)
    if not nan:
        return value
    return exp.Case(ifs=[exp.If(this=col(name).is_nan().node, true=exp.Null())], default=value)


def _quantile(name: str, p: float, nulls_first: bool = False, dialect: str = "",
              nan: bool = False) -> exp.Expr:
    """``PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY name)``: linear interpolation, as pandas
    (NULLs are left out; ``nulls_first`` as the engine's default, so none is spelled out).
    Spark: ``percentile(x, p)``, its exact one (sqlglot writes PERCENTILE_CONT as Spark's
    approximate ``PERCENTILE_APPROX``)."""
    if dialect == "spark":
        return exp.Anonymous(this="percentile",
                             expressions=[_double(name, nan), exp.Literal.number(p)])
    order = exp.Order(expressions=[exp.Ordered(this=_double(name, nan),
                                               nulls_first=nulls_first)])
    return exp.WithinGroup(this=exp.PercentileCont(this=exp.Literal.number(p)),
                           expression=order)


#: engines whose exact quantile takes a list of fractions: the three quartiles of a column
#: from one sort instead of three (PostgreSQL SF1 lineitem: 24 s -> 12 s for 8 columns)
_LISTED = {"postgres": "percentile_cont", "duckdb": "quantile_cont", "spark": "percentile"}


def _quartiles_listed(name: str, dialect: str, nan: bool = False) -> exp.Expr:
    """The three quartiles of ``name`` as one list, exact and linear, as pandas."""
    fractions = exp.Array(expressions=[exp.Literal.number(p) for p in QUARTILES.values()])
    if dialect == "postgres":
        order = exp.Order(expressions=[exp.Ordered(this=_double(name, nan), nulls_first=False)])
        return exp.WithinGroup(this=exp.Anonymous(this="percentile_cont",
                                                  expressions=[fractions]),
                               expression=order)
    return exp.Anonymous(this=_LISTED[dialect], expressions=[_double(name, nan), fractions])


def describe(q: QueryRef) -> pd.DataFrame:
    """Statistics of every column of ``q``, laid out as ``pandas.DataFrame.describe(
    include="all")`` with a last row of null counts; computed in the warehouse.

    NaN is left out of a float column's figures as pandas leaves it out (``count`` and every
    statistic); ``nulls`` counts the NULLs only, so ``count + nulls`` is the number of rows
    less the NaNs."""
    import pandas as pd

    schema = q.schema
    names = list(schema.names)
    if len(set(names)) != len(names):
        raise ParameterError("describe() needs distinct column names: rename the duplicates")
    kinds = {f.name: kind(f.type) for f in schema}
    windowed = q.dialect == "mysql"  # PERCENTILE_CONT is a window function there
    # float columns may hold NaN (not MySQL/MariaDB): left out, as pandas does
    floats = {f.name for f in schema if pa.types.is_floating(f.type)} if not windowed else set()
    aggs: dict[str, Expr] = {"_qr_rows": count()}
    for i, name in enumerate(names):
        k = kinds[name]
        nan = name in floats
        aggs[f"_qr_{i}_count"] = col(name).count()
        if nan:
            aggs[f"_qr_{i}_numbers"] = Expr(_double(name, nan)).count()
        if k == "category":
            exact = exact_text(q, name)  # (MariaDB: 'a' and 'A' are two values, as in pandas)
            aggs[f"_qr_{i}_unique"] = (exact if exact is not None else col(name)).count_distinct()
        if k == "number":
            value = Expr(_double(name, nan))
            aggs[f"_qr_{i}_mean"] = value.mean()
            aggs[f"_qr_{i}_std"] = Expr(exp.StddevSamp(this=_double(name, nan)))
            if q.dialect in _LISTED:
                aggs[f"_qr_{i}_quartiles"] = Expr(_quartiles_listed(name, q.dialect, nan))
            elif not windowed:
                for label, p in QUARTILES.items():
                    aggs[f"_qr_{i}_{label[:-1]}"] = Expr(_quantile(name, p, dialect=q.dialect,
                                                                   nan=nan))
        if k in ("number", "time"):
            aggs[f"_qr_{i}_min"] = Expr(_double(name, nan)).min() if nan else col(name).min()
            aggs[f"_qr_{i}_max"] = Expr(_double(name, nan)).max() if nan else col(name).max()
    got = _one_row(q.agg(**aggs))
    rows = int(got["_qr_rows"] or 0)
    table: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        k = kinds[name]
        stats: dict[str, Any] = {}
        n = int(got[f"_qr_{i}_count"] or 0)
        stats["nulls"] = rows - n
        if name in floats:  # (NaN is no number to count)
            n = int(got[f"_qr_{i}_numbers"] or 0)
        stats["count"] = n
        if k == "category":
            stats["unique"] = int(got[f"_qr_{i}_unique"] or 0)
            stats["top"], stats["freq"] = _top(q, name) if n else (_NAN, _NAN)  # (as pandas)
        if k == "number":
            stats["mean"] = _float(got[f"_qr_{i}_mean"])
            stats["std"] = _float(got[f"_qr_{i}_std"])
            if q.dialect in _LISTED:
                listed = got[f"_qr_{i}_quartiles"]
                listed = [None] * len(QUARTILES) if listed is None else list(listed)
                quartiles = dict(zip(QUARTILES, listed, strict=True))
            elif windowed:
                quartiles = _quartiles_windowed(q, name)
            else:
                quartiles = {label: got[f"_qr_{i}_{label[:-1]}"] for label in QUARTILES}
            stats.update({label: _float(v) for label, v in quartiles.items()})
        if k in ("number", "time"):
            stats["min"] = got[f"_qr_{i}_min"]
            stats["max"] = got[f"_qr_{i}_max"]
            if k == "number":
                stats["min"], stats["max"] = _float(stats["min"]), _float(stats["max"])
        table[name] = stats
    used = [r for r in ROWS if any(r in s for s in table.values())]
    out = pd.DataFrame({name: [table[name].get(r, float("nan")) for r in used]
                        for name in names}, index=used, dtype=object)
    return _tidy(out)


def _one_row(q: QueryRef) -> dict[str, Any]:
    """The one row of a statistics query, by lower-cased name (Snowflake upper-cases them)."""
    t = q.to_arrow(max_bytes=STATS_BUDGET, preflight=None)
    return {name.lower(): t.column(i)[0].as_py() if t.num_rows else None
            for i, name in enumerate(t.column_names)}


def _top(q: QueryRef, name: str) -> tuple[Any, int]:
    """The most frequent non-null value of ``name`` and how often it occurs (ties: the
    smallest value)."""
    freq = "_qr_freq" if name.lower() != "_qr_freq" else "_qr_freq2"  # (not the column's)
    values = q.filter(col(name).not_null())
    exact = exact_text(q, name)
    grouped = values.group_by(name).agg(**{freq: count()}) if exact is None else (
        values.group_by(**{exact_key(name): exact})
        .agg(**{name: col(name).min(), freq: count()})
        .select(name, freq))
    counted = grouped.order_by(desc(freq), name).limit(1)
    t = counted.to_arrow(max_bytes=STATS_BUDGET, preflight=None)
    if not t.num_rows:
        return None, 0
    return t.column(0)[0].as_py(), int(t.column(1)[0].as_py())


def _quartiles_windowed(q: QueryRef, name: str) -> dict[str, Any]:
    """The quartiles of ``name`` through ``PERCENTILE_CONT ... OVER ()`` (MySQL/MariaDB)."""
    values = q.filter(col(name).not_null())
    windows = {f"_qr_{label[:-1]}": Expr(exp.Window(this=_quantile(name, p, True)))
               for label, p in QUARTILES.items()}
    got = _one_row(values.select(**windows).limit(1))
    return {label: got[f"_qr_{label[:-1]}"] for label in QUARTILES}


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as numbers where a column holds nothing else (so the frame prints as pandas')."""
    import pandas as pd

    for name in frame.columns:
        values = frame[name]
        present = [v for v in values if not (isinstance(v, float) and v != v)]
        if present and all(isinstance(v, int | float) and not isinstance(v, bool)
                           for v in present):
            frame[name] = pd.to_numeric(values)
    return frame
