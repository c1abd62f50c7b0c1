"""PostgreSQL through ADBC (``adbc-driver-postgresql``): Arrow end to end, streamed.

The driver runs each query as ``COPY (...) TO STDOUT (FORMAT binary)`` and hands the rows over
as Arrow batches while they arrive; ``adbc_execute_schema`` gives a result's schema without
running it and ``adbc_cancel`` stops a running query from another thread. NUMERIC arrives as an
opaque extension type over strings: it becomes ``decimal128(p, s)`` when the column has a
declared precision, else ``float64`` (what pandas computes with); other opaque types (json,
uuid, inet ...) become their string storage.

libpq runs one query at a time per connection, so each query, and each stream until it ends
or is closed, checks a connection out of a small pool (:mod:`._pool`, SQLAlchemy's options:
``pool_size=5``, ``max_overflow=10``, ``pool_timeout=30``, as keywords of ``qr.connect`` or in
the URL's query string). A query started while a stream is still open, or from another thread,
gets another connection to the same database. A stream closed before its end is cancelled in
the server first, so the connection goes back ready (not draining the rest of the result);
after an error a connection goes back only if it still answers.

Queries (streams, schemas, plans) run in a read-only transaction the server enforces
(``BEGIN TRANSACTION READ ONLY``), rolled back at the end: what a function in a query could
leave (a ``set_config`` hidden in ``query_to_xml``, a large object, a notification) goes with
it, and before the connection goes back its session-level advisory locks are released, so the
next query finds a clean session (``_pg_session.CHECKIN``). ``execute`` and ``create_table`` are the
doors for writes and run in autocommit as before. The ``BEGIN`` also tells a connection the
server ended while it sat in the pool: the pool's other idle connections are dropped (the
server likely ended them too) and the query goes to a fresh one; a query whose connection is
lost before its first row reached the caller is run once more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from sqlglot import exp

from queryref._redact import url_password
from queryref.backends._base import Backend, PlanEstimate, Stream, Sweep
from queryref.backends._common import (
    Deadline,
    describe_url,
    interruptible,
    raise_wrapped,
)
from queryref.backends._pg_session import (
    PgSessions,
    close_connection,
    close_cursor,
    open_cursor,
)
from queryref.backends._pg_types import arrow_schema, convert_batch, plan_estimate
from queryref.backends._pool import Pool, pool_options, split_url
from queryref.errors import ParameterError


class PostgresBackend(PgSessions, Backend):
    """A PostgreSQL database reached through an ADBC connection."""

    name = "postgres"
    dialect = "postgres"
    label = "PostgreSQL"
    schemes = ("postgresql", "postgres")

    def __init__(self, con: Any, *, owned: bool, uri: str | None = None,
                 label: str = "postgresql (your connection)",
                 connect_options: dict[str, Any] | None = None, sweep: Sweep | None = None,
                 **pool: Any) -> None:
        self._main = con
        self._owned = owned
        self._sweep = sweep
        self._uri = uri
        self._label = label
        self.secrets = (url_password(uri),) if uri else ()
        self._connect_options = dict(connect_options or {})
        hint = "" if uri else (
            "; or connect with a URL, so queryref can open more connections than your one")
        sizes = pool_options(pool)
        if pool:
            raise ParameterError(f"unknown connection options: {', '.join(sorted(pool))}")
        self._pool: Pool[Any] = Pool(
            "PostgreSQL", connect=self._new_connection if uri else None, close=close_connection,
            first=con, owned=lambda c: owned or c is not con, hint=hint, **sizes)

    @classmethod
    def open(cls, uri: str, *, sweep: Sweep | None = None, **options: Any) -> PostgresBackend:
        """Connect to ``postgresql://user:pw@host:port/db`` (autocommit).

        ``pool_size``, ``max_overflow`` and ``pool_timeout`` (keywords, or in the URL's query
        string) size the pool of connections (see :mod:`queryref.backends._pool`); other
        keywords go to ``adbc_driver_postgresql.dbapi.connect``.
        """
        import adbc_driver_postgresql.dbapi as pg

        uri = "postgresql://" + uri.split("://", 1)[1] if "://" in uri else uri
        uri, from_url = split_url(uri)
        pool = pool_options(options, from_url)
        _check_keywords(options)
        secrets = [url_password(uri)]
        try:
            con = pg.connect(uri, autocommit=True, **options)
        except Exception as err:
            raise_wrapped(err, cls.label, secrets)
        backend = cls(con, owned=True, uri=uri, label=describe_url(uri),
                      connect_options=options, sweep=sweep, **pool)
        if sweep is not None:
            sweep(backend)  # cache tables left by processes of this host that are gone
        return backend

    def __repr__(self) -> str:
        return f"<PostgresBackend {self._label}>"

    # -- the interface ----------------------------------------------------------------------
    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None, retry: bool = True) -> Stream:
        started = time.monotonic()
        # The driver sizes batches in bytes (a batch ends with the row that crosses the hint):
        # ~64 bytes a row keeps them near batch_rows, batch_bytes bounds them whatever the
        # row width, and batches that come with more rows are handed on in slices.
        rows_hint = max(batch_rows * 64, 1 << 16)
        hint = str(rows_hint if batch_bytes is None else min(rows_hint, max(batch_bytes, 1 << 16)))
        con = self._checkout()
        cur = None
        try:
            cur = open_cursor(con)
            try:
                cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": hint})
            except Exception:  # older drivers: their default (16 MB) batches
                pass
            deadline = Deadline(timeout, cur.adbc_cancel)
        except BaseException:  # (a Ctrl-C included: given back, not lost to the pool)
            if cur is not None:
                close_cursor(cur)
            self._checkin(con)
            raise
        state = {"ended": False, "failed": False}

        def finish() -> bool:
            deadline.stop()
            try:
                close_cursor(cur)
            except Exception:  # the connection is gone: the check-in finds out
                pass
            return self._checkin(con)

        def start() -> Any:
            cur.execute(sql)
            return cur.fetch_record_batch()

        try:
            with self.running(cur.adbc_cancel):
                reader = interruptible(start, cur.adbc_cancel)
        except Exception as err:
            state["failed"] = True
            lost = not finish()
            if lost and retry and not deadline.expired:  # no row moved: once more, afresh
                self._pool.discard_idle()
                left = None if timeout is None else timeout - (time.monotonic() - started)
                if left is None or left > 0:
                    return self.stream(sql, batch_rows, timeout=left, batch_bytes=batch_bytes,
                                       retry=False)
            self.fail(err, deadline)
        except BaseException:  # Ctrl-C: cancelled; the connection is checked before reuse
            state["failed"] = True
            finish()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                try:
                    batch = interruptible(reader.read_next_batch, cur.adbc_cancel)
                except StopIteration:
                    state["ended"] = True
                    if deadline.expired:
                        raise deadline.error() from None
                    return
                except Exception as err:
                    state["ended"] = state["failed"] = True
                    self.fail(err, deadline)
                batch = convert_batch(batch, schema)
                for start in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(start, batch_rows)

        def close() -> None:
            try:
                if not state["ended"]:  # else libpq drains the rest before the next query
                    # (and checked before reuse: the check reads what was still in flight, so
                    # the server's session is idle, not stuck sending, while it waits in the
                    # pool)
                    state["failed"] = True
                    try:
                        cur.adbc_cancel()
                    except Exception:
                        pass
                try:
                    reader.close()
                except Exception:
                    pass
            finally:  # (a Ctrl-C above must not keep the connection from the pool)
                finish()

        try:  # (until the stream exists, an interrupt would leave the query running)
            schema = arrow_schema(reader.schema)
            return Stream(schema, batches(), cancel=cur.adbc_cancel, close=close,
                          read_ahead=True)
        except BaseException:
            close()
            raise

    def schema(self, sql: str) -> pa.Schema:
        return arrow_schema(self._run(lambda cur: cur.adbc_execute_schema(sql)), marks=True)

    def execute(self, sql: str) -> int | None:
        def run(cur: Any) -> int | None:
            cur.execute(sql)
            return cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None

        return self._run(run, query=False)

    def explain(self, sql: str) -> str:
        def run(cur: Any) -> list[Any]:
            cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            cur.execute(f"EXPLAIN {sql}")
            return list(cur.fetchall())

        return "\n".join(str(r[0]) for r in self._run(run))

    def estimate(self, sql: str) -> PlanEstimate:
        """``Plan Rows`` and ``Plan Width`` of the root of ``EXPLAIN (FORMAT JSON)``."""
        def run(cur: Any) -> list[Any]:
            cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            cur.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            return list(cur.fetchall())

        rows = self._run(run)
        return plan_estimate(rows[0][0] if rows else None)

    def create_table(self, name: exp.Table, data: pa.RecordBatchReader, replace: bool) -> None:
        mode = "replace" if replace else "create"
        # ADBC takes names exactly, while in SQL (con.table) an unquoted name means lower case
        table = _as_stored(name.this)
        schema = _as_stored(name.args["db"]) if name.args.get("db") else None
        self._run(lambda cur: cur.adbc_ingest(table, data, mode=mode, db_schema_name=schema),
                  query=False)

    def close(self) -> None:
        """Close the idle connections now and the busy ones as their streams end (sweeping
        orphaned cache tables first, on a connection still open: never a new login)."""
        if self._sweep is not None and self._pool.status()["idle"] and self._uri is not None:
            self._sweep(self)
        self._pool.close()

    def describe(self) -> str:
        return self._label

    def reopen(self) -> str | None:
        return self._uri


def _as_stored(part: exp.Identifier) -> str:
    """The name PostgreSQL gives an identifier: unquoted names fold to lower case."""
    return str(part.name if part.quoted else part.name.lower())


def _check_keywords(options: dict[str, Any]) -> None:
    """Refuse a keyword the ADBC driver does not take, before it is given one: its
    ``Connection`` then fails half-built, and its finalizer prints ``Exception ignored ...
    AttributeError: 'Connection' object has no attribute '_closed'`` into the user's output."""
    import inspect

    import adbc_driver_manager.dbapi as dbapi
    import adbc_driver_postgresql.dbapi as pg

    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    taken = {name for fn in (pg.connect, dbapi.Connection.__init__)
             for name, p in inspect.signature(fn).parameters.items() if p.kind in named}
    taken -= {"uri", "self", "db", "conn", "autocommit"}
    if "autocommit" in options:
        msg = ("qr.connect(): autocommit is queryref's to set on PostgreSQL (each query runs "
               "in a read-only transaction of its own); leave it out")
        raise ParameterError(msg)
    unknown = sorted(set(options) - taken)
    if unknown:
        msg = (f"qr.connect(): PostgreSQL takes no keyword {unknown[0]!r}; it takes "
               f"pool_size, max_overflow, pool_timeout and the ADBC driver's "
               f"{', '.join(sorted(taken))} (libpq settings go in the URL's query string, "
               "e.g. ?sslmode=require)")
        raise ParameterError(msg)
