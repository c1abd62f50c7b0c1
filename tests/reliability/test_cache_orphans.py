"""Cache tables never outlive their process on PostgreSQL and MariaDB.

- ``close()`` while other threads' ``cache()`` run their ``CREATE ... AS``: the close's DROP
  came before the table existed, and the table stayed (5-47 a close on PostgreSQL).
- A process ended by SIGTERM drops its tables on the way out, like a normal exit.
- A process killed with ``kill -9`` cannot: the next connection opened from this host sweeps
  the tables whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import queryref as qr
from conformance.qr_conformance import MYSQL_URL, PG_URL, server_admin


@contextlib.contextmanager
def _postgres() -> Iterator[tuple[str, qr.Connection]]:
    """A URL whose queries land in a fresh schema, and an admin connection that lists it."""
    pytest.importorskip("adbc_driver_postgresql")
    admin = server_admin(PG_URL, "PostgreSQL")
    schema = f"qr_orphans_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}", admin
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@contextlib.contextmanager
def _mariadb() -> Iterator[tuple[str, qr.Connection]]:
    pytest.importorskip("pymysql")
    admin = server_admin(MYSQL_URL, "MariaDB")
    db = f"qr_orphans_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {db}")
    try:
        yield f"{MYSQL_URL.rsplit('/', 1)[0]}/{db}", admin
    finally:
        admin.execute(f"DROP DATABASE {db}")
        admin.close()


_ENGINES = {"postgres": _postgres, "mariadb": _mariadb}


def _cache_tables(admin: qr.Connection, url: str, engine: str) -> list[str]:
    if engine == "postgres":
        schema = url.rsplit("%3D", 1)[1]
        sql = ("SELECT tablename AS t FROM pg_tables WHERE schemaname = {{ s }} "
               "AND tablename LIKE '\\_qr\\_cache\\_%'")
    else:
        schema = url.rsplit("/", 1)[1]
        sql = ("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
               "{{ s }} AND TABLE_NAME LIKE '\\_qr\\_cache\\_%'")
    return sorted(admin.sql(sql, s=schema).to_pandas()["t"])


def test_close_racing_cache_leaves_no_table_behind() -> None:
    with _postgres() as (url, admin):
        for _ in range(3):
            con = qr.connect(url, pool_size=8)
            q = con.sql("SELECT COUNT(*) AS n FROM generate_series(1, 400000)")
            started = threading.Barrier(9)

            def cache(q: qr.QueryRef = q, started: threading.Barrier = started) -> None:
                started.wait()
                with contextlib.suppress(qr.errors.QueryRefError):
                    q.cache()

            threads = [threading.Thread(target=cache) for _ in range(8)]
            for t in threads:
                t.start()
            started.wait()
            time.sleep(0.02)
            con.close()
            for t in threads:
                t.join()
        assert _cache_tables(admin, url, "postgres") == []


_CHILD = textwrap.dedent("""
    import sys, time
    import queryref as qr
    con = qr.connect(sys.stdin.readline().strip())
    cached = con.sql("SELECT 1 AS x").cache()
    print(cached.table_name, flush=True)
    time.sleep(60)
""")


def _child(url: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(url + "\n")  # (the URL may hold a password: never on a command line)
    child.stdin.flush()
    return child, child.stdout.readline().strip()


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_sigterm_drops_the_cache_tables_like_a_normal_exit(engine: str) -> None:
    with _ENGINES[engine]() as (url, admin):
        child, name = _child(url)
        assert _cache_tables(admin, url, engine) == [name]
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 128 + signal.SIGTERM
        assert _cache_tables(admin, url, engine) == []


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_tables_of_a_killed_process_are_swept_by_the_next_connection(engine: str) -> None:
    with _ENGINES[engine]() as (url, admin):
        child, name = _child(url)
        mine = qr.connect(url)
        kept = mine.sql("SELECT 2 AS y").cache()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        assert sorted(_cache_tables(admin, url, engine)) == sorted([name, kept.table_name])
        qr.connect(url).close()  # opening (and closing) a connection sweeps
        assert _cache_tables(admin, url, engine) == [kept.table_name]  # ours is alive
        assert kept.to_pandas()["y"].tolist() == [2]
        mine.close()
        assert _cache_tables(admin, url, engine) == []
