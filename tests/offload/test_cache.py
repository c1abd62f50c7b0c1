"""q.cache(): a temporary table in the warehouse, a QueryRef over it, released on demand."""

from __future__ import annotations

import pytest

import queryref as qr
from queryref._queryref import CachedQueryRef
from queryref.errors import CacheReleased
from queryref.offload.cache import statements


@pytest.fixture
def src(con: qr.Connection) -> qr.QueryRef:
    con.execute('CREATE TABLE src AS SELECT range AS id, range % 3 AS "Grp" FROM range(100)')
    return con.table("src")


def test_cache_holds_the_result_in_the_warehouse(con: qr.Connection, src: qr.QueryRef) -> None:
    q = src.filter(qr.col("Grp") == 1)
    expected = q.to_pandas()
    cached = q.cache()
    assert isinstance(cached, CachedQueryRef) and isinstance(cached, qr.QueryRef)
    assert cached.columns == ["id", "Grp"]
    assert cached.table_name in cached.sql
    con.execute("DELETE FROM src")  # the cache is a snapshot, not a view
    assert q.count() == 0
    assert cached.to_pandas().equals(expected)
    assert cached.filter(qr.col("id") < 10).order_by("id").to_pandas()["id"].tolist() == [1, 4, 7]
    assert cached.group_by("Grp").agg(n=qr.count()).to_pandas()["n"].tolist() == [33]


def test_names_never_clash(src: qr.QueryRef) -> None:
    a, b = src.cache(), src.limit(3).cache()
    assert a.table_name != b.table_name
    assert (a.count(), b.count()) == (100, 3)


def test_release_twice_and_use_after(src: qr.QueryRef) -> None:
    cached = src.cache()
    derived = cached.filter(qr.col("id") > 5)
    cached.release()
    cached.release()
    assert cached.released
    for use in (cached.to_pandas, cached.count, cached.to_arrow, cached.explain,
                lambda: cached.filter(qr.col("id") > 1), lambda: cached.columns,
                lambda: cached.preview(2), lambda: cached.to_arrow_batches()):
        with pytest.raises(CacheReleased, match="was released"):
            use()
    with pytest.raises(qr.errors.QueryRefError):  # composed before: its table is gone too
        derived.to_pandas()


def test_context_manager_releases(src: qr.QueryRef) -> None:
    with src.cache() as cached:
        assert cached.count() == 100
    assert cached.released
    with pytest.raises(CacheReleased):
        cached.count()
    with pytest.raises(CacheReleased):
        with cached:
            pass


def test_released_with_the_connection(src: qr.QueryRef) -> None:
    cached = src.cache()
    src.connection.close()
    assert cached.released
    cached.release()  # fine: the session took it along
    with pytest.raises(CacheReleased, match="closed connection"):
        cached.count()


def test_readable_while_another_stream_is_open(src: qr.QueryRef) -> None:
    """DuckDB runs queries on cursors while a stream holds the connection: they see the cache."""
    cached = src.cache()
    seen = []
    for frame in src.to_pandas_batches(batch_rows=2048):
        seen.append(cached.count())
        late = src.limit(1).cache()  # made while the main connection is busy
        seen.append(late.count())
        late.release()
        del frame
    assert seen == [100, 1]
    assert cached.count() == 100


def test_sql_is_built_for_each_dialect() -> None:
    import sqlglot

    query = sqlglot.parse_one("SELECT a FROM t", dialect="postgres")
    # a real table where a connection uses several sessions (a pool); temporary where one
    # session runs every query (Snowflake's connector)
    for dialect, kind in (("postgres", "UNLOGGED TABLE"), ("snowflake", "TEMPORARY TABLE")):
        table, sql = statements(query, dialect)
        assert table.name.startswith("_qr_cache_")
        assert sql == [f'CREATE {kind} "{table.name}" AS SELECT a FROM t']
    table, sql = statements(query, "mysql")
    assert sql == [f"CREATE TABLE `{table.name}` AS SELECT a FROM t"]
    table, sql = statements(query, "duckdb")
    assert sql[0] == "ATTACH IF NOT EXISTS ':memory:' AS _queryref_cache"
    assert sql[1] == f'CREATE TABLE _queryref_cache.main."{table.name}" AS SELECT a FROM t'
