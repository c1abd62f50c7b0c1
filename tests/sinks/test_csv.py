"""``to_csv``: DuckDB's own COPY, or Arrow batches through pyarrow's CSV writer; atomic."""

from __future__ import annotations

import os

import duckdb
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ResultTooLarge
from queryref.sinks import progress as _progress

SQL = ("SELECT range AS id, CASE WHEN range % 5 = 0 THEN NULL ELSE 'v,\"' || range END AS s, "
       "range / 7 AS x, DATE '2024-01-01' + CAST(range % 30 AS INTEGER) AS d "
       "FROM range(5000)")


def _duckdb_reference(tmp_path) -> pd.DataFrame:
    """What DuckDB itself writes for the query, read back by pandas."""
    ref = tmp_path / "ref.csv"
    duckdb.connect().execute(f"COPY ({SQL}) TO '{ref}' (FORMAT CSV, HEADER)")
    return pd.read_csv(ref)


@pytest.mark.parametrize("path", ["copy", "stream"])
def test_to_csv_equals_duckdbs_own_csv(con, tmp_path, path):
    q = con.sql(SQL)
    out = tmp_path / "sub" / "out.csv"
    # a budget makes queryref stream the batches itself (the path of every other engine)
    kw = {"max_bytes": "1GB"} if path == "stream" else {}
    written = q.to_csv(str(out), **kw)
    assert isinstance(written, qr.CSVWritten)
    assert written.rows == 5000 and written.bytes == os.path.getsize(out) > 0
    got, want = pd.read_csv(out), _duckdb_reference(tmp_path)
    assert list(got.columns) == ["id", "s", "x", "d"]
    pd.testing.assert_frame_equal(got, want)
    assert sorted(os.listdir(out.parent)) == ["out.csv"]  # no temporary file left


def test_to_csv_over_budget_leaves_no_file(con, tmp_path):
    out = tmp_path / "big.csv"
    with pytest.raises(ResultTooLarge):
        con.sql("SELECT range AS a FROM range(1000000)").to_csv(str(out), max_bytes="100KB",
                                                                 batch_rows=10_000)
    assert os.listdir(tmp_path) == []


def test_to_csv_replaces_a_file_only_when_complete(con, tmp_path):
    out = tmp_path / "keep.csv"
    out.write_text("old\n")
    with pytest.raises(qr.errors.QueryRefError):
        con.sql("SELECT CAST('x' AS INTEGER) AS a").to_csv(str(out))
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["keep.csv"]


@pytest.mark.parametrize("sink", ["to_csv", "to_parquet"])
@pytest.mark.parametrize("budget", [None, "1GB"])  # the engine's COPY, and the stream
def test_writing_shows_progress_when_asked(con, tmp_path, monkeypatch, capsys, sink, budget):
    clock = iter(range(0, 100000, 2))  # every reading two seconds later: each update prints
    monkeypatch.setattr(_progress.time, "monotonic", lambda: float(next(clock)))
    q = con.sql("SELECT range AS a FROM range(300000)")
    with qr.options.context(progress=True):
        getattr(q, sink)(str(tmp_path / f"out.{sink}"), max_bytes=budget, batch_rows=50_000)
    err = capsys.readouterr().err
    assert f"writing out.{sink}" in err
    assert "300,000 rows" in err  # the final line has the rows, also after COPY


def test_to_csv_on_postgres_streams_batches(tmp_path):
    from conformance.qr_conformance import PG_URL, server_admin

    con = server_admin(PG_URL, "PostgreSQL")  # (skipped locally, failed under CI, if down)
    sql = ("SELECT g AS id, CASE WHEN g % 5 = 0 THEN NULL ELSE 'v,\"' || g END AS s, "
           "CAST(g AS NUMERIC(12, 2)) / 4 AS x FROM generate_series(1, 3000) AS g")
    with con:
        written = con.sql(sql).to_csv(str(tmp_path / "pg.csv"), batch_rows=500)
        want = con.sql(sql).to_pandas()
    assert written.rows == 3000
    got = pd.read_csv(tmp_path / "pg.csv")
    assert got["id"].tolist() == want["id"].tolist()
    assert got["s"].fillna("<null>").tolist() == want["s"].fillna("<null>").tolist()
    assert (got["x"] - want["x"].astype(float)).abs().max() < 1e-9
