"""Concurrency (issue 7): 50 threads share one ``Connection`` per engine, no deadlock, no leak.

On DuckDB, PostgreSQL (a pool of ADBC connections) and MariaDB (SQLAlchemy's pool), 50 threads
start together on one shared connection, each composing its own pipeline and fetching it, in
``QUERYREF_RELIABILITY_SCALE`` rounds: ``to_pandas`` of a filtered aggregate and of a join,
``to_arrow_batches`` / ``to_pandas_batches`` read for a batch or two then abandoned (dropped
or closed), ``estimate()`` (planner and exact count), and ``cache()`` read inside a loop over
another query's batches, then released. Every result is checked against pandas over the same
rows. Checked too: the server never holds more sessions of ours than the pool allows, none is
left running or idle in a transaction, and after ``close()`` none is left at all
(``pg_stat_activity`` by ``application_name``, MariaDB's ``PROCESSLIST`` by database).

A watchdog turns a deadlock into a failure with every thread's traceback: the threads are
joined with a deadline, and ``faulthandler`` ends the process if even that hangs.

Snowflake is not in the thread test: fakesnow's server runs each session on one DuckDB
connection, and two queries at once on one session fail there ("connection is busy") or
get each other's result (a schema/row-type mismatch in fakesnow). Real Snowflake runs
concurrent queries of one session; the connector is thread-safe per connection.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from conformance.qr_conformance import (
    _OPENERS,
    CUSTOMERS,
    MYSQL_URL,
    NUMS,
    ORDERS,
    PG_URL,
)
from queryref.errors import BackendError, ParameterError, PoolExhausted

from .conftest import SCALE

THREADS = 50
ROUNDS = SCALE
JOIN_S = 240.0  # a run whose threads are not all done by then is a deadlock (or a stall)
SETTLE_S = 15.0  # how long the server may take to show closed sessions as gone
KINDS = ("agg", "join", "batches", "estimate", "cache")
REGIONS = ["north", "south", "east", "west"]
STATUSES = ["open", "closed", "held"]


@dataclass
class Shared:
    """One engine's shared connection and how to count its sessions on the server."""

    name: str
    con: qr.Connection
    sessions: Callable[[], list[str]] | None = None  # states of our sessions, None: embedded
    pool_limit: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Shared {self.name}>"


def _load(con: qr.Connection) -> None:
    con.create_table("orders", ORDERS)
    con.create_table("customers", CUSTOMERS)
    con.create_table("nums", NUMS)


def _settle(count: Callable[[], int], want: int) -> int:
    """``count()`` once it reaches ``want``, or its last value after SETTLE_S (a bounded wait:
    the server drops a closed session's row shortly after the client has gone)."""
    end = time.monotonic() + SETTLE_S
    while True:
        n = count()
        if n == want or time.monotonic() > end:
            return n
        time.sleep(0.05)


@contextlib.contextmanager
def _postgres() -> Iterator[Shared]:
    with _OPENERS["postgres"]():  # skips (or fails under CI) when the server is not there
        pass
    app = f"qr_conc_{uuid.uuid4().hex[:12]}"
    schema = f"qr_conc_{uuid.uuid4().hex[:10]}"
    admin = qr.connect(PG_URL)
    admin.execute(f"CREATE SCHEMA {schema}")
    watch = admin.sql("SELECT state FROM pg_stat_activity WHERE application_name = {{ a }}",
                      a=app)

    def sessions() -> list[str]:
        return [str(s) for s in watch.to_pandas()["state"]]

    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}&application_name={app}"
    try:
        assert sessions() == []
        con = qr.connect(url)
        _load(con)
        yield Shared("postgres", con, sessions, pool_limit=15,
                     extra={"url": url, "admin": admin, "schema": schema})
        con.close()
        assert _settle(lambda: len(sessions()), 0) == 0, sessions()
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@contextlib.contextmanager
def _mariadb() -> Iterator[Shared]:
    with _OPENERS["mariadb"]():  # skips (or fails under CI) when the server is not there
        pass
    db = f"qr_conc_{uuid.uuid4().hex[:10]}"
    admin = qr.connect(MYSQL_URL)
    admin.execute(f"CREATE DATABASE {db}")
    watch = admin.sql("SELECT COMMAND AS command FROM information_schema.PROCESSLIST "
                      "WHERE DB = {{ db }}", db=db)

    def sessions() -> list[str]:
        return [str(c) for c in watch.to_pandas()["command"]]

    url = f"{MYSQL_URL.rsplit('/', 1)[0]}/{db}"
    try:
        con = qr.connect(url)
        _load(con)
        yield Shared("mariadb", con, sessions, pool_limit=None,
                     extra={"url": url, "admin": admin, "db": db})
        con.close()
        assert _settle(lambda: len(sessions()), 0) == 0, sessions()
    finally:
        admin.execute(f"DROP DATABASE {db}")
        admin.close()


@contextlib.contextmanager
def _duckdb() -> Iterator[Shared]:
    with qr.connect() as con:
        _load(con)
        yield Shared("duckdb", con)


_ENGINES = {"duckdb": _duckdb, "postgres": _postgres, "mariadb": _mariadb}


@pytest.fixture(scope="module")
def _opened() -> Iterator[dict[str, Any]]:
    """Engines opened on first use, closed (and their sessions checked) after the module."""
    with contextlib.ExitStack() as stack:
        yield {"stack": stack}


def _engine(opened: dict[str, Any], name: str) -> Shared:
    if name not in opened:
        try:
            opened[name] = opened["stack"].enter_context(_ENGINES[name]())
        except (pytest.skip.Exception, pytest.fail.Exception) as err:
            opened[name] = err
    got = opened[name]
    if isinstance(got, BaseException):
        raise got
    return got


@pytest.fixture(params=list(_ENGINES))
def shared(request: pytest.FixtureRequest, _opened: dict[str, Any]) -> Shared:
    """Each engine in turn: one connection shared by the module's tests."""
    return _engine(_opened, request.param)


@pytest.fixture(params=["postgres", "mariadb"])
def pooled(request: pytest.FixtureRequest, _opened: dict[str, Any]) -> Shared:
    """The engines with a pool of server connections (DuckDB has none: a query runs on a
    cursor of its own and never waits)."""
    return _engine(_opened, request.param)


# -- the tasks: each composes its own pipeline, fetches it, checks it against pandas ------------
def _floats(values: Any) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
            for v in values]


def task_agg(con: qr.Connection, i: int) -> str:
    low = i % 15
    got = (con.table("orders").filter(qr.col("qty") >= low).group_by("status")
           .agg(n=qr.count(), total=qr.col("qty").sum()).order_by("status").to_pandas())
    ref = ORDERS[ORDERS["qty"] >= low].groupby("status").agg(
        n=("qty", "size"), total=("qty", "sum")).reset_index().sort_values("status")
    assert got["status"].tolist() == ref["status"].tolist()
    assert _floats(got["n"]) == _floats(ref["n"])
    assert _floats(got["total"]) == _floats(ref["total"])
    return "agg"


def task_join(con: qr.Connection, i: int) -> str:
    qty = i % 20
    orders = con.table("orders").select("id", "CustomerId", "qty").filter(qr.col("qty") == qty)
    got = orders.join(con.table("customers").select("CustomerId", "name"), on="CustomerId") \
        .to_pandas().sort_values(["id", "name"]).reset_index(drop=True)
    sub = ORDERS.loc[ORDERS["qty"] == qty, ["id", "CustomerId", "qty"]]
    ref = sub.merge(CUSTOMERS[["CustomerId", "name"]], on="CustomerId") \
        .sort_values(["id", "name"]).reset_index(drop=True)
    assert got["id"].tolist() == ref["id"].tolist()
    assert got["name"].tolist() == ref["name"].tolist()
    return "join"


def task_batches(con: qr.Connection, i: int) -> str:
    """Read a batch or two of an ordered stream, then walk away from it."""
    low = 37 * i % 1800
    q = con.table("nums").filter(qr.col("n") > low).order_by("n")
    want = [int(v) for v in NUMS["n"] if v > low]
    if i % 2:
        reader = q.to_arrow_batches(batch_rows=100)
        first = reader.read_next_batch()
        assert first.column(0).to_pylist() == want[:first.num_rows]
        del reader  # dropped: that ends the stream (pyarrow's close() alone would not)
    else:
        frames = q.to_pandas_batches(batch_rows=100)
        seen: list[int] = []
        for frame in frames:
            seen += [int(v) for v in frame["n"]]
            if len(seen) >= 150:
                break
        assert seen == want[:len(seen)]
        del frames
    return "batches"


def task_estimate(con: qr.Connection, i: int) -> str:
    status = STATUSES[i % 3]
    q = con.table("orders").filter(qr.col("status") == status)
    exact = q.estimate(count=True)
    assert exact.exact and exact.rows == int((ORDERS["status"] == status).sum())
    planned = q.estimate()
    assert planned.method in ("planner", "unknown")
    return "estimate"


#: threads at once in a read inside a loop over a stream (each holds two connections for a
#: moment): below the default pool of 15, which 15 such threads would fill while each waits
#: for its second (test_threads_waiting_on_each_other_fail_at_once covers that case)
NESTED = threading.BoundedSemaphore(10)


def task_cache(con: qr.Connection, i: int) -> str:
    """A cache read inside a loop over another query's batches, then released."""
    region = REGIONS[i % 4]
    ref = ORDERS[ORDERS["region"] == region]
    with con.table("orders").filter(qr.col("region") == region).cache() as cached:
        with NESTED:
            counts = [cached.count()
                      for _ in con.table("nums").to_pandas_batches(batch_rows=500)]
        assert counts == [len(ref)] * len(counts) and counts
        got = cached.group_by("status").agg(n=qr.count()).order_by("status").to_pandas()
    want = ref.groupby("status").size()
    assert dict(zip(got["status"], _floats(got["n"]), strict=True)) == {
        k: float(v) for k, v in want.items()}
    assert cached.released
    return "cache"


TASKS = {"agg": task_agg, "join": task_join, "batches": task_batches,
         "estimate": task_estimate, "cache": task_cache}


# -- the runner: threads start together, a watchdog turns a hang into a failure ---------------
@dataclass
class Run:
    done: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    peak_sessions: int = 0
    seconds: float = 0.0


def run_threads(work: Callable[[int], list[str]], n: int,
                sessions: Callable[[], list[str]] | None = None) -> Run:
    """``work(i)`` on ``n`` threads started together; fails with every thread's stack when
    they are not done within JOIN_S (and ``faulthandler`` ends the process if even that
    hangs)."""
    run = Run()
    lock = threading.Lock()
    start = threading.Barrier(n)
    stop_sampling = threading.Event()

    def body(i: int) -> None:
        try:
            start.wait(timeout=60)
            kinds = work(i)
            with lock:
                for kind in kinds:
                    run.done[kind] = run.done.get(kind, 0) + 1
        except BaseException as err:
            import traceback

            with lock:
                run.errors.append(f"thread {i}: {type(err).__name__}: {err}\n"
                                  + "".join(traceback.format_tb(err.__traceback__)[-4:]))

    def sample() -> None:
        while sessions is not None and not stop_sampling.wait(0.05):
            with contextlib.suppress(Exception):
                run.peak_sessions = max(run.peak_sessions, len(sessions()))

    threads = [threading.Thread(target=body, args=(i,), daemon=True, name=f"qr-conc-{i}")
               for i in range(n)]
    sampler = threading.Thread(target=sample, daemon=True)
    faulthandler.dump_traceback_later(JOIN_S + 60, exit=True)
    began = time.monotonic()
    try:
        sampler.start()
        for t in threads:
            t.start()
        deadline = began + JOIN_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        run.seconds = time.monotonic() - began
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            with tempfile.TemporaryFile("w+") as f:
                faulthandler.dump_traceback(file=f, all_threads=True)
                f.seek(0)
                stacks = f.read()
            pytest.fail(f"{len(stuck)} threads still running after {JOIN_S:g} s (deadlock?): "
                        f"{stuck[:5]}\n{stacks[-20000:]}")
    finally:
        faulthandler.cancel_dump_traceback_later()
        stop_sampling.set()
        sampler.join(5)
    return run


@contextlib.contextmanager
def counting_calls(con: qr.Connection) -> Iterator[dict[str, int]]:
    """Count the statements the backend sends (queries, schema probes, plans, DDL) while the
    block runs: the calls go through to the real engine, the counter only looks."""
    backend = con.backend
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                counts[name] = counts.get(name, 0) + 1
            return fn(*args, **kwargs)
        return call

    names = ("stream", "schema", "execute", "estimate", "explain")
    for name in names:
        setattr(backend, name, counted(name, getattr(backend, name)))
    try:
        yield counts
    finally:
        for name in names:
            delattr(backend, name)


def test_threads_share_one_connection(shared: Shared) -> None:
    """50 threads, each its own pipelines, one connection: right answers, no hang, no leak."""
    con = shared.con
    before = shared.sessions() if shared.sessions else []

    def work(i: int) -> list[str]:
        return [TASKS[KINDS[(i + r) % len(KINDS)]](con, i + r) for r in range(ROUNDS)]

    with counting_calls(con) as statements:
        run = run_threads(work, THREADS, shared.sessions)
    assert not run.errors, f"{len(run.errors)} threads failed:\n" + "\n".join(run.errors[:5])
    assert sum(run.done.values()) == THREADS * ROUNDS
    assert set(run.done) == set(KINDS)
    gc.collect()  # streams abandoned in reference cycles give their connections back
    print(f"\n{shared.name}: {THREADS} threads x {ROUNDS} rounds = {sum(run.done.values())} "
          f"tasks {run.done}, {sum(statements.values())} statements {statements}, in "
          f"{run.seconds:.1f} s; sessions before {len(before)}, peak {run.peak_sessions}")
    if shared.name == "duckdb":
        assert not con.backend._main_busy  # type: ignore[attr-defined]  # nothing left open
    if shared.sessions is not None:
        after = shared.sessions()
        print(f"{shared.name}: sessions after the threads {len(after)}")
        busy = [s for s in after if s not in ("idle", "Sleep")]
        assert not busy, after  # nothing left running or idle in a transaction
        if shared.pool_limit is not None:
            assert run.peak_sessions <= shared.pool_limit
            assert len(after) <= 5  # the pool keeps pool_size idle connections
        shared.extra.setdefault("figures", []).append((len(before), run.peak_sessions,
                                                       len(after)))
    # the connection still answers, and a cache made before close is readable by all threads
    assert con.table("nums").count() == len(NUMS)


# -- pool exhaustion: a typed error, within the timeout ----------------------------------------
def test_pool_exhausted_is_a_typed_error(pooled: Shared) -> None:
    """Another thread holds every connection: PoolExhausted after pool_timeout; the holder
    itself asking for one more: PoolExhausted at once (it would wait for itself)."""
    shared, url = pooled, str(pooled.extra["url"])
    assert shared.sessions is not None
    before = len(shared.sessions())
    with qr.connect(url, pool_size=1, max_overflow=1, pool_timeout=0.5) as con:
        big = con.table("nums")
        held = threading.Event()
        release = threading.Event()
        seen: dict[str, BaseException] = {}

        def holder() -> None:
            streams = [big.to_arrow_batches(batch_rows=10) for _ in range(2)]
            for s in streams:
                s.read_next_batch()
            try:
                big.count()
            except BaseException as err:
                seen["self"] = err
            held.set()
            release.wait(60)
            del streams  # (pyarrow's reader.close() keeps the source until it is dropped)

        t = threading.Thread(target=holder, daemon=True)
        t.start()
        assert held.wait(60)
        try:
            with pytest.raises(PoolExhausted) as info:
                big.to_pandas()
        finally:
            release.set()
            t.join(60)
        assert not t.is_alive()
        err = info.value
        assert isinstance(err, BackendError) and isinstance(err, TimeoutError)
        assert err.limit == 2 and err.timeout == 0.5
        assert "pool_size=1, max_overflow=1" in str(err)
        assert isinstance(seen.get("self"), PoolExhausted), seen
        assert "this thread holds every connection" in str(seen["self"])
        assert big.count() == len(NUMS)  # given back: the pool serves again
        if shared.name == "postgres":  # (MariaDB also has the KILL QUERY connections)
            assert len(shared.sessions()) <= before + 2


def test_threads_waiting_on_each_other_fail_at_once(pooled: Shared) -> None:
    """Two threads each hold a stream and ask for one more connection of a pool of two: a
    deadlock. The one that closes the circle gets PoolExhausted at once (not after
    pool_timeout=120 s: the joins below give up long before), its stream goes as its error
    unwinds, and the other one goes on with the right answer."""
    with qr.connect(str(pooled.extra["url"]), pool_size=2, max_overflow=0,
                    pool_timeout=120) as con:
        both = threading.Barrier(2)
        out: dict[int, Any] = {}

        def worker(k: int) -> None:
            reader = con.table("nums").to_arrow_batches(batch_rows=10)
            reader.read_next_batch()
            both.wait(30)
            try:
                out[k] = con.table("nums").count()
            except PoolExhausted as err:
                out[k] = err
            del reader

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "threads waited for each other"
        errors = [v for v in out.values() if isinstance(v, PoolExhausted)]
        assert len(errors) == 1, out
        assert "held by a thread that waits for one more" in str(errors[0])
        assert [v for v in out.values() if not isinstance(v, PoolExhausted)] == [len(NUMS)]


def test_pool_options_in_the_url_and_checked(pooled: Shared) -> None:
    """Pool options work in the URL's query string (the driver never sees them); junk is a
    ParameterError."""
    url = str(pooled.extra["url"])
    sep = "&" if "?" in url else "?"
    with qr.connect(f"{url}{sep}pool_size=1&max_overflow=0&pool_timeout=0.2") as con:
        frames = con.table("nums").to_pandas_batches(batch_rows=10)
        next(frames)
        with pytest.raises(PoolExhausted, match="pool_size=1, max_overflow=0"):
            con.table("nums").count()
        frames.close()  # type: ignore[attr-defined]  # a generator: ends the stream
        assert con.table("nums").count() == len(NUMS)
    for bad in ({"pool_size": 0}, {"pool_size": "x"}, {"max_overflow": -2},
                {"pool_timeout": -1}, {"pool_timeout": float("nan")}, {"pool_size": True}):
        with pytest.raises(ParameterError):
            qr.connect(url, **bad)


def test_stopping_a_stream_never_waits_for_the_pool(pooled: Shared) -> None:
    """Regression: MariaDB stops an abandoned stream with KILL QUERY from another connection,
    which came from the same pool: with the pool full it waited pool_timeout (here 120 s)."""
    with qr.connect(str(pooled.extra["url"]), pool_size=1, max_overflow=0,
                    pool_timeout=120) as con:
        result: dict[str, Any] = {}

        def abandon() -> None:
            reader = con.table("nums").to_arrow_batches(batch_rows=10)
            reader.read_next_batch()
            del reader
            result["count"] = con.table("nums").count()

        t = threading.Thread(target=abandon, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive(), "closing a stream waited for the full pool"
        assert result == {"count": len(NUMS)}


# -- cache(): one table every pooled connection sees, dropped with the connection --------------
def _tables_named(shared: Shared, name: str) -> int:
    admin = shared.extra["admin"]
    if shared.name == "postgres":
        q = admin.sql("SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = {{ t }}", t=name)
    else:
        q = admin.sql("SELECT COUNT(*) AS n FROM information_schema.TABLES "
                      "WHERE TABLE_SCHEMA = {{ db }} AND TABLE_NAME = {{ t }}",
                      db=shared.extra["db"], t=name)
    return int(q.to_pandas().iloc[0, 0])


def test_cache_read_inside_a_batch_loop(shared: Shared) -> None:
    """Regression: on PostgreSQL the cache was a TEMPORARY table of one session; reading it
    inside a to_arrow_batches loop ran on the second connection, which could not see it. On
    MariaDB an abandoned stream dropped the pooled connection that held it."""
    con = shared.con
    cached = con.table("orders").filter(qr.col("status") == "open").cache()
    want = int((ORDERS["status"] == "open").sum())
    reader = con.table("nums").to_arrow_batches(batch_rows=400)
    seen = [cached.count() for _ in reader]
    assert seen == [want] * len(seen) and len(seen) >= 5
    abandoned = con.table("nums").to_arrow_batches(batch_rows=10)
    abandoned.read_next_batch()
    del abandoned
    assert cached.count() == want
    cached.release()
    if shared.sessions is not None:
        assert _tables_named(shared, cached.table_name) == 0


def test_cache_tables_go_with_the_connection(pooled: Shared) -> None:
    """A cache table is dropped by close(), and by the connection's garbage collection."""
    shared, url = pooled, str(pooled.extra["url"])
    con = qr.connect(url)
    first = con.table("nums").filter(qr.col("n") < 10).cache()
    name = first.table_name
    assert _tables_named(shared, name) == 1
    con.close()
    assert first.released
    assert _tables_named(shared, name) == 0
    con = qr.connect(url)
    name = con.table("nums").limit(3).cache().table_name
    assert _tables_named(shared, name) == 1
    del con
    gc.collect()
    assert _tables_named(shared, name) == 0


# -- DuckDB: objects read in place are seen by every cursor --------------------------------------
def test_notebook_frames_from_many_threads() -> None:
    """Regression: DuckDB keeps registrations per connection, and a query from another thread
    (or while a stream is open) runs on a cursor: a notebook cell over a DataFrame raised
    "table does not exist" there."""
    con = qr.connect()
    frame = pd.DataFrame({"k": np.arange(1000), "g": np.arange(1000) % 10})
    nb = qr.Notebook(con, {"frame": frame})
    cell = nb.cell("by_g", "SELECT g, COUNT(*) AS n FROM frame WHERE k >= {{ low }} GROUP BY g",
                   low=0)
    holder = con.sql("SELECT range AS i FROM range(100000)").to_arrow_batches(batch_rows=10)
    holder.read_next_batch()  # the main connection is busy: queries go to cursors

    def work(i: int) -> list[str]:
        got = cell.filter(qr.col("g") == i % 10).to_pandas()
        assert got["n"].tolist() == [100]
        return ["frame"]

    run = run_threads(work, 20)
    del holder
    assert not run.errors, run.errors[:3]
    con.close()
