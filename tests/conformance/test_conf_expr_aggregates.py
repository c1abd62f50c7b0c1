"""Aggregates of ``Expr`` on every engine, against Python/numpy on the same rows.

Groups hold ties, negative numbers, zeros, NULLs, one value only (a sample standard deviation
of one value is NULL, as pandas' NaN), only NULLs, and a NaN where the engine has NaN (not on
MariaDB): NaN is a number, so sums and spreads with it are NaN and it sorts above every
number (as on every engine with NaN, and in Polars). Each test computes many aggregates in one
query; gaps are the documented ``UnsupportedError`` of an engine without the function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ParameterError, UnsupportedError

from .qr_conformance import NAN_ENGINES, Engine, gap, uploaded_with_nan

col = qr.col
X, S, B, K = col("x"), col("s"), col("b"), col("k")

# (g, k, x, s, b): k is unique in each group but for "ties" (and NULL once in "a")
ROWS: list[tuple[Any, ...]] = [
    ("a", 5, 3.0, "ærø", True), ("a", 1, -2.0, "", False), ("a", 3, 3.0, "b", None),
    ("a", None, 7.5, "x", True), ("a", 2, None, None, None), ("a", 9, 0.0, "東京", False),
    ("a", 4, -2.0, "c,d", True), ("a", 7, 11.0, "straße", True), ("a", 8, 3.0, "Ω", False),
    ("a", 6, 100.25, "z", True),
    ("b", 2, 1.0, "q", True), ("b", 1, 2.0, "r", True), ("b", 3, 4.0, "p", True),
    ("b", 4, -8.0, None, None),
    ("solo", 1, 42.0, "only", False),
    ("empty", 1, None, None, None), ("empty", 2, None, None, None),
    ("nan", 1, 1.0, "n1", True), ("nan", 2, 0.0, "n2", False), ("nan", 3, 3.0, "n3", True),
    ("ties", 1, 5.0, "t5", True), ("ties", 1, 2.0, "t2", False), ("ties", 2, 9.0, "t9", True),
    ("ties", 2, 4.0, "t4", True), ("ties", None, 1.0, "t1", False),
]
NAN_ROW = 18  # x is NaN where the engine has NaN, NULL elsewhere
FRAME = pd.DataFrame(ROWS, columns=["g", "k", "x", "s", "b"]).astype(
    {"k": "Int64", "x": "float64", "s": object, "b": object})
FRAME.insert(0, "id", np.arange(len(FRAME), dtype="int64"))
FRAME.loc[NAN_ROW, "x"] = None

def table(engine: Engine) -> qr.QueryRef:
    """The rows on ``engine`` (uploaded once), with the NaN put in where the engine has NaN."""
    return uploaded_with_nan(engine, "conf_agg_values", FRAME, NAN_ROW, "x")


def groups(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The rows of each group as the engine holds them (NaN or NULL on the NaN row)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i, (g, k, x, s, b) in enumerate(ROWS):
        if i == NAN_ROW:
            x = math.nan if engine.name in NAN_ENGINES else None
        out.setdefault(g, []).append({"k": k, "x": x, "s": s, "b": b})
    return out


def by_group(q: qr.QueryRef, keep: Callable[[str], bool] = lambda g: True,
             **aggs: qr.Expr) -> dict[str, dict[str, Any]]:
    """``aggs`` per group in one query: {group: {name: value}} (lower-case names)."""
    got = q.group_by("g").agg(**aggs).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    return {r["g"]: r for r in got.to_dict("records") if keep(r["g"])}


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def check(got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]]) -> None:
    assert sorted(got) == sorted(want)
    bad = []
    for g, values in want.items():
        for name, w in values.items():
            v = got[g][name]
            if _missing(w) or _missing(v):
                ok = _missing(w) and _missing(v)
            elif isinstance(w, bool):
                ok = bool(v) == w
            elif isinstance(w, str):
                ok = v == w
            else:
                ok = math.isclose(float(v), float(w), rel_tol=1e-9, abs_tol=1e-9)
            if not ok:
                bad.append(f"{g}.{name}: got {v!r}, want {w!r}")
    assert not bad, "\n".join(bad)


# -- references: SQL's rules (NULLs skipped; NaN a number that sorts above all) -------------------
def values(rows: list[dict[str, Any]]) -> list[float]:
    return [r["x"] for r in rows if r["x"] is not None]


def ordered(xs: list[float]) -> list[float]:
    return sorted(xs, key=lambda v: (math.isnan(v), v if not math.isnan(v) else 0))


def quantile(xs: list[float], q: float) -> float | None:
    """pandas' linear interpolation between the two nearest values."""
    if not xs:
        return None
    a = ordered(xs)
    pos = q * (len(a) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi:
        return a[lo]
    return a[lo] + (a[hi] - a[lo]) * (pos - lo)


def spread(xs: list[float], fn: Callable[..., float]) -> float | None:
    return None if len(xs) < 2 else float(fn(np.array(xs), ddof=1))


def first(rows: list[dict[str, Any]], desc: bool = False, field: str = "x") -> Any:
    """The first value that is not NULL by k (NULL keys last), ties by the value (in the same
    direction)."""
    rows = [r for r in rows if r[field] is not None]
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        k, v = r["k"], r[field]
        sign = -1 if desc else 1
        vkey = (0, "") if v is None else (1, v) if isinstance(v, str) else (1, sign * v)
        return (k is None, 0 if k is None else sign * k, v is None, vkey)
    return min(rows, key=key)[field] if rows else None


def joined(rows: list[dict[str, Any]], sep: str, desc: bool = False) -> str | None:
    """The texts by k (NULL keys last), ties by the text in k's direction (the tied texts
    here are ASCII, which every collation sorts alike)."""
    present = [r for r in rows if r["s"] is not None]
    ascending = sorted(present, key=lambda r: (r["k"] is None, r["k"] or 0, r["s"]))
    nulls = [r for r in ascending if r["k"] is None]
    keyed = ascending if not desc else (
        sorted((r for r in present if r["k"] is not None),
               key=lambda r: (r["k"], r["s"]), reverse=True)
        + sorted(nulls, key=lambda r: r["s"], reverse=True))
    return sep.join(r["s"] for r in keyed) if keyed else None


# -- tests ----------------------------------------------------------------------------------
def test_spread_booleans_and_text(engine: Engine):
    got = by_group(
        table(engine),
        std=X.std(), var=X.var(), any=B.any(), all=B.all(), pos=(X > 2).any(),
        joined=S.string_agg(",", order_by="k"), back=S.string_agg(" | ", order_by=qr.desc("k")),
        plain=col("g").string_agg("-"), n=X.count(),
    )
    want = {}
    for g, rows in groups(engine).items():
        xs = values(rows)
        bs = [r["b"] for r in rows if r["b"] is not None]
        want[g] = {
            "std": spread(xs, np.std), "var": spread(xs, np.var),
            "any": any(bs), "all": all(bs),
            # NaN > 2 holds on engines with NaN (it sorts above every number)
            "pos": any(math.isnan(v) or v > 2 for v in xs),
            "joined": joined(rows, ","), "back": joined(rows, " | ", desc=True),
            "plain": "-".join([g] * len(rows)), "n": len(xs),
        }
    check(got, want)


@gap("mariadb", raises=UnsupportedError,
     reason="MariaDB has PERCENTILE_CONT/MEDIAN only as window functions (see the next test)")
def test_median_and_quantiles(engine: Engine):
    qs = {"q0": 0.0, "q10": 0.1, "q25": 0.25, "q75": 0.75, "q90": 0.9, "q100": 1.0}
    got = by_group(table(engine), med=X.median(),
                   **{name: X.quantile(q) for name, q in qs.items()})
    want = {g: {"med": quantile(values(rows), 0.5),
                **{name: quantile(values(rows), q) for name, q in qs.items()}}
            for g, rows in groups(engine).items()}
    check(got, want)


@gap("postgres", raises=UnsupportedError,
     reason="PostgreSQL's PERCENTILE_CONT is an ordered-set aggregate with no window form")
def test_median_and_quantile_over_a_partition(engine: Engine):
    q = table(engine).mutate(med=X.median().over("g"), q30=X.quantile(0.3).over(partition_by="g"))
    got = q.select("g", "med", "q30").distinct().to_pandas()
    got.columns = [c.lower() for c in got.columns]
    want = {g: {"med": quantile(values(rows), 0.5), "q30": quantile(values(rows), 0.3)}
            for g, rows in groups(engine).items()}
    check({r["g"]: r for r in got.to_dict("records")}, want)


@gap("mariadb", raises=UnsupportedError, reason="MariaDB has no ordered first/last aggregate")
def test_first_and_last(engine: Engine):
    """One ordering key, unique in each group (NULL once: NULL keys sort last)."""
    got = by_group(table(engine), lambda g: g != "ties",
                   f=X.first(order_by="k"), l=X.last(order_by="k"),
                   fd=X.first(order_by=qr.desc("k")), ld=X.last(order_by=qr.desc(K)),
                   fs=S.first(order_by="k"), ls=S.last(order_by=K))
    want = {g: {"f": first(rows), "l": first(rows, desc=True), "fd": first(rows, desc=True),
                "ld": first(rows), "fs": first(rows, field="s"),
                "ls": first(rows, desc=True, field="s")}
            for g, rows in groups(engine).items() if g != "ties"}
    check(got, want)


@gap("mariadb", raises=UnsupportedError, reason="MariaDB has no ordered first/last aggregate")
def test_first_and_last_break_ties_by_the_value(engine: Engine):
    got = by_group(table(engine), lambda g: g == "ties",
                   f=X.first(order_by="k"), l=X.last(order_by="k"),
                   fd=X.first(order_by=qr.desc("k")), ld=X.last(order_by=qr.desc("k")))
    rows = groups(engine)["ties"]
    if engine.name == "snowflake":
        # Snowflake's MIN_BY/MAX_BY take any of the rows tied on the key (documented in
        # first()): the promise there is one of the tied values, not which one
        valued = [r for r in rows if r["x"] is not None and r["k"] is not None]
        low = {r["x"] for r in valued if r["k"] == min(q["k"] for q in valued)}
        high = {r["x"] for r in valued if r["k"] == max(q["k"] for q in valued)}
        cells = got["ties"]
        assert cells["f"] in low and cells["ld"] in low, (cells, low)
        assert cells["l"] in high and cells["fd"] in high, (cells, high)
        return
    # ties broken by the value in the last key's direction: first by k -> smallest of k=1;
    # last by k = first by k descending -> largest of k=2
    assert (first(rows), first(rows, desc=True)) == (2.0, 9.0)
    check(got, {"ties": {"f": 2.0, "l": 9.0, "fd": 9.0, "ld": 2.0}})


@gap("mariadb", raises=UnsupportedError, reason="MariaDB has no ordered first/last aggregate")
@gap("snowflake", raises=UnsupportedError,
     reason="Snowflake's MIN_BY/MAX_BY take one ordering key")
@gap("spark", raises=UnsupportedError,
     reason="Spark's MIN_BY/MAX_BY with a struct key need every key in one direction")
def test_first_and_last_with_keys_in_both_directions(engine: Engine):
    got = by_group(table(engine), f=X.first(order_by=[qr.desc("b"), "k"]),
                   l=X.last(order_by=[qr.desc("b"), "k"]))

    def pick(rows: list[dict[str, Any]], last: bool) -> Any:
        rows = [r for r in rows if r["x"] is not None]
        if not rows:
            return None
        # b descending then k ascending (both NULLs last); last() reverses both directions;
        # ties broken by x in the last key's direction (k's)
        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            b, k, x = r["b"], r["k"], r["x"]
            s = -1 if last else 1
            return (b is None, 0 if b is None else s * -int(b), k is None,
                    0 if k is None else s * k, x is None, 0 if x is None else s * x)
        return min(rows, key=key)["x"]

    want = {g: {"f": pick(rows, False), "l": pick(rows, True)}
            for g, rows in groups(engine).items()}
    check(got, want)


def test_whole_query_aggregates(engine: Engine):
    """``agg`` without groups: one row, over every row (NaN makes std NaN where it exists)."""
    got = table(engine).filter(col("g") != "nan").agg(
        sd=X.std(), any=B.any(), all=B.all(), n=X.count()).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    rows = [r for g, rs in groups(engine).items() if g != "nan" for r in rs]
    xs = values(rows)
    bs = [r["b"] for r in rows if r["b"] is not None]
    check({"all": got.iloc[0].to_dict()},
          {"all": {"sd": spread(xs, np.std), "any": any(bs), "all": all(bs), "n": len(xs)}})


def test_empty_input_any_all_and_wrong_arguments(engine: Engine):
    got = table(engine).filter(col("id") < 0).agg(any=B.any(), all=B.all(),
                                                   sd=X.std()).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    check({"": got.iloc[0].to_dict()}, {"": {"any": False, "all": True, "sd": None}})
    for call in (lambda: X.quantile(1.5), lambda: X.quantile("0.5"), lambda: X.first(None),
                 lambda: X.last([]), lambda: S.string_agg(1),
                 lambda: X.first(order_by="k").over("g")):
        with pytest.raises(ParameterError):
            call()


def test_mean_and_spread_of_integers_and_decimals_are_doubles(engine: Engine):
    """MariaDB averaged integers and decimals as a decimal cut to a few more digits (mean of
    1, 2, 2 was 1.666666666, 1.6667 over a window) and cut STDDEV_SAMP/VAR_SAMP to 4 more
    decimals (0.5774); Spark's AVG of a decimal(p, s) is a decimal(p+4, s+4) (0.16667):
    every engine now gives pandas' doubles."""
    frame = pd.DataFrame({"id": np.arange(6, dtype="int64"), "g": list("aaabbc"),
                          "n": pd.array([1, 2, 2, 1, 4, 7], dtype="Int64"),
                          "d": [0.1, 0.2, 0.2, 1.0, 2.5, 3.3]})
    t = engine.con.create_table("conf_agg_int_spread", frame).mutate(
        d=col("d").cast("DECIMAL(10,1)"))
    n, d = col("n"), col("d")
    got = by_group(t, m=n.mean(), v=n.var(), s=n.std(), dm=d.mean(), dv=d.var(), ds=d.std())
    want = {}
    for g, part in frame.groupby("g"):
        ns, ds = part["n"].astype("float64"), part["d"]
        want[g] = {"m": ns.mean(), "v": ns.var(), "s": ns.std(),
                   "dm": ds.mean(), "dv": ds.var(), "ds": ds.std()}
    check(got, want)
    win = t.mutate(w=n.mean().over("g"), r=n.mean().over(order_by="id", rows=(-1, 1)))
    out = win.select("id", "w", "r").to_pandas()
    out.columns = [c.lower() for c in out.columns]
    out = out.sort_values("id")
    ns = frame["n"].astype("float64")
    assert np.allclose(out["w"].astype(float), frame.groupby("g")["n"].transform(
        lambda s: s.astype("float64").mean()).astype(float), rtol=1e-12)
    moving = ns.rolling(3, center=True, min_periods=1).mean()
    assert np.allclose(out["r"].astype(float), moving, rtol=1e-12)


@gap("mariadb", raises=UnsupportedError,
     reason="MariaDB has PERCENTILE_CONT/MEDIAN only as window functions")
def test_quantile_of_decimals_is_not_cut_to_their_scale(engine: Engine):
    """DuckDB's (and fakesnow's) QUANTILE_CONT of a DECIMAL(10,1) kept its scale: the 1/3
    quantile of 0.1, 0.2, 0.4 was 0.1 (pandas: 0.1666...), the median of 0.1, 0.2 0.1."""
    frame = pd.DataFrame({"g": list("aaabb"), "v": [0.1, 0.2, 0.4, 0.1, 0.2],
                          "n": pd.array([1, 2, 4, 1, 2], dtype="Int64")})
    t = engine.con.create_table("conf_agg_dec_quantile", frame).mutate(
        d=col("v").cast("DECIMAL(10,1)"))
    got = by_group(t, third=col("d").quantile(1 / 3), m=col("d").median(),
                   r=col("d").quantile(0.123456789), qn=col("n").quantile(1 / 3))
    parts = frame.groupby("g")
    want = {str(g): {"third": part["v"].quantile(1 / 3), "m": part["v"].median(),
                     "r": part["v"].quantile(0.123456789),
                     "qn": part["n"].astype("float64").quantile(1 / 3)}
            for g, part in parts}
    check(got, want)


@gap("postgres", raises=UnsupportedError,
     reason="PostgreSQL's PERCENTILE_CONT is an ordered-set aggregate with no window form")
def test_quantile_of_decimals_over_a_partition(engine: Engine):
    """As above, over a window (MariaDB's PERCENTILE_CONT is rounded to 10 decimals: within
    the tolerance here, documented)."""
    frame = pd.DataFrame({"g": list("aaabb"), "v": [0.1, 0.2, 0.4, 0.1, 0.2]})
    t = engine.con.create_table("conf_agg_dec_quantile_w", frame).mutate(
        d=col("v").cast("DECIMAL(10,1)"))
    got = t.mutate(q=col("d").quantile(1 / 3).over("g"), m=col("d").median().over("g"))
    out = got.select("g", "q", "m").distinct().to_pandas()
    out.columns = [c.lower() for c in out.columns]
    want = {str(g): {"q": part["v"].quantile(1 / 3), "m": part["v"].median()}
            for g, part in frame.groupby("g")}
    check({r["g"]: r for r in out.to_dict("records")}, want)
