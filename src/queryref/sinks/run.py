"""In-memory sinks: ``to_arrow``, ``to_pandas``, ``to_polars`` and ``to_pandas_batches``.

Each runs a :class:`~queryref.sinks.relation.Relation` under the budget
(:func:`queryref.sinks.streams.collect`) or in bounded batches; ``dry_run`` gives the estimate
of the query a sink would run instead. Files are :mod:`queryref.sinks.files`; counting is
:mod:`queryref.sinks.count`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from queryref._options import _UNSET, resolve
from queryref.errors import ParameterError
from queryref.sinks import budget as _budget
from queryref.sinks import convert as _convert
from queryref.sinks import estimate as _estimate
from queryref.sinks import shrink as _shrink
from queryref.sinks.estimate import Estimate
from queryref.sinks.files import CSVWritten, ParquetWritten  # (queryref/__init__ imports them here)
from queryref.sinks.relation import Relation, decimals_as_double, with_limit
from queryref.sinks.streams import bounded, collect, open_stream

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["CSVWritten", "ParquetWritten", "dry_run", "to_arrow", "to_pandas",
           "to_pandas_batches", "to_polars"]


def dry_run(rel: Relation, *, max_rows: Any = None, preflight: Any = _UNSET,
            decimals: str | None = None, dtype_backend: str | None = None) -> Estimate:
    """What a sink would fetch: the estimate of the query it would run (``dry_run=True``)."""
    _convert.check_backend(dtype_backend)
    if decimals is not None:
        _convert.check_mode(decimals)
        if decimals == "float":
            rel = decimals_as_double(rel)
    rows_cap = resolve("max_rows", max_rows)
    run = with_limit(rel, rows_cap + 1) if rows_cap is not None else rel
    return _estimate.estimate(run, count=resolve("preflight", preflight) == "count")


def to_arrow(rel: Relation, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
             timeout: float | None = None, preflight: Any = _UNSET) -> pa.Table:
    """A guarded ``pyarrow.Table``."""
    sink = collect(rel, _budget.ArrowSink, max_bytes=max_bytes, max_rows=max_rows,
                   batch_rows=batch_rows, size_of=lambda b: b.nbytes, timeout=timeout,
                   preflight=preflight)
    return sink.finish()


def _no_dtype_backend(dtype_backend: str | None) -> None:
    if dtype_backend is not None:
        msg = "shrink_dtypes=True picks numpy dtypes: it cannot be combined with dtype_backend"
        raise ParameterError(msg)


def to_pandas(rel: Relation, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
              decimals: str, timeout: float | None = None,
              shrink_dtypes: bool = False, preflight: Any = _UNSET,
              dtype_backend: str | None = None) -> pd.DataFrame:
    """A guarded pandas DataFrame, each batch copied once into the frame's memory as it
    arrives (peak: the frame plus a batch or two), the next batch read meanwhile.

    With ``shrink_dtypes`` the budget is checked by :mod:`queryref.sinks.shrink` on the shrunk
    size, without the pre-flight estimate (which would count text at full width).
    """
    _convert.check_mode(decimals)
    _convert.check_backend(dtype_backend)
    if shrink_dtypes:
        _no_dtype_backend(dtype_backend)
        return _shrink.to_pandas(rel, max_bytes=max_bytes, max_rows=max_rows,
                                 batch_rows=batch_rows, decimals=decimals, timeout=timeout)
    if decimals == "float":
        rel = decimals_as_double(rel)
    sink = collect(rel, lambda schema: _convert.FrameBuilder(schema, decimals, dtype_backend),
                   max_bytes=max_bytes, max_rows=max_rows, batch_rows=batch_rows,
                   timeout=timeout, preflight=preflight, read_ahead=True)
    return sink.finish()


def to_polars(rel: Relation, *, max_bytes: Any, max_rows: Any, batch_rows: Any,
              timeout: float | None = None, preflight: Any = _UNSET) -> pl.DataFrame:
    """A guarded Polars DataFrame (zero-copy from Arrow)."""
    try:
        import polars as pl
    except ImportError:
        msg = "to_polars() needs polars: pip install 'queryref[polars]'"
        raise ImportError(msg) from None
    columns = rel.columns
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:  # checked before the query runs: Polars refuses a frame with them
        msg = (f"to_polars(): the result has duplicate column names {dupes} and a Polars "
               "DataFrame needs unique names: alias them in the SQL, or use to_arrow()/"
               "to_pandas()")
        raise ParameterError(msg)
    table = to_arrow(rel, max_bytes=max_bytes, max_rows=max_rows, batch_rows=batch_rows,
                     timeout=timeout, preflight=preflight)
    out = pl.from_arrow(table, rechunk=False)
    assert isinstance(out, pl.DataFrame)
    return out


def to_pandas_batches(rel: Relation, *, batch_rows: Any, decimals: str,
                      timeout: float | None = None, shrink_dtypes: bool = False,
                      max_batch_bytes: Any = _UNSET,
                      dtype_backend: str | None = None) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``batch_rows`` rows, converted one batch at a time."""
    _convert.check_mode(decimals)
    _convert.check_backend(dtype_backend)
    if shrink_dtypes:
        _no_dtype_backend(dtype_backend)
        return _shrink.to_pandas_batches(rel, batch_rows=batch_rows, decimals=decimals,
                                         timeout=timeout, max_batch_bytes=max_batch_bytes)
    rows = resolve("batch_rows", batch_rows)
    limit = resolve("max_batch_bytes", max_batch_bytes)
    stream = open_stream(rel, rows, limit, timeout=timeout)

    def frames() -> Iterator[pd.DataFrame]:
        for batch in bounded(stream, rows, limit, _convert.pandas_nbytes):
            frame = _convert.batch_to_pandas(batch, decimals, dtype_backend)
            del batch  # (not held, with the engine's buffers it views, while the caller works)
            yield frame
            del frame

    return frames()
