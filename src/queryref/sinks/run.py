"""Sinks: the only places where a query runs and rows reach Python."""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from queryref._options import _UNSET, resolve
from queryref.backends._base import CAST_TO_DOUBLE
from queryref.backends._common import check_timeout
from queryref.errors import ParameterError, UnsupportedError
from queryref.sinks import budget as _budget
from queryref.sinks import convert as _convert
from queryref.sinks import estimate as _estimate
from queryref.sinks.budget import Budget
from queryref.sinks.progress import Progress
from queryref.sql.text import file_path, ident, render

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from queryref._queryref import QueryRef
    from queryref.backends import Stream
    from queryref.sinks.estimate import Estimate, Widths


@dataclass(frozen=True)
class ParquetWritten:
    """What ``to_parquet`` wrote: the file, its rows and bytes, and how long it took."""

    path: str
    rows: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class CSVWritten(ParquetWritten):
    """What ``to_csv`` wrote: the file, its rows and bytes, and how long it took."""


def _open(q: QueryRef, batch_rows: int, batch_bytes: int | None = None,
          timeout: float | None = None, widths: Widths | None = None) -> Stream:
    """Open ``q``'s stream, its batches bounded by ``batch_rows`` and ``batch_bytes``.

    An engine whose reader cannot change its batch size once the query runs (DuckDB) gets
    its rows per batch from the schema's fixed widths, else the widths the pre-flight
    measured, else widths measured now over a sample in the engine (a query that streams),
    else the engine's own unit (a 2,048-row vector). The other engines take ``batch_bytes``
    and size their fetches from what arrives (no schema query first).
    """
    backend = q.connection.backend
    rows = batch_rows
    if batch_bytes is not None and not backend.adapts_batches:
        schema = q.schema
        limit = _estimate._limit_of(q.tree)  # (a preview's LIMIT 11: nothing to measure)
        small = limit is not None and limit <= _estimate.SMALL_LIMIT
        if widths is None and not small and not _budget.fixed_width(schema)[1]:
            layout = _estimate._layout(schema)
            widths = _estimate.measure_widths(q, layout, None)
        rows = _budget.batch_rows_for(schema, batch_rows, batch_bytes,
                                      width=widths.widest if widths and widths.rows else None,
                                      unit=backend.batch_unit)
    sql = _strict_sql(q.tree, q.dialect)
    options: dict[str, Any] = {}
    if check_timeout(timeout) is not None:
        options["timeout"] = timeout
    if batch_bytes is not None:
        options["batch_bytes"] = batch_bytes
    stream = backend.stream(sql, rows, **options)
    q.connection._streams.add(stream)  # stopped if the connection closes first
    return stream


def _strict_sql(tree: Any, dialect: str) -> str:
    """The SQL to run: what the dialect cannot express raises instead of being dropped."""
    from sqlglot.errors import ErrorLevel
    from sqlglot.errors import UnsupportedError as SqlglotUnsupported

    try:
        return render(tree, dialect, unsupported_level=ErrorLevel.RAISE)
    except SqlglotUnsupported as err:
        msg = f"{dialect} cannot run this query as written: {err}"
        raise UnsupportedError(msg) from None


def _collect(q: QueryRef, sink_for: Callable[[pa.Schema], Any], *, max_bytes: Any,
             max_rows: Any, batch_rows: Any,
             size_of: Callable[[pa.RecordBatch], int] | None = None,
             timeout: float | None = None, preflight: Any = None,
             read_ahead: bool = False, what: str = "") -> Any:
    """Run ``q`` under the budget into the sink ``sink_for(schema)`` makes; return the sink.

    ``preflight`` (``"estimate"``, ``"count"``, None: off) refuses up front what cannot fit
    (:mod:`queryref.sinks.estimate`), before the query is opened; what it measured sizes the
    batches. ``size_of`` measures a batch for the budget (default: the sink's own
    ``size_of``). With ``read_ahead`` the next batch is read on a thread while the sink takes
    this one, where the engine allows it (:mod:`queryref.sinks.prefetch`).
    """
    budget = Budget(resolve("max_bytes", max_bytes), resolve("max_rows", max_rows), what=what)
    per_batch = resolve("batch_rows", batch_rows)
    run = q.limit(budget.max_rows + 1) if budget.max_rows is not None else q
    found = _estimate.preflight(run, budget=budget, mode=resolve("preflight", preflight))
    stream = _open(run, per_batch, _budget.batch_bytes(budget.max_bytes), timeout,
                   found.widths)
    if read_ahead:
        from queryref.sinks.prefetch import read_ahead as ahead

        stream = ahead(stream)
    sink = sink_for(stream.schema)
    budget.collect(stream, sink, size_of=size_of or sink.size_of,
                   progress=resolve("progress", _UNSET))
    return sink


def dry_run(q: QueryRef, *, max_rows: Any = None, preflight: Any = _UNSET,
            decimals: str | None = None, dtype_backend: str | None = None) -> Estimate:
    """What a sink would fetch: the estimate of the query it would run (``dry_run=True``)."""
    _convert.check_backend(dtype_backend)
    if decimals is not None:
        _convert._check_mode(decimals)
        if decimals == "float":
            q = _decimals_as_double(q)
    rows_cap = resolve("max_rows", max_rows)
    run = q.limit(rows_cap + 1) if rows_cap is not None else q
    return _estimate.estimate(run, count=resolve("preflight", preflight) == "count")


def preflight_file(q: QueryRef, *, max_bytes: Any, preflight: Any = _UNSET) -> None:
    """A file sink's pre-flight check, against its own ``max_bytes`` when it has one."""
    if max_bytes is not None:
        _estimate.preflight(q, budget=Budget(resolve("max_bytes", max_bytes)),
                            mode=resolve("preflight", preflight))


def to_arrow(q: QueryRef, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
             timeout: float | None = None, preflight: Any = _UNSET) -> pa.Table:
    """A guarded ``pyarrow.Table``."""
    sink = _collect(q, _budget.ArrowSink, max_bytes=max_bytes, max_rows=max_rows,
                    batch_rows=batch_rows, size_of=lambda b: b.nbytes, timeout=timeout,
                    preflight=preflight)
    return sink.finish()


def to_pandas(q: QueryRef, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
              decimals: str, timeout: float | None = None,
              shrink_dtypes: bool = False, preflight: Any = _UNSET,
              dtype_backend: str | None = None) -> pd.DataFrame:
    """A guarded pandas DataFrame, each batch copied once into the frame's memory as it
    arrives (peak: the frame plus a batch or two), the next batch read meanwhile.

    With ``shrink_dtypes`` the budget is checked by :mod:`queryref.sinks.shrink` on the shrunk
    size, without the pre-flight estimate (which would count text at full width).
    """
    _convert._check_mode(decimals)
    _convert.check_backend(dtype_backend)
    if shrink_dtypes:
        if dtype_backend is not None:
            msg = "shrink_dtypes=True picks numpy dtypes: it cannot be combined with dtype_backend"
            raise ParameterError(msg)
        from queryref.sinks import shrink as _shrink

        return _shrink.to_pandas(q, max_bytes=max_bytes, max_rows=max_rows,
                                 batch_rows=batch_rows, decimals=decimals, timeout=timeout)
    if decimals == "float":
        q = _decimals_as_double(q)
    sink = _collect(q, lambda schema: _convert.FrameBuilder(schema, decimals, dtype_backend),
                    max_bytes=max_bytes, max_rows=max_rows, batch_rows=batch_rows,
                    timeout=timeout, preflight=preflight, read_ahead=True)
    return sink.finish()


def _decimals_as_double(q: QueryRef) -> QueryRef:
    """``q`` with its DECIMAL columns cast to DOUBLE by the engine.

    The engine casts in parallel and sends half the bytes; casting decimal128 in Arrow
    afterwards took longer than fetching the columns (TPC-H lineitem: 1.0-1.3 s vs 0.9 s).
    Columns the backend marks ``CAST_TO_DOUBLE`` (PostgreSQL's NUMERIC without a precision,
    reported as float64) are cast too: the driver would format each value as text and
    queryref parse it back (4M values: 3.3 s of client CPU against 0.6 s as float8).
    """
    from sqlglot import exp

    from queryref._expr import Expr
    from queryref._queryref import QueryRef
    from queryref.sql.text import column

    schema = q.schema
    names = schema.names
    decimal = [f.name for f in schema if pa.types.is_decimal(f.type)
               or CAST_TO_DOUBLE in (f.metadata or {})]
    if not decimal or len(set(names)) != len(names):
        return q
    double = exp.DataType.build("double")
    cast = q.mutate(**{n: Expr(exp.cast(column(n), double)) for n in decimal})
    fields = [f.with_type(pa.float64()) if f.name in decimal else f for f in schema]
    return QueryRef(cast.tree, q.connection, schema=pa.schema(fields))


def to_polars(q: QueryRef, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
              timeout: float | None = None, preflight: Any = _UNSET) -> pl.DataFrame:
    """A guarded Polars DataFrame (zero-copy from Arrow)."""
    try:
        import polars as pl
    except ImportError:
        msg = "to_polars() needs polars: pip install 'queryref[polars]'"
        raise ImportError(msg) from None
    dupes = sorted({c for c in q.columns if q.columns.count(c) > 1})
    if dupes:  # checked before the query runs: Polars refuses a frame with them
        msg = (f"to_polars(): the result has duplicate column names {dupes} and a Polars "
               "DataFrame needs unique names: alias them in the SQL, or use to_arrow()/"
               "to_pandas()")
        raise ParameterError(msg)
    table = to_arrow(q, max_bytes=max_bytes, max_rows=max_rows, batch_rows=batch_rows,
                     timeout=timeout, preflight=preflight)
    out = pl.from_arrow(table, rechunk=False)
    assert isinstance(out, pl.DataFrame)
    return out


def to_arrow_batches(q: QueryRef, *, batch_rows: Any, timeout: float | None = None,
                     max_batch_bytes: Any = _UNSET) -> pa.RecordBatchReader:
    """A ``RecordBatchReader`` over the running query; memory holds one batch at a time."""
    rows = resolve("batch_rows", batch_rows)
    limit = resolve("max_batch_bytes", max_batch_bytes)
    stream = _open(q, rows, limit, timeout=timeout)
    return pa.RecordBatchReader.from_batches(stream.schema, _bounded(stream, rows, limit))


def _bounded(stream: Stream, batch_rows: int, limit: int | None,
             size_of: Callable[[pa.RecordBatch], int] | None = None
             ) -> Iterator[pa.RecordBatch]:
    """The stream's batches re-cut to exactly ``batch_rows`` rows (but the last), or fewer
    where ``limit`` bytes would be crossed (see :mod:`._rebatch`).

    ``size_of`` measures a batch as its consumer will hold it (pandas: nested values become
    Python objects, dates 8-byte datetimes): the Arrow bound is scaled down by how much larger
    the first batch is that way, so the converted batch is what stays within ``limit``.
    """
    from queryref.sinks.rebatch import rebatch

    with stream:
        batches = iter(stream)
        if limit is not None and size_of is not None:
            first = next((b for b in batches if b.num_rows), None)
            if first is None:
                return
            factor = max(size_of(first) / max(first.nbytes, 1), 1.0)
            limit = max(int(limit / factor), 1)
            batches = itertools.chain((first,), batches)
            del first
        yield from rebatch(batches, limit, batch_rows)


def to_pandas_batches(q: QueryRef, *, batch_rows: Any, decimals: str,
                      timeout: float | None = None, shrink_dtypes: bool = False,
                      max_batch_bytes: Any = _UNSET,
                      dtype_backend: str | None = None) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``batch_rows`` rows, converted one batch at a time."""
    _convert._check_mode(decimals)
    _convert.check_backend(dtype_backend)
    if shrink_dtypes:
        if dtype_backend is not None:
            msg = "shrink_dtypes=True picks numpy dtypes: it cannot be combined with dtype_backend"
            raise ParameterError(msg)
        from queryref.sinks import shrink as _shrink

        return _shrink.to_pandas_batches(q, batch_rows=batch_rows, decimals=decimals,
                                         timeout=timeout, max_batch_bytes=max_batch_bytes)
    rows = resolve("batch_rows", batch_rows)
    limit = resolve("max_batch_bytes", max_batch_bytes)
    stream = _open(q, rows, limit, timeout=timeout)

    def frames() -> Iterator[pd.DataFrame]:
        for batch in _bounded(stream, rows, limit, _convert.pandas_nbytes):
            frame = _convert.batch_to_pandas(batch, decimals, dtype_backend)
            del batch  # (not held, with the engine's buffers it views, while the caller works)
            yield frame
            del frame

    return frames()


def to_parquet(q: QueryRef, path: str | os.PathLike[str], *, max_bytes: Any,
               batch_rows: Any, timeout: float | None = None) -> ParquetWritten:
    """Stream the result to ``path``; the file appears only when complete."""
    return _write_file(q, path, "parquet", max_bytes=max_bytes, batch_rows=batch_rows,
                       timeout=timeout)


def to_csv(q: QueryRef, path: str | os.PathLike[str], *, max_bytes: Any,
           batch_rows: Any, timeout: float | None = None) -> CSVWritten:
    """Stream the result to ``path`` as CSV with a header; the file appears only when complete."""
    written = _write_file(q, path, "csv", max_bytes=max_bytes, batch_rows=batch_rows,
                          timeout=timeout)
    return CSVWritten(written.path, written.rows, written.bytes, written.seconds)


def _write_file(q: QueryRef, path: str | os.PathLike[str], fmt: str, *, max_bytes: Any,
                batch_rows: Any, timeout: float | None) -> ParquetWritten:
    """Write to a temporary file next to ``path``, renamed into place only when complete.

    The engine writes the file itself when it can (DuckDB ``COPY``, with the file's growth as
    progress); otherwise Arrow batches stream through a writer under ``max_bytes``.
    """
    target = file_path(path, f"to_{fmt}()")
    if not target:
        raise ParameterError(f"to_{fmt}() needs a file path")
    budget = resolve("max_bytes", max_bytes) if max_bytes is not None else None
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".queryref-", suffix=f".{fmt}", dir=folder)
    os.close(fd)
    start = time.perf_counter()
    label = f"writing {os.path.basename(target)}"
    try:
        rows = None
        if budget is None and timeout is None:
            backend = q.connection.backend
            copy = backend.copy_to_parquet if fmt == "parquet" else backend.copy_to_csv
            rows = _copy_watched(lambda: copy(q.tree, tmp), tmp, label)
        if rows is None:
            rows = _write_stream(q, tmp, fmt, label, budget, resolve("batch_rows", batch_rows),
                                 timeout)
        usual_permissions(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return ParquetWritten(target, rows, os.path.getsize(target), time.perf_counter() - start)


def usual_permissions(path: str) -> None:
    """mkstemp makes files only their owner can read; give the output what ``open`` would
    (the umask's), as DuckDB's ``COPY`` does."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _copy_watched(copy: Callable[[], int | None], tmp: str, label: str) -> int | None:
    """Run the engine's own copy; while it runs, report the file's growth when a person waits."""
    meter = Progress(label, resolve("progress", _UNSET), count_rows=False)
    if not meter.on:
        return copy()
    import threading

    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            with contextlib.suppress(OSError):
                meter.add(0, os.path.getsize(tmp) - meter.bytes)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        rows = copy()
    finally:
        stop.set()
        watcher.join()
    if rows is not None:  # the last line has the rows the engine reports
        meter.count_rows = True
        meter.rows = rows
        with contextlib.suppress(OSError):
            meter.bytes = os.path.getsize(tmp)
        meter.add(0, 0)
    meter.done()
    return rows


def _write_stream(q: QueryRef, path: str, fmt: str, label: str, budget: int | None,
                  batch_rows: int, timeout: float | None = None) -> int:
    stream = _open(q, batch_rows, resolve("max_batch_bytes", _UNSET), timeout=timeout)
    meter = Progress(label, resolve("progress", _UNSET))
    limits = Budget(budget)
    with stream, _writer(path, fmt, stream.schema) as writer:
        for batch in stream:
            meter.add(batch.num_rows, batch.nbytes)
            limits.add(rows=batch.num_rows, nbytes=batch.nbytes, stop=stream.cancel)
            writer.write_batch(batch)
    meter.done()
    return meter.rows


def _writer(path: str, fmt: str, schema: pa.Schema) -> Any:
    """A batch writer for the file format (a context manager with ``write_batch``)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(path, schema)
    import pyarrow.csv as pacsv

    return pacsv.CSVWriter(path, schema,
                           write_options=pacsv.WriteOptions(quoting_style="needed"))


def count(q: QueryRef) -> int:
    """``SELECT COUNT(*)`` over the query, run in the database."""
    from sqlglot import exp

    inner = q.tree.copy()
    if isinstance(inner, exp.Select) and inner.args.get("order") and not (
        inner.args.get("limit") or inner.args.get("offset")
    ):
        inner.set("order", None)
    tree = exp.select(exp.Alias(this=exp.Count(this=exp.Star()), alias=ident("n"))).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=ident("_q")))
    )
    stream = q.connection.backend.stream(_strict_sql(tree, q.dialect), 1024)
    with stream:
        for batch in stream:
            return int(batch.column(0)[0].as_py())
    return 0


def preview(q: QueryRef, n: int) -> pd.DataFrame:
    """The first ``n`` rows via LIMIT, under the default budget."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ParameterError(f"preview() takes a non-negative number of rows, not {n!r}")
    return q.limit(n).to_pandas()
