"""The sinks of ``QueryRef``: ``to_arrow``, ``to_pandas``, ``to_polars``, the batch streams,
``to_parquet``/``to_csv``, partitions, ``estimate``, ``count``, ``preview``, ``explain``.
Mixed into ``QueryRef``; each hands a ``Relation`` to ``queryref.sinks`` (the guard) or
``queryref.offload``."""

# mypy: disable-error-code="misc"
# (methods take ``self: QueryRef``: the class they are mixed into; mypy checks the bodies
# against it but refuses a self type that is a subclass, which is what a mixin needs)
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import pyarrow as pa

from queryref._expr import Expr
from queryref._options import DEFAULT
from queryref.errors import ParameterError
from queryref.offload import isolate as _isolate
from queryref.offload import partitions as _partitions
from queryref.sinks import count as _count
from queryref.sinks import estimate as _estimate
from queryref.sinks import files as _files
from queryref.sinks import run as _sinks
from queryref.sinks import streams as _streams
from queryref.sinks.estimate import Estimate
from queryref.sinks.files import CSVWritten, ParquetWritten
from queryref.sql.text import render

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from queryref._typing import (
        Decimals,
        DtypeBackend,
        PartitionsAs,
        Preflight,
        Progress,
        SizeLike,
    )


if TYPE_CHECKING:
    from queryref._queryref import QueryRef


class Outputs:
    """Mixed into ``QueryRef``: where rows leave the warehouse, under the budget."""

    __slots__ = ()

    @overload
    def to_arrow(self: QueryRef, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                 batch_rows: int = ..., timeout: float | None = ...,
                 preflight: Preflight | None = ...,
                 dry_run: Literal[False] = ...) -> pa.Table: ...
    @overload
    def to_arrow(self: QueryRef, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                 batch_rows: int = ..., timeout: float | None = ...,
                 preflight: Preflight | None = ..., dry_run: Literal[True]) -> Estimate: ...
    def to_arrow(self: QueryRef, *, max_bytes: SizeLike = DEFAULT.max_bytes,
                 max_rows: int | None = DEFAULT.max_rows, batch_rows: int = DEFAULT.batch_rows,
                 timeout: float | None = None, preflight: Preflight | None = DEFAULT.preflight,
                 dry_run: bool = False) -> pa.Table | Estimate:
        """The result as a ``pyarrow.Table``, guarded by the size budget.

        Parameters
        ----------
        max_bytes
            The budget: bytes (``"200MB"``, ``2_000_000``) the result may take; past it the
            query is cancelled in the database and
            [`ResultTooLarge`][queryref.errors.ResultTooLarge] is raised. ``None``: no budget.
        max_rows
            At most this many rows, or ``ResultTooLarge`` (pushed down as
            ``LIMIT max_rows + 1``). ``None``: no limit.
        batch_rows
            Rows per Arrow batch while fetching (the guard counts bytes batch by batch).
        timeout
            Seconds before the query is cancelled in the database and
            [`QueryTimeout`][queryref.errors.QueryTimeout] is raised. ``None``: no limit.
        preflight
            Before the query runs: ``"estimate"`` refuses what the planner puts at more than
            4x ``max_bytes``, ``"count"`` counts exactly first, ``None`` skips the check (see
            [`estimate`][queryref.QueryRef.estimate]).
        dry_run
            Return that estimate (an [`Estimate`][queryref.Estimate]) instead of data.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(1000)")
        >>> q.to_arrow().num_rows
        1000
        >>> q.to_arrow(max_rows=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        queryref.errors.ResultTooLarge: ResultTooLarge: the result passed more than 10 rows...
        """
        if dry_run:
            return _sinks.dry_run(self._relation(), max_rows=max_rows, preflight=preflight)
        return _sinks.to_arrow(self._relation(), max_bytes=max_bytes, max_rows=max_rows,
                               batch_rows=batch_rows, timeout=timeout, preflight=preflight)

    @overload
    def to_pandas(self: QueryRef, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., decimals: Decimals = ...,
                  timeout: float | None = ..., shrink_dtypes: bool = ...,
                  preflight: Preflight | None = ..., dtype_backend: DtypeBackend | None = ...,
                  dry_run: Literal[False] = ...) -> pd.DataFrame: ...
    @overload
    def to_pandas(self: QueryRef, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., decimals: Decimals = ...,
                  timeout: float | None = ..., shrink_dtypes: bool = ...,
                  preflight: Preflight | None = ..., dtype_backend: DtypeBackend | None = ...,
                  dry_run: Literal[True]) -> Estimate: ...
    def to_pandas(self: QueryRef, *, max_bytes: SizeLike = DEFAULT.max_bytes,
                  max_rows: int | None = DEFAULT.max_rows, batch_rows: int = DEFAULT.batch_rows,
                  decimals: Decimals = "float", timeout: float | None = None,
                  shrink_dtypes: bool = False, preflight: Preflight | None = DEFAULT.preflight,
                  dtype_backend: DtypeBackend | None = None,
                  dry_run: bool = False) -> pd.DataFrame | Estimate:
        """The result as a pandas DataFrame, guarded by the size budget.

        No column is Python objects unless asked: decimals become float64, dates
        datetime64, text Arrow-backed ``str``. ``max_bytes``, ``max_rows``, ``batch_rows``,
        ``timeout``, ``preflight`` and ``dry_run`` are [`to_arrow`][queryref.QueryRef.to_arrow]'s:
        what the planner estimates at more than 4x ``max_bytes`` is refused before a row moves.

        Parameters
        ----------
        decimals
            What SQL decimals become: ``"float"`` (float64), ``"object"`` (``Decimal``
            objects) or ``"arrow"`` (exact Arrow decimals).
        shrink_dtypes
            Pick the smallest numpy dtypes (and ``category`` for repetitive text) from
            statistics computed in the warehouse; the shrunk size is what counts against the
            budget.
        dtype_backend
            ``"pyarrow"`` (as in ``pandas.read_sql`` / ``read_parquet``): every column a
            ``pd.ArrowDtype``; dates stay ``date32[pyarrow]``, integers with NULLs stay
            integers, and ``decimals`` still decides what decimals become.

        >>> import queryref as qr
        >>> big = qr.connect().sql("SELECT range AS a, range AS b FROM range(10000000)")
        >>> big.to_pandas(dry_run=True).bytes
        160000000
        >>> big.to_pandas(max_bytes="10MB")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        queryref.errors.ResultTooLarge: ResultTooLarge: the result is estimated at 160.0 MB...
        >>> small = qr.connect().sql("SELECT 1 AS n, DATE '2024-01-31' AS d, 2.5 AS x")
        >>> small.to_pandas().dtypes.astype(str).tolist()
        ['int32', 'datetime64[ms]', 'float64']
        >>> small.to_pandas(dtype_backend="pyarrow").dtypes.astype(str).tolist()
        ['int32[pyarrow]', 'date32[day][pyarrow]', 'double[pyarrow]']
        """
        if dry_run:
            return _sinks.dry_run(self._relation(), max_rows=max_rows, preflight=preflight,
                                  decimals=decimals, dtype_backend=dtype_backend)
        return _sinks.to_pandas(self._relation(), max_bytes=max_bytes, max_rows=max_rows,
                                batch_rows=batch_rows, decimals=decimals, timeout=timeout,
                                shrink_dtypes=shrink_dtypes, preflight=preflight,
                                dtype_backend=dtype_backend)

    @overload
    def to_polars(self: QueryRef, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., timeout: float | None = ...,
                  preflight: Preflight | None = ...,
                  dry_run: Literal[False] = ...) -> pl.DataFrame: ...
    @overload
    def to_polars(self: QueryRef, *, max_bytes: SizeLike = ..., max_rows: int | None = ...,
                  batch_rows: int = ..., timeout: float | None = ...,
                  preflight: Preflight | None = ..., dry_run: Literal[True]) -> Estimate: ...
    def to_polars(self: QueryRef, *, max_bytes: SizeLike = DEFAULT.max_bytes,
                  max_rows: int | None = DEFAULT.max_rows, batch_rows: int = DEFAULT.batch_rows,
                  timeout: float | None = None, preflight: Preflight | None = DEFAULT.preflight,
                  dry_run: bool = False) -> pl.DataFrame | Estimate:
        """The result as a Polars DataFrame, guarded by the size budget.

        The parameters are [`to_arrow`][queryref.QueryRef.to_arrow]'s.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS id, 'a' AS g").to_polars().to_dicts()
        [{'id': 1, 'g': 'a'}]
        """
        if dry_run:
            return _sinks.dry_run(self._relation(), max_rows=max_rows, preflight=preflight)
        return _sinks.to_polars(self._relation(), max_bytes=max_bytes, max_rows=max_rows,
                                batch_rows=batch_rows, timeout=timeout, preflight=preflight)

    def to_arrow_batches(self: QueryRef, batch_rows: int = DEFAULT.batch_rows, *,
                         timeout: float | None = None,
                         max_batch_bytes: SizeLike = DEFAULT.max_batch_bytes,
                         ) -> pa.RecordBatchReader:
        """Stream the result as Arrow record batches; memory holds one batch at a time.

        ``max_batch_bytes`` also bounds each batch's bytes: the engine's batches are split or
        combined to fit. No size budget applies: nothing is kept. Close the reader (or use it
        in a ``with`` block) to stop the query early.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(250)")
        >>> with q.to_arrow_batches(batch_rows=100) as reader:
        ...     [batch.num_rows for batch in reader]
        [100, 100, 50]
        """
        return _streams.to_arrow_batches(self._relation(), batch_rows=batch_rows, timeout=timeout,
                                       max_batch_bytes=max_batch_bytes)

    def to_pandas_batches(self: QueryRef, batch_rows: int = DEFAULT.batch_rows, *,
                          decimals: Decimals = "float", timeout: float | None = None,
                          shrink_dtypes: bool = False,
                          max_batch_bytes: SizeLike = DEFAULT.max_batch_bytes,
                          dtype_backend: DtypeBackend | None = None,
                          ) -> Iterator[pd.DataFrame]:
        """Stream the result as pandas DataFrames of at most ``batch_rows`` rows each.

        ``decimals``, ``dtype_backend``, ``shrink_dtypes`` and ``max_batch_bytes`` as in
        [`to_pandas`][queryref.QueryRef.to_pandas] /
        [`to_arrow_batches`][queryref.QueryRef.to_arrow_batches]; shrunk batches share their
        dtypes and category codes.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(250)")
        >>> [len(df) for df in q.to_pandas_batches(batch_rows=100)]
        [100, 100, 50]
        """
        return _sinks.to_pandas_batches(self._relation(), batch_rows=batch_rows, decimals=decimals,
                                        timeout=timeout, shrink_dtypes=shrink_dtypes,
                                        max_batch_bytes=max_batch_bytes,
                                        dtype_backend=dtype_backend)

    @overload
    def to_parquet(self: QueryRef, path: str, *, max_bytes: SizeLike = ..., batch_rows: int = ...,
                   timeout: float | None = ..., preflight: Preflight | None = ...,
                   dry_run: Literal[False] = ...) -> ParquetWritten: ...
    @overload
    def to_parquet(self: QueryRef, path: str, *, max_bytes: SizeLike = ..., batch_rows: int = ...,
                   timeout: float | None = ..., preflight: Preflight | None = ...,
                   dry_run: Literal[True]) -> Estimate: ...
    def to_parquet(self: QueryRef, path: str, *, max_bytes: SizeLike = None,
                   batch_rows: int = DEFAULT.batch_rows, timeout: float | None = None,
                   preflight: Preflight | None = DEFAULT.preflight,
                   dry_run: bool = False) -> ParquetWritten | Estimate:
        """Write the result to Parquet, streamed (DuckDB: ``COPY``, no Python in the path).

        No budget unless given: the file, not memory, holds the rows. With a ``max_bytes`` of
        its own, ``preflight`` applies as in [`to_arrow`][queryref.QueryRef.to_arrow];
        ``dry_run=True`` returns the estimate and writes nothing. Rows are written in the
        query's order: with [`order_by`][queryref.QueryRef.order_by], that order; without,
        the order the engine produces them (on DuckDB its threads', so that it never holds
        rows back to keep an order nothing asked for).

        >>> import os, tempfile
        >>> import queryref as qr
        >>> con = qr.connect()
        >>> path = os.path.join(tempfile.mkdtemp(), "ids.parquet")
        >>> con.sql("SELECT range AS id FROM range(1000)").to_parquet(path).rows
        1000
        >>> con.read_parquet(path).count()
        1000
        """
        rel = self._relation()
        if dry_run:
            return _sinks.dry_run(rel, preflight=preflight)
        _files.preflight_file(rel, max_bytes=max_bytes, preflight=preflight)
        return _files.to_parquet(rel, path, max_bytes=max_bytes, batch_rows=batch_rows,
                                 timeout=timeout)

    def to_csv(self: QueryRef, path: str, *, max_bytes: SizeLike = None,
               batch_rows: int = DEFAULT.batch_rows,
               timeout: float | None = None) -> CSVWritten:
        """Write the result to CSV with a header row, streamed like
        [`to_parquet`][queryref.QueryRef.to_parquet].

        DuckDB writes it with ``COPY ... (FORMAT CSV, HEADER)``; other engines stream Arrow
        batches through ``pyarrow.csv.CSVWriter``. The file appears only when complete.

        >>> import os, tempfile
        >>> import queryref as qr
        >>> path = os.path.join(tempfile.mkdtemp(), "ids.csv")
        >>> qr.connect().sql("SELECT range AS id FROM range(3)").to_csv(path).rows
        3
        >>> open(path).read().split()
        ['id', '0', '1', '2']
        """
        return _files.to_csv(self._relation(), path, max_bytes=max_bytes, batch_rows=batch_rows,
                             timeout=timeout)

    def partitions(self: QueryRef, by: str | Sequence[str], n: int | None = None) -> list[QueryRef]:
        """This query split into pushed-down filters that together hold every row once.

        One partition per distinct value of ``by`` (found in the warehouse; NULL gets its
        own), or with ``n=k`` about ``k`` ranges of similar size over one orderable column
        (found with a few pushed-down quantiles).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id, range % 2 AS g FROM range(6)")
        >>> [p.count() for p in q.partitions("g")]
        [3, 3]
        """
        return [q for _, q in self._partitions(by, n)]

    def _partitions(self: QueryRef, by: str | Sequence[str],
                    n: int | None) -> list[tuple[str, QueryRef]]:
        """Each partition's label (its filter, as SQL) and query."""
        names = [self._resolve(b) for b in _partitions.names_of(by)]
        return [(p.label, self.filter(Expr(p.predicate)))
                for p in _partitions.split(self._relation(), names, n)]

    def map_partitions(self: QueryRef, fn: Callable[[Any], Any], *, by: str | Sequence[str],
                       n: int | None = None, isolate: bool = True, workers: int = 1,
                       max_bytes: SizeLike = DEFAULT.max_bytes, as_: PartitionsAs = "pandas",
                       progress: Progress = DEFAULT.progress) -> Any:
        """``fn`` on each partition's rows (a pandas DataFrame; ``as_="arrow"``: a Table).

        The results come back as Arrow, in partition order, and are concatenated under
        ``max_bytes`` (a DataFrame, or a Table with ``as_="arrow"``). A partition that fails
        raises [`PartitionError`][queryref.errors.PartitionError] naming it.

        Parameters
        ----------
        fn
            Takes one partition's rows, returns a DataFrame (or a Table); with
            ``isolate=True`` a module-level function, so a child process can import it.
        by
            The column(s) whose distinct values make the partitions, as in
            [`partitions`][queryref.QueryRef.partitions]; ``n=k``: about ``k`` ranges of
            one orderable column instead.
        isolate
            Run each partition in a child process (``spawn``) that gives its memory back to
            the operating system when it exits; ``False``: in this process.
        workers
            How many children run at a time.
        max_bytes
            The budget of the concatenated result.
        as_
            ``"pandas"`` or ``"arrow"``: what ``fn`` gets and what comes back.
        progress
            Show one step per partition (``"auto"``: when a terminal waits).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id, range % 2 AS g FROM range(6)")
        >>> def total(df):
        ...     return df.groupby("g", as_index=False)["id"].sum()
        >>> q.map_partitions(total, by="g", isolate=False).values.tolist()
        [[0, 6], [1, 9]]
        """
        def parts() -> list[_isolate.Part]:
            return [_isolate.Part(label, q._relation()) for label, q in self._partitions(by, n)]

        return _isolate.map_partitions(self._relation(), fn, parts, isolate=isolate,
                                       workers=workers, max_bytes=max_bytes, as_=as_,
                                       progress=progress)

    def estimate(self: QueryRef, count: bool = False, *, strict: bool = False) -> Estimate:
        """Rows and bytes of the result, and how they were found, before running it.

        The engine's planner by default (cheap, never a scan);
        ``count=True`` runs an exact ``SELECT COUNT(*)`` in the database. Where the engine
        has no estimate, ``rows`` and ``bytes`` are None and ``details`` says why
        (``strict=True`` raises [`UnsupportedError`][queryref.errors.UnsupportedError]
        instead).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id, 'x' || range AS s FROM range(100000)")
        >>> est = q.estimate()
        >>> est.rows, est.method, est.bytes > 100000 * 8
        (100000, 'planner', True)
        """
        return _estimate.estimate(self._relation(), count=count, strict=strict)

    def count(self: QueryRef) -> int:
        """The number of rows, counted in the database (``SELECT COUNT(*)``): no rows move.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS id FROM range(1000)").filter("id % 7 = 0").count()
        143
        """
        return _count.count(self._relation())

    def preview(self: QueryRef, n: int = 10) -> pd.DataFrame:
        """The first ``n`` rows as a DataFrame: a LIMIT pushed down, never a full fetch.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT range AS id FROM range(1000000)").preview(3)
           id
        0   0
        1   1
        2   2
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ParameterError(f"preview() takes a non-negative number of rows, not {n!r}")
        return self.limit(n).to_pandas()

    def explain(self: QueryRef) -> str:
        """The database's plan for this query, as text (nothing runs).

        >>> import queryref as qr
        >>> plan = qr.connect().sql("SELECT range AS id FROM range(10)").explain()
        >>> "RANGE" in plan.upper()
        True
        """
        return self._con.backend.explain(render(self._tree, self.dialect))

    def to_snowpark(self: QueryRef) -> Any:
        """A Snowpark DataFrame over this query's SQL (Snowflake only): the work stays there.

        Elsewhere it raises [`ParameterError`][queryref.errors.ParameterError]:

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 1 AS x").to_snowpark()
        Traceback (most recent call last):
          ...
        queryref.errors.ParameterError: Snowpark needs a Snowflake connection, not duckdb :memory:
        """
        from queryref.backends.snowflake import to_snowpark

        return to_snowpark(self._con.backend, render(self._tree, self.dialect))

