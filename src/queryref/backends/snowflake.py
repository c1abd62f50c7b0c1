"""Snowflake through ``snowflake-connector-python`` (a Snowpark ``Session`` uses its connection).

Results arrive as Arrow with ``cursor.fetch_arrow_batches()``. Before any remote chunk is
downloaded, ``cursor.get_result_batches()`` says how many rows the result has and how large its
chunks are uncompressed: the stream carries those figures so the guard can refuse a result that
is already over budget (``Stream.expected_rows`` / ``expected_bytes``).

Names: Snowflake upper-cases unquoted names, so ``con.table("orders")`` and ``qr.col("amount")``
mean ``ORDERS`` and ``AMOUNT`` exactly as they would in Snowflake SQL; new names written in lower
case (``mutate(net=...)``) come back upper-case, as in Snowpark.

Threads share the connection: every query runs on a cursor of its own in the one session
(the connector is thread-safe per connection, PEP 249 threadsafety 2), so a ``cache()``
temporary table is seen by all of them. fakesnow's server cannot run two queries of one
session at once, so the concurrency tests leave Snowflake out.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa
from sqlglot import exp

from queryref.backends._base import Backend, PlanEstimate, Stream
from queryref.backends._common import Deadline, ErrorRule
from queryref.backends._quote import ident, literal
from queryref.backends._rows import split_bytes
from queryref.backends._sf_types import arrow_type, insert_value, result_size, snowflake_type
from queryref.errors import (
    BackendError,
    ParameterError,
    QueryCancelled,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

#: rows per INSERT statement when uploading (each a sqlglot-built VALUES list); small enough
#: that one statement stays far inside the connector's 60 s read timeout on a slow server
#: (fakesnow takes ~3 ms a row, 25 s for 2,000 on a loaded machine)
UPLOAD_ROWS = 500
#: the connector's errors that mean more than BackendError
ERRORS = (
    ErrorRule(lambda e, m: getattr(e, "errno", None) == 604,  # "SQL execution canceled"
              lambda m: QueryCancelled(f"the query was cancelled in Snowflake: {m}")),
)


class SnowflakeBackend(Backend):
    """A ``snowflake.connector`` connection (owned when queryref opened it)."""

    name = "snowflake"
    dialect = "snowflake"
    label = "Snowflake"
    schemes = ("snowflake",)
    errors = ERRORS
    create_or_replace = True

    def __init__(self, con: Any, *, owned: bool, session: Any = None,
                 secrets: tuple[str, ...] = ()) -> None:
        from snowflake.connector.errors import Error

        self._con = con
        self._owned = owned
        self._session = session
        self.secrets = tuple(s for s in secrets if s)
        self.driver_errors = (Error, OSError, pa.ArrowException)
        self._closed = False
        self._session_lock = threading.Lock()  # one Snowpark Session, however many threads

    # -- running SQL ------------------------------------------------------------------------
    def guard(self, fn: Callable[[], T], deadline: Deadline | None = None) -> T:
        if self._closed:
            raise BackendError("this connection is closed")
        return super().guard(fn, deadline)

    def _cursor_run(self, sql: str, timeout: float | None = None) -> Any:
        cur = self.guard(self._con.cursor)
        seconds = None if timeout is None else max(1, math.ceil(timeout))
        try:
            self.guard(lambda: cur.execute(sql, timeout=seconds))
        except QueryCancelled as err:
            cur.close()
            if timeout is not None:
                raise Deadline(timeout, lambda: None).error() from err
            raise
        except BaseException:
            cur.close()
            raise
        return cur

    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None) -> Stream:
        """Run the query (the connector's own ``timeout`` stops it in Snowflake), then read.

        Reading past ``timeout`` stops between batches with QueryTimeout. Snowflake's server
        chooses its result chunks: one is downloaded at a time, and handed on in slices of
        at most ``batch_rows`` rows and ``batch_bytes`` bytes.
        """
        deadline = Deadline(timeout, lambda: None)  # (from the start: a server that cannot
        cur = self._cursor_run(sql, timeout)          # abort still ends in QueryTimeout)
        if deadline.expired:
            deadline.stop()
            self._cancel_quietly(cur.sfqid)
            cur.close()
            raise deadline.error()
        schema = pa.schema([pa.field(m.name, arrow_type(m)) for m in cur.description or []])
        rows, nbytes = result_size(cur)
        tables = self.guard(lambda: cur.fetch_arrow_batches(force_microsecond_precision=True))
        qid = cur.sfqid

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                if deadline.expired:
                    self._cancel_quietly(qid)
                    raise deadline.error()
                table = self.guard(lambda: next(tables, None))
                if table is None:
                    return
                if table.schema != schema:
                    table = self.guard(partial(table.cast, schema))
                for batch in table.to_batches(max_chunksize=batch_rows):
                    yield from (batch,) if batch_bytes is None else split_bytes(
                        batch, batch_bytes)
                del table

        def close() -> None:
            deadline.stop()
            cur.close()

        return Stream(schema, batches(), cancel=lambda: self._cancel_quietly(qid),
                      close=close, expected_rows=rows, expected_bytes=nbytes)

    def cancel_query(self, query_id: str) -> None:
        """Stop a query by id: the REST abort, then ``SYSTEM$CANCEL_QUERY``; raises if both fail."""
        cur = self.guard(self._con.cursor)
        try:
            try:
                if cur.abort_query(query_id):
                    return
            except Exception as err:  # the REST abort is not everywhere (fakesnow lacks it)
                log.debug("abort-request for %s failed: %s", query_id, err)
            call = exp.select(exp.Anonymous(this="SYSTEM$CANCEL_QUERY",
                                            expressions=[literal(query_id)]))
            self.guard(lambda: cur.execute(call.sql(dialect=self.dialect)))
        finally:
            cur.close()

    def _cancel_quietly(self, query_id: str | None) -> None:
        if not query_id or self._closed:
            return
        try:
            self.cancel_query(query_id)
        except Exception as err:  # the result is dropped either way; the query has ended
            log.debug("could not cancel Snowflake query %s: %s", query_id, err)

    def schema(self, sql: str) -> pa.Schema:
        cur = self.guard(self._con.cursor)
        try:
            meta = self.guard(lambda: cur.describe(sql))
        finally:
            cur.close()
        return pa.schema([pa.field(m.name, arrow_type(m)) for m in meta or []])

    def execute(self, sql: str) -> int | None:
        cur = self._cursor_run(sql)
        try:
            rows = cur.rowcount
            return int(rows) if rows is not None and rows >= 0 else None
        finally:
            cur.close()

    def explain(self, sql: str) -> str:
        cur = self._cursor_run(f"EXPLAIN USING TEXT {sql}")
        try:
            return "\n".join(str(r[0]) for r in self.guard(cur.fetchall))
        finally:
            cur.close()

    def estimate(self, sql: str) -> PlanEstimate:
        """Unknown before running: Snowflake's ``EXPLAIN`` reports partitions and bytes
        scanned, not rows (and fakesnow has no ``EXPLAIN`` at all). The sinks still refuse
        before a row moves: the result's chunk metadata is checked before any download."""
        return PlanEstimate(None, None, "Snowflake's plan has no row estimate; the guard "
                                        "checks the result's metadata before downloading it")

    def create_table(self, name: exp.Table, data: pa.RecordBatchReader, replace: bool) -> None:
        """CREATE TABLE from the Arrow schema, then INSERT ... VALUES in bounded chunks.

        Lower-case plain column names are left unquoted, so Snowflake stores them upper-case
        as it does any unquoted name; other names keep their exact spelling.
        """
        columns = [exp.ColumnDef(this=ident(f.name), kind=snowflake_type(f.type))
                   for f in data.schema]
        create = exp.Create(kind="TABLE", replace=replace,
                            this=exp.Schema(this=name.copy(), expressions=columns))
        self.execute(create.sql(dialect=self.dialect))
        target = exp.Schema(this=name.copy(), expressions=[ident(f.name) for f in data.schema])
        pending: list[pa.RecordBatch] = []
        count = 0
        for batch in data:
            pending.append(batch)
            count += batch.num_rows
            if count >= UPLOAD_ROWS:
                self._insert(target, pending)
                pending, count = [], 0
        if count:
            self._insert(target, pending)

    def _insert(self, target: exp.Schema, batches: list[pa.RecordBatch]) -> None:
        rows = [exp.Tuple(expressions=[insert_value(v) for v in row.values()])
                for batch in batches for row in batch.to_pylist()]
        insert = exp.Insert(this=target.copy(), expression=exp.Values(expressions=rows))
        self.execute(insert.sql(dialect=self.dialect))

    # -- Snowpark ---------------------------------------------------------------------------
    def session(self) -> Any:
        """The Snowpark Session on this connection (made on first use when none was given)."""
        with self._session_lock:
            if self._session is None:
                try:
                    from snowflake.snowpark import Session
                except ImportError:
                    msg = "to_snowpark() needs Snowpark: pip install 'queryref[snowflake]'"
                    raise ImportError(msg) from None
                self._session = self.guard(
                    lambda: Session.builder.configs({"connection": self._con}).create())
            return self._session

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owned:
            try:
                self._con.close()
            except Exception as err:  # pragma: no cover - closing a dead connection
                log.debug("closing the Snowflake connection failed: %s", err)

    def describe(self) -> str:
        parts = [getattr(self._con, a, None) for a in ("account", "database", "schema")]
        where = "/".join(str(p) for p in parts if p)
        user = getattr(self._con, "user", None)
        return f"snowflake {user + '@' if user else ''}{where}"


def _snowflake_of(backend: Backend) -> SnowflakeBackend:
    if not isinstance(backend, SnowflakeBackend):
        msg = f"Snowpark needs a Snowflake connection, not {backend.describe()}"
        raise ParameterError(msg)
    return backend


def to_snowpark(backend: Backend, sql: str) -> Any:
    """``QueryRef.to_snowpark()``: ``session.sql(sql)`` on the same connection."""
    snowflake = _snowflake_of(backend)
    session = snowflake.session()
    return snowflake.guard(lambda: session.sql(sql))


def snowpark_sql(backend: Backend, df: Any) -> str:
    """``Connection.from_snowpark(df)``: the SQL of the DataFrame's one SELECT.

    A DataFrame that needs statements run first (``create_dataframe`` makes a temporary
    table) is refused: ``df.cache_result()`` gives one that reads a table.
    """
    backend = _snowflake_of(backend)
    plan = getattr(df, "queries", None)
    if not isinstance(plan, dict) or not plan.get("queries"):
        raise ParameterError(f"from_snowpark() takes a Snowpark DataFrame, not {type(df).__name__}")
    session = getattr(df, "session", None) or getattr(df, "_session", None)
    if session is not None and session.connection is not backend._con:
        raise ParameterError("this Snowpark DataFrame belongs to another Snowflake connection")
    queries = plan["queries"]
    if len(queries) > 1 or plan.get("post_actions"):
        msg = (
            f"this Snowpark DataFrame needs {len(queries) - 1} statement(s) run before its query "
            "(a temporary table, say); call df.cache_result() and wrap that instead"
        )
        raise ParameterError(msg)
    return str(queries[0])
