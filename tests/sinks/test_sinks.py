"""Sinks: every way rows reach Python, each checked against DuckDB's own answer."""

from __future__ import annotations

import os
import re

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import queryref as qr
from queryref.errors import ParameterError, QueryRefError, ResultTooLarge

TYPES_SQL = """
SELECT range AS i,
       (range * 1.25)::DECIMAL(12, 2) AS price,
       DATE '2024-01-01' + range::INT AS day,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (range) MINUTE AS ts,
       CASE WHEN range % 4 = 0 THEN NULL ELSE range % 2 = 0 END AS flag,
       CASE WHEN range % 5 = 0 THEN NULL ELSE 'v' || range END AS label
FROM range(1000)
"""


@pytest.fixture
def typed(con):
    return con.sql(TYPES_SQL)


def test_to_pandas_dtypes_have_no_python_objects(typed):
    df = typed.to_pandas()
    assert str(df.price.dtype) == "float64"
    assert str(df.day.dtype).startswith("datetime64")
    assert str(df.ts.dtype).startswith("datetime64")
    assert str(df.flag.dtype) == "boolean"
    assert df.dtypes.map(str).tolist().count("object") == 0
    ref = typed.connection.backend._con.sql(TYPES_SQL).df()
    assert (df.price - ref.price.astype(float)).abs().max() < 1e-9
    assert df.flag.isna().sum() == 250 and df.label.isna().sum() == 200


def test_to_pandas_decimal_modes(typed):
    import decimal

    obj = typed.select("price").to_pandas(decimals="object")
    assert isinstance(obj.price.iloc[1], decimal.Decimal)
    arrow = typed.select("price").to_pandas(decimals="arrow")
    assert "decimal" in str(arrow.price.dtype)
    with pytest.raises(ParameterError):
        typed.to_pandas(decimals="nope")


def test_to_arrow_and_polars(typed):
    table = typed.to_arrow()
    assert isinstance(table, pa.Table) and table.num_rows == 1000
    assert pa.types.is_decimal(table.schema.field("price").type)
    df = typed.to_polars()
    assert isinstance(df, pl.DataFrame) and df.height == 1000
    assert df["i"].sum() == sum(range(1000))


def test_to_arrow_batches_streams(con):
    q = con.sql("SELECT range AS i FROM range(250000)")
    reader = q.to_arrow_batches(batch_rows=50_000)
    assert isinstance(reader, pa.RecordBatchReader)
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 250_000 and max(sizes) <= 50_000 and len(sizes) >= 5


def test_to_pandas_batches(con):
    q = con.sql("SELECT range AS i, (range / 3)::DECIMAL(9,2) AS d FROM range(1000)")
    frames = list(q.to_pandas_batches(batch_rows=300))
    assert sum(len(f) for f in frames) == 1000 and max(len(f) for f in frames) <= 300
    assert all(str(f.d.dtype) == "float64" for f in frames)


def test_abandoned_stream_does_not_block_the_connection(con):
    q = con.sql("SELECT range AS i FROM range(1000000)")
    reader = q.to_arrow_batches(batch_rows=1000)
    first = reader.read_next_batch()
    assert first.num_rows == 1000
    # another query while the stream is open, then after dropping it
    assert con.sql("SELECT 41 + 1 AS x").to_pandas().x.tolist() == [42]
    del reader
    assert q.count() == 1_000_000


def test_two_streams_at_once(con):
    a = con.sql("SELECT range AS i FROM range(5000)").to_arrow_batches(batch_rows=1000)
    b = con.sql("SELECT range AS j FROM range(3000)").to_arrow_batches(batch_rows=1000)
    total_a = sum(x.num_rows for x in a)
    total_b = sum(x.num_rows for x in b)
    assert (total_a, total_b) == (5000, 3000)


def test_to_parquet_uses_copy_and_is_atomic(con, tmp_path):
    q = con.sql("SELECT range AS i, 'x' || range AS s FROM range(10000)")
    target = tmp_path / "sub" / "out.parquet"
    written = q.to_parquet(target)
    assert written.rows == 10000 and written.path == str(target)
    assert pq.read_table(target).num_rows == 10000
    assert not [p for p in os.listdir(target.parent) if p.startswith(".queryref-")]
    # a failing write leaves the existing file untouched and no partial file behind
    bad = con.sql("SELECT CAST('x' AS INT) AS boom")
    with pytest.raises(QueryRefError):
        bad.to_parquet(target)
    assert pq.read_table(target).num_rows == 10000
    assert not [p for p in os.listdir(target.parent) if p.startswith(".queryref-")]


def test_to_parquet_with_budget_streams_and_stops(con, tmp_path):
    q = con.sql("SELECT range AS i, range * 2 AS j FROM range(2000000)")
    with pytest.raises(ResultTooLarge):
        q.to_parquet(tmp_path / "big.parquet", max_bytes="1MB")
    assert not (tmp_path / "big.parquet").exists()
    ok = q.limit(1000).to_parquet(tmp_path / "small.parquet", max_bytes="10MB")
    assert ok.rows == 1000 and pq.read_table(tmp_path / "small.parquet").num_rows == 1000


def test_count_preview_explain(con):
    q = con.sql("SELECT range AS i FROM range(1000)").filter(qr.col("i") % 2 == 0)
    assert q.count() == 500
    assert q.order_by(qr.desc("i")).count() == 500
    assert q.limit(7).count() == 7
    pv = q.order_by("i").preview(3)
    assert isinstance(pv, pd.DataFrame) and pv.i.tolist() == [0, 2, 4]
    assert "FILTER" in q.explain().upper() or "SCAN" in q.explain().upper()
    with pytest.raises(ParameterError):
        q.preview(-1)


def test_empty_results(con):
    q = con.sql("SELECT range AS i, 'a' AS s FROM range(10)").filter(qr.col("i") > 100)
    df = q.to_pandas()
    assert len(df) == 0 and list(df.columns) == ["i", "s"]
    assert q.to_arrow().num_rows == 0
    assert q.count() == 0
    assert list(q.to_pandas_batches()) == []


def test_progress_reports_on_request(con, capsys, monkeypatch):
    import queryref.sinks.progress as progress

    clock = iter(range(0, 10_000))
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    con.sql("SELECT range AS i FROM range(300000)").to_arrow(batch_rows=50_000)  # default: quiet
    assert capsys.readouterr().err == ""
    with qr.options.context(progress=True):
        con.sql("SELECT range AS i FROM range(300000)").to_arrow(batch_rows=50_000)
    err = capsys.readouterr().err
    assert "rows" in err and "300,000 rows" in err


def test_progress_line_fits_a_narrow_terminal(con, capsys, monkeypatch):
    import queryref.sinks.progress as progress

    clock = iter(range(0, 10_000))
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setenv("COLUMNS", "32")
    with qr.options.context(progress=True):
        con.sql("SELECT range AS i FROM range(300000)").to_arrow(batch_rows=50_000)
    lines = [part for part in capsys.readouterr().err.replace("\n", "\r").split("\r") if part]
    assert lines, "no progress line"
    for line in lines:  # the clear-line code, then what fits in 31 columns
        text = line.removeprefix("\x1b[2K")
        assert len(text) <= 31 and re.fullmatch(r"(fetching: )?[\d,]+ rows, [\d.]+ \w+", text), line
    assert lines[-1].endswith("300,000 rows, 2.3 MiB")


def test_progress_appears_when_the_environment_says(monkeypatch):
    import io

    from queryref.sinks.progress import Progress

    stream = io.StringIO()
    Progress("fetching", True, stream=stream).add(10, 100)  # the first second: nothing
    assert stream.getvalue() == ""
    monkeypatch.setenv("QUERYREF_PROGRESS_AFTER", "0")
    Progress("fetching", True, stream=stream).add(10, 100)  # at once
    assert "fetching: 10 rows, 100 B" in stream.getvalue()


def test_duplicate_column_names_survive(con):
    df = con.sql("SELECT 1 AS a, 2 AS a").to_pandas()
    assert list(df.columns) == ["a", "a"] and df.values.tolist() == [[1, 2]]


def test_pandas_matches_duckdb_reference_on_many_batches(con):
    sql = ("SELECT range AS i, CASE WHEN range % 3 = 0 THEN NULL ELSE range END AS n, "
           "'s' || (range % 7) AS s, (range % 2 = 0) AS b, range / 7 AS f "
           "FROM range(25000)")
    got = con.sql(sql).to_pandas(batch_rows=1000)
    ref = con.backend._con.sql(sql).df()
    assert str(got.n.dtype) == "float64" and str(got.i.dtype) == "int64"
    assert got.i.tolist() == ref.i.tolist() and got.s.tolist() == ref.s.tolist()
    assert got.n.fillna(-1).tolist() == ref.n.fillna(-1).tolist()
    assert got.b.tolist() == ref.b.tolist() and got.f.tolist() == ref.f.tolist()


# -- issue 15 defects --------------------------------------------------------------------
def test_to_polars_with_duplicate_names_is_a_typed_refusal(con):
    with pytest.raises(ParameterError, match="duplicate column names"):
        con.sql("SELECT 1 AS a, 2 AS a").to_polars()


def test_streamed_files_honour_the_umask(con, tmp_path):
    old = os.umask(0o027)
    try:
        q = con.sql("SELECT range AS x FROM range(10)")
        copied = q.to_parquet(str(tmp_path / "copy.parquet"))  # DuckDB's COPY
        streamed = q.to_parquet(str(tmp_path / "stream.parquet"), max_bytes="1MB")  # Python
        csv = q.to_csv(str(tmp_path / "s.csv"), max_bytes="1MB")
    finally:
        os.umask(old)
    for written in (copied, streamed, csv):
        assert os.stat(written.path).st_mode & 0o777 == 0o640, written.path
    assert pq.read_table(streamed.path).column("x").to_pylist() == list(range(10))


def test_duckdb_batches_are_sized_from_measured_widths(con):
    # DuckDB's reader fixes its batch size when the query opens: under a byte bound, wide
    # rows come in batches sized from the widths the engine measured, not a 2,048-row vector
    from queryref.sinks.streams import open_stream

    q = con.sql("SELECT i, repeat('x', 20000) AS s FROM range(6000) t(i)")
    with open_stream(q._relation(), 100_000, 2**20) as stream:
        sizes = [b.num_rows for b in stream]
    assert sum(sizes) == 6000
    assert max(sizes) <= 2**20 // 20_000 + 1, sizes
    # a fixed-width result needs no measuring: its rows per batch come from the schema
    narrow = con.sql("SELECT range AS a FROM range(300000)")
    with open_stream(narrow._relation(), 1_000_000, 2**20) as stream:
        assert max(b.num_rows for b in stream) <= 2**20 // 8
