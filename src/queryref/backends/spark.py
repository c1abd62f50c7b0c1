"""Apache Spark through Spark Connect (``sc://host:15002``; the protocol Databricks speaks).

Results come as the Arrow batches the server sends (``spark.connect.grpc.arrow.maxBatchSize``,
4 MiB by default, so a batch is bounded in bytes whatever the row width). Each query carries a
tag of its own; cancelling interrupts the operations with that tag on the server
(``interruptTag``), and the stream is released only once the server has ended them (a Spark 4
server that gets the release while an interrupt is under way keeps the operation ``RUNNING``
in its records for the session's life). A query whose deadline passed before it was sent is
not sent: a query interrupted while Spark's adaptive execution submits a shuffle stage leaves
that stage's job running to its end on the server, where Spark Connect cannot reach it (the
case SPARK-52024 leaves open). The estimate is the optimizer's ``Statistics(sizeInBytes,
rowCount)`` from ``EXPLAIN COST``: a row count only where the plan knows one (``range``,
analyzed tables), never firm. Tables made by ``create_table`` are managed tables in the
server's warehouse; ``cache()`` makes one too (Spark's session-scoped temporary views are not
tables). Tokens and options in the URL go to Spark Connect as they are, and are never echoed.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pyarrow as pa
from sqlglot import exp

from queryref.backends._base import Backend, PlanEstimate, Stream
from queryref.backends._common import Deadline, ErrorRule, interruptible
from queryref.errors import BackendError, QueryCancelled, SQLParseError, UnsupportedError

_STATS = re.compile(r"Statistics\(sizeInBytes=([0-9.E+]+)\s*([KMGTPE]i?B|B)?"
                    r"(?:, rowCount=([0-9.E+]+))?")
#: Spark Connect's GetStatusResponse.OperationStatus.OPERATION_STATE_RUNNING
_RUNNING = 2
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50,
          "EiB": 2**60}

ERRORS = (
    ErrorRule(lambda e, m: "OPERATION_CANCELED" in m or "interrupted" in m.lower()
              or "cancelled" in m.lower(),
              lambda m: QueryCancelled("the query was interrupted in Spark")),
    ErrorRule(lambda e, m: "PARSE_SYNTAX_ERROR" in m or type(e).__name__ == "ParseException",
              lambda m: SQLParseError(m.split("\n")[0])),
    # the rest: Spark's message without the JVM stack traces it carries (hundreds of lines)
    ErrorRule(lambda e, m: True, lambda m: BackendError(f"Spark: {_short(m)}")),
)


def _short(message: str) -> str:
    """A Spark error's message up to its stack traces, and the root cause if it names one."""
    head = message.split("\n\tat ", 1)[0].split("\nJVM stacktrace:", 1)[0].strip()
    cause = [ln for ln in message.splitlines() if ln.startswith("Caused by: ")]
    lines = head.splitlines()[:6]
    if cause and cause[-1] not in lines:
        lines.append(cause[-1])
    return "\n".join(lines)


def _driver_errors() -> tuple[type[BaseException], ...]:
    from pyspark.errors import PySparkException

    try:
        import grpc

        return (PySparkException, grpc.RpcError, pa.ArrowException)
    except ImportError:  # pragma: no cover - grpc comes with pyspark[connect]
        return (PySparkException, pa.ArrowException)


class SparkBackend(Backend):
    """A Spark Connect session."""

    name = "spark"
    dialect = "spark"
    schemes = ("sc",)
    label = "Spark"
    errors: ClassVar[tuple[ErrorRule, ...]] = ERRORS
    case_insensitive = True  # spark.sql.caseSensitive is false unless a user turns it on
    create_or_replace = False  # CREATE OR REPLACE is for v2 tables only: drop, then create

    def __init__(self, session: Any, *, owned: bool, label: str,
                 secrets: tuple[str, ...] = ()) -> None:
        self._spark = session
        self._owned = owned
        self._where = label
        self._closed = False
        self._zone: str | None = None  # the session's time zone, read once (execute forgets it)
        self.driver_errors = _driver_errors()
        self.secrets = secrets

    @classmethod
    def open(cls, url: str, **options: Any) -> SparkBackend:
        """Connect to a Spark Connect server (``sc://host:port/;token=...``); ``options``
        are Spark SQL settings for the session (``spark.sql.ansi.enabled="true"`` ...)."""
        try:
            from pyspark.sql.connect.session import SparkSession
        except ImportError as err:
            raise UnsupportedError(
                f"Spark needs its extra: pip install 'queryref[spark]' ({err})") from None
        parts = urlsplit(url)
        where = f"sc://{parts.hostname or 'localhost'}:{parts.port or 15002}"
        # sc://host:port/;token=...;user_id=...: the token is a password
        params = dict(p.split("=", 1) for p in parts.path.lstrip("/").split(";") if "=" in p)
        secrets = tuple(v for k, v in params.items() if k.lower() in ("token", "password"))
        try:
            builder = SparkSession.builder.remote(url)
            for key, value in options.items():
                builder = builder.config(key, value)
            session = builder.create()
        except Exception as err:
            raise BackendError(f"Spark: could not connect to {where}: "
                               f"{type(err).__name__}") from None
        return cls(session, owned=True, label=where, secrets=secrets)

    @classmethod
    def wrap(cls, session: Any) -> SparkBackend:
        """A backend over a Spark Connect session the caller made (and closes)."""
        client = getattr(session, "client", None)
        host = getattr(client, "host", None) or "session"
        port = getattr(client, "port", None)
        where = f"sc://{host}:{port}" if port else str(host)
        return cls(session, owned=False, label=where)

    # -- running --------------------------------------------------------------------------
    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None) -> Stream:
        spark = self._spark
        tag = f"queryref-{uuid.uuid4().hex}"
        interrupted: set[str] = set()  # the operations a cancel reached

        def cancel() -> None:
            interrupted.update(spark.interruptTag(tag) or ())

        deadline = Deadline(timeout, cancel)
        df = self.guard(lambda: spark.sql(sql), deadline)
        plan = df._plan.to_proto(spark.client)
        lock = threading.Lock()

        def start() -> tuple[Any, Iterator[Any]]:
            if deadline.expired:  # not sent (see the module's docstring)
                raise deadline.error()
            spark.addTag(tag)  # (tags are the starting thread's: set while the request goes)
            try:
                responses = spark.client.to_table_as_iterator(plan, {})
                first = next(responses)
            finally:
                spark.removeTag(tag)
            return first, responses

        try:
            with self.running(cancel):
                first, responses = self.guard(lambda: interruptible(start, cancel), deadline)
        except BaseException:
            deadline.stop()
            raise
        schema = (self._arrow_schema(first) if not isinstance(first, pa.Table)
                  else first.schema)
        pending = [first] if isinstance(first, pa.Table) else []

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                if pending:
                    table = pending.pop()
                else:
                    if deadline.expired:
                        raise deadline.error()
                    with lock:  # (Ctrl-C reaches pyspark's reader only through our cancel)
                        table = self.guard(lambda: interruptible(
                            lambda: next(responses, None), cancel), deadline)
                    if table is None:
                        return
                    if not isinstance(table, pa.Table):
                        continue
                yield from table.cast(schema).to_batches()

        def close() -> None:
            deadline.stop()
            if interrupted:
                _await_end(spark, interrupted)
            closer = getattr(responses, "close", None)
            if closer is not None:
                try:
                    closer()
                except Exception:  # the server already ended the operation
                    pass

        return Stream(schema, batches(), cancel=cancel, close=close)

    def _arrow_schema(self, struct: Any) -> pa.Schema:
        """A Spark ``StructType`` as the Arrow schema its rows arrive in: timestamps in the
        session's time zone, as Spark Connect sends them (pyspark refuses a TIMESTAMP
        without one)."""
        from pyspark.sql.pandas.types import to_arrow_schema

        if self._zone is None:
            self._zone = self.guard(lambda: self._spark.conf.get("spark.sql.session.timeZone"))
        return to_arrow_schema(struct, timezone=self._zone)

    def schema(self, sql: str) -> pa.Schema:
        return self._arrow_schema(self.guard(lambda: self._spark.sql(sql).schema))

    def execute(self, sql: str) -> int | None:
        self._zone = None  # (a SET may change the session's time zone)
        self.guard(lambda: self._spark.sql(sql).collect())
        return None

    def explain(self, sql: str) -> str:
        df = self.guard(lambda: self._spark.sql(sql))
        return str(self.guard(lambda: df._explain_string(mode="formatted")))

    def estimate(self, sql: str) -> PlanEstimate:
        df = self.guard(lambda: self._spark.sql(sql))
        text = str(self.guard(lambda: df._explain_string(mode="cost")))
        found = _STATS.search(text)
        if found is None or found.group(3) is None:
            return PlanEstimate(None, None, "Spark's plan has no row count for this query "
                                            "(tables without ANALYZE TABLE statistics)")
        rows = int(float(found.group(3)))
        size = float(found.group(1)) * _UNITS.get(found.group(2) or "B", 1)
        width = int(size / rows) if rows else None
        return PlanEstimate(rows, width, "Spark's optimizer (EXPLAIN COST)", firm=False)

    def create_table(self, name: exp.Table, data: pa.RecordBatchReader, replace: bool) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        table = data.read_all()
        target = name.sql(dialect="spark")
        # naive timestamps stay naive (TIMESTAMP_NTZ), as pandas and the other engines keep them
        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
        df = self.guard(lambda: self._spark.createDataFrame(table, schema=schema))
        mode = "overwrite" if replace else "error"
        self.guard(lambda: df.write.mode(mode).saveAsTable(target))

    # -- the connection -------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owned:
            try:
                self._spark.stop()
            except Exception:  # the server may be gone already
                pass

    def describe(self) -> str:
        return f"spark {self._where}"


def _await_end(spark: Any, operations: set[str], limit: float = 5.0) -> None:
    """Wait (at most ``limit`` seconds) until the server no longer runs ``operations``.

    Closing a stream releases its operation on the server; a release that comes while the
    interrupt is still under way makes Spark (4.x) close the operation in a state its records
    reject, and the operation stays ``RUNNING`` there until the session ends.
    """
    statuses = getattr(spark.client, "_get_operation_statuses", None)
    if statuses is None:  # pragma: no cover - pyspark before GetStatus
        return
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            reply = statuses(operation_ids=sorted(operations))
        except Exception:  # a server without GetStatus: nothing to wait on
            return
        if all(s.state != _RUNNING for s in reply.operation_statuses):
            return
        time.sleep(0.01)


