"""Every sink, the guard, errors and parameters, on every engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import queryref as qr
from queryref.errors import (
    BackendError,
    ParameterError,
    QueryTimeout,
    ReadOnlyError,
    ResultTooLarge,
    SQLParseError,
    UnknownColumnError,
)

from .qr_conformance import ORDERS, Engine, gap, same


def _open(engine: Engine) -> qr.QueryRef:
    return engine.orders.filter(qr.col("status") == "open").select("id", "amount")


def _want() -> pd.DataFrame:
    return ORDERS[ORDERS.status == "open"][["id", "amount"]]


def test_to_pandas_arrow_polars(engine: Engine):
    q = _open(engine)
    same(q.to_pandas(), _want())
    table = q.to_arrow()
    assert isinstance(table, pa.Table)
    same(table.to_pandas(), _want())
    same(q.to_polars().to_pandas(), _want())


def test_batches(engine: Engine):
    q = _open(engine)
    reader = q.to_arrow_batches(batch_rows=16)
    batches = list(reader)
    assert all(b.num_rows <= 16 for b in batches)
    same(pa.Table.from_batches(batches).to_pandas(), _want())
    frames = list(q.to_pandas_batches(batch_rows=25))
    assert all(len(f) <= 25 for f in frames)
    same(pd.concat(frames), _want())


def test_to_parquet_and_back(engine: Engine, tmp_path):
    out = tmp_path / "open.parquet"
    written = _open(engine).to_parquet(str(out))
    assert written.rows == len(_want())
    same(pq.read_table(out).to_pandas(), _want())


@gap("snowflake", raises=BackendError, reason="fakesnow does not parse EXPLAIN USING TEXT")
def test_count_preview_schema_explain(engine: Engine):
    q = _open(engine)
    assert q.count() == len(_want())
    assert len(q.preview(5)) == 5
    assert [c.lower() for c in q.columns] == ["id", "amount"]
    assert pa.types.is_integer(q.schema.field(0).type)
    assert q.explain().strip()


def test_decimals_are_numbers(engine: Engine):
    q = engine.con.sql("SELECT CAST(12.25 AS DECIMAL(10, 2)) AS d, AVG(qty) AS a FROM orders")
    df = q.to_pandas()
    assert df.dtypes.iloc[0] == "float64" and df.dtypes.iloc[1] == "float64"
    assert df.iloc[0, 0] == 12.25
    assert abs(df.iloc[0, 1] - ORDERS.qty.mean()) < 1e-3


def test_create_table_from_query(engine: Engine):
    name = "open_orders"
    made = engine.con.create_table(name, _open(engine), replace=True)
    same(made.to_pandas(), _want())
    engine.con.execute(f"DROP TABLE {name}")


def test_guard_max_rows_and_bytes(engine: Engine):
    with pytest.raises(ResultTooLarge):
        engine.orders.to_pandas(max_rows=10)
    with pytest.raises(ResultTooLarge) as info:
        engine.nums.join(engine.nums.rename(n="m"), how="cross").to_arrow(
            max_bytes="256KB", batch_rows=2048)
    assert info.value.stage in ("estimate", "fetch")
    # the connection is still usable after the query was stopped
    assert engine.con.sql("SELECT 1 AS x").to_pandas().iloc[0, 0] == 1
    assert engine.orders.count() == len(ORDERS)


def test_timeout(engine: Engine):
    n = engine.nums
    slow = n.join(n.rename(n="m"), how="cross").join(n.rename(n="k"), how="cross").agg(
        s=(qr.col("n") * qr.col("m") + qr.col("k")).sum())
    if engine.name == "spark":
        # Spark stops a task only where the task checks for it: a cross join's ignores the kill
        # for ~30 s (and the next query waits for its slot); a scan of range() stops at once
        slow = engine.con.sql("SELECT SUM(id % 7) AS s FROM range(1000000000000)")
    if engine.name == "snowflake":
        # fakesnow runs a query to its end (no abort): one that takes about a second, so the
        # deadline passes while it runs and the result is refused as QueryTimeout
        slow = n.join(n.rename(n="m"), how="cross").join(
            n.filter(qr.col("n") <= 400).rename(n="k"), how="cross").agg(
            s=(qr.col("n") * qr.col("m") + qr.col("k")).sum())
    with pytest.raises(QueryTimeout):
        slow.to_pandas(timeout=0.5)
    assert engine.con.sql("SELECT 2 AS x").to_pandas().iloc[0, 0] == 2


def test_errors(engine: Engine):
    with pytest.raises(UnknownColumnError):
        engine.orders.select("no_such_column")
    with pytest.raises(SQLParseError):
        engine.con.sql("SELECT FROM WHERE (")
    with pytest.raises(ReadOnlyError):
        engine.con.sql("DROP TABLE orders")
    with pytest.raises(BackendError):
        engine.con.table("no_such_table").to_pandas()
    with pytest.raises(ParameterError):
        engine.con.sql("SELECT {{ missing }} AS x").to_pandas()


def test_parameters(engine: Engine):
    q = engine.con.sql(
        "SELECT id FROM {{ src }} WHERE amount > {{ lo }} AND status IN {{ states }}",
        src=engine.orders, lo=100, states=["open", "held"])
    o = ORDERS
    same(q.to_pandas(), o[(o.amount > 100) & o.status.isin(["open", "held"])][["id"]])
    quoted = engine.con.sql("SELECT {{ s }} AS s", s="it's 100%")
    assert quoted.to_pandas().iloc[0, 0] == "it's 100%"


def test_password_never_shows(engine: Engine):
    text = repr(engine.con) + engine.con.describe()
    assert "postgres:postgres@" not in text and ":@" not in text


@gap("duckdb", "snowflake", "spark", raises=BackendError,
     reason="only server engines have a connection URL whose password can leak (Spark "
            "Connect's client retries a closed port for minutes: its token is checked in "
            "tests/backends/test_spark.py)")
def test_bad_password_is_redacted(engine: Engine):
    from .qr_conformance import MYSQL_URL, PG_URL

    url = {"postgres": PG_URL, "mariadb": MYSQL_URL}.get(engine.name)
    if url is None:
        raise BackendError("no URL")
    head, tail = url.split("://", 1)
    user, rest = tail.split("@", 1)
    closed_port = rest.replace("3306", "1").replace("5432", "1")
    bad = f"{head}://{user.split(':')[0]}:Sup3rS3cret@{closed_port}"
    with pytest.raises(BackendError) as info:
        qr.connect(bad).sql("SELECT 1 AS x").to_pandas()
    assert "Sup3rS3cret" not in str(info.value)
    assert "Sup3rS3cret" not in repr(info.value.__cause__)


def _stamps(values: Any) -> list[Any]:
    return [None if pd.isna(v) else pd.Timestamp(v) for v in values]


_KEPT = pd.DataFrame({
    "k": [1, 2, 3],
    "ts": [dt.datetime(2024, 2, 29, 23, 59, 59, 123456), None,
           dt.datetime(1969, 12, 31, 0, 0, 0, 1)],
    "txt": ["x" * 100_000, "é東" * 40_000, None],
    "bin": [b"\x00\xff" * 40_000, None, b""],
})


def test_create_table_keeps_what_it_is_given(engine: Engine):
    """A DataFrame goes in and comes back the same: microseconds, text and bytes past 64 KB
    (MySQL's TEXT/BLOB limit), non-ASCII text, NULLs (MariaDB's defaults kept whole seconds
    and refused long values; Snowflake could not upload bytes)."""
    got = engine.con.create_table("qr_keeps", _KEPT, replace=True).order_by("k").to_pandas()
    got.columns = [c.lower() for c in got.columns]
    stamps = [0, 2] if engine.name == "snowflake" else [0, 1, 2]  # (see the NULL test below)
    assert [_stamps(got["ts"])[i] for i in stamps] == [_stamps(_KEPT["ts"])[i] for i in stamps]
    assert [None if v is None or v is pd.NA else v for v in got["txt"]] == _KEPT["txt"].tolist()
    assert [None if v is None or v is pd.NA else bytes(v) for v in got["bin"]] == \
        _KEPT["bin"].tolist()


@gap("snowflake", raises=AssertionError,
     reason="fakesnow returns a NULL TIMESTAMP_NTZ as 1970-01-01 (its own connector's "
            "fetchall too); real Snowflake returns NULL")
def test_a_null_timestamp_comes_back_null(engine: Engine):
    q = engine.con.create_table("qr_null_ts", _KEPT[["k", "ts"]], replace=True)
    got = q.filter(qr.col("k") == 2).to_pandas()
    assert pd.isna(got.iloc[0, 1])
