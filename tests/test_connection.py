"""Connections: opening DuckDB every way, statements, uploads, Parquet, closing."""

from __future__ import annotations

import threading
import time

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import queryref as qr
from queryref.errors import BackendError, ParameterError, ResultTooLarge


def test_connect_forms(tmp_path):
    path = tmp_path / "x.duckdb"
    con = qr.connect(f"duckdb:///{path}")
    con.execute("CREATE TABLE t AS SELECT 42 AS a")
    con.close()
    again = qr.connect(str(path))
    assert again.table("t").to_pandas().a.tolist() == [42]
    again.close()
    raw = duckdb.connect()
    raw.execute("CREATE TABLE r AS SELECT 7 AS b")
    wrapped = qr.connect(raw)
    assert wrapped.table("r").to_pandas().b.tolist() == [7]
    wrapped.close()
    assert raw.sql("SELECT 1").fetchall() == [(1,)]  # a connection we were given stays open
    assert "duckdb" in repr(qr.connect())


def test_unknown_targets():
    with pytest.raises(ParameterError, match="no backend"):
        qr.connect("oracle://u:secret@h/db")
    with pytest.raises(ParameterError):
        qr.connect(3.5)


def test_password_never_in_errors():
    with pytest.raises(ParameterError) as info:
        qr.connect("mysql://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)


def test_execute_is_the_door_for_statements(con):
    assert con.execute("CREATE TABLE t (a INT)") is None
    assert con.execute("INSERT INTO t VALUES (1), (2), (3)") == 3
    assert con.execute("DELETE FROM t WHERE a > 1") == 2
    assert con.table("t").count() == 1
    with pytest.raises(BackendError, match="nope"):
        con.execute("SELECT * FROM nope")


def test_table_names(con):
    con.execute("CREATE SCHEMA s")
    con.execute('CREATE TABLE s."Mixed Case" AS SELECT 1 AS a')
    assert con.table('s."Mixed Case"').count() == 1
    with pytest.raises(BackendError):
        con.table("missing_table").to_pandas()
    with pytest.raises(ParameterError):
        con.table("")


@pytest.mark.parametrize("kind", ["pandas", "arrow", "polars", "dict", "reader"])
def test_create_table_from_data(con, kind):
    df = pd.DataFrame({"a": [1, 2, None], "b": ["x", None, "z"]})
    data = {
        "pandas": df,
        "arrow": pa.Table.from_pandas(df, preserve_index=False),
        "polars": pl.from_pandas(df),
        "dict": {"a": [1, 2, None], "b": ["x", None, "z"]},
        "reader": pa.Table.from_pandas(df, preserve_index=False).to_reader(),
    }[kind]
    t = con.create_table("up", data)
    got = t.order_by("b").to_pandas()
    assert got.b.tolist()[:2] == ["x", "z"] and got.a.isna().sum() == 1


def test_create_table_from_queryref_runs_in_database(con):
    src = con.sql("SELECT range AS i FROM range(100)")
    t = con.create_table("copy", src.filter(qr.col("i") < 10))
    assert t.count() == 10
    t2 = con.create_table("copy", src, replace=True)
    assert t2.count() == 100
    with pytest.raises(BackendError):
        con.create_table("copy", src)


def test_create_table_budget(con):
    big = pa.table({"a": list(range(100_000))})
    with pytest.raises(ResultTooLarge):
        con.create_table("big", big, max_bytes="100KB")
    with pytest.raises(ParameterError):
        con.create_table("x", 42)


def test_read_parquet_round_trip(con, tmp_path):
    src = con.sql("SELECT range AS i, range % 3 AS g FROM range(1000)")
    out = src.to_parquet(tmp_path / "x.parquet")
    assert out.rows == 1000 and out.bytes > 0
    back = con.read_parquet(out.path)
    assert back.group_by("g").agg(n=qr.count()).order_by("g").to_pandas().n.tolist() == [
        334, 333, 333]


def test_closed_connection(con):
    q = con.sql("SELECT 1 AS a")
    con.close()
    with pytest.raises(BackendError, match="closed"):
        q.to_pandas()
    con.close()  # idempotent


def test_context_manager():
    with qr.connect() as con:
        assert con.sql("SELECT 1 AS a").count() == 1
    with pytest.raises(BackendError):
        con.sql("SELECT 1 AS a").to_pandas()


# -- embedded DuckDB: extensions and file access (issue 15, item 4) -----------------------------
def test_duckdb_loads_no_extension_behind_a_query():
    con = qr.connect()
    settings = con.sql(
        "SELECT current_setting('autoinstall_known_extensions') AS i, "
        "current_setting('autoload_known_extensions') AS l, "
        "current_setting('allow_community_extensions') AS c").to_arrow().to_pylist()
    assert settings == [{"i": False, "l": False, "c": False}]
    with pytest.raises(BackendError):  # once off, community extensions stay off
        con.execute("SET allow_community_extensions = true")
    # the built-in ones still work: JSON, time zones (ICU), Parquet
    assert con.sql("SELECT to_json({'a': 1}) AS j").to_arrow().column(0)[0].as_py() == '{"a":1}'


@pytest.fixture()
def confined(tmp_path):
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    for folder in (inside, outside):
        (folder / "t.csv").write_text("a,b\n1,2\n")
        (folder / "secret.txt").write_text("secret")
    con = qr.connect(allowed_paths=[inside])
    yield con, inside, outside
    con.close()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('{d}/secret.txt')",
    "SELECT * FROM read_blob('{d}/secret.txt')",
    "SELECT * FROM glob('{d}/*')",
    "SELECT * FROM read_csv('{d}/t.csv')",
    "SELECT * FROM read_csv('{d}/../out/t.csv')",
])
def test_allowed_paths_refuse_files_outside(confined, sql):
    con, inside, outside = confined
    with pytest.raises(qr.errors.PathNotAllowed, match="allowed_paths"):
        con.sql(sql.format(d=outside)).to_arrow()
    with pytest.raises(PermissionError):  # (the built-in kind too)
        con.sql(sql.format(d=outside)).to_arrow()
    if "../out" not in sql:
        assert con.sql(sql.format(d=inside)).to_arrow().num_rows >= 1


def test_allowed_paths_keep_files_inside_working(confined):
    con, inside, outside = confined
    q = con.sql("SELECT range AS x FROM range(5)")
    q.to_parquet(inside / "x.parquet")
    q.to_csv(inside / "x.csv")
    assert con.read_parquet(str(inside / "x.parquet")).count() == 5
    assert con.sql(f"SELECT * FROM read_csv('{inside}/x.csv')").count() == 5
    with pytest.raises(qr.errors.PathNotAllowed):
        con.read_parquet(str(outside / "x.parquet")).to_arrow()
    with pytest.raises(qr.errors.PathNotAllowed):
        q.to_parquet(outside / "x.parquet")
    assert not (outside / "x.parquet").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt", "t.csv"]  # no temp left
    for statement in ("SET enable_external_access = true",
                      "SET allowed_directories = ['/']",
                      f"ATTACH '{outside}/other.duckdb'"):
        with pytest.raises(BackendError):  # the confinement cannot be lifted
            con.execute(statement)


def test_allowed_paths_on_a_database_file(tmp_path):
    db = tmp_path / "db" / "f.duckdb"
    db.parent.mkdir()
    (tmp_path / "data").mkdir()
    with qr.connect(f"duckdb:///{db}", allowed_paths=[tmp_path / "data"]) as con:
        con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
        con.execute("CHECKPOINT")
        assert con.table("t").count() == 10
        (db.parent / "secret.txt").write_text("secret")  # (beside the database: not allowed)
        with pytest.raises(qr.errors.PathNotAllowed):
            con.sql(f"SELECT * FROM read_text('{db.parent}/secret.txt')").to_arrow()
    with pytest.raises(ParameterError):
        qr.connect(allowed_paths=[3])


def test_create_table_refuses_duplicate_column_names(con):
    with pytest.raises(ParameterError, match="duplicate column names"):
        con.create_table("d", pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(ParameterError, match="ignores case"):  # DuckDB: one name
        con.create_table("d", pa.table({"A": [1], "a": [2]}))
    assert "d" not in con.sql("SELECT table_name FROM information_schema.tables")\
        .to_pandas().table_name.tolist()


def test_duckdb_close_while_other_threads_query(con):
    errors: list[BaseException] = []
    started = threading.Barrier(3)

    def run() -> None:
        started.wait()
        try:
            con.sql("SELECT sum(a.range * b.range) AS s FROM range(200000) a, range(50000) b")\
                .to_pandas()
        except BaseException as err:  # what reaches the thread is the point
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)
    con.close()  # no raw ResourceInUseException: the running queries are interrupted
    for t in threads:
        t.join(30)
    assert all(isinstance(e, qr.errors.QueryRefError) for e in errors), errors
    with pytest.raises(BackendError, match="closed"):
        con.sql("SELECT 1").to_pandas()
