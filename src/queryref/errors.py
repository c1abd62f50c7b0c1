"""Errors raised by queryref.

Every error is a [`QueryRefError`][queryref.errors.QueryRefError]; each message says what
happened and what to do next. Some also subclass the matching builtin (``UnknownColumnError``
is a ``KeyError``, ``ParameterError`` a ``ValueError``...) so either ``except`` works.

>>> import queryref as qr
>>> issubclass(qr.errors.ResultTooLarge, qr.errors.QueryRefError)
True
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BackendError",
    "CacheReleased",
    "CellReferenceError",
    "ParameterError",
    "PartitionError",
    "PathNotAllowed",
    "PoolExhausted",
    "QueryCancelled",
    "QueryRefError",
    "QueryTimeout",
    "ReadOnlyError",
    "ResultTooLarge",
    "SQLParseError",
    "UnknownColumnError",
    "UnsupportedError",
]


class QueryRefError(Exception):
    """Root of every queryref error."""


class ResultTooLarge(QueryRefError, MemoryError):
    """A guarded sink would take more memory (or rows) than its budget allows.

    Attributes hold the figures: ``limit_bytes``, ``seen_bytes``, ``limit_rows``, ``seen_rows``
    and ``stage`` (``"estimate"`` before fetching, ``"fetch"`` while batches arrived).
    """

    def __init__(
        self,
        *,
        stage: str,
        limit_bytes: int | None = None,
        seen_bytes: int | None = None,
        limit_rows: int | None = None,
        seen_rows: int | None = None,
        detail: str = "",
    ) -> None:
        from queryref._sizes import format_budget, format_like

        self.stage = stage
        self.limit_bytes = limit_bytes
        self.seen_bytes = seen_bytes
        self.limit_rows = limit_rows
        self.seen_rows = seen_rows
        when = "is estimated at" if stage == "estimate" else "passed"
        if limit_rows is not None and seen_rows is not None and seen_rows > limit_rows:
            what = f"the result {when} more than {limit_rows:,} rows (max_rows={limit_rows:,})"
        else:
            seen = format_like(seen_bytes or 0, limit_bytes)
            lim = format_budget(limit_bytes or 0)
            after = "for" if stage == "estimate" else "after"
            rows = f" {after} {seen_rows:,} rows" if seen_rows is not None else ""
            what = f"the result {when} {seen}{rows}, over the budget of {lim}"
        stopped = (
            "The query was stopped in the database and the fetched batches were dropped."
            if stage == "fetch"
            else "Nothing was fetched."
        )
        msg = (
            f"ResultTooLarge: {what}. {stopped}{(' ' + detail) if detail else ''}\n"
            "Ways out:\n"
            "  - aggregate or filter first so the warehouse does the work "
            "(.filter(...), .group_by(...).agg(...), .limit(n));\n"
            "  - stream it: .to_arrow_batches() / .to_pandas_batches() keep one batch in memory;\n"
            "  - spill it: .to_parquet('out.parquet'), or .cache() to keep it in the warehouse;\n"
            "  - raise the budget knowingly: max_bytes='2GB' (or max_bytes=None to turn it off)."
        )
        super().__init__(msg)


class SQLParseError(QueryRefError, ValueError):
    """SQL text that does not parse. ``line``, ``col`` and ``snippet`` locate the problem."""

    def __init__(self, message: str, *, line: int | None = None, col: int | None = None,
                 snippet: str = "") -> None:
        self.line = line
        self.col = col
        self.snippet = snippet
        where = f" at line {line}, column {col}" if line is not None else ""
        near = f" near {snippet!r}" if snippet else ""
        msg = f"could not parse SQL{where}{near}: {message}"
        super().__init__(msg)


class UnknownColumnError(QueryRefError, KeyError):
    """A column name that the query does not have. ``available`` lists those it has."""

    def __init__(self, names: Sequence[str], available: Sequence[str]) -> None:
        self.names = list(names)
        self.available = list(available)
        import difflib

        hints = []
        for name in self.names:
            close = difflib.get_close_matches(name, self.available, n=1)
            if close:
                hints.append(f"did you mean {close[0]!r} for {name!r}?")
        msg = (
            f"unknown column{'s' if len(self.names) > 1 else ''} "
            f"{', '.join(repr(n) for n in self.names)}; the query has: "
            f"{', '.join(self.available)}" + (f" ({' '.join(hints)})" if hints else "")
        )
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class ReadOnlyError(QueryRefError, PermissionError):
    """A statement that writes or has side effects, or several statements, where one query belongs.

    Use ``con.execute(statement)`` for DDL/DML: it is the one explicit door.
    """


class ParameterError(QueryRefError, ValueError):
    """A ``{{ name }}`` parameter that is missing, unused or of an unsupported type."""


class CellReferenceError(QueryRefError, KeyError):
    """A notebook cell that references an unknown cell, itself, or a cycle of cells."""

    def __str__(self) -> str:
        return str(self.args[0])


class QueryCancelled(QueryRefError):
    """The query was cancelled (interrupted, or its stream was closed) before it finished."""


class QueryTimeout(QueryCancelled, TimeoutError):
    """The query ran longer than its ``timeout=`` and was cancelled in the database."""


class UnsupportedError(QueryRefError, NotImplementedError):
    """The engine's SQL dialect cannot express this query (e.g. TABLESAMPLE on MySQL).

    Raised before anything runs, instead of running a query that means something else.
    """


class CacheReleased(QueryRefError, ReferenceError):
    """A cached result ([`q.cache()`][queryref.QueryRef.cache]) was used after ``release()``
    dropped its table.

    Run ``.cache()`` again on the original query, or use the original query itself.
    """


class PartitionError(QueryRefError, RuntimeError):
    """A partition of [`map_partitions`][queryref.QueryRef.map_partitions] failed: its function
    raised, or its child process died.

    ``partition`` is the filter that defines it (SQL text), ``exitcode`` the child's exit code
    (negative: killed by that signal; None when it ran in this process), ``child_error`` the
    type of what was raised (``"MemoryError"``...) and ``child_traceback`` its traceback text.
    The other partitions' children were stopped and their temporary files removed.
    """

    def __init__(self, message: str, *, partition: str, exitcode: int | None = None,
                 child_error: str | None = None, child_traceback: str = "") -> None:
        self.partition = partition
        self.exitcode = exitcode
        self.child_error = child_error
        self.child_traceback = child_traceback
        super().__init__(message)


class BackendError(QueryRefError):
    """The database refused or failed the query. ``__cause__`` holds the driver's error."""


class PathNotAllowed(BackendError, PermissionError):
    """A query read or wrote a file outside the directories the connection was confined to
    (``qr.connect(allowed_paths=[...])``): the engine refused it before touching the file.

    Put the file inside one of those directories, or open a connection that allows it.
    """


class PoolExhausted(BackendError, TimeoutError):
    """Every connection of the connection's pool stayed busy past ``pool_timeout`` seconds.

    Raised before the query is sent. ``limit`` is how many connections the pool may hold
    (``pool_size + max_overflow``), ``timeout`` how long the query would wait for one. Also
    raised at once, without waiting, when no connection could come back in time: every busy
    one is held by a thread that waits for another (the asking thread holds them all in
    streams it has not finished, or several threads each read a stream while they run
    another query). See "Sharing a connection across threads" in the backends documentation.
    """

    def __init__(self, message: str, *, limit: int | None = None,
                 timeout: float | None = None) -> None:
        self.limit = limit
        self.timeout = timeout
        super().__init__(message)
