"""The small interface every engine implements: dialect, stream, schema, estimate, cancel, close."""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, TypeVar

import pyarrow as pa
from sqlglot import exp

from queryref.backends._common import Deadline, ErrorRule, raise_wrapped
from queryref.errors import QueryCancelled

T = TypeVar("T")

#: Field metadata key on a float64 column the engine holds in an exact type that is slow to
#: send as it is (PostgreSQL's NUMERIC without a precision, which the driver formats as text):
#: a sink that wants floats casts it to DOUBLE in the query (``_sinks._decimals_as_double``).
CAST_TO_DOUBLE = b"queryref.cast_to_double"

#: what drops the cache tables dead processes of this host left (``offload.cache``'s
#: ``sweep_orphans``): handed to the server backends by whoever opens them, which run it when
#: they connect and when they close, on a connection they already hold
Sweep = Callable[["Backend"], object]


class Stream:
    """An open result: Arrow batches as they arrive, and a way to stop the query.

    ``cancel()`` stops the query in the database and frees the result; iterating a cancelled
    stream raises :class:`~queryref.errors.QueryCancelled`. Streams close themselves when
    exhausted or garbage-collected. ``expected_rows`` / ``expected_bytes`` are the result's
    size when the engine reports it before the rows move (Snowflake's result chunks), so the
    guard can refuse before downloading; None when unknown. ``read_ahead``: the batches may be
    read on another thread, and reading one releases the GIL, so a sink can read the next
    batch while it converts this one (:mod:`queryref.sinks.prefetch`).
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        cancel: Callable[[], None],
        close: Callable[[], None],
        *,
        expected_rows: int | None = None,
        expected_bytes: int | None = None,
        read_ahead: bool = False,
    ) -> None:
        self.schema = schema
        self.read_ahead = read_ahead
        self.expected_rows = expected_rows
        self.expected_bytes = expected_bytes
        self._batches = batches
        self._cancel = cancel
        self._close = close
        self._lock = threading.Lock()
        self._done = False
        self.cancelled = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                if self.cancelled:
                    raise QueryCancelled("the query was cancelled while its result was read")
                try:
                    batch = next(self._batches)
                except StopIteration:
                    return
                if batch.num_rows:
                    yield batch
        finally:
            self.close()

    def cancel(self) -> None:
        """Stop the query in the database and drop the result."""
        with self._lock:
            if self._done:
                return
            self.cancelled = True
        try:
            self._cancel()
        finally:
            self.close()

    def interrupt(self) -> None:
        """Stop the query in the database but leave the result to the thread reading it,
        which then raises :class:`~queryref.errors.QueryCancelled` and closes the stream."""
        with self._lock:
            if self._done:
                return
            self.cancelled = True
        self._cancel()

    def close(self) -> None:
        """Free the result (idempotent)."""
        with self._lock:
            if self._done:
                return
            self._done = True
        self._close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PlanEstimate:
    """What an engine says about a result's size before running it (see ``Backend.estimate``).

    ``rows``: the planner's row estimate, None when it has none worth trusting; ``width``:
    its average row width in bytes when it keeps one (PostgreSQL's ``Plan Width``), else None;
    ``detail``: where the figures came from, or why there are none; ``firm``: False when
    the figure rests on the planner's guesses (a filter's selectivity without statistics),
    so it is shown but never refused on.
    """

    rows: int | None
    width: int | None
    detail: str
    firm: bool = True


class Backend(abc.ABC):
    """One engine. Implementations are mostly declarations plus a handful of methods.

    Driver errors become queryref errors in one place (:meth:`fail`, :meth:`guard`): the
    backend declares its engine's ``label`` for messages, an ``errors`` table for the driver
    errors that mean more than ``BackendError`` (a cancel, a parse error ...), and the
    ``secrets`` it knows of, which no message shows.
    """

    name: ClassVar[str]
    dialect: ClassVar[str]
    #: URL schemes it opens (``postgresql://`` ..., a ``+driver`` suffix aside)
    schemes: ClassVar[tuple[str, ...]] = ()
    #: the engine as messages name it: ``BackendError("PostgreSQL: <the driver's message>")``
    label: str = "the engine"
    #: driver errors that become a more precise queryref error than BackendError (first match)
    errors: ClassVar[tuple[ErrorRule, ...]] = ()
    #: what :meth:`guard` takes for the driver's errors
    driver_errors: tuple[type[BaseException], ...] = (Exception,)
    #: passwords this backend was given: redacted from every message, in every spelling
    secrets: tuple[str | None, ...] = ()
    #: whether the engine resolves unquoted and quoted identifiers case-insensitively
    case_insensitive: ClassVar[bool] = False
    #: whether it has ``CREATE OR REPLACE TABLE``; without, ``replace=True`` drops it first
    create_or_replace: ClassVar[bool] = False
    #: the fewest rows the engine produces at once, whatever the fetch size (DuckDB's vector):
    #: a result whose rows are so wide that this many cross the budget is refused up front
    batch_unit: ClassVar[int] = 1
    #: whether a stream sizes each fetch from the rows that came before (``batch_bytes``);
    #: False where the reader's batch size is fixed when the query opens (DuckDB)
    adapts_batches: ClassVar[bool] = True
    #: the SQLAlchemy engine the backend runs on, when it runs on one (whose dialect then
    #: compiles SQLAlchemy Core clauses given to ``con.sql``)
    sqlalchemy_engine: Any = None

    @contextlib.contextmanager
    def running(self, cancel: Callable[[], object]) -> Iterator[None]:
        """Within it, a call blocks in the engine (a query starting, before any of its rows
        came; a statement) that ``cancel()`` stops: :meth:`interrupt_running` calls it, so
        ``con.close()`` from another thread stops a count still running in the database."""
        calls: dict[object, Callable[[], object]] = self.__dict__.setdefault("_in_flight", {})
        token = object()
        calls[token] = cancel
        try:
            yield
        finally:
            calls.pop(token, None)

    def interrupt_running(self) -> None:
        """Stop every call now inside :meth:`running` (their threads get the engine's cancel
        error); the streams already open are the connection's to cancel."""
        for cancel in list(self.__dict__.get("_in_flight", {}).values()):
            try:
                cancel()
            except Exception:  # it ended meanwhile, or the server is gone
                pass

    def fail(self, err: BaseException, deadline: Deadline | None = None) -> NoReturn:
        """Raise a driver error as a queryref error: the deadline's ``QueryTimeout`` if it
        fired, else from :attr:`errors`, else ``BackendError``; with no secret in it, nor in
        any error chained to it (then the chain is cut)."""
        raise_wrapped(err, self.label, self.secrets, table=self.errors, deadline=deadline)

    def guard(self, fn: Callable[[], T], deadline: Deadline | None = None) -> T:
        """``fn()``, a driver call: its errors (:attr:`driver_errors`) raised by :meth:`fail`."""
        try:
            return fn()
        except self.driver_errors as err:
            self.fail(err, deadline)

    @abc.abstractmethod
    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None) -> Stream:
        """Run a query and return its result as a stream of Arrow batches.

        ``timeout`` (seconds, covering the run and the reading): past it the query is
        cancelled in the database and reading raises :class:`~queryref.errors.QueryTimeout`.
        ``batch_bytes``: fetch so that a batch holds about this many bytes at most, whatever
        the row width (engines that fetch rows in sizes of their choosing measure what
        arrives and size the next fetch from it); None: ``batch_rows`` rows a batch.
        """

    @abc.abstractmethod
    def schema(self, sql: str) -> pa.Schema:
        """The Arrow schema of a query's result, without fetching rows."""

    @abc.abstractmethod
    def execute(self, sql: str) -> int | None:
        """Run a statement now (DDL/DML); the number of rows changed when the engine says."""

    @abc.abstractmethod
    def explain(self, sql: str) -> str:
        """The engine's plan for a query, as text."""

    @abc.abstractmethod
    def create_table(self, name: exp.Table, data: pa.RecordBatchReader, replace: bool) -> None:
        """Create a table from Arrow data."""

    def copy_to_parquet(self, query: exp.Query, path: str) -> int | None:
        """Write a query's result to a Parquet file inside the engine; None if it cannot."""
        return None

    def copy_to_csv(self, query: exp.Query, path: str) -> int | None:
        """Write a query's result to a CSV file (with a header) inside the engine; None if not."""
        return None

    def reopen(self) -> str | None:
        """A URL another process can connect to the same database with; None if it cannot.

        It may hold a password: hand it over only through a pipe (never a command line).
        """
        return None

    def estimate(self, sql: str) -> PlanEstimate:
        """The planner's estimate of a query's rows (and row width), without running it."""
        return PlanEstimate(None, None, f"{self.name} gives no estimate before running a query")

    def table_columns(self, name: exp.Table) -> pa.Schema | None:
        """A table's schema from the catalog, when cheap; None to fall back to a zero-row query."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A one-line description for reprs: never includes a password."""
