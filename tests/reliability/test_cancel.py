"""Cancellation and timeouts (issue 7): cancel queries at random points, then check the wreckage.

On each engine, ``100 * QUERYREF_RELIABILITY_SCALE`` seeded events (25 on Snowflake), each one
of:

- ``timeout_before``: ``timeout=1e-6``, so the deadline falls before (or as) the query is sent;
- ``timeout_running``: a query that would run for minutes, with a deadline of 10-80 ms;
- ``timeout_fetch``: a multi-batch result read with a deadline of 10-100 ms;
- ``break``: ``to_arrow_batches`` / ``to_pandas_batches`` left after k batches, then closed
  (the reader also dropped: pyarrow's ``close()`` does not reach a Python-fed reader);
- ``guard``: the size guard aborting mid-stream (``ResultTooLarge`` at the fetch stage);
- ``interrupt``: Ctrl-C (SIGINT from a timer) while the query runs or its rows arrive.

After each event: the typed error (or a clean stop) was raised, the rows read before it are the
right ones, the same ``Connection`` answers a check query correctly, and the server has no
session of ours still running a query or idle in a transaction (PostgreSQL ``pg_stat_activity``,
MariaDB ``information_schema.PROCESSLIST``); at the end the session count is back to where it
started, and zero once the connection is closed. A watchdog stops any query still running 20 s
into an event (that event then fails): a cancellation that never lands shows as a failure, not
as a hang.

Snowflake runs on fakesnow, which executes every query to completion before it answers: there
is no running query to cancel and no session view to look at, so only the client side is
covered there (deadline between batches, breaking out, the guard, Ctrl-C while reading).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pytest

import queryref as qr
from conformance.qr_conformance import _OPENERS, MYSQL_URL, PG_URL
from queryref.errors import QueryTimeout, ResultTooLarge

from .conftest import SCALE

# A driver object that fails as it is garbage-collected after a cancel ("Exception ignored in
# SSCursor.close", printed into the user's notebook) fails the test (bug 12b in reliability.md).
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

WATCHDOG_S = 20.0  # a query still running this long into an event was never cancelled
SETTLE_S = 10.0  # how long the server may take to show a cancelled query as gone
SERVER_LIMIT_S = 120  # the servers' own statement limit on our sessions (a last resort)
BUSY_PG = ("active", "idle in transaction", "idle in transaction (aborted)",
           "fastpath function call")


@dataclass
class Server:
    """An engine under test: its connection, its queries, and how to look at its sessions."""

    name: str
    con: qr.Connection
    big: Callable[[int], str]  # n rows (n = 1..rows, s = 40 chars), streamed in order
    heavy: str | None  # a query that would run for minutes; None: the engine cannot cancel
    sessions: Callable[[], list[tuple[Any, bool]]] | None = None  # (id, busy) of ours
    stop_all: Callable[[], None] = lambda: None  # the watchdog's way to stop our queries
    kinds: tuple[str, ...] = ("timeout_before", "timeout_running", "timeout_fetch", "break",
                              "guard", "interrupt")
    rows: int = 2_000_000  # rows of the big query: many batches, longer to read than a deadline
    budget: tuple[int, int] = (100_000, 2_000_000)  # the guard's budgets: crossed mid-stream
    batch_rows: tuple[int, ...] = (1000, 5000)  # batch sizes of the streams left early
    events: int = 100  # (times QUERYREF_RELIABILITY_SCALE)
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Server {self.name}>"


# -- engines --------------------------------------------------------------------------------
@contextlib.contextmanager
def _postgres() -> Iterator[Server]:
    with _OPENERS["postgres"]():  # skips (or fails under CI) when the server is not there
        pass
    app = f"qr_cancel_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    admin = qr.connect(PG_URL)
    # (a server-side limit too: were this process killed, its queries would not run on)
    con = qr.connect(f"{PG_URL}{sep}application_name={app}"
                     f"&options=-cstatement_timeout%3D{SERVER_LIMIT_S * 1000}")
    watch = admin.sql("SELECT pid, state FROM pg_stat_activity WHERE application_name = {{ a }}",
                      a=app)

    def sessions() -> list[tuple[Any, bool]]:
        df = watch.to_pandas()
        return [(int(p), s in BUSY_PG) for p, s in zip(df["pid"], df["state"], strict=True)]

    def stop_all() -> None:
        for pid, busy in sessions():
            if busy:
                admin.execute(f"SELECT pg_cancel_backend({int(pid)})")

    try:
        yield Server(
            "postgres", con,
            big=lambda n: f"SELECT generate_series(1, {n}) AS n, repeat('x', 40) AS s",
            heavy="SELECT count(*) AS n FROM generate_series(1, 100000) a "
                  "CROSS JOIN generate_series(1, 100000) b",
            sessions=sessions, stop_all=stop_all)
    finally:
        con.close()
        admin.close()


@contextlib.contextmanager
def _mariadb() -> Iterator[Server]:
    with _OPENERS["mariadb"]() as made:  # a database of our own, dropped at the end
        db = str(made.sql("SELECT DATABASE() AS db").to_pandas().iloc[0, 0])
        made.close()  # (its sessions would count as ours)
        # (a server-side limit too: were this process killed, its queries would not run on;
        # no TLS: PyMySQL spends ~0.2 s of CPU on each TLS login, and a stream given up costs
        # its connection, so with TLS the logins would be most of this test's time)
        limit = quote(f"SET SESSION max_statement_time={SERVER_LIMIT_S}")
        con = qr.connect(f"{MYSQL_URL.rsplit('/', 1)[0]}/{db}?init_command={limit}"
                         "&ssl_disabled=true")
        admin = qr.connect(MYSQL_URL)
        watch = admin.sql("SELECT ID AS id, COMMAND AS command FROM information_schema.PROCESSLIST"
                          " WHERE DB = {{ db }}", db=db)

        def sessions() -> list[tuple[Any, bool]]:
            df = watch.to_pandas()
            return [(int(i), c not in ("Sleep",)) for i, c in
                    zip(df["id"], df["command"], strict=True)]

        def stop_all() -> None:
            for i, busy in sessions():
                if busy:
                    admin.execute(f"KILL QUERY {int(i)}")

        try:
            yield Server(
                "mariadb", con,
                big=lambda n: f"SELECT seq AS n, REPEAT('x', 40) AS s FROM seq_1_to_{n}",
                heavy="SELECT COUNT(*) AS n FROM seq_1_to_100000 a, seq_1_to_100000 b "
                      "WHERE a.seq + b.seq > 7",
                sessions=sessions, stop_all=stop_all, extra={"db": db, "spare": 1},
                # pymysql reads ~10k rows a second on a busy machine: smaller results
                budget=(50_000, 400_000), batch_rows=(500, 1000))
        finally:
            con.close()
            admin.close()


@contextlib.contextmanager
def _duckdb() -> Iterator[Server]:
    with _OPENERS["duckdb"]() as con:
        yield Server(
            "duckdb", con,
            big=lambda n: f"SELECT range AS n, repeat('x', 40) AS s FROM range(1, {n + 1})",
            heavy="SELECT count(*) AS n FROM range(3000000) a, range(3000000) b "
                  "WHERE a.range + b.range > 7",
            # (test-only reach into the backend: DuckDB has no server to send a cancel to)
            stop_all=lambda: con.backend._con.interrupt())  # type: ignore[attr-defined]


@contextlib.contextmanager
def _snowflake() -> Iterator[Server]:
    with _OPENERS["snowflake"]() as con:
        yield Server(
            "snowflake", con,
            big=lambda n: f"SELECT SEQ4() + 1 AS n, REPEAT('x', 40) AS s "
                          f"FROM TABLE(GENERATOR(ROWCOUNT => {n}))",
            heavy=None, kinds=("timeout_fetch", "break", "guard", "interrupt"),
            # fakesnow builds each result whole before answering: keep it small; the guard
            # refuses from the result's metadata (rows x fixed widths) below 240 KB
            rows=10_000, budget=(150_000, 400_000), events=25)


_SERVERS = {"postgres": _postgres, "mariadb": _mariadb, "duckdb": _duckdb,
            "snowflake": _snowflake}


@pytest.fixture(scope="module", params=list(_SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with _SERVERS[request.param]() as s:
        yield s


# -- the pieces of an event ------------------------------------------------------------------
class _Interrupted(Exception):
    """Stands for the outcome of a KeyboardInterrupt the event caught."""


@contextlib.contextmanager
def sigint_after(seconds: float) -> Iterator[None]:
    """Deliver SIGINT (Ctrl-C) to this process after ``seconds``, as KeyboardInterrupt.

    Our own handler raises only while the block runs: a signal that comes after it ended
    (the query finished first) is dropped instead of interrupting the test run.
    """
    armed = {"on": True}

    def handler(signum: int, frame: Any) -> None:
        if armed["on"]:
            armed["on"] = False
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        try:
            yield
        finally:
            armed["on"] = False
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def watchdog(server: Server) -> Iterator[dict[str, bool]]:
    """Stop the engine's queries if the block is still running after WATCHDOG_S."""
    fired = {"fired": False}

    def fire() -> None:
        fired["fired"] = True
        with contextlib.suppress(Exception):
            server.stop_all()

    timer = threading.Timer(WATCHDOG_S, fire)
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def consecutive(values: list[int], start: int = 1) -> bool:
    """Whether ``values`` are start, start + 1, ... (the big query's rows, in order)."""
    return values == list(range(start, start + len(values)))


def first_column(obj: Any) -> list[int]:
    """The ``n`` column (first; Snowflake spells it ``N``) of a batch, table or DataFrame."""
    if isinstance(obj, pa.RecordBatch | pa.Table):
        return [int(v) for v in obj.column(0).to_pylist()]
    return [int(v) for v in obj.iloc[:, 0].tolist()]


def run_event(server: Server, kind: str, rng: random.Random) -> str:
    """One cancellation event; returns its outcome (the error raised, ``stopped`` or
    ``completed``). Raises AssertionError on a wrong outcome (a wrong error type, wrong rows)."""
    con = server.con
    if kind == "timeout_before":
        assert server.heavy is not None
        with pytest.raises(QueryTimeout):
            con.sql(server.heavy).to_arrow(timeout=1e-6)
        return "QueryTimeout"
    if kind == "timeout_running":
        assert server.heavy is not None
        with pytest.raises(QueryTimeout):
            con.sql(server.heavy).to_pandas(timeout=rng.uniform(0.01, 0.08))
        return "QueryTimeout"
    if kind == "timeout_fetch":
        q = con.sql(server.big(server.rows))
        sink = rng.choice(["to_arrow", "to_pandas", "batches"])
        deadline = rng.uniform(0.01, 0.1)
        rows = rng.choice(server.batch_rows)
        try:
            if sink == "batches":
                seen: list[int] = []
                for batch in q.to_arrow_batches(rows, timeout=deadline):
                    seen += first_column(batch)
                    assert consecutive(seen)
                got = seen
            else:
                fn = getattr(q, sink)
                got = first_column(fn(timeout=deadline, max_bytes=None, batch_rows=rows))
        except QueryTimeout:
            return "QueryTimeout"
        assert consecutive(got) and len(got) == server.rows  # finished before its deadline
        return "completed"
    if kind == "break":
        rows = rng.choice(server.batch_rows)
        k = rng.randint(0, 5)
        q = con.sql(server.big(server.rows))
        seen = []
        if rng.random() < 0.5:
            reader = q.to_arrow_batches(rows)
            for i, batch in enumerate(reader):
                if i == k:
                    break
                seen += first_column(batch)
            reader.close()
            del reader
            how = "arrow"
        else:
            frames = q.to_pandas_batches(rows)
            for i, df in enumerate(frames):
                if i == k:
                    break
                seen += first_column(df)
            frames.close()  # type: ignore[attr-defined]
            how = "pandas"
        assert consecutive(seen) and len(seen) <= k * rows, (how, k, rows, seen[:5])
        return "stopped"
    if kind == "guard":
        budget = rng.randint(*server.budget)
        sink = rng.choice(["to_arrow", "to_pandas"])
        with pytest.raises(ResultTooLarge) as info:
            getattr(con.sql(server.big(server.rows)), sink)(max_bytes=budget, preflight=None)
        assert info.value.stage == "fetch", info.value
        return "ResultTooLarge"
    if kind == "interrupt":
        delay = rng.uniform(0.02, 0.1)
        sql = server.heavy if server.heavy and rng.random() < 0.5 else server.big(server.rows)
        try:
            with sigint_after(delay):
                got = con.sql(sql).to_pandas(max_bytes=None)
        except KeyboardInterrupt:
            return "KeyboardInterrupt"
        assert sql != server.heavy and consecutive(first_column(got)) and len(got) == server.rows
        return "completed"
    raise AssertionError(kind)


def check_reusable(server: Server, rng: random.Random) -> None:
    """The same connection answers a fresh question correctly."""
    a, b = rng.randint(-10**6, 10**6), rng.randint(-10**6, 10**6)
    got = server.con.sql("SELECT {{ a }} + {{ b }} AS s", a=a, b=b).to_pandas()
    assert int(got.iloc[0, 0]) == a + b


def settle(server: Server, until: Callable[[list[tuple[Any, bool]]], bool]) -> list[Any]:
    """Poll our sessions until ``until(sessions)`` holds; they are returned (or the last seen,
    after SETTLE_S: the caller's assertion then fails with them)."""
    assert server.sessions is not None
    end = time.monotonic() + SETTLE_S
    while True:
        seen = server.sessions()
        if until(seen) or time.monotonic() > end:
            return seen
        time.sleep(0.02)


def no_busy(seen: list[tuple[Any, bool]]) -> bool:
    return not any(busy for _, busy in seen)


# -- the campaign ----------------------------------------------------------------------------
def test_cancel_at_random_points_leaves_every_connection_usable(server: Server) -> None:
    rng = random.Random(f"cancel-{server.name}")
    check_reusable(server, rng)
    baseline = len(settle(server, no_busy)) if server.sessions else None
    outcomes: Counter[tuple[str, str]] = Counter()
    spent: Counter[str] = Counter()  # seconds per kind, checks included
    failures: list[str] = []
    most = 0
    start = time.perf_counter()
    for i in range(server.events * SCALE):
        kind = rng.choice(server.kinds)
        began = time.perf_counter()
        with watchdog(server) as dog:
            try:
                outcome = run_event(server, kind, rng)
                outcomes[(kind, outcome)] += 1
            except Exception as err:  # tallied, then failed at the end
                failures.append(f"event {i} {kind}: {type(err).__name__}: {err}"[:400])
        if dog["fired"]:
            failures.append(f"event {i} {kind}: still running after {WATCHDOG_S:g}s "
                            "(the cancellation never reached the engine)")
        for when in ("after the event", "after the check query"):
            if when == "after the check query":
                try:
                    check_reusable(server, rng)
                except Exception as err:
                    failures.append(f"event {i} {kind}: connection not reusable: {err!r}"[:400])
            if server.sessions is not None:
                seen = settle(server, no_busy)
                most = max(most, len(seen))
                if not no_busy(seen):
                    failures.append(f"event {i} {kind}: session(s) busy {when}: {seen}")
        spent[kind] += time.perf_counter() - began
        if len(failures) >= 5:
            break
        if failures and failures[-1].startswith(f"event {i} "):
            with contextlib.suppress(Exception):  # don't let one failure spill into the next
                server.stop_all()
    seconds = time.perf_counter() - start
    summary = ", ".join(f"{k}->{o}: {n}" for (k, o), n in sorted(outcomes.items()))
    costs = ", ".join(f"{k} {t:.1f}s" for k, t in sorted(spent.items()))
    print(f"\n[cancel] {server.name}: {sum(outcomes.values())} events in {seconds:.1f}s "
          f"(most sessions at once: {most}); {summary}; time by kind: {costs}")
    assert not failures, "\n".join(failures)
    if server.sessions is not None:
        # no leaked connections: as many sessions as before the campaign (MariaDB: plus the
        # one KILL QUERY goes through), none after closing
        limit = baseline + server.extra.get("spare", 0)
        assert len(settle(server, lambda s: len(s) <= limit)) <= limit
        server.con.close()
        assert settle(server, lambda s: not s) == []


# -- regressions: one named test per bug the campaign found (docs/reliability.md) ------------
def _engine(name: str) -> contextlib.AbstractContextManager[Server]:
    return _SERVERS[name]()


def test_deadline_keeps_cancelling_until_stopped_and_never_after() -> None:
    """Bug: a deadline that fell before the query reached the engine sent its one cancel into
    the void, and the query ran to its end (PostgreSQL 2-3 and DuckDB 9 of 40 tries of
    ``timeout=1e-6``). The cancel is now repeated until the stream stops the deadline."""
    from queryref.backends._common import Deadline

    calls: list[float] = []
    deadline = Deadline(1e-6, lambda: calls.append(time.monotonic()))
    end = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < end:
        time.sleep(0.01)
    deadline.stop()
    seen = len(calls)
    assert deadline.expired and seen >= 3
    time.sleep(0.3)
    assert len(calls) == seen  # none after stop(): it could land on the connection's next query


@pytest.mark.parametrize("name", ["duckdb", "postgres", "mariadb"])
def test_a_deadline_before_the_query_is_sent_still_stops_it(name: str) -> None:
    with _engine(name) as server:
        assert server.heavy is not None
        for _ in range(5 * SCALE):
            with watchdog(server) as dog, pytest.raises(QueryTimeout):
                server.con.sql(server.heavy).to_arrow(timeout=1e-6)
            assert not dog["fired"], "the query ran on past its deadline"
        check_reusable(server, random.Random(1))
        if server.sessions is not None:
            assert no_busy(settle(server, no_busy))


def test_duckdb_does_not_read_a_result_past_its_deadline() -> None:
    """Bug: when DuckDB finished before the deadline's interrupt landed, the whole result was
    returned with no error, long after the deadline."""
    with _engine("duckdb") as server:
        q = server.con.sql(server.big(200_000))
        for _ in range(20 * SCALE):
            try:
                got = q.to_arrow(timeout=1e-6, max_bytes=None)
            except QueryTimeout:
                continue
            raise AssertionError(f"{got.num_rows} rows came back past timeout=1e-6")


@pytest.mark.parametrize("name", ["duckdb", "postgres", "mariadb"])
def test_ctrl_c_raises_keyboard_interrupt_and_stops_the_query(name: str) -> None:
    """Bugs: Ctrl-C on PostgreSQL came back as ``BackendError`` (ADBC's own SIGINT handler
    turns it into a driver error); on DuckDB as a raw ``RuntimeError``, and only once the
    query had finished by itself (DuckDB looks for Ctrl-C between tasks); on MariaDB the
    query went on running in the server (the interrupt skipped the code that kills it)."""
    with _engine(name) as server:
        assert server.heavy is not None
        for delay in (0.02, 0.1):
            with watchdog(server) as dog, pytest.raises(KeyboardInterrupt), \
                    sigint_after(delay):
                server.con.sql(server.heavy).to_pandas()
            assert not dog["fired"], "Ctrl-C did not stop the query"
            if server.sessions is not None:
                assert no_busy(settle(server, no_busy))
            check_reusable(server, random.Random(2))


_SMALL_POOL = {
    "postgres": lambda: qr.connect(PG_URL, pool_size=2, max_overflow=0, pool_timeout=0.5),
    "mariadb": lambda: qr.connect(MYSQL_URL, pool_size=2, max_overflow=0, pool_timeout=0.5),
}


@pytest.mark.parametrize("name", ["postgres", "mariadb"])
def test_ctrl_c_at_any_moment_gives_the_connection_back_whole(name: str) -> None:
    """Bug (seen once in CI): a Ctrl-C that came while a query's connection was being given
    back left the work half done: ADBC's cursor had released its statement but was not
    marked closed, so its finalizer released it again at some later garbage collection
    ("Underflow in closing this AdbcStatement"), and a Ctrl-C during the check-in's
    statements or between the pool's two lists lost the connection's pool slot for good.
    Ctrl-C is sent at moments spread over the whole life of a short query, the pool kept to
    two connections; afterwards two streams open at once (a slot lost: PoolExhausted)."""
    big = {"postgres": "SELECT generate_series(1, 3000) AS n",
           "mariadb": "SELECT seq AS n FROM seq_1_to_3000"}[name]
    unraisable: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    con = _SMALL_POOL[name]()
    try:
        q = con.sql(big)
        started = time.monotonic()
        assert consecutive(first_column(q.to_pandas()))
        took = time.monotonic() - started
        rng = random.Random(f"anywhere-{name}")
        outcomes: Counter[str] = Counter()
        for _ in range(40):
            try:
                with sigint_after(rng.uniform(0, took * 1.5)):
                    got = q.to_pandas()
                assert consecutive(first_column(got)) and len(got) == 3000
                outcomes["done"] += 1
            except KeyboardInterrupt:
                outcomes["interrupted"] += 1
        gc.collect()  # (once: in a big test process each collection takes ~0.5 s)
        assert outcomes["interrupted"] > 0, outcomes
        readers = [con.sql(big).to_arrow_batches(100) for _ in range(2)]
        assert [consecutive(first_column(r.read_next_batch())) for r in readers] == [True] * 2
        del readers  # (pyarrow's close() does not reach a Python-fed reader)
        assert consecutive(first_column(q.to_pandas()))
    finally:
        con.close()
        gc.collect()
        sys.unraisablehook = hook
    assert [f"{u.exc_type.__name__}: {u.exc_value}" for u in unraisable] == []


@pytest.mark.parametrize("name", ["postgres", "mariadb"])
def test_a_stream_left_early_leaves_no_query_running(name: str) -> None:
    """Bug: on PostgreSQL a stream closed before its end left its COPY running (the session
    ``active`` until someone drained it), and the connection's next query first read the
    rest of the abandoned result."""
    with _engine(name) as server:
        reader = server.con.sql(server.big(server.rows)).to_arrow_batches(1000)
        assert consecutive(first_column(reader.read_next_batch()))
        del reader
        assert no_busy(settle(server, no_busy))
        check_reusable(server, random.Random(3))


@pytest.mark.parametrize("name", ["postgres", "mariadb", "duckdb"])
def test_closing_the_connection_stops_its_open_streams(name: str) -> None:
    """Bug: ``con.close()`` with a reader still open drained the rest of its result on
    MariaDB (70 s for 3M rows) and left the PostgreSQL session ``active`` until the reader
    was garbage-collected. Open streams are cancelled first now."""
    with _engine(name) as server:
        reader = server.con.sql(server.big(server.rows)).to_arrow_batches(1000)
        assert consecutive(first_column(reader.read_next_batch()))
        with watchdog(server) as dog:
            server.con.close()
        assert not dog["fired"], "closing waited for the open result"
        if server.sessions is not None:
            assert settle(server, lambda s: not s) == []
        with pytest.raises(qr.errors.QueryCancelled):
            reader.read_next_batch()


@pytest.mark.parametrize("name", ["postgres", "mariadb", "duckdb"])
def test_closing_the_connection_stops_a_running_count(name: str) -> None:
    """Bug: the sinks' helper queries (``count()``, the estimate's count, ``shrink_dtypes``'
    statistics) were not in the connection's stream registry, so ``con.close()`` from another
    thread left a count over a huge join running in the database."""
    with _engine(name) as server:
        assert server.heavy is not None
        q = server.con.sql(server.heavy)
        outcome: dict[str, BaseException | None] = {}

        def count() -> None:
            try:
                q.count()
                outcome["error"] = None
            except BaseException as err:
                outcome["error"] = err

        worker = threading.Thread(target=count, daemon=True)
        worker.start()
        time.sleep(1.0)  # the count is running in the database
        with watchdog(server) as dog:
            server.con.close()
            worker.join(30)
        assert not dog["fired"], "closing the connection did not stop the count"
        assert not worker.is_alive()
        assert isinstance(outcome.get("error"), qr.errors.QueryRefError), outcome
        if server.sessions is not None:
            assert settle(server, lambda s: not s) == []
