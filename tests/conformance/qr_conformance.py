"""One behavioural suite over every engine: the ``engine`` fixture runs each test on each.

Engines: embedded DuckDB; PostgreSQL (``QUERYREF_POSTGRES_URL``, default the local server);
MariaDB through the generic SQLAlchemy path (``QUERYREF_MYSQL_URL``); Snowflake through
fakesnow's server with the real connector (``_snowflake.py``, when present). Each session
loads the same data into a schema/database of its own, dropped at the end, so concurrent runs
do not collide. A server that is not there skips its tests with the reason, except under
``CI=true``, where every engine must run.

Known engine gaps are marked with :func:`gap`: an expected failure that must raise the named
queryref error, and that fails the suite once the gap closes (strict).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr

#: every engine; QUERYREF_ENGINES=duckdb,spark runs a few
ALL_ENGINES = ("duckdb", "postgres", "mariadb", "snowflake", "spark")
ENGINES = tuple(e for e in os.environ.get("QUERYREF_ENGINES", ",".join(ALL_ENGINES)).split(",")
                if e in ALL_ENGINES)
PG_URL = os.environ.get("QUERYREF_POSTGRES_URL",
                        "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("QUERYREF_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI=true, where every engine must run."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def server_admin(url: str, name: str) -> qr.Connection:
    """A connection to the server at ``url`` that has answered a query, or
    :func:`unavailable` (skip locally, fail under CI) naming ``name`` and where it was."""
    try:
        con = qr.connect(url)
        con.sql("SELECT 1 AS x").to_arrow()
    except qr.errors.QueryRefError as err:
        unavailable(f"{name} is not reachable at {url.split('@')[-1]}: {err}")
    return con


# -- data: the same rows on every engine ------------------------------------------------------
def make_orders(n: int = 300, seed: int = 3) -> pd.DataFrame:
    """Orders with NULLs, duplicate keys, a mixed-case column and whole-number amounts."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "region": rng.choice(["north", "south", "east", "west"], n).astype(object),
        "status": rng.choice(["open", "closed", "held"], n),
        "amount": rng.integers(-50, 500, n).astype("float64"),
        "qty": rng.integers(0, 20, n).astype("int64"),
        "CustomerId": rng.integers(0, 40, n).astype("int64"),
        "odate": [dt.date(2024, 1, 1) + dt.timedelta(days=int(d))
                  for d in rng.integers(0, 365, n)],
    })
    df.loc[rng.random(n) < 0.15, "amount"] = np.nan
    df.loc[rng.random(n) < 0.15, "region"] = None
    return df


def make_customers(seed: int = 5) -> pd.DataFrame:
    """Customers, some ids twice, some orders' customers missing; a colliding ``region``."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.arange(0, 35), rng.integers(0, 35, 6)])
    return pd.DataFrame({
        "CustomerId": ids.astype("int64"),
        "name": [f"c{i:02d}" for i in ids],
        "region": rng.choice(["north", "south", "east"], len(ids)).astype(object),
    })


ORDERS = make_orders()
CUSTOMERS = make_customers()
NUMS = pd.DataFrame({"n": np.arange(1, 2001, dtype="int64")})


@dataclass
class Engine:
    """A connection with the test tables loaded, and how to reach its server."""

    name: str
    con: qr.Connection
    orders: qr.QueryRef
    customers: qr.QueryRef
    nums: qr.QueryRef
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Engine {self.name}>"


def _load(con: qr.Connection) -> tuple[qr.QueryRef, qr.QueryRef, qr.QueryRef]:
    return (con.create_table("orders", ORDERS), con.create_table("customers", CUSTOMERS),
            con.create_table("nums", NUMS))


@contextlib.contextmanager
def _duckdb() -> Iterator[qr.Connection]:
    with qr.connect() as con:
        yield con


@contextlib.contextmanager
def _postgres() -> Iterator[qr.Connection]:
    try:
        import adbc_driver_postgresql  # noqa: F401
    except ImportError:
        unavailable("adbc-driver-postgresql is not installed (pip install 'queryref[postgres]')")
    admin = server_admin(PG_URL, "PostgreSQL")
    schema = f"qr_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        with qr.connect(f"{PG_URL}{sep}options=-csearch_path%3D{schema}") as con:
            yield con
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@contextlib.contextmanager
def _mariadb() -> Iterator[qr.Connection]:
    try:
        import pymysql  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        unavailable("sqlalchemy/pymysql are not installed (pip install 'queryref[sqlalchemy]')")
    admin = server_admin(MYSQL_URL, "MariaDB/MySQL")
    db = f"qr_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {db}")
    base = MYSQL_URL.rsplit("/", 1)[0]
    try:
        with qr.connect(f"{base}/{db}") as con:
            yield con
    finally:
        admin.execute(f"DROP DATABASE {db}")
        admin.close()


@contextlib.contextmanager
def _snowflake() -> Iterator[qr.Connection]:
    # The Snowflake engine and its fixture are delivered separately: until both are here its
    # tests skip (also under CI); fakesnow runs in-process, so there is no server to be down.
    here = Path(__file__).parent
    if not (here / "_snowflake.py").exists():
        pytest.skip("no Snowflake fixture yet (tests/conformance/_snowflake.py)")
    sys.path.insert(0, str(here))
    try:
        module = importlib.import_module("_snowflake")
        importlib.import_module("queryref.backends.snowflake")
    except ImportError as err:
        pytest.skip(f"Snowflake not available here: {err}")
    finally:
        sys.path.pop(0)
    with module.snowflake_connection() as con:
        yield con


@contextlib.contextmanager
def _spark() -> Iterator[qr.Connection]:
    try:
        import pyspark  # noqa: F401
        from pyspark.sql.connect.session import SparkSession  # noqa: F401
    except ImportError as err:
        unavailable(f"pyspark[connect] is not installed (pip install 'queryref[spark]'): {err}")
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from _spark import spark_server
    finally:
        sys.path.pop(0)
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(spark_server())
        except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
            unavailable(f"no Spark Connect server: {err}")
        db = f"qr_test_{uuid.uuid4().hex[:10]}"
        admin = stack.enter_context(qr.connect(url))
        admin.execute(f"CREATE DATABASE {db}")
        stack.callback(admin.execute, f"DROP DATABASE {db} CASCADE")
        con = stack.enter_context(qr.connect(url))
        con.execute(f"USE {db}")
        yield con


_OPENERS: dict[str, Callable[[], contextlib.AbstractContextManager[qr.Connection]]] = {
    "duckdb": _duckdb, "postgres": _postgres, "mariadb": _mariadb, "snowflake": _snowflake,
    "spark": _spark,
}


@pytest.fixture(scope="session")
def _engines() -> Iterator[dict[str, Any]]:
    """Open engines lazily (one per session each) and close them all at the end."""
    stack = contextlib.ExitStack()
    opened: dict[str, Any] = {}
    yield {"stack": stack, "opened": opened}
    stack.close()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest, _engines: dict[str, Any]) -> Engine:
    """Every engine in turn, with ``orders``, ``customers`` and ``nums`` loaded."""
    name = request.param
    opened = _engines["opened"]
    if name not in opened:
        try:
            con = _engines["stack"].enter_context(_OPENERS[name]())
            opened[name] = Engine(name, con, *_load(con))
        except (pytest.skip.Exception, pytest.fail.Exception) as err:
            opened[name] = err
    got = opened[name]
    if isinstance(got, BaseException):
        raise got
    return got


#: engines with a floating-point NaN (MariaDB has none: NULL stands in)
NAN_ENGINES = ("duckdb", "postgres", "snowflake", "spark")
_UPLOADED: dict[tuple[str, str], qr.QueryRef] = {}


def uploaded_with_nan(engine: Engine, name: str, frame: pd.DataFrame, nan_id: int,
                      column: str) -> qr.QueryRef:
    """``frame`` as table ``name`` on ``engine`` (uploaded once per session), its ``column``
    NaN on the row whose ``id`` is ``nan_id`` where the engine has NaN (NULL elsewhere:
    pandas' NaN uploads as NULL)."""
    key = (engine.name, name)
    if key not in _UPLOADED:
        q = engine.con.create_table(name, frame)
        if engine.name in NAN_ENGINES:
            nan = qr.lit("NaN").cast("DOUBLE")
            q = q.mutate(**{column: qr.when(qr.col("id") == nan_id, nan)
                            .otherwise(qr.col(column))})
        _UPLOADED[key] = q
    return _UPLOADED[key]


def gap(*engines: str, raises: type[BaseException], reason: str) -> pytest.MarkDecorator:
    """A known gap on ``engines``: strict xfail that must raise ``raises``.

    Use as ``@pytest.mark.usefixtures("engine")`` plus
    ``@gap("mariadb", raises=BackendError, reason=...)`` — applied per parametrized engine
    by :func:`pytest_collection_modifyitems`.
    """
    return pytest.mark.engine_gap(engines=engines, raises=raises, reason=reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine_gap(engines, raises, reason): a known gap")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("engine") if callspec is not None else None
        if name is None:
            continue
        for mark in item.iter_markers("engine_gap"):
            if name in mark.kwargs["engines"]:
                item.add_marker(pytest.mark.xfail(
                    strict=True, raises=mark.kwargs["raises"],
                    reason=f"{name}: {mark.kwargs['reason']}"))


def rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as sorted tuples of plain values (NULLs as None, numbers as floats rounded to 3
    places: MySQL's AVG keeps 4 decimals)."""
    out = []
    for r in df.itertuples(index=False):
        out.append(tuple(_plain(v) for v in r))
    return sorted(out, key=repr)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float | np.floating) and np.isnan(v):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating) or hasattr(v, "as_tuple"):
        return round(float(v), 3)
    if isinstance(v, pd.Timestamp):
        return v.date() if v == v.normalize() else v.to_pydatetime()
    if isinstance(v, dt.datetime):
        return v.date() if v.time() == dt.time() else v
    if isinstance(v, bytes):
        return v.decode()
    return v


def same(got: pd.DataFrame, want: pd.DataFrame, *, ordered: bool = False) -> None:
    """Same columns (case-insensitively) and the same rows (order ignored unless asked)."""
    assert [c.lower() for c in got.columns] == [c.lower() for c in want.columns], (
        list(got.columns), list(want.columns))
    assert len(got) == len(want), (len(got), len(want))
    if ordered:
        g = [tuple(_plain(v) for v in r) for r in got.itertuples(index=False)]
        w = [tuple(_plain(v) for v in r) for r in want.itertuples(index=False)]
        assert g == w
    else:
        assert rows(got) == rows(want)
