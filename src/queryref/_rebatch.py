"""Batches bounded in bytes as well as rows, whatever sizes the engine chooses.

Engines pick their own chunk sizes: DuckDB rounds to its vector size, Snowflake's server
decides how big each result chunk is, and a row bound says nothing about wide text. With
``max_batch_bytes`` the batches the engine hands over are re-cut: a batch over the bound is
split by slicing (zero-copy views of the engine's batch), and runs of small batches are
combined (one copy) until the next would cross either bound. Every batch then holds at most
``max_batch_bytes`` (Arrow bytes) and at most ``batch_rows`` rows; only a single row wider
than the bound comes through alone, over it.

>>> import pyarrow as pa
>>> small = [pa.record_batch({"x": list(range(i, i + 100))}) for i in range(0, 1000, 100)]
>>> [b.num_rows for b in rebatch(iter(small), max_bytes=2400, max_rows=1000)]
[300, 300, 300, 100]
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa


def rebatch(batches: Iterator[pa.RecordBatch], max_bytes: int,
            max_rows: int | None = None) -> Iterator[pa.RecordBatch]:
    """Re-cut ``batches`` so each has at most ``max_bytes`` Arrow bytes and ``max_rows`` rows.

    Order and content are unchanged; empty batches are dropped.
    """
    if max_bytes <= 0:
        msg = f"max_batch_bytes must be positive, not {max_bytes!r}"
        raise ValueError(msg)
    pending: list[pa.RecordBatch] = []
    pending_bytes = 0
    pending_rows = 0
    for batch in batches:
        for piece in _split(batch, max_bytes, max_rows):
            size, rows = piece.nbytes, piece.num_rows
            over_bytes = pending_bytes + size > max_bytes
            over_rows = max_rows is not None and pending_rows + rows > max_rows
            if pending and (over_bytes or over_rows):
                yield _combine(pending)
                pending, pending_bytes, pending_rows = [], 0, 0
            pending.append(piece)
            pending_bytes += size
            pending_rows += rows
        del batch
    if pending:
        yield _combine(pending)


def _split(batch: pa.RecordBatch, max_bytes: int,
           max_rows: int | None) -> Iterator[pa.RecordBatch]:
    """Slices of ``batch`` within both bounds (rows guessed from the mean width, then halved)."""
    n = batch.num_rows
    if n == 0:
        return
    if batch.nbytes <= max_bytes and (max_rows is None or n <= max_rows):
        yield batch
        return
    width = max(batch.nbytes / n, 1e-9)
    start = 0
    while start < n:
        take = min(n - start, max(int(max_bytes // width), 1))
        if max_rows is not None:
            take = min(take, max_rows)
        piece = batch.slice(start, take)
        while take > 1 and piece.nbytes > max_bytes:  # wide rows bunched here: halve
            take //= 2
            piece = batch.slice(start, take)
        yield piece
        start += take


def _combine(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_batches(pieces)
