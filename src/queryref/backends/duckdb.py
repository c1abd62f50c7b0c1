"""Embedded DuckDB: the default engine (``qr.connect()``).

Streams through the relation API (``con.sql(q).to_arrow_reader(n)``), which hands batches
over as DuckDB produces them; ``execute()`` would copy the whole result first. DuckDB allows
one open result per connection, and a connection must not be used by two threads at once: a
query runs on the main connection when it is free, else on a cursor of the same database
(``con.cursor()``: its own connection, closed when the query or stream ends). So a query
started while a stream is still open, or from another thread, never waits. Objects registered
for reading in place (``register_arrow``) are registered on each cursor too: DuckDB keeps
registrations per connection.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
from sqlglot import exp

from queryref.backends._base import Backend, PlanEstimate, Stream
from queryref.backends._common import Deadline, ErrorRule, interruptible, raise_wrapped, wrap_error
from queryref.backends._duckdb_types import exact_batch, exact_schema, is_bignum, plan_estimate
from queryref.errors import (
    BackendError,
    PathNotAllowed,
    QueryCancelled,
    SQLParseError,
)

T = TypeVar("T")


#: DuckDB's errors that mean more than BackendError (messages are redacted first: a URL with
#: a password in a file path, say)
ERRORS = (
    ErrorRule(lambda e, m: isinstance(e, duckdb.InterruptException) or "INTERRUPT" in m.upper(),
              lambda m: QueryCancelled("the query was interrupted in DuckDB")),
    ErrorRule(lambda e, m: isinstance(e, duckdb.ParserException),
              lambda m: SQLParseError(m.split("\n")[0])),
    ErrorRule(lambda e, m: isinstance(e, duckdb.PermissionException)
              and "disabled by configuration" in m,
              lambda m: PathNotAllowed(f"DuckDB: {m.split(' - ')[0]}: outside the directories "
                                       "this connection allows (qr.connect(allowed_paths=[...]))")),
)
DRIVER_ERRORS = (duckdb.Error, OSError, pa.ArrowException)


def _guard(fn: Callable[[], T]) -> T:
    """``fn()`` while a database opens (no backend yet), its errors translated as a backend's."""
    try:
        return fn()
    except DRIVER_ERRORS as err:
        raise_wrapped(err, "DuckDB", table=ERRORS)


#: settings of the databases queryref opens: no extension is downloaded or loaded behind a
#: query's back (``con.execute("INSTALL x; LOAD x")`` is the explicit door; community
#: extensions stay off for the database's life)
DEFAULTS: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


def _confine(con: duckdb.DuckDBPyConnection, allowed: Any) -> None:
    """Allow file access from SQL only under the ``allowed`` directories, for good.

    DuckDB takes ``allowed_directories`` only once the database runs, then
    ``enable_external_access=false`` locks it (it cannot be turned back on).
    """
    import os

    from queryref.errors import ParameterError

    if isinstance(allowed, str | os.PathLike):
        allowed = [allowed]
    folders = []
    for path in allowed:
        if not isinstance(path, str | os.PathLike):
            raise ParameterError(f"allowed_paths takes directories, not {path!r}")
        folders.append(os.path.join(os.path.realpath(os.fspath(path)), ""))
    listed = exp.Array(expressions=[exp.Literal.string(f) for f in folders]).sql("duckdb")
    _guard(lambda: con.execute(f"SET allowed_directories = {listed}"))
    _guard(lambda: con.execute("SET enable_external_access = false"))


class DuckDBBackend(Backend):
    """Embedded DuckDB, in memory or on a file."""

    name = "duckdb"
    dialect = "duckdb"
    label = "DuckDB"
    schemes = ("duckdb",)
    errors = ERRORS
    driver_errors = DRIVER_ERRORS
    case_insensitive = True
    create_or_replace = True
    batch_unit = 2048  # DuckDB computes a vector of 2,048 rows at a time (its reader may
    adapts_batches = False  # hand them over in smaller batches, of a size fixed at open)

    def __init__(self, con: duckdb.DuckDBPyConnection, *, owned: bool, label: str) -> None:
        self._con = con
        self._owned = owned
        self._label = label
        self._lock = threading.Lock()
        self._main_busy = False
        self._cursors: set[duckdb.DuckDBPyConnection] = set()  # other threads' connections
        self._closed = False
        # register_arrow()'s objects: every cursor gets them; the main connection has those
        # in _on_main (it gets the rest when next taken)
        self._registered: dict[str, Any] = {}
        self._on_main: dict[str, Any] = {}

    @classmethod
    def open(cls, database: str = ":memory:", *, allowed_paths: Any = None,
             **config: Any) -> DuckDBBackend:
        """Open (or create) a DuckDB database; ``":memory:"`` for a private in-memory one.

        ``config`` is DuckDB's (``threads``, ``memory_limit``, ...) over :data:`DEFAULTS`.
        ``allowed_paths``: directories SQL may read and write files in (``read_csv``,
        ``glob``, ``COPY``, ``ATTACH``...); any other file access is refused by DuckDB
        (``PathNotAllowed``), and the confinement cannot be lifted on that database.
        """
        settings = {**DEFAULTS, **config}
        con = _guard(lambda: duckdb.connect(database, config=settings))
        if allowed_paths is not None:
            try:
                _confine(con, allowed_paths)
            except BaseException:
                con.close()
                raise
        return cls(con, owned=True, label=database)

    def guard(self, fn: Callable[[], T], deadline: Deadline | None = None) -> T:
        try:
            return super().guard(fn, deadline)
        except RuntimeError as err:  # DuckDB's own answer to Ctrl-C on the main thread
            if str(err) == "Query interrupted":
                raise KeyboardInterrupt("the query was interrupted in DuckDB") from None
            raise

    # -- connections: the main one when free, else a cursor on the same database ----------
    def _acquire(self) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
        if self._closed:
            raise BackendError("this connection is closed")
        with self._lock:
            main = not self._main_busy
            self._main_busy = True
            registered = dict(self._registered)
        con = self._con if main else self.guard(self._con.cursor)
        if not main:
            with self._lock:
                self._cursors.add(con)
        release = self._release_main if main else partial(self._release_cursor, con)
        try:
            for name, data in registered.items():
                if not main or self._on_main.get(name) is not data:
                    self.guard(partial(con.register, name, data))
                    if main:
                        self._on_main[name] = data
        except BaseException:
            release()
            raise
        return con, release

    def _release_cursor(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._cursors.discard(con)
        con.close()

    def _release_main(self) -> None:
        with self._lock:
            self._main_busy = False

    def _run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        con, release = self._acquire()
        try:
            return self.guard(lambda: interruptible(lambda: fn(con), con.interrupt))
        finally:
            release()

    # -- the interface --------------------------------------------------------------------
    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None) -> Stream:
        # (DuckDB's reader cannot change its batch size once open: the caller sizes
        # batch_rows from the row width, and the budget cuts what comes bigger)
        con, release = self._acquire()
        deadline = Deadline(timeout, con.interrupt)

        def timed(fn: Callable[[], T]) -> T:
            try:
                return self.guard(fn)
            except QueryCancelled:
                if deadline.expired:
                    raise deadline.error() from None
                raise

        try:
            reader = timed(lambda: interruptible(
                lambda: con.sql(sql).to_arrow_reader(batch_rows), con.interrupt))
        except BaseException:
            deadline.stop()
            release()
            raise

        schema = reader.schema
        exact = exact_schema(schema) if any(is_bignum(f.type) for f in schema) else None

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                if deadline.expired:  # a result that outran its cancel is not read past it
                    raise deadline.error()
                try:
                    batch = timed(lambda: interruptible(reader.read_next_batch, con.interrupt))
                except StopIteration:
                    return
                yield batch if exact is None else exact_batch(batch, exact)

        def close() -> None:
            deadline.stop()
            try:
                reader.close()
            finally:
                release()

        try:  # (until the stream exists, an interrupt would leave the connection taken)
            return Stream(exact or schema, batches(), cancel=con.interrupt, close=close,
                          read_ahead=True)
        except BaseException:
            close()
            raise

    def schema(self, sql: str) -> pa.Schema:
        def read(con: duckdb.DuckDBPyConnection) -> pa.Schema:
            rel = con.sql(sql)
            schema = rel.limit(0).to_arrow_table().schema
            # limit() reads the query as a subquery, which renames duplicate names (a, a_1):
            # the names are the query's own, as its rows arrive
            return exact_schema(pa.schema(
                [f.with_name(n) for f, n in zip(schema, rel.columns, strict=True)],
                metadata=schema.metadata))

        return self._run(read)

    def execute(self, sql: str) -> int | None:
        def run(con: duckdb.DuckDBPyConnection) -> int | None:
            result = con.execute(sql)
            if result.description and result.description[0][0] == "Count":
                row = result.fetchone()
                return int(row[0]) if row else None
            return None

        return self._run(run)

    def explain(self, sql: str) -> str:
        rows = self._run(lambda con: con.sql(f"EXPLAIN {sql}").fetchall())
        return "\n".join(str(r[1]) for r in rows)

    def estimate(self, sql: str) -> PlanEstimate:
        """The root's ``Estimated Cardinality`` from ``EXPLAIN (FORMAT JSON)``.

        A LIMIT node reports none (or 0): the estimate is then its input's, and the caller
        caps it by the query's own LIMIT. DuckDB guesses a filter's selectivity (a fixed
        20%), so a plan with a filter is not firm.
        """
        rows = self._run(lambda con: con.sql(f"EXPLAIN (FORMAT JSON) {sql}").fetchall())
        return plan_estimate(rows[0][1] if rows else None)

    def create_table(self, name: exp.Table, data: pa.RecordBatchReader, replace: bool) -> None:
        view = f"_qr_upload_{uuid.uuid4().hex}"
        create = exp.Create(
            kind="TABLE",
            this=name,
            replace=replace,
            expression=exp.select("*").from_(exp.to_table(view)),
        ).sql(dialect=self.dialect)

        def run(con: duckdb.DuckDBPyConnection) -> None:
            con.register(view, data)
            try:
                con.execute(create)
            finally:
                con.unregister(view)

        self._run(run)

    def copy_to_parquet(self, query: exp.Query, path: str) -> int | None:
        return self._copy(query, path, [exp.CopyParameter(this=exp.var("FORMAT"),
                                                          expression=exp.var("PARQUET"))])

    def copy_to_csv(self, query: exp.Query, path: str) -> int | None:
        return self._copy(query, path, [
            exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("CSV")),
            exp.CopyParameter(this=exp.var("HEADER")),
        ])

    def _copy(self, query: exp.Query, path: str, params: list[exp.Expr]) -> int | None:
        if not query.args.get("order"):
            # Without ORDER BY the rows have no order to keep, and keeping DuckDB's anyway
            # (its default) buffers whatever arrives ahead of its turn: COPY of lineitem x3
            # (UNION ALL, 18M rows) peaked at +4,539 MiB, +234 MiB without (and 1.7x faster).
            params = [*params, exp.CopyParameter(this=exp.var("PRESERVE_ORDER"),
                                                 expression=exp.false())]
        copy = exp.Copy(
            this=exp.Subquery(this=query.copy()),
            kind=False,
            files=[exp.Literal.string(path)],
            params=params,
        ).sql(dialect=self.dialect)
        return self.execute(copy)

    def register_arrow(self, name: str, data: Any) -> None:
        """Make an in-memory Arrow/pandas/Polars object readable as a view (read in place),
        on the main connection and on every cursor a query runs on."""
        def run(con: duckdb.DuckDBPyConnection) -> None:
            con.register(name, data)
            if con is self._con:
                self._on_main[name] = data

        self._run(run)
        with self._lock:
            self._registered[name] = data

    def close(self) -> None:
        """Close; a query another thread runs on the connection is interrupted first (DuckDB
        refuses to close a busy connection: "connection is busy with another call")."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            cursors = list(self._cursors)
        for cursor in cursors:  # queries of other threads stop (QueryCancelled there)
            with contextlib.suppress(duckdb.Error):
                cursor.interrupt()
        if not self._owned:
            return
        deadline = time.monotonic() + 10
        while True:
            try:
                self._con.close()
                return
            except duckdb.ConnectionException as err:  # a retry after "busy" closed it
                if "already closed" in str(err):
                    return
                raise wrap_error(err, self.label, table=self.errors) from None
            except duckdb.Error as err:
                if "busy" not in str(err) or time.monotonic() > deadline:
                    raise wrap_error(err, self.label, table=self.errors) from None
                try:
                    self._con.interrupt()  # the other thread gets QueryCancelled
                except duckdb.ConnectionException:
                    return  # the busy close closed it after all
                time.sleep(0.01)

    def describe(self) -> str:
        return f"duckdb {self._label}"
