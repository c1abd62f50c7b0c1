"""The size budget: the one owner of counting, stopping and refusing.

Every in-memory sink (``to_pandas``, ``to_arrow``, ``to_polars``, ``shrink_dtypes``,
``map_partitions``, the notebook preview, the CLI's table), the streamed sinks with a budget
(``to_parquet(max_bytes=...)``, the CLI's files) and uploads count what they take through a
:class:`Budget`. It counts rows and bytes as batches arrive; the moment either limit is crossed
it stops the query in the database, drops what was fetched and raises
:class:`~queryref.errors.ResultTooLarge`, which is raised nowhere else (:meth:`Budget.refuse`
is the pre-flight's refusal, before a row moved).

It also decides how big a batch may be (:func:`batch_bytes`, :func:`batch_rows_for`): a batch
is bounded in bytes, not only rows, so that "the budget plus one batch" is a bound whatever the
row width.

>>> b = Budget(100)
>>> b.add(rows=2, nbytes=60)
>>> try:
...     b.add(rows=2, nbytes=60)
... except ResultTooLarge as err:
...     print(err.stage, err.seen_bytes, err.seen_rows)
fetch 120 4
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import NoReturn, Protocol

import pyarrow as pa

from queryref.backends import Stream
from queryref.errors import ResultTooLarge
from queryref.sinks.progress import Progress
from queryref.sinks.rebatch import _split

MiB = 2**20
#: the most one batch may hold under a budget (the guard's "plus one batch")
BATCH_BYTES_CAP = 64 * MiB
#: the least a batch is cut to (smaller batches cost per-batch overhead for nothing)
BATCH_BYTES_FLOOR = 1 * MiB
#: a batch is at most this fraction of the budget
BATCH_FRACTION = 16


class Sink(Protocol):
    """Where accepted batches go: kept as Arrow, or converted at once (pandas)."""

    def add(self, batch: pa.RecordBatch) -> None: ...

    def clear(self) -> None: ...


class ArrowSink:
    """Keeps the batches as they are, for a ``pyarrow.Table``."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.batches: list[pa.RecordBatch] = []

    def add(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def clear(self) -> None:
        self.batches = []

    def finish(self) -> pa.Table:
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        self.batches = []
        return table


class Budget:
    """One sink's limits (``max_bytes``, ``max_rows``; None: no limit) and what it has taken.

    ``what`` names what is counted in the error (``"map_partitions results"``).
    """

    def __init__(self, max_bytes: int | None, max_rows: int | None = None, *,
                 what: str = "") -> None:
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self.what = what
        self.bytes = 0
        self.rows = 0

    @property
    def active(self) -> bool:
        return self.max_bytes is not None or self.max_rows is not None

    def over(self) -> bool:
        return (self.max_bytes is not None and self.bytes > self.max_bytes) or \
            (self.max_rows is not None and self.rows > self.max_rows)

    def add(self, *, rows: int = 0, nbytes: int = 0, stop: Callable[[], None] | None = None,
            drop: Callable[[], None] | None = None, detail: str = "") -> None:
        """Count ``rows`` and ``nbytes`` more; past a limit, ``stop()`` the query, ``drop()``
        what was kept, and raise."""
        self.rows += rows
        self.bytes += nbytes
        if not self.over():
            return
        try:
            if stop is not None:
                stop()
        finally:
            if drop is not None:
                drop()
        self._raise("fetch", rows=self.rows, nbytes=self.bytes, detail=detail)

    def refuse(self, *, rows: int | None, nbytes: int | None, detail: str,
               stop: Callable[[], None] | None = None) -> NoReturn:
        """The pre-flight's refusal: a size known before any row moved."""
        if stop is not None:
            stop()
        self._raise("estimate", rows=rows, nbytes=nbytes, detail=detail)

    def check_up_front(self, *, rows: int | None, nbytes: int | None, detail: str,
                       stop: Callable[[], None] | None = None) -> None:
        """Refuse when a size known before fetching (rows, bytes) is over a limit."""
        over_rows = self.max_rows is not None and rows is not None and rows > self.max_rows
        over_bytes = self.max_bytes is not None and nbytes is not None and \
            nbytes > self.max_bytes
        if over_rows or over_bytes:
            self.refuse(rows=rows, nbytes=nbytes, detail=detail, stop=stop)

    def _raise(self, stage: str, *, rows: int | None, nbytes: int | None,
               detail: str) -> NoReturn:
        over_rows = self.max_rows is not None and rows is not None and rows > self.max_rows
        if self.what:
            detail = f"({self.what}){(' ' + detail) if detail else ''}"
        raise ResultTooLarge(stage=stage, limit_bytes=self.max_bytes, seen_bytes=nbytes,
                             limit_rows=self.max_rows if over_rows else None, seen_rows=rows,
                             detail=detail)

    # -- the fetch layer ----------------------------------------------------------------------
    def collect(self, stream: Stream, sink: Sink, *,
                size_of: Callable[[pa.RecordBatch], int],
                progress: bool | str = "auto") -> None:
        """Feed every batch of ``stream`` to ``sink`` under the budget (:meth:`admit`),
        after refusing what the result's metadata already puts over it."""
        self.check_up_front(
            rows=stream.expected_rows, nbytes=stream.expected_bytes, stop=stream.cancel,
            detail="(from the result's metadata, before any batch was downloaded)")
        with contextlib.closing(self.admit(stream, size_of=size_of, progress=progress,
                                           drop=sink.clear)) as batches:
            for piece in batches:
                sink.add(piece)
                del piece

    def admit(self, stream: Stream, *, size_of: Callable[[pa.RecordBatch], int],
              progress: bool | str = "auto", drop: Callable[[], None] | None = None
              ) -> Generator[pa.RecordBatch, None, None]:
        """The batches of ``stream``, each counted before it is handed on.

        A batch over the byte bound (:func:`batch_bytes`) is cut into slices first, so no more
        than one slice passes the budget. Crossing a limit cancels the query in the database,
        calls ``drop()`` (the holder lets go of what it kept) and raises. The stream is closed
        when the batches end, fail or are abandoned (the generator closed).
        """
        bound = batch_bytes(self.max_bytes)
        meter = Progress("fetching", progress)
        try:
            for batch in stream:
                pieces = split(batch, bound) if bound is not None else (batch,)
                del batch
                for piece in pieces:
                    meter.add(piece.num_rows, piece.nbytes)
                    self.add(rows=piece.num_rows, nbytes=size_of(piece), stop=stream.cancel,
                             drop=drop)
                    yield piece
                    del piece
        finally:
            stream.close()
            meter.done()


def batch_bytes(max_bytes: int | None) -> int | None:
    """The most one batch may hold under a budget of ``max_bytes`` (None: no budget).

    >>> batch_bytes(20 * 10**6), batch_bytes(2 * 2**30) == BATCH_BYTES_CAP, batch_bytes(None)
    (1250000, True, None)
    """
    if max_bytes is None:
        return None
    return max(min(max_bytes // BATCH_FRACTION, BATCH_BYTES_CAP), min(BATCH_BYTES_FLOOR,
                                                                         max_bytes))


def value_width(t: pa.DataType) -> int | None:
    """Bytes one value of ``t`` takes in Arrow, or None where values vary (strings, binary,
    lists, structs ...): the one reading of a schema's widths, for the budget and estimates."""
    if pa.types.is_boolean(t) or pa.types.is_null(t):
        return 1
    try:
        return max(t.bit_width // 8, 1)
    except ValueError:
        return None


@dataclass(frozen=True)
class Layout:
    """Bytes a row takes in Arrow: ``fixed`` values, the ``offsets`` of the columns whose
    values vary (4 bytes, 8 for large types), and which columns (positions) vary."""

    fixed: int
    offsets: int
    varying: tuple[int, ...]


def layout(schema: pa.Schema) -> Layout:
    """The one reading of a row's width from a schema (the budget's batch sizes, the
    estimate's bytes).

    >>> layout(pa.schema([("a", pa.int64()), ("s", pa.string()), ("b", pa.large_binary())]))
    Layout(fixed=8, offsets=12, varying=(1, 2))
    """
    fixed = offsets = 0
    varying = []
    for i, field in enumerate(schema):
        t = field.type
        width = value_width(t)
        if width is not None:
            fixed += width
            continue
        varying.append(i)
        large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
        offsets += 8 if large else 4
    return Layout(fixed, offsets, tuple(varying))


def fixed_width(schema: pa.Schema) -> tuple[int, bool]:
    """Bytes a row of ``schema`` takes in Arrow for its fixed-width columns and the varying
    ones' offsets, and whether every column is fixed-width (then it is exact)."""
    row = layout(schema)
    return row.fixed + row.offsets, not row.varying


def batch_rows_for(schema: pa.Schema, batch_rows: int, max_batch_bytes: int | None, *,
                   width: float | None = None, unit: int = 1) -> int:
    """Rows per fetch so that one batch stays within ``max_batch_bytes``.

    The row width is exact for fixed-width schemas; otherwise ``width`` (bytes per row
    measured in the warehouse, see :mod:`queryref.sinks.estimate`) if known. Without either, a
    batch cannot be sized from the schema: the engine's smallest unit (``unit`` rows: DuckDB's
    2,048-row vector) is fetched and the engine's stream adapts (or is cut) from what arrives.

    >>> s = pa.schema([("a", pa.int64()), ("b", pa.float64())])
    >>> batch_rows_for(s, 100_000, 2**20), batch_rows_for(s, 100_000, None)
    (65536, 100000)
    >>> text = pa.schema([("s", pa.string())])
    >>> batch_rows_for(text, 100_000, 2**20, unit=2048), batch_rows_for(text, 100_000, 2**20,
    ...                                                                  width=20_000, unit=2048)
    (2048, 52)
    """
    if max_batch_bytes is None:
        return batch_rows
    fixed, exact = fixed_width(schema)
    if not exact:
        if width is None:
            return max(min(batch_rows, unit), 1)
        fixed = max(fixed, int(width))
    rows = max_batch_bytes // max(fixed, 1)
    return max(min(batch_rows, rows), 1)


def split(batch: pa.RecordBatch, max_bytes: int) -> tuple[pa.RecordBatch, ...] | Iterator[
        pa.RecordBatch]:
    """``batch`` as zero-copy slices of at most ``max_bytes`` (one row may be over alone)."""
    if batch.nbytes <= max_bytes:
        return (batch,)
    return _split(batch, max_bytes, None)
