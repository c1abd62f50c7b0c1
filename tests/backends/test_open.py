"""Opening a backend (backends/open.py): which URL or driver object goes where, the capability
flags each backend declares, and the cache sweep that the caller hands in."""

from __future__ import annotations

import gc
import os
import sys

import duckdb
import pytest

from queryref.backends.duckdb import DuckDBBackend
from queryref.backends.open import open_backend
from queryref.backends.postgres import PostgresBackend
from queryref.backends.snowflake import SnowflakeBackend
from queryref.backends.sqlalchemy import SQLAlchemyBackend, _class_for
from queryref.errors import ParameterError, QueryRefError

PG_URL = os.environ.get("QR_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def test_no_target_is_duckdb_in_memory() -> None:
    backend = open_backend(None, {})
    try:
        assert isinstance(backend, DuckDBBackend)
        assert backend.describe() == "duckdb :memory:"
    finally:
        backend.close()


def test_duckdb_url_options_never_show_in_the_label(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "x.duckdb")
    backend = open_backend(f"duckdb:///{path}?threads=1", {})
    try:
        assert backend.describe() == f"duckdb {path}"
    finally:
        backend.close()


def test_a_path_and_a_driver_object_open_duckdb(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "y.duckdb")
    for target in (path, duckdb.connect()):
        backend = open_backend(target, {})
        assert isinstance(backend, DuckDBBackend)
        backend.close()


@pytest.mark.parametrize(("target", "says"), [
    ("not a url", "expected a URL such as"),
    ("postgresql://bob:p@ss@db/x", "percent-encode them"),
    (object(), "cannot connect to a object"),
])
def test_what_cannot_be_opened_is_refused_with_a_way_out(target: object, says: str) -> None:
    with pytest.raises(ParameterError, match=says):
        open_backend(target, {})


def test_each_backend_declares_its_schemes_and_capabilities() -> None:
    assert DuckDBBackend.schemes == ("duckdb",)
    assert PostgresBackend.schemes == ("postgresql", "postgres")
    assert SnowflakeBackend.schemes == ("snowflake",)
    assert (DuckDBBackend.create_or_replace, SnowflakeBackend.create_or_replace,
            PostgresBackend.create_or_replace) == (True, True, False)
    mysql, bigquery = _class_for("mysql"), _class_for("bigquery")
    assert (mysql.case_insensitive, mysql.create_or_replace) == (True, False)
    assert (bigquery.case_insensitive, bigquery.create_or_replace) == (False, True)
    assert issubclass(mysql, SQLAlchemyBackend) and mysql.dialect == "mysql"


def test_the_sweep_runs_when_a_server_backend_connects_and_closes() -> None:
    swept: list[object] = []
    try:
        backend = open_backend(PG_URL, {}, sweep=swept.append)
    except QueryRefError as err:
        pytest.skip(f"PostgreSQL is not reachable: {err}")
    assert swept == [backend]
    backend.schema("SELECT 1 AS x")  # a connection goes back to the pool: idle at close
    backend.close()
    assert swept == [backend, backend]


def test_without_a_sweep_nothing_is_swept() -> None:
    try:
        backend = open_backend(PG_URL, {})
    except QueryRefError as err:
        pytest.skip(f"PostgreSQL is not reachable: {err}")
    backend.close()  # (no callback: nothing to call, nothing imported from above)


@pytest.mark.parametrize(("options", "says"), [
    ({"no_such_option": 1}, "takes no keyword 'no_such_option'"),
    ({"autocommit": False}, "autocommit is queryref's"),
])
def test_a_keyword_the_driver_does_not_take_is_refused_before_it_connects(
        options: dict[str, object], says: str) -> None:
    """Bug: the ADBC driver built its ``Connection`` half, failed on the keyword, and its
    finalizer printed ``Exception ignored ... AttributeError: 'Connection' object has no
    attribute '_closed'`` into the user's output beside the error."""
    ignored: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, ignored.append
    try:
        with pytest.raises(ParameterError, match=says):
            open_backend(PG_URL, dict(options))
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert ignored == []


def test_the_drivers_own_keywords_still_reach_it() -> None:
    try:
        backend = open_backend(PG_URL, {"db_kwargs": {}, "conn_kwargs": {}})
    except QueryRefError as err:
        pytest.skip(f"PostgreSQL is not reachable: {err}")
    try:
        assert backend.schema("SELECT 1 AS x").names == ["x"]
    finally:
        backend.close()
