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
next query finds a clean session (:data:`CHECKIN`). ``execute`` and ``create_table`` are the
doors for writes and run in autocommit as before. The ``BEGIN`` also tells a connection the
server ended while it sat in the pool: the pool's other idle connections are dropped (the
server likely ended them too) and the query goes to a fresh one; a query whose connection is
lost before its first row reached the caller is run once more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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
from queryref.backends._pg_types import arrow_schema, convert_batch, plan_estimate
from queryref.backends._pool import Pool, pool_options, split_url
from queryref.errors import ParameterError

#: how a query's connection starts: a transaction in which the server refuses writes
BEGIN = "BEGIN TRANSACTION READ ONLY"
#: how it ends before going back to the pool: the transaction rolled back (with whatever a
#: function in the query changed: settings, large objects, notifications), then what a
#: rollback keeps: the advisory locks a query took at session level released, and the
#: session's random() seeded afresh (a ``setseed`` would make the next queries' draws known)
CHECKIN = ("ROLLBACK", "DO $$BEGIN PERFORM pg_advisory_unlock_all(); PERFORM setseed("
           "('x' || substr(md5(gen_random_uuid()::text), 1, 8))::bit(32)::int "
           "/ 2147483648.0); END$$")


class PostgresBackend(Backend):
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
            "PostgreSQL", connect=self._new_connection if uri else None, close=_close,
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

    # -- connections: checked out of the pool per query, or per stream until it ends ---------
    def _new_connection(self) -> Any:
        import adbc_driver_postgresql.dbapi as pg

        assert self._uri is not None
        try:
            return pg.connect(self._uri, autocommit=True, **self._connect_options)
        except Exception as err:
            self.fail(err)

    def _acquire(self) -> Any:
        return self._pool.acquire()

    def _release(self, con: Any, *, failed: bool = False) -> bool:
        """Back to the pool; after an error, only if the connection still answers."""
        healthy = not failed or _answers(con)
        self._pool.release(con, healthy=healthy)
        return healthy

    def _checkout(self) -> Any:
        """A connection in a read-only transaction (see :data:`BEGIN`).

        A connection the server ended while it sat in the pool fails here, before anything
        ran: it is dropped with the pool's other idle ones, and a fresh one takes its place.
        """
        con = self._acquire()
        try:
            _statements(con, (BEGIN,) if _autocommit(con) else ())
        except Exception as err:
            self._pool.release(con, healthy=False)
            self._pool.discard_idle()
            if self._uri is None:
                self.fail(err)
            con = self._acquire()
            try:
                _statements(con, (BEGIN,) if _autocommit(con) else ())
            except Exception as again:
                self._pool.release(con, healthy=False)
                self.fail(again)
        return con

    def _checkin(self, con: Any) -> bool:
        """End a query's transaction and give the connection back clean (see :data:`CHECKIN`);
        False when it no longer answers (it is closed)."""
        try:
            _statements(con, CHECKIN if _autocommit(con) else CHECKIN[1:])
        except Exception:
            self._pool.release(con, healthy=False)
            return False
        self._pool.release(con)
        return True

    def _run(self, fn: Callable[[Any], Any], *, query: bool = True, retry: bool = True) -> Any:
        """``fn(cursor)`` on a pooled connection: a query in a read-only transaction (run once
        more on a fresh connection if its connection was lost), else a statement in
        autocommit."""
        con = self._checkout() if query else self._acquire()
        failed = False
        try:
            cur = con.cursor()
            try:
                return interruptible(lambda: fn(cur), cur.adbc_cancel)
            finally:
                cur.close()
        except Exception as err:
            failed = True
            lost = not (self._checkin(con) if query else self._release(con, failed=True))
            if query and lost and retry:
                self._pool.discard_idle()
                return self._run(fn, retry=False)
            self.fail(err)
        except BaseException:  # Ctrl-C: cancelled; the connection is checked before reuse
            failed = True
            if query:
                self._checkin(con)
            else:
                self._release(con, failed=True)
            raise
        finally:
            if not failed:
                if query:
                    self._checkin(con)
                else:
                    self._release(con)

    # -- the interface ----------------------------------------------------------------------
    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None, retry: bool = True) -> Stream:
        started = time.monotonic()
        con = self._checkout()
        cur = con.cursor()
        # The driver sizes batches in bytes (a batch ends with the row that crosses the hint):
        # ~64 bytes a row keeps them near batch_rows, batch_bytes bounds them whatever the
        # row width, and batches that come with more rows are handed on in slices.
        rows_hint = max(batch_rows * 64, 1 << 16)
        hint = str(rows_hint if batch_bytes is None else min(rows_hint, max(batch_bytes, 1 << 16)))
        try:
            cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": hint})
        except Exception:  # older drivers: their default (16 MB) batches
            pass
        deadline = Deadline(timeout, cur.adbc_cancel)
        state = {"ended": False, "failed": False}

        def finish() -> bool:
            deadline.stop()
            try:
                cur.close()
            except Exception:  # the connection is gone: the check-in finds out
                pass
            return self._checkin(con)

        def start() -> Any:
            cur.execute(sql)
            return cur.fetch_record_batch()

        try:
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
            if not state["ended"]:  # else libpq drains the rest before the next query
                # (and checked before reuse: the check reads what was still in flight, so the
                # server's session is idle, not stuck sending, while it waits in the pool)
                state["failed"] = True
                try:
                    cur.adbc_cancel()
                except Exception:
                    pass
            try:
                reader.close()
            except Exception:
                pass
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


def _close(con: Any) -> None:
    con.close()


def _autocommit(con: Any) -> bool:
    """Whether a connection runs each statement on its own (queryref opens them so; one you
    pass in may hold a transaction of yours, which a query then joins as it always did)."""
    return getattr(con, "_autocommit", True) is not False


def _statements(con: Any, sql: tuple[str, ...]) -> None:
    """Run statements that return no rows, on a cursor of their own (as updates: the driver
    then sends each once, where ``execute`` would prepare it first, a second round trip)."""
    if not sql:
        return
    cur = con.cursor()
    try:
        statement = cur.adbc_statement
        for text in sql:
            statement.set_sql_query(text)
            statement.execute_update()
    finally:
        cur.close()


def _answers(con: Any) -> bool:
    """Whether a connection that just failed still runs a query (the server may have gone)."""
    try:
        cur = con.cursor()
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            cur.close()
    except Exception:
        return False
    return True
