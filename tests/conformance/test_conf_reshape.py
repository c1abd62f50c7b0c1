"""The reshaping verbs (``fill_null``, ``drop_nulls``, ``pivot``, ``unpivot``, ``unnest``) on
every engine, against pandas (``fillna``, ``dropna``, ``pivot_table``, ``melt``, ``explode``)
on the same rows: NULLs, empty strings, non-ASCII text and names, mixed-case names, negative
numbers, ties, a leap day."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlglot import exp

import queryref as qr
from queryref.errors import ParameterError, UnknownColumnError, UnsupportedError
from queryref.sql.text import ident, literal

from .qr_conformance import NAN_ENGINES, Engine, gap, same, uploaded_with_nan


def make_rows(n: int = 60, seed: int = 11) -> pd.DataFrame:
    """Rows to reshape: a group key, a pivot key, numbers and text with NULLs."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "grp": rng.integers(0, 4, n).astype("int64"),
        "Région": rng.choice(["Zürich", "north", "São Paulo", "", "北京"], n).astype(object),
        "Kind": rng.choice(["a", "B", "é", "Zß", "x y"], n).astype(object),
        "Amount": rng.integers(-20, 20, n).astype("float64") / 4,  # ties, negatives
        "qty": rng.integers(-3, 9, n).astype("int64"),
        "note": rng.choice(["ok", "", "größer", "late"], n).astype(object),
        "day": [dt.date(2024, 2, 29) + dt.timedelta(days=int(d)) for d in rng.integers(0, 40, n)],
    })
    df.loc[rng.random(n) < 0.15, "Région"] = None
    df.loc[rng.random(n) < 0.15, "Kind"] = None
    df.loc[rng.random(n) < 0.2, "Amount"] = np.nan
    df.loc[rng.random(n) < 0.2, "note"] = None
    df["day"] = df["day"].astype(object)
    df.loc[rng.random(n) < 0.15, "day"] = None
    return df


ROWS = make_rows()
LISTS = pd.DataFrame({
    "id": np.arange(7, dtype="int64"),
    "Tags": [["a", "b"], [], None, ["é", None, "a"], ["Zß"], ["b", "b", ""], ["北京", "a"]],
    "w": [1.5, np.nan, 2.0, -1.0, 0.0, -1.0, 3.0],
})

_TABLES: dict[tuple[int, str], qr.QueryRef] = {}


def rows_table(engine: Engine) -> qr.QueryRef:
    """``ROWS`` uploaded once per engine."""
    key = (id(engine.con), "rows")
    if key not in _TABLES:
        _TABLES[key] = engine.con.create_table("reshape_rows", ROWS)
    return _TABLES[key]


def lists_table(engine: Engine) -> qr.QueryRef:
    """``LISTS`` uploaded once per engine (Snowflake: built with ARRAY_CONSTRUCT, which the
    upload cannot write, cast to ARRAY, without which fakesnow cannot describe a column of
    one type of list; MariaDB: the lists as text, since it has no list type)."""
    key = (id(engine.con), "lists")
    if key in _TABLES:
        return _TABLES[key]
    if engine.name == "snowflake":
        selects = [exp.select(
            exp.alias_(literal(int(r.id)), ident("id")),
            exp.alias_(exp.cast(exp.Null() if r.Tags is None else exp.Anonymous(
                this="ARRAY_CONSTRUCT", expressions=[literal(v) for v in r.Tags]),
                exp.DataType.build("ARRAY", dialect="snowflake")), ident("Tags")),
            exp.alias_(exp.cast(literal(None if np.isnan(r.w) else float(r.w)), "DOUBLE"),
                       ident("w")))
            for r in LISTS.itertuples()]
        union = functools.reduce(lambda a, b: exp.union(a, b, distinct=False), selects)
        table = engine.con.create_table("reshape_lists", engine.con.sql(union.sql("snowflake")))
    elif engine.name == "mariadb":
        as_text = LISTS.assign(Tags=LISTS.Tags.map(lambda v: None if v is None else repr(v)))
        table = engine.con.create_table("reshape_lists", as_text)
    else:
        table = engine.con.create_table("reshape_lists", LISTS)
    _TABLES[key] = table
    return table


def named(q: qr.QueryRef, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its columns named as the engine names them (Snowflake: ``qty`` is QTY)."""
    by_lower = {c.lower(): c for c in q.columns}
    return df.rename(columns={c: by_lower.get(c.lower(), c) for c in df.columns})


# -- nulls ----------------------------------------------------------------------------------
def test_fill_null_scalar_then_mapping(engine: Engine):
    t = rows_table(engine)
    leap = dt.date(2024, 2, 29)
    q = t.fill_null(0).fill_null({"note": "–", "day": leap, "Région": "?"})
    want = ROWS.copy()
    for c in ("id", "grp", "Amount", "qty"):  # a number fills the number columns only
        want[c] = want[c].fillna(0)
    want = want.fillna({"note": "–", "day": leap, "Région": "?"})
    assert want["Kind"].isna().any()  # untouched: text is no number
    same(q.to_pandas(), want)


def test_fill_null_refuses_values_of_another_type(engine: Engine):
    t = rows_table(engine)
    with pytest.raises(ParameterError, match="without changing its type"):
        t.fill_null({"qty": 2.5})
    with pytest.raises(ParameterError, match="without changing its type"):
        t.fill_null({"Amount": "n/a"})
    with pytest.raises(ParameterError, match="fits no column"):
        t.fill_null(dt.time(12, 0))
    with pytest.raises(UnknownColumnError):
        t.fill_null({"nope": 1})


def test_fill_null_with_an_expression(engine: Engine):
    t = rows_table(engine)
    q = t.fill_null({"Amount": qr.col("qty") * 2}).select("id", "Amount")
    want = ROWS.assign(Amount=ROWS.Amount.fillna(ROWS.qty * 2))[["id", "Amount"]]
    same(q.to_pandas(), want)


def test_drop_nulls(engine: Engine):
    t = rows_table(engine)
    every = t.drop_nulls().select("id").to_pandas()
    same(every, ROWS.dropna()[["id"]])
    some = t.drop_nulls(["Amount", "Région"]).select("id").to_pandas()
    same(some, ROWS.dropna(subset=["Amount", "Région"])[["id"]])
    every_of = t.drop_nulls(["Amount", "note"], how="all").select("id").to_pandas()
    same(every_of, ROWS.dropna(subset=["Amount", "note"], how="all")[["id"]])


# -- pivot ----------------------------------------------------------------------------------
_PANDAS_AGG: dict[str, Any] = {
    "sum": lambda s: s.sum(min_count=1),  # SQL's SUM of only NULLs is NULL (pandas: 0)
    "mean": "mean", "min": "min", "max": "max", "count": "count", "len": len,
}


def pandas_pivot(df: pd.DataFrame, on: str, values: list[str], agg: str,
                 index: list[str]) -> pd.DataFrame:
    """pandas' pivot_table as ``pivot`` defines it: rows with a NULL ``on`` left out, NULL
    index keys kept, count/len 0 where a group has no rows, columns ``<values>_<label>``
    for several values."""
    sub = df[df[on].notna()]
    wide = sub.pivot_table(index=index, columns=on, values=values, aggfunc=_PANDAS_AGG[agg],
                           dropna=False)
    if agg in ("count", "len"):
        wide = wide.fillna(0)
    keys = sorted(sub[on].unique())
    if len(values) == 1:
        wide = wide[values[0]] if isinstance(wide.columns, pd.MultiIndex) else wide
        wide = wide.reindex(columns=keys)
        wide.columns = [str(k) for k in keys]
    else:
        wide = wide.reindex(columns=pd.MultiIndex.from_product([values, keys]))
        wide.columns = [f"{v}_{k}" for v, k in wide.columns]
    return wide.reset_index()


def test_pivot_sum_two_values(engine: Engine):
    t = rows_table(engine)
    q = t.pivot("Kind", ["Amount", "qty"], index="Région")
    want = pandas_pivot(ROWS, "Kind", ["Amount", "qty"], "sum", ["Région"])
    same(q.to_pandas(), want)  # (names compared ignoring case: Snowflake's qty is QTY)


def test_pivot_every_agg(engine: Engine):
    t = rows_table(engine)
    aggs = ("mean", "min", "max", "count", "len")
    labels = [str(k) for k in sorted(ROWS.Kind.dropna().unique())]
    parts = [t.pivot("Kind", "qty", agg=a, index="grp").rename(
        {k: f"{a}_{k}" for k in labels}) for a in aggs]
    q = functools.reduce(lambda a, b: a.join(b, on="grp"), parts)
    frames = [pandas_pivot(ROWS, "Kind", ["qty"], a, ["grp"]).set_index("grp").add_prefix(f"{a}_")
              for a in aggs]
    want = pd.concat(frames, axis=1).reset_index()
    same(q.to_pandas(), want)


def test_pivot_default_index_and_no_index(engine: Engine):
    t = rows_table(engine).select("grp", "Kind", "Amount")
    by_default = t.pivot("Kind", "Amount", agg="max")  # index: every other column (grp)
    same(by_default.to_pandas(), pandas_pivot(ROWS, "Kind", ["Amount"], "max", ["grp"]))
    one_row = t.pivot("Kind", "Amount", agg="count", index=[]).to_pandas()
    sub = ROWS[ROWS.Kind.notna()]
    assert len(one_row) == 1
    for k, n in sub.groupby("Kind")["Amount"].count().items():
        assert one_row[k].iloc[0] == n


def test_pivot_past_the_cap_says_how_many(engine: Engine):
    t = rows_table(engine)
    n = ROWS["id"].nunique()
    with pytest.raises(ParameterError, match=rf"would make {n} columns.*max_columns=10"):
        t.pivot("id", "Amount", max_columns=10)


def test_pivot_refuses_names_it_cannot_make(engine: Engine):
    t = rows_table(engine)
    grp = t.col("grp")._name  # (the engine's spelling: GRP on Snowflake)
    clash = t.mutate(Kind=qr.when(qr.col("qty") > 3, grp).otherwise("other"))
    with pytest.raises(ParameterError, match=f"two columns named '{grp}'"):
        clash.pivot("Kind", "Amount", index="grp")
    with pytest.raises(ParameterError, match="empty text"):
        t.pivot("note", "Amount", index="grp")
    with pytest.raises(UnknownColumnError):
        t.pivot("nope", "Amount")


# -- unpivot --------------------------------------------------------------------------------
def test_unpivot_is_melt(engine: Engine):
    t = rows_table(engine)
    q = t.unpivot(["Amount", "qty"], index=["id", "Région"])
    name = {c.lower(): c for c in t.columns}
    want = pd.melt(named(t, ROWS), id_vars=[name["id"], "Région"],
                   value_vars=["Amount", name["qty"]])
    same(q.to_pandas(), want)


def test_unpivot_keeps_order_and_composes(engine: Engine):
    t = rows_table(engine).select("id", "Amount", "qty").order_by(qr.desc("id"))
    q = t.unpivot(index="id", variable_name="Spalte", value_name="Wert")
    got = q.filter(qr.col("Wert") >= 0).to_pandas()
    melted = pd.melt(named(t, ROWS.sort_values("id", ascending=False)[["id", "Amount", "qty"]]),
                     id_vars=[t.columns[0]], var_name="Spalte", value_name="Wert")
    same(got, melted[melted.Wert >= 0], ordered=True)


def test_unpivot_refuses_mixed_types(engine: Engine):
    t = rows_table(engine)
    with pytest.raises(ParameterError, match="cast them to one type first"):
        t.unpivot(["Amount", "Région"], index="id")
    with pytest.raises(ParameterError, match="two columns named"):
        t.unpivot(["Amount"], index=["id", "qty"], value_name="qty")
    with pytest.raises(UnknownColumnError):
        t.unpivot(["nope"], index="id")


# -- unnest ---------------------------------------------------------------------------------
_NO_LISTS = "MariaDB has no list type"


@gap("mariadb", raises=UnsupportedError, reason=_NO_LISTS)
def test_unnest_is_explode(engine: Engine):
    t = lists_table(engine)
    q = t.order_by("w", "id").unnest("Tags", dtype="VARCHAR")
    want = LISTS.sort_values(["w", "id"], na_position="last").explode("Tags")
    same(q.to_pandas(), named(t, want), ordered=True)


@gap("mariadb", raises=UnsupportedError, reason=_NO_LISTS)
def test_unnest_without_empty_lists_then_count(engine: Engine):
    t = lists_table(engine)
    q = t.unnest("Tags", keep_empty=False, dtype="VARCHAR")
    counted = q.group_by("Tags").agg(n=qr.count()).to_pandas()
    kept = LISTS[LISTS.Tags.map(lambda v: v is not None and len(v) > 0)].explode("Tags")
    want = kept.groupby("Tags", dropna=False).size().rename("n").reset_index()
    same(counted, named(t, want))


@gap("mariadb", raises=UnsupportedError, reason=_NO_LISTS)
def test_unnest_refuses_what_is_no_list(engine: Engine):
    t = lists_table(engine)
    if engine.name != "snowflake":  # (Snowflake's arrays reach Arrow as text: not told apart)
        with pytest.raises(ParameterError, match="takes a list column"):
            t.unnest("w")
    with pytest.raises(UnknownColumnError):
        t.unnest("nope")


# -- regressions: inputs found by an adversarial pass ----------------------------------------
STAMPS = pd.DataFrame({
    "id": np.array([1, 1, 2, 2, 3], dtype="int64"),
    "stamp": [dt.datetime(2024, 2, 29, 12, 30, 0, 123456), dt.datetime(2024, 3, 1),
           dt.datetime(2024, 2, 29, 12, 30, 0, 123456), None, dt.datetime(2024, 3, 1)],
    "v": [1.0, 2.0, 4.0, 8.0, 16.0],
    "f": [np.nan, 0.5, np.nan, 1.5, 2.5],
})


def stamps_table(engine: Engine) -> qr.QueryRef:
    """``STAMPS`` uploaded once per engine."""
    key = (id(engine.con), "stamps")
    if key not in _TABLES:
        _TABLES[key] = engine.con.create_table("reshape_stamps", STAMPS)
    return _TABLES[key]


def test_pivot_on_timestamps_with_microseconds(engine: Engine):
    # MariaDB: the cell compared the column with CAST('...123456' AS DATETIME), which drops
    # the microseconds: the cell was NULL (pandas: 1.0) with no error
    t = stamps_table(engine)
    got = t.pivot("stamp", "v", index="id").to_pandas()
    want = pandas_pivot(STAMPS, "stamp", ["v"], "sum", ["id"])
    assert [c.lower() for c in got.columns][1:] == ["2024-02-29 12:30:00.123456",
                                                   "2024-03-01 00:00:00"]
    got.columns = list(want.columns)
    same(got, want)


@gap("mariadb", raises=UnsupportedError, reason="MariaDB has no NaN (CAST('NaN' AS DOUBLE) is 0)")
def test_fill_null_with_nan(engine: Engine):
    # MariaDB filled NULLs with 0.0 (its CAST('NaN' AS DOUBLE)) without a word
    t = stamps_table(engine)
    got = t.fill_null({"f": float("nan")}).order_by("v").to_arrow()
    assert got.column(2).to_pylist() == STAMPS.v.tolist()
    assert [bool(np.isnan(v)) for v in got.column(3).to_pylist()] == STAMPS.f.isna().tolist()


def test_unpivot_keeps_every_decimal_digit(engine: Engine):
    # PostgreSQL: CASE over NUMERIC(20, 1) and INTEGER is a NUMERIC of no precision, which
    # reached Arrow as a double: 12345678901234567.5 came back as 1.2345678901234568e16
    q = engine.con.sql("SELECT 1 AS id, CAST(12345678901234567.5 AS DECIMAL(20, 1)) AS a, "
                       "CAST(7 AS INTEGER) AS b")
    got = q.unpivot(["a", "b"], index="id").to_arrow()
    values = got.column(2).to_pylist()
    assert [str(v) for v in values] == ["12345678901234567.5", "7.0"], (got.schema, values)


KEYS = pd.DataFrame({"id": np.arange(6, dtype="int64"),
                     "k": [2.5, 1.0, 0.0, 2.5, 7.0, -0.0], "v": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]})


def test_pivot_on_floats_with_nan_sorts_nan_last(engine: Engine):
    # NaN compares false with everything, so Python's sort left the columns in the order the
    # engine sent the values (Spark: nan first, DuckDB: last); -0.0 and 0.0 are one value
    t = uploaded_with_nan(engine, "reshape_keys", KEYS, 4, "k")
    got = t.pivot("k", "v", index=[]).to_pandas()
    if engine.name in NAN_ENGINES:
        assert list(got.columns) == ["0", "1", "2.5", "nan"]
        assert got.iloc[0].tolist() == [36.0, 2.0, 9.0, 16.0]
    else:  # (MariaDB has no NaN: 7.0 as uploaded)
        assert list(got.columns) == ["0", "1", "2.5", "7"]
        assert got.iloc[0].tolist() == [36.0, 2.0, 9.0, 16.0]


def test_pivot_sum_and_mean_take_numbers_only(engine: Engine):
    # MariaDB summed text as 0.0 and dates as 20240101.0, fakesnow gave NULL, without a word
    t = rows_table(engine)
    for agg in ("sum", "mean"):
        with pytest.raises(ParameterError, match="needs number values"):
            t.pivot("Kind", "note", index="grp", agg=agg)
        with pytest.raises(ParameterError, match="needs number values"):
            t.pivot("Kind", ["qty", "day"], index="grp", agg=agg)
    got = t.pivot("Kind", "day", index="grp", agg="max").to_pandas()
    same(got, pandas_pivot(ROWS, "Kind", ["day"], "max", ["grp"]))


def test_pivot_mean_of_integers_is_not_cut_short(engine: Engine):
    # MariaDB's AVG of integers is a DECIMAL of 4 more digits (1.6667), Spark's of a decimal
    # likewise: pivot's mean averages doubles, as Expr.mean does
    frame = pd.DataFrame({"g": [1, 1, 1, 1], "k": ["a", "a", "a", "b"], "v": [1, 2, 2, 7]})
    t = engine.con.create_table("reshape_mean_ints", frame, replace=True)
    got = t.pivot("k", "v", index="g", agg="mean").to_pandas()
    assert got["a"].iloc[0] == pytest.approx(5 / 3, rel=1e-12) and got["b"].iloc[0] == 7


def test_fill_null_keeps_microseconds(engine: Engine):
    # MariaDB: COALESCE(stamp, CAST('...000007' AS DATETIME)) filled 2020-01-01 00:00:00
    fill = dt.datetime(2020, 1, 1, 0, 0, 0, 7)
    got = stamps_table(engine).fill_null({"stamp": fill}).select("v", "stamp").to_pandas()
    want = STAMPS.assign(stamp=STAMPS.stamp.fillna(fill))[["v", "stamp"]]
    got.columns = ["v", "stamp"]
    if got["stamp"].dt.tz is not None:  # (Spark's TIMESTAMP is in the session's zone, UTC)
        got["stamp"] = got["stamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    assert sorted(map(tuple, got.astype(str).to_numpy())) == \
        sorted(map(tuple, want.astype(str).to_numpy()))
