"""Window functions of ``Expr`` on every engine, against Python on the same rows.

Partitions hold ties, negative numbers, zeros, NULL values and NULL ordering keys, a partition
of one row, and a NaN where the engine has NaN (not on MariaDB). Running aggregates count row
by row in a unique order; ``first_value``/``last_value`` look at the whole partition (NULL keys
last, ties broken by the value); frames are ``rows=(start, end)``. Each test computes many
window functions in one query.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ParameterError

from .qr_conformance import NAN_ENGINES, Engine, uploaded_with_nan

col = qr.col
V, T = col("v"), col("t")

# (p, t, v): id is the row's position, unique; t has ties and NULLs
ROWS: list[tuple[Any, ...]] = [
    ("a", 3, 5.0), ("a", 1, -2.0), ("a", 2, 5.0), ("a", None, 9.0), ("a", 2, None),
    ("a", 5, 0.0), ("a", 4, -2.0), ("a", 1, 7.0), ("a", 6, 5.0), ("a", None, -1.5),
    ("a", 6, None), ("a", 7, 3.25),
    ("b", 1, 2.0), ("b", 2, None), ("b", 3, 1.0), ("b", 4, 4.0), ("b", 4, 6.0), ("b", 5, -3.0),
    ("one", 1, 8.0),
    ("nul", 1, None), ("nul", None, None),
]
NAN_ROW = 15  # v is NaN where the engine has NaN (NULL on MariaDB)
FRAME = pd.DataFrame(ROWS, columns=["p", "t", "v"]).astype({"t": "Int64", "v": "float64"})
FRAME.insert(0, "id", np.arange(len(FRAME), dtype="int64"))
FRAME.loc[NAN_ROW, "v"] = None

def table(engine: Engine) -> qr.QueryRef:
    """The rows on ``engine`` (uploaded once), with the NaN put in where the engine has NaN."""
    return uploaded_with_nan(engine, "conf_win_values", FRAME, NAN_ROW, "v")


Row = dict[str, Any]


def rows_of(engine: Engine) -> list[Row]:
    out = []
    for i, (p, t, v) in enumerate(ROWS):
        if i == NAN_ROW:
            v = math.nan if engine.name in NAN_ENGINES else None
        out.append({"id": i, "p": p, "t": t, "v": v})
    return out


def fetch(q: qr.QueryRef, **exprs: qr.Expr) -> pd.DataFrame:
    got = q.select("id", "p", "v", **exprs).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    return got.sort_values("id").reset_index(drop=True)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _same(g: Any, w: Any) -> bool:
    if _missing(w) or _missing(g):
        return _missing(w) and _missing(g)
    return math.isclose(float(g), float(w), rel_tol=1e-9, abs_tol=1e-9)


def check(got: pd.DataFrame, want: dict[str, list[Any]]) -> None:
    bad = [f"{name}[id={i}]: got {g!r}, want {w!r}"
           for name, values in want.items()
           for i, (g, w) in enumerate(zip(got[name].tolist(), values, strict=True))
           if not _same(g, w)]
    assert not bad, "\n".join(bad[:30])


# -- references: SQL's rules (NULLs skipped; NaN a number above every other) -----------------
def nkey(v: Any, desc: bool = False) -> tuple[Any, ...]:
    """A sort key: NULLs last either way, NaN above every number."""
    if v is None:
        return (1, 0, 0)
    big = 1 if isinstance(v, float) and math.isnan(v) else 0
    val = 0 if big else v
    return (0, -big, -val) if desc else (0, big, val)


def present(vs: list[Any]) -> list[float]:
    return [v for v in vs if v is not None]


def sql_sum(vs: list[Any]) -> float | None:
    xs = present(vs)
    return float(sum(xs)) if xs else None


def sql_max(vs: list[Any]) -> float | None:
    xs = present(vs)
    return max(xs, key=nkey) if xs else None


def sql_min(vs: list[Any]) -> float | None:
    xs = present(vs)
    return min(xs, key=nkey) if xs else None


def sql_mean(vs: list[Any]) -> float | None:
    xs = present(vs)
    return float(sum(xs)) / len(xs) if xs else None


def per_partition(rows: list[Row], order: Callable[[Row], Any],
                  fn: Callable[[list[Row], int], Any]) -> list[Any]:
    """``fn(partition rows in order, position)`` for every row, in id order."""
    out: dict[int, Any] = {}
    for p in {r["p"] for r in rows}:
        part = sorted((r for r in rows if r["p"] == p), key=order)
        for i, r in enumerate(part):
            out[r["id"]] = fn(part, i)
    return [out[i] for i in range(len(rows))]


def framed(start: int | None, end: int | None, fn: Callable[[list[Any]], Any]
           ) -> Callable[[list[Row], int], Any]:
    def at(part: list[Row], i: int) -> Any:
        lo = 0 if start is None else max(0, i + start)
        hi = len(part) if end is None else min(len(part), i + end + 1)
        return fn([r["v"] for r in part[lo:hi]])
    return at


def by_id(r: Row) -> Any:
    return r["id"]


# -- tests ------------------------------------------------------------------------------------
def test_running_aggregates_and_frames(engine: Engine):
    got = fetch(
        table(engine),
        cs=V.cum_sum(order_by="id", partition_by="p"), cmin=V.cum_min(order_by="id",
                                                                      partition_by="p"),
        cmax=V.cum_max(order_by="id", partition_by=["p"]),
        cc=V.cum_count(order_by="id", partition_by="p"),
        cs_all=V.cum_sum(order_by=qr.desc("id")),
        mov=V.mean().over(partition_by="p", order_by="id", rows=(-2, 0)),
        around=V.sum().over(partition_by="p", order_by="id", rows=(-1, 1)),
        upto=V.sum().over(partition_by="p", order_by="id", rows=(None, 0)),
        rest=V.count().over(partition_by="p", order_by="id", rows=(0, None)),
        ahead=V.max().over(partition_by="p", order_by="id", rows=(1, 2)),
        share=(V.sum() / qr.count()).over("p"), pos=(V > 0).any().over("p"),
    )
    rows = rows_of(engine)

    def running(fn: Callable[[list[Any]], Any], keep_nulls: bool = True
                ) -> Callable[[list[Row], int], Any]:
        def at(part: list[Row], i: int) -> Any:
            if keep_nulls and part[i]["v"] is None:
                return None
            return fn([r["v"] for r in part[: i + 1]])
        return at

    every = [{**r, "p": ""} for r in rows]
    whole = framed(None, None, lambda vs: vs)
    want = {
        "cs": per_partition(rows, by_id, running(sql_sum)),
        "cmin": per_partition(rows, by_id, running(sql_min)),
        "cmax": per_partition(rows, by_id, running(sql_max)),
        "cc": per_partition(rows, by_id, running(lambda vs: len(present(vs)), False)),
        "cs_all": per_partition(every, lambda r: -r["id"], running(sql_sum)),
        "mov": per_partition(rows, by_id, framed(-2, 0, sql_mean)),
        "around": per_partition(rows, by_id, framed(-1, 1, sql_sum)),
        "upto": per_partition(rows, by_id, framed(None, 0, sql_sum)),
        "rest": per_partition(rows, by_id, framed(0, None, lambda vs: len(present(vs)))),
        "ahead": per_partition(rows, by_id, framed(1, 2, sql_max)),
        "share": per_partition(rows, by_id, lambda part, i: (
            None if sql_sum(whole(part, i)) is None else sql_sum(whole(part, i)) / len(part))),
        "pos": per_partition(rows, by_id, lambda part, i: any(
            math.isnan(v) or v > 0 for v in present(whole(part, i)))),
    }
    check(got, want)


def test_ranks_and_buckets(engine: Engine):
    got = fetch(
        table(engine),
        pr=qr.percent_rank().over(partition_by="p", order_by="v"),
        prd=qr.percent_rank().over(partition_by="p", order_by=qr.desc("v")),
        nt=qr.ntile(3).over(partition_by="p", order_by="v"),
        vpr=V.percent_rank(partition_by="p"), vprd=V.percent_rank("p", descending=True),
        vnt=V.ntile(2, partition_by="p"), vall=V.percent_rank(),
    )
    rows = rows_of(engine)

    def percent(desc: bool, skip_nulls: bool) -> Callable[[list[Row], int], Any]:
        def at(part: list[Row], i: int) -> Any:
            v = part[i]["v"]
            if skip_nulls and v is None:
                return None
            pool = [r["v"] for r in part if not (skip_nulls and r["v"] is None)]
            before = sum(nkey(u, desc) < nkey(v, desc) for u in pool)
            return 0.0 if len(pool) == 1 else before / (len(pool) - 1)
        return at

    def buckets(part: list[Row], n: int) -> list[int]:
        size, extra = divmod(len(part), n)
        out = []
        for b in range(n):
            out += [b + 1] * (size + (1 if b < extra else 0))
        return out

    def value_ntile(part: list[Row], i: int) -> Any:
        if part[i]["v"] is None:
            return None
        values = [r for r in part if r["v"] is not None]
        return buckets(values, 2)[values.index(part[i])]

    def by_v(desc: bool = False) -> Callable[[Row], Any]:
        return lambda r: (nkey(r["v"], desc), r["id"])

    every = [{**r, "p": ""} for r in rows]
    want = {
        "pr": per_partition(rows, by_v(), percent(False, False)),
        "prd": per_partition(rows, by_v(True), percent(True, False)),
        "vpr": per_partition(rows, by_v(), percent(False, True)),
        "vprd": per_partition(rows, by_v(True), percent(True, True)),
        "vall": per_partition(every, by_v(), percent(False, True)),
    }
    check(got, want)
    # tied values may fall in two buckets: compare (partition, value, bucket) as multisets
    nt = per_partition(rows, by_v(), lambda part, i: buckets(part, 3)[i])
    vnt = per_partition(rows, by_v(), value_ntile)

    def multiset(buckets_: list[Any]) -> Counter[tuple[Any, ...]]:
        return Counter((r["p"], nkey(r["v"]), None if _missing(b) else int(b))
                       for r, b in zip(rows, buckets_, strict=True))

    assert multiset(got.nt.tolist()) == multiset(nt)
    assert multiset(got.vnt.tolist()) == multiset(vnt)


def test_first_and_last_value(engine: Engine):
    got = fetch(
        table(engine),
        fv=V.first_value().over(partition_by="p", order_by="t"),
        lv=V.last_value().over(partition_by="p", order_by="t"),
        fvd=V.first_value().over(partition_by="p", order_by=qr.desc("t")),
        lvd=V.last_value().over(partition_by="p", order_by=qr.desc(T)),
        fv_all=V.first_value().over(order_by=["t", "id"]),
        fw=V.first_value().over(partition_by="p", order_by="id", rows=(-1, 1)),
        lw=V.last_value().over(partition_by="p", order_by="id", rows=(-1, 1)),
        lw_run=V.last_value().over(partition_by="p", order_by="id", rows=(None, 0)),
    )
    rows = rows_of(engine)

    def pick(desc: bool, last: bool, keys: tuple[str, ...] = ("t",)
             ) -> Callable[[list[Row], int], Any]:
        # the first row by (keys, then v in the last key's direction), NULLs last; last =
        # first with every direction reversed (NULLs still last)
        def at(part: list[Row], i: int) -> Any:
            d = desc != last
            return min(part, key=lambda r: (*(nkey(r[k], d) for k in keys), nkey(r["v"], d)))["v"]
        return at

    every = [{**r, "p": ""} for r in rows]
    want = {
        "fv": per_partition(rows, by_id, pick(False, False)),
        "lv": per_partition(rows, by_id, pick(False, True)),
        "fvd": per_partition(rows, by_id, pick(True, False)),
        "lvd": per_partition(rows, by_id, pick(True, True)),
        "fv_all": per_partition(every, by_id, pick(False, False, ("t", "id"))),
        "fw": per_partition(rows, by_id, framed(-1, 1, lambda vs: vs[0])),
        "lw": per_partition(rows, by_id, framed(-1, 1, lambda vs: vs[-1])),
        "lw_run": per_partition(rows, by_id, lambda part, i: part[i]["v"]),
    }
    check(got, want)


def test_mean_over_a_window_of_integers_and_decimals(engine: Engine):
    """MariaDB's windowed AVG of integers was a decimal cut to 4 decimals (1.6667 for 1, 2, 2)
    and Spark's AVG of a decimal(p, s) is a decimal(p+4, s+4): pandas' doubles everywhere."""
    frame = pd.DataFrame({"id": np.arange(7, dtype="int64"), "p": list("aaaabbb"),
                          "n": pd.array([1, 2, 2, None, 1, 1, 2], dtype="Int64"),
                          "v": [0.1, 0.2, 0.2, 1.0, 0.3, 0.1, 0.1]})
    t = engine.con.create_table("conf_win_int_mean", frame).mutate(
        d=col("v").cast("DECIMAL(10,1)"))
    n, d = col("n"), col("d")
    got = fetch(t, m=n.mean().over("p"), r=n.mean().over("p", order_by="id", rows=(-2, 0)),
                dm=d.mean().over("p"), dr=d.mean().over("p", order_by="id", rows=(0, 1)))
    x = frame.assign(n=frame["n"].astype("float64"))
    parts = x.groupby("p")
    check(got, {
        "m": parts["n"].transform("mean").tolist(),
        "r": parts["n"].transform(lambda s: s.rolling(3, min_periods=1).mean()).tolist(),
        "dm": parts["v"].transform("mean").tolist(),
        "dr": parts["v"].transform(lambda s: s[::-1].rolling(2, min_periods=1).mean()[::-1])
        .tolist(),
    })


def test_wrong_window_use_is_a_parameter_error():
    calls: list[Callable[[], Any]] = [
        lambda: V.cum_sum(), lambda: V.cum_count(partition_by="p"),
        lambda: V.cum_sum(order_by="id").over("p"), lambda: V.sum().over("p").over("p"),
        lambda: V.sum().over(rows=(-1, 0)), lambda: V.sum().over(order_by="id", rows=(1, -1)),
        lambda: V.sum().over(order_by="id", rows=(-1,)),
        lambda: V.sum().over(order_by="id", rows=(-1.5, 0)),
        lambda: qr.row_number().over(order_by="id", rows=(-1, 0)),
        lambda: V.first_value().over(partition_by="p"), lambda: V.over("p"),
        lambda: V.string_agg(",").over("p"), lambda: qr.ntile(0), lambda: V.ntile(2.5),
    ]
    for call in calls:
        with pytest.raises(ParameterError):
            call()
