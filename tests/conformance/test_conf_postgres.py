"""PostgreSQL specifics: a guard abort leaves no query behind; every way in connects."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import queryref as qr

from .qr_conformance import PG_URL, unavailable


@pytest.fixture(scope="module")
def pg_url() -> str:
    try:
        with qr.connect(PG_URL) as con:
            con.sql("SELECT 1 AS x").to_arrow()
    except (ImportError, qr.errors.QueryRefError) as err:
        unavailable(f"PostgreSQL is not reachable: {err}")
    return PG_URL


def test_guard_abort_leaves_nothing_running(pg_url: str):
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        from pg_guard_abort import measure  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    got = measure(pg_url, rows=20_000_000, budget="16MB")
    assert got["ms_crossing_to_gone"] is not None, got  # gone from pg_stat_activity
    assert got["ms_crossing_to_gone"] < 2000, got
    assert got["select_1_after"] == 1


def test_connect_forms(pg_url: str):
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg
    import sqlalchemy as sa

    with psycopg.connect(pg_url) as raw:
        assert qr.connect(raw).sql("SELECT 7 AS x").to_pandas().iloc[0, 0] == 7
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    con = qr.connect(engine)
    assert con.dialect == "postgres" and "postgres:postgres" not in repr(con)
    assert con.sql("SELECT 8 AS x").to_pandas().iloc[0, 0] == 8
    con.close()
    with adbc.connect(pg_url) as raw_adbc:
        wrapped = qr.connect(raw_adbc)
        assert wrapped.sql("SELECT 9 AS x").to_pandas().iloc[0, 0] == 9
        wrapped.close()
        cur = raw_adbc.cursor()  # a connection we were given stays open
        cur.execute("SELECT 1")
        assert cur.fetchall() == [(1,)]
        cur.close()


def test_second_connection_while_streaming(pg_url: str):
    with qr.connect(pg_url) as con:
        reader = con.sql("SELECT generate_series(1, 100000) AS n").to_arrow_batches(1000)
        first = reader.read_next_batch()
        assert con.sql("SELECT 2 AS x").to_pandas().iloc[0, 0] == 2
        assert first.num_rows <= 1000
        reader.close()


def test_closed_connection_refuses(pg_url: str):
    con = qr.connect(pg_url)
    q = con.sql("SELECT 1 AS x")
    con.close()
    with pytest.raises(qr.errors.BackendError, match="closed"):
        q.to_pandas()
