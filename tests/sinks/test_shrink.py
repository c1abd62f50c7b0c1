"""shrink_dtypes=True: smallest dtypes from warehouse statistics, same values as without."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ResultTooLarge
from queryref.sinks import shrink as _shrink
from queryref.sinks.run import to_arrow

EDGE_COLUMNS = """(id BIGINT, i8 BIGINT, i16 BIGINT, i32 BIGINT, i64 BIGINT, "WithNulls" BIGINT,
  all_null BIGINT, f_exact DOUBLE, f_inexact DOUBLE, "Region" VARCHAR, uniq VARCHAR,
  all_null_text VARCHAR, flag BOOLEAN)"""
EDGE_ROWS = """
  (1, -128, -129, -2147483648, 2147483648, 1, NULL, 0.5, 0.1, 'a', 'x1', NULL, TRUE),
  (2, 127, 32767, 2147483647, -5, NULL, NULL, -1.25, 0.2, 'b', 'x2', NULL, FALSE),
  (3, 0, 0, 0, 0, -5, NULL, NULL, NULL, 'a', 'x3', NULL, NULL),
  (4, 5, 1, 7, 1, 3, NULL, 3.0, 1e300, 'a', 'x4', NULL, TRUE),
  (5, -1, -1, -1, -1, 2, NULL, 1099511627776.0, -2.5, NULL, 'x5', NULL, TRUE),
  (6, 3, 2, 2, 2, 1, NULL, 0.0, 3.0, 'b', 'x6', NULL, FALSE)
"""


def values(s: pd.Series) -> list[object]:
    """Python values with None for every kind of missing (NaN, NA, None)."""
    return [None if (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))
            else v for v in s.astype(object).tolist()]


def assert_same_values(shrunk: pd.DataFrame, plain: pd.DataFrame) -> None:
    assert list(shrunk.columns) == list(plain.columns)
    assert len(shrunk) == len(plain)
    for name in plain.columns:
        assert values(shrunk[name]) == values(plain[name]), name


@pytest.fixture
def edge(con: qr.Connection) -> qr.QueryRef:
    con.execute(f"CREATE TABLE edge {EDGE_COLUMNS}")
    con.execute(f"INSERT INTO edge VALUES {EDGE_ROWS}")
    return con.table("edge")


def test_dtypes_at_int_boundaries_nulls_and_text(edge: qr.QueryRef) -> None:
    df = edge.to_pandas(shrink_dtypes=True)
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    assert dtypes == {
        "id": "int8", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
        "WithNulls": "Int8", "all_null": "Int8", "f_exact": "float32",
        "f_inexact": "float64", "Region": "category", "uniq": "str",
        "all_null_text": "str", "flag": "boolean",
    }
    assert_same_values(df, edge.to_pandas())
    assert list(df["Region"].cat.categories) == ["a", "b"]


def test_the_engine_casts_integers(edge: qr.QueryRef) -> None:
    shrink = _shrink.plan(edge._relation())
    sql = shrink.query.sql()
    assert "CAST(i8 AS TINYINT)" in sql and "CAST(i16 AS SMALLINT)" in sql
    assert "CAST(f_exact AS REAL)" in sql
    table = to_arrow(shrink.query, max_bytes=None, max_rows=None, batch_rows=10_000)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["i8"] == "int8" and types["i32"] == "int32" and types["f_exact"] == "float"


def test_against_pandas_on_random_data(con: qr.Connection) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame({
        "small": rng.integers(-100, 100, n),
        "medium": rng.integers(-30000, 30000, n),
        "Big": rng.integers(-(2**40), 2**40, n),
        "half": rng.integers(0, 4, n).astype("float64") / 2,
        "noise": rng.normal(size=n),
        "cat": rng.choice(["red", "green", "Blue", "ünï"], n),
    })
    df.loc[rng.random(n) < 0.1, "cat"] = None
    df.loc[rng.random(n) < 0.1, "half"] = np.nan
    con.create_table("rnd", df)
    out = con.table("rnd").to_pandas(shrink_dtypes=True)
    assert [str(t) for t in out.dtypes] == ["int8", "int16", "int64", "float32", "float64",
                                           "category"]
    for name in df.columns:
        assert values(out[name]) == values(df[name]), name
    expected = df["cat"].astype("category")
    assert list(out["cat"].cat.categories) == list(expected.cat.categories)
    assert (out["cat"].cat.codes.to_numpy() == expected.cat.codes.to_numpy()).all()


def test_empty_result(edge: qr.QueryRef) -> None:
    empty = edge.filter(qr.col("id") > 100)
    df = empty.to_pandas(shrink_dtypes=True)
    assert len(df) == 0
    assert list(df.columns) == edge.columns
    assert_same_values(df, empty.to_pandas())


def test_batches_share_dtypes_and_codes(con: qr.Connection) -> None:
    q = con.sql("SELECT range AS i, 'v' || (range % 5) AS k, range % 7 - 3 AS j "
                "FROM range(5000)")
    frames = list(q.to_pandas_batches(batch_rows=1000, shrink_dtypes=True))
    assert len(frames) >= 2
    for f in frames:
        assert [str(t) for t in f.dtypes] == ["int16", "category", "int8"]
        assert list(f["k"].cat.categories) == [f"v{i}" for i in range(5)]
        assert f.attrs["queryref"]["shrink"]["columns"]["k"]["to"] == "category"
    joined = pd.concat(frames, ignore_index=True)
    assert_same_values(joined, q.to_pandas())


def test_shrunk_size_counts_against_the_budget(con: qr.Connection) -> None:
    q = con.sql("SELECT range % 100 AS v, 'abc' || (range % 3) AS k FROM range(200000)")
    with pytest.raises(ResultTooLarge):
        q.to_pandas(max_bytes="1MB")
    df = q.to_pandas(max_bytes="1MB", shrink_dtypes=True)
    assert len(df) == 200_000
    report = df.attrs["queryref"]["shrink"]
    assert report["bytes_after"] < 1_000_000 < report["bytes_before"]
    with pytest.raises(ResultTooLarge):  # still guarded when even the shrunk result is too big
        q.to_pandas(max_bytes="100KB", shrink_dtypes=True)


def test_report_in_attrs_and_log(edge: qr.QueryRef, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="queryref"):
        df = edge.to_pandas(shrink_dtypes=True)
    report = df.attrs["queryref"]["shrink"]
    assert report["bytes_after"] < report["bytes_before"]
    assert report["columns"]["i16"] == {"from": "int64", "to": "int16",
                                        "bytes_before": 48, "bytes_after": 12}
    assert report["columns"]["WithNulls"]["to"] == "Int8"
    assert report["columns"]["f_exact"]["from"] == "float64"
    assert any("shrink_dtypes" in r.getMessage() and "saved" in r.getMessage()
               for r in caplog.records if r.name == "queryref")


def test_max_rows_decimals_and_composition(con: qr.Connection) -> None:
    q = con.sql("SELECT range AS id, CAST(range AS DECIMAL(10, 2)) / 4 AS d FROM range(50)")
    df = q.filter(qr.col("id") >= 10).to_pandas(shrink_dtypes=True, max_rows=100)
    assert str(df["d"].dtype) == "float32"  # quarters are exact in float32
    assert_same_values(df, q.filter(qr.col("id") >= 10).to_pandas())
    with pytest.raises(ResultTooLarge):
        q.to_pandas(shrink_dtypes=True, max_rows=10)


def test_float_checks_stay_off_where_float_is_8_bytes() -> None:
    assert "snowflake" not in _shrink._FLOAT32_DIALECTS
    assert "tsql" not in _shrink._FLOAT32_DIALECTS
