"""Exploring without loading (describe, value_counts, histogram) on every engine, against
pandas and numpy on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ParameterError
from queryref.explore import describe, histogram, value_counts

from .qr_conformance import NUMS, ORDERS, Engine

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
