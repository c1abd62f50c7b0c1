"""The size guard's fetch layer: count bytes as batches arrive, stop the query on crossing.

This is the guarantee behind every in-memory sink: whatever an estimate said, the process
never holds more than the budget plus one batch of the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pyarrow as pa

from queryref._progress import Progress
from queryref.backends import Stream
from queryref.errors import ResultTooLarge


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


def collect(
    stream: Stream,
    sink: Sink,
    *,
    max_bytes: int | None,
    max_rows: int | None,
    size_of: Callable[[pa.RecordBatch], int],
    progress: bool | str = "auto",
) -> None:
    """Feed every batch of ``stream`` to ``sink`` under the budget.

    Crossing ``max_bytes`` (as measured by ``size_of``) or ``max_rows`` cancels the query in
    the database, drops what the sink holds and raises :class:`ResultTooLarge`.
    """
    _refuse_by_metadata(stream, max_bytes=max_bytes, max_rows=max_rows)
    seen_bytes = 0
    seen_rows = 0
    meter = Progress("fetching", progress)
    try:
        for batch in stream:
            seen_rows += batch.num_rows
            seen_bytes += size_of(batch)
            meter.add(batch.num_rows, batch.nbytes)
            over_rows = max_rows is not None and seen_rows > max_rows
            over_bytes = max_bytes is not None and seen_bytes > max_bytes
            if over_rows or over_bytes:
                stream.cancel()
                sink.clear()
                del batch
                raise ResultTooLarge(
                    stage="fetch",
                    limit_bytes=max_bytes,
                    seen_bytes=seen_bytes,
                    limit_rows=max_rows if over_rows else None,
                    seen_rows=seen_rows,
                )
            sink.add(batch)
            del batch
    finally:
        stream.close()
        meter.done()


def _refuse_by_metadata(stream: Stream, *, max_bytes: int | None, max_rows: int | None) -> None:
    """Refuse before downloading when the engine already says the result is over budget."""
    rows, nbytes = stream.expected_rows, stream.expected_bytes
    over_rows = max_rows is not None and rows is not None and rows > max_rows
    over_bytes = max_bytes is not None and nbytes is not None and nbytes > max_bytes
    if over_rows or over_bytes:
        stream.cancel()
        refuse_up_front(rows=rows, nbytes=nbytes, max_bytes=max_bytes,
                        max_rows=max_rows if over_rows else None,
                        detail="(from the result's metadata, before any batch was downloaded)")


def refuse_up_front(*, rows: int | None, nbytes: int | None, max_bytes: int | None,
                    max_rows: int | None, detail: str) -> None:
    """Raise the refusal of the guard's first layer: a size known before any row moved
    (the result's metadata here, the planner's estimate in :mod:`queryref._estimate`)."""
    raise ResultTooLarge(stage="estimate", limit_bytes=max_bytes, seen_bytes=nbytes,
                         limit_rows=max_rows, seen_rows=rows, detail=detail)


def batch_rows_for(schema: pa.Schema, batch_rows: int, max_bytes: int | None) -> int:
    """Rows per batch so that one batch is small next to the budget (at most 1/16 of it).

    Fixed-width columns count their width, text and nested columns 32 bytes a row.
    """
    if max_bytes is None:
        return batch_rows
    width = 0
    for field in schema:
        try:
            width += max(field.type.bit_width // 8, 1)
        except ValueError:
            width += 32
    rows = max(max_bytes // 16 // max(width, 1), 1024)
    return max(min(batch_rows, rows), 1)
