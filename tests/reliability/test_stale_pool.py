"""Pooled sessions the server ended while idle: the next queries must not fail.

An administrator (or an idle timeout, or a restart) ends every idle session of ours from a
separate connection (PostgreSQL ``pg_terminate_backend``, MariaDB ``KILL``). The next query
finds its connection dead on the first statement of its checkout (before anything ran), the
pool drops its other idle ones and the query runs on a fresh connection. A connection lost
after rows reached the caller is not retried: the error is the caller's.
"""

from __future__ import annotations

import time
import uuid

import pytest

import queryref as qr
from conformance.qr_conformance import MYSQL_URL, PG_URL, server_admin
from queryref.errors import BackendError

N = 4


def _pg(app: str) -> tuple[qr.Connection, qr.Connection]:
    pytest.importorskip("adbc_driver_postgresql")
    sep = "&" if "?" in PG_URL else "?"
    admin = server_admin(PG_URL, "PostgreSQL")
    return qr.connect(f"{PG_URL}{sep}application_name={app}", pool_size=N), admin


def _mysql(db: str) -> tuple[qr.Connection, qr.Connection]:
    pytest.importorskip("pymysql")
    admin = server_admin(MYSQL_URL, "MariaDB")
    admin.execute(f"CREATE DATABASE {db}")
    return qr.connect(f"{MYSQL_URL.rsplit('/', 1)[0]}/{db}", pool_size=N), admin


def _fill_pool(con: qr.Connection, n: int = N) -> None:
    """``n`` idle connections in the pool: ``n`` streams open at once, then read to the end."""
    readers = [con.sql("SELECT 1 AS x").to_arrow_batches() for _ in range(n)]
    for r in readers:
        r.read_all()
    del readers


def _pg_sessions(admin: qr.Connection, app: str) -> list[int]:
    df = admin.sql("SELECT pid FROM pg_stat_activity WHERE application_name = {{ a }}",
                   a=app).to_pandas()
    return [int(p) for p in df["pid"]]


def _my_sessions(admin: qr.Connection, db: str) -> list[int]:
    df = admin.sql("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = {{ d }} "
                   "AND ID <> CONNECTION_ID()", d=db).to_pandas()
    return [int(p) for p in df["id"]]


def _end_pg(admin: qr.Connection, app: str) -> int:
    pids = _pg_sessions(admin, app)
    for pid in pids:
        admin.execute(f"SELECT pg_terminate_backend({int(pid)})")
    deadline = time.monotonic() + 5
    while _pg_sessions(admin, app) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(pids)


def _end_my(admin: qr.Connection, db: str) -> int:
    ids = _my_sessions(admin, db)
    for i in ids:
        admin.execute(f"KILL {int(i)}")
    return len(ids)


def test_postgres_queries_after_idle_sessions_were_ended() -> None:
    app = f"qr_stale_{uuid.uuid4().hex[:8]}"
    con, admin = _pg(app)
    with con, admin:
        _fill_pool(con)
        assert _end_pg(admin, app) == N
        results = [con.sql("SELECT {{ i }} AS i", i=i).to_pandas()["i"].tolist()
                   for i in range(N)]
        assert results == [[i] for i in range(N)]
        # every sink path: schema, plan, stream
        _fill_pool(con)
        _end_pg(admin, app)
        q = con.sql("SELECT 7 AS seven")
        assert q.columns == ["seven"]
        _end_pg(admin, app)
        assert "Result" in q.explain()
        _end_pg(admin, app)
        assert q.count() == 1


def test_postgres_lost_after_rows_moved_is_not_retried() -> None:
    app = f"qr_stale_{uuid.uuid4().hex[:8]}"
    con, admin = _pg(app)
    with con, admin:
        reader = con.sql("SELECT g FROM generate_series(1, 2000000) g").to_arrow_batches(
            batch_rows=1000)
        first = reader.read_next_batch()
        assert first.column(0)[0].as_py() == 1
        _end_pg(admin, app)
        with pytest.raises(BackendError):
            while True:
                reader.read_next_batch()
        del reader
        assert con.sql("SELECT 1 AS x").to_pandas()["x"].tolist() == [1]


def test_mariadb_queries_after_idle_sessions_were_killed() -> None:
    db = f"qr_stale_{uuid.uuid4().hex[:8]}"
    con, admin = _mysql(db)
    try:
        with con:
            _fill_pool(con)
            assert _end_my(admin, db) >= 1
            results = [con.sql("SELECT {{ i }} AS i", i=i).to_pandas()["i"].tolist()
                       for i in range(N)]
            assert results == [[i] for i in range(N)]
            q = con.sql("SELECT 7 AS seven")
            _end_my(admin, db)
            assert q.columns == ["seven"]
            _end_my(admin, db)
            assert q.count() == 1
    finally:
        admin.execute(f"DROP DATABASE {db}")
        admin.close()


def test_mariadb_lost_after_rows_moved_is_not_retried() -> None:
    db = f"qr_stale_{uuid.uuid4().hex[:8]}"
    con, admin = _mysql(db)
    big = "SELECT a.seq * 1000 + b.seq AS n FROM seq_0_to_999 a, seq_0_to_999 b"
    try:
        with con:
            reader = con.sql(big).to_arrow_batches(batch_rows=1000)
            reader.read_next_batch()
            _end_my(admin, db)
            with pytest.raises(BackendError):
                while True:
                    reader.read_next_batch()
            del reader
            assert con.sql("SELECT 1 AS x").to_pandas()["x"].tolist() == [1]
    finally:
        admin.execute(f"DROP DATABASE {db}")
        admin.close()
