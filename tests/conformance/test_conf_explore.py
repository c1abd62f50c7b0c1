"""Exploring without loading (describe, value_counts, histogram) on every engine, against
pandas and numpy on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import BackendError, ParameterError
from queryref.explore import Plot, describe, histogram, value_counts

from .qr_conformance import NAN_ENGINES, NUMS, ORDERS, Engine, gap, uploaded_with_nan

col = qr.col


def close(a: object, b: object) -> bool:
    if isinstance(a, float | int | np.number) and isinstance(b, float | int | np.number):
        if math.isnan(float(a)) and math.isnan(float(b)):
            return True
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def test_describe_matches_pandas(engine: Engine):
    got = describe(engine.orders)
    want = ORDERS.describe(include="all")
    assert [c.lower() for c in got.columns] == [c.lower() for c in ORDERS.columns]
    got.columns = list(ORDERS.columns)
    for name in ("id", "amount", "qty", "CustomerId"):  # numbers: every statistic
        for stat in ("count", "mean", "std", "min", "25%", "50%", "75%", "max"):
            assert close(got.loc[stat, name], want.loc[stat, name]), (name, stat,
                                                                      got.loc[stat, name])
        assert got.loc["nulls", name] == ORDERS[name].isna().sum()
    for name in ("region", "status"):  # text: count, unique, top, freq
        counts = ORDERS[name].value_counts()
        assert got.loc["count", name] == ORDERS[name].notna().sum()
        assert got.loc["unique", name] == ORDERS[name].nunique()
        assert got.loc["freq", name] == counts.iloc[0]
        assert got.loc["top", name] in set(counts[counts == counts.iloc[0]].index)
        assert got.loc["nulls", name] == ORDERS[name].isna().sum()
    dates = pd.to_datetime(ORDERS["odate"])
    assert pd.Timestamp(got.loc["min", "odate"]) == dates.min()
    assert pd.Timestamp(got.loc["max", "odate"]) == dates.max()


def test_value_counts_matches_pandas(engine: Engine):
    want = ORDERS["qty"].value_counts()
    want = want.sort_index().sort_values(ascending=False, kind="stable")  # ties by value
    got = value_counts(engine.orders, "qty", n=5)
    assert list(got.columns) == ["qty", "count"]
    assert [int(v) for v in got["qty"][:5]] == [int(v) for v in want.index[:5]]
    assert list(got["count"][:5]) == list(want.iloc[:5])
    assert got["qty"].iloc[5] == "(other)" and got["count"].iloc[5] == want.iloc[5:].sum()
    # fewer values than n: no remainder; NULLs left out unless asked
    regions = value_counts(engine.orders, "region", n=10)
    assert len(regions) == ORDERS["region"].nunique()
    assert regions["count"].sum() == ORDERS["region"].notna().sum()
    with_nulls = value_counts(engine.orders, "region", n=10, dropna=False)
    assert with_nulls["count"].sum() == len(ORDERS)


@pytest.mark.parametrize("bins", [1, 7, 30])
def test_histogram_matches_numpy(engine: Engine, bins: int):
    for name in ("amount", "qty"):
        values = ORDERS[name].dropna().to_numpy(dtype="float64")
        counts, edges = np.histogram(values, bins=bins, range=(values.min(), values.max()))
        got = histogram(engine.orders, name, bins=bins)
        assert list(got.columns) == ["bin_start", "bin_end", "count"]
        assert got["count"].tolist() == counts.tolist(), name
        assert np.array_equal(got["bin_start"].to_numpy(), edges[:-1])
        assert np.array_equal(got["bin_end"].to_numpy(), edges[1:])
    # values on the edges land where numpy puts them (1 .. 2000 in 8 bins: 250 each)
    exact = histogram(engine.nums, "n", bins=8)
    assert exact["count"].tolist() == np.histogram(NUMS["n"], bins=8)[0].tolist()


def test_explore_refuses_bad_input(engine: Engine):
    with pytest.raises(ParameterError):
        histogram(engine.orders, "region")
    with pytest.raises(ParameterError):
        histogram(engine.orders, "qty", bins=0)
    with pytest.raises(ParameterError):
        value_counts(engine.orders, "qty", n=0)
    with pytest.raises(qr.errors.QueryRefError):
        value_counts(engine.orders, "no_such_column")
    empty = histogram(engine.orders.filter(col("qty") < 0), "qty")
    assert len(empty) == 0


# -- charts: the data each chart draws is what pandas computes on the same rows -------------
def chart_data(chart) -> pd.DataFrame:
    if isinstance(chart.data, pd.DataFrame):
        return chart.data
    return chart.layer[0].data  # (a layered chart may keep its data on the layers)


def test_chart_data_matches_pandas(engine: Engine):
    plot = engine.orders.plot if hasattr(engine.orders, "plot") else Plot(engine.orders)
    bars = plot.bar("status")
    want = ORDERS.groupby("status").size()
    got = chart_data(bars).set_index("status")["count"]
    assert got.sort_index().tolist() == want.sort_index().tolist()
    meta = bars.usermeta["queryref"]
    assert meta["rows"] == len(want) and meta["sql"] and "GROUP BY" in meta["sql"][0].upper()

    line = chart_data(plot.line("qty", "amount", agg="sum"))
    want_line = ORDERS.groupby("qty")["amount"].sum(min_count=1)
    assert line["qty"].tolist() == want_line.index.tolist()
    assert np.allclose(line["sum_amount"].astype(float), want_line.to_numpy(), equal_nan=True)

    box = chart_data(plot.box("amount", by="status")).sort_values("status")
    for _, r in box.iterrows():
        values = ORDERS.loc[ORDERS["status"] == r["status"], "amount"].dropna()
        assert close(r["q1"], values.quantile(0.25)) and close(r["median"], values.median())
        assert close(r["q3"], values.quantile(0.75))
        assert close(r["min"], values.min()) and close(r["max"], values.max())

    hist = chart_data(plot.hist("qty", bins=5))
    counts, _ = np.histogram(ORDERS["qty"], bins=5)
    assert hist["count"].tolist() == counts.tolist()

    points = chart_data(plot.scatter("id", "qty", max_points=50))
    assert 0 < len(points) <= 50
    real = set(zip(ORDERS["id"], ORDERS["qty"], strict=True))
    assert {(int(a), int(b)) for a, b in zip(points["id"], points["qty"], strict=True)} <= real


def test_grid_pages_sort_and_filter_in_the_warehouse(engine: Engine):
    from queryref.explore import Grid

    g = Grid(engine.orders, page_size=25)
    assert g.total == len(ORDERS)
    names = [c["name"].lower() for c in g.columns]
    ids = names.index("id")
    want = ORDERS.sort_values("id")["id"].tolist()
    seen = []
    for page in range(len(ORDERS) // 25 + 1):  # every row once, in order (id is a tie-breaker)
        g.page = page
        seen += [r[ids] for r in g.rows]
    assert seen == want
    g.page = 0
    g.sort = [[g.columns[names.index("amount")]["name"], "desc"]]
    top = ORDERS.sort_values(["amount", "id"], ascending=[False, True], na_position="last")
    got = [r[names.index("amount")] for r in g.rows]
    assert got[:10] == top["amount"].head(10).tolist()  # NULLs: wherever the engine puts them
    g.filter_column, g.filter_value = g.columns[names.index("qty")]["name"], "7"
    assert g.total == int((ORDERS["qty"] == 7).sum())
    assert {r[names.index("qty")] for r in g.rows} == {7}
    assert g.page_info.startswith("rows 1-")


@gap("spark", raises=BackendError,
     reason="Spark's session catalog has no information_schema (SHOW TABLES is a command)")
def test_tables_and_columns_from_the_catalog(engine: Engine):
    from queryref.explore.catalog import columns, tables

    listed = tables(engine.con)
    assert list(listed.columns) == ["schema", "name", "kind"]
    names = {n.lower() for n in listed["name"]}
    assert {"orders", "customers", "nums"} <= names
    cols = columns(engine.con, "orders")
    assert [n.lower() for n in cols["name"]] == [c.lower() for c in ORDERS.columns]
    assert cols["nullable"].dtype == bool
    schema = listed["schema"].iloc[0]
    assert [n.lower() for n in columns(engine.con, f"{schema}.orders")["name"]] == \
        [c.lower() for c in ORDERS.columns]
    assert {n.lower() for n in tables(engine.con, schema)["name"]} == names
    with pytest.raises(ParameterError, match="no table"):
        columns(engine.con, "no_such_table")


# -- regressions: inputs found by an adversarial pass ----------------------------------------
LABELS = pd.DataFrame({
    "id": np.arange(10, dtype="int64"),
    "s": ["(other)", "(other)", "b", "b", "a", None, None, "c", "d", "d"],
    "x": [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, np.nan, 5.0, 6.0],
})
NAN_ID = 4  # x is NaN there on engines with NaN (MariaDB, which has none: 3.0 as uploaded)


def labels_table(engine: Engine) -> qr.QueryRef:
    return uploaded_with_nan(engine, "explore_labels", LABELS, NAN_ID, "x")


def test_value_counts_ties_nulls_and_the_other_label(engine: Engine):
    t = labels_table(engine)
    # a shown value "(other)" and the remainder's row were both labelled "(other)"
    got = value_counts(t, "s", n=3)
    assert got["s"].tolist() == ["(other)", "b", "d", "((other))"]
    assert got["count"].tolist() == [2, 2, 2, 2]
    # with NULL counted, a tie with NULL went first or last as the engine sorts NULLs
    # (MariaDB, Spark: first), so which values made the top n differed between engines
    with_nulls = value_counts(t, "s", n=4, dropna=False)
    assert with_nulls["s"].tolist()[:3] == ["(other)", "b", "d"]
    assert with_nulls["s"].iloc[3] is None or with_nulls["s"].isna().iloc[3]
    assert with_nulls["count"].tolist() == [2, 2, 2, 2, 2]
    assert with_nulls["s"].iloc[4] == "((other))"


def test_histogram_refuses_nan_and_keeps_numpy_on_a_constant(engine: Engine):
    t = labels_table(engine)
    if engine.name in NAN_ENGINES:  # numpy raises on a range with NaN; this was a bare ValueError
        with pytest.raises(ParameterError, match="finite range"):
            histogram(t, "x", bins=3)
        t = t.filter(~col("x").is_nan())
    nan = LABELS.id == NAN_ID if engine.name in NAN_ENGINES else LABELS.id < 0
    values = LABELS.loc[~nan, "x"].dropna().to_numpy()
    counts, edges = np.histogram(values, bins=3, range=(values.min(), values.max()))
    got = histogram(t, "x", bins=3)
    assert got["count"].tolist() == counts.tolist()
    assert np.array_equal(got["bin_start"].to_numpy(), edges[:-1])
    one = histogram(engine.nums.filter(col("n") == 7), "n", bins=4)  # numpy: (6.5, 7.5)
    counts, edges = np.histogram([7.0], bins=4)
    assert one["count"].tolist() == counts.tolist()
    assert np.array_equal(one["bin_end"].to_numpy(), edges[1:])


def test_describe_leaves_nan_out_as_pandas(engine: Engine):
    # NaN was a value: count took it in, mean/std/max were NaN, 75% interpolated with it
    t = labels_table(engine).select("x")
    got = describe(t)
    got.columns = ["x"]
    frame = LABELS[["x"]].copy()
    if engine.name in NAN_ENGINES:
        frame.loc[LABELS.id == NAN_ID, "x"] = np.nan
    want = frame.describe()
    for stat in ("count", "mean", "std", "min", "25%", "50%", "75%", "max"):
        assert close(got.loc[stat, "x"], want.loc[stat, "x"]), (stat, got.loc[stat, "x"])
    assert got.loc["nulls", "x"] == LABELS["x"].isna().sum()  # (NULLs only, not NaN)


def test_columns_named_like_the_helpers_own(engine: Engine):
    # a column named _qr_n (value_counts' tally) or _qr_freq (describe's top/freq) made
    # "duplicate output column names" instead of counting it
    q = engine.orders.select(_qr_n=col("status"), _qr_freq=col("region"))
    got = value_counts(q, "_qr_n")
    want = ORDERS["status"].value_counts()
    assert dict(zip(got.iloc[:, 0], got["count"], strict=True)) == want.to_dict()
    profile = describe(q)
    assert profile.iloc[3].tolist() == [want.iloc[0], ORDERS["region"].value_counts().iloc[0]]


def test_describe_of_no_rows_is_pandas(engine: Engine):
    # top/freq of a text column with no values were None where pandas shows NaN
    got = describe(engine.orders.filter(col("qty") < 0))
    got.columns = list(ORDERS.columns)
    want = ORDERS.iloc[:0].describe(include="all")
    for name in ("region", "status", "qty"):
        for stat in want.index:
            assert close(got.loc[stat, name], want.loc[stat, name]), (name, stat)
        assert got.loc["nulls", name] == 0


def test_text_values_told_apart_as_pandas_does(engine: Engine):
    # MariaDB's default collation made 'a', 'A' and 'a ' one value (and 'e', 'é'): its
    # value_counts said a: 4, describe's unique 2; pandas: five values
    q = engine.orders.filter(col("id") < 6).select(
        s=qr.when(col("id") == 1, "A").when(col("id") == 2, "é").when(col("id") == 3, "e")
        .when(col("id") == 4, "a ").otherwise("a"))
    s = pd.Series(["a", "A", "é", "e", "a ", "a"])
    got = value_counts(q, "s")
    want = s.value_counts().sort_index().sort_values(ascending=False, kind="stable")
    assert got.iloc[:, 0].tolist() == want.index.tolist()
    assert got["count"].tolist() == want.tolist()
    profile = describe(q)
    assert profile.iloc[:, 0].loc["unique"] == 5 and profile.iloc[:, 0].loc["top"] == "a"


def _edges_frame() -> pd.DataFrame:
    """Columns whose values sit on, and one float64 step either side of, numpy's edges."""
    rng = np.random.default_rng(17)
    on_edges = [-500.0, 500.0]
    for bins, every in ((7, 1), (30, 1), (997, 1), (10_000, 37)):  # (a sample of 10,000:
        # the upload to fakesnow's server takes ~1 s a thousand rows)
        for e in np.histogram_bin_edges([-500.0, 500.0], bins=bins)[::every]:
            on_edges += [e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)]
    b = np.clip(np.concatenate([on_edges, rng.uniform(-500, 500, 2000)]), -500.0, 500.0)
    n = len(b)
    return pd.DataFrame({
        "id": np.arange(n),
        "a": np.arange(n, dtype="float64") % 2001,  # integers 0 .. 2000
        "b": b,
        "c": 1e16 + 2.0 * (np.arange(n) % 21),  # edges a few float64 steps apart
        "d": rng.lognormal(0, 6, n) * rng.choice([-1.0, 1.0], n),  # many magnitudes
    })


EDGES = _edges_frame()


@pytest.mark.parametrize("bins", [7, 30, 997, 10_000])
def test_histogram_puts_values_on_and_beside_the_edges_where_numpy_does(engine: Engine,
                                                                       bins: int):
    """Bug: the bin was a CASE with a branch per edge, so 10,000 bins made a 500 KB
    expression that Spark's planner ran out of memory on; the arithmetic that replaced it
    must still put every value where numpy does, to the last bit."""
    t = uploaded_with_nan(engine, "explore_edges", EDGES, -1, "b")
    for name in ("a", "b", "c", "d"):
        values = EDGES[name].to_numpy()
        try:
            counts, edges = np.histogram(values, bins=bins, range=(values.min(), values.max()))
        except ValueError:  # (c: edges numpy cannot tell apart; a bare ValueError before)
            with pytest.raises(ParameterError, match="fewer bins"):
                histogram(t, name, bins=bins)
            continue
        got = histogram(t, name, bins=bins)
        assert np.array_equal(got["bin_start"].to_numpy(), edges[:-1]), name
        assert got["count"].tolist() == counts.tolist(), name
