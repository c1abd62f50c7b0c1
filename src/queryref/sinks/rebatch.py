"""Batches of exactly ``batch_rows`` rows, bounded in bytes too, whatever sizes the engine chooses.

Engines pick their own chunk sizes: DuckDB rounds to its vector size and hands over what its
threads produced (100,000, 386, 99,978, ... rows for ``batch_rows=100_000``), Snowflake's
server decides how big each result chunk is, and a row bound says nothing about wide text.
The batches the engine hands over are re-cut: a batch over a bound is split by slicing
(zero-copy views of the engine's batch), and smaller ones are combined (one copy) so every
batch holds exactly ``max_rows`` rows, but the last, and fewer only where ``max_bytes`` Arrow
bytes would be crossed: a batch over ``max_bytes`` goes on in even slices of its own (nothing
of it waits for the next batch, which would keep both alive). Only a single row wider than
``max_bytes`` comes through alone, over it.

>>> import pyarrow as pa
>>> sizes = [(0, 70), (70, 250), (320, 700)]
>>> odd = [pa.record_batch({"x": list(range(i, i + n))}) for i, n in sizes]
>>> [b.num_rows for b in rebatch(iter(odd), max_bytes=None, max_rows=300)]
[300, 300, 300, 120]
>>> [b.num_rows for b in rebatch(iter(odd), max_bytes=1600, max_rows=300)]
[70, 125, 125, 175, 175, 175, 175]
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa


def rebatch(batches: Iterator[pa.RecordBatch], max_bytes: int | None,
            max_rows: int | None = None) -> Iterator[pa.RecordBatch]:
    """Re-cut ``batches`` to ``max_rows`` rows each (the last may have fewer), and at most
    ``max_bytes`` Arrow bytes (fewer rows where that bound comes first).

    Order and content are unchanged; empty batches are dropped.
    """
    if max_bytes is not None and max_bytes <= 0:
        msg = f"max_batch_bytes must be positive, not {max_bytes!r}"
        raise ValueError(msg)
    pending: list[pa.RecordBatch] = []
    pending_bytes = 0
    pending_rows = 0
    for batch in batches:
        if max_bytes is not None and batch.nbytes > max_bytes:
            # a batch over the byte bound is handed on in even slices of its own, none of it
            # kept waiting for the next batch: a slice would hold the engine's whole batch
            # alive beside the next one, and joining it to that one would copy both
            if pending:
                yield _combine(pending)
                pending, pending_bytes, pending_rows = [], 0, 0
            yield from _even(batch, max_bytes, max_rows)
            del batch
            continue
        for piece in _split(batch, max_bytes, max_rows):
            while piece.num_rows:
                take = piece.num_rows if max_rows is None else \
                    min(piece.num_rows, max_rows - pending_rows)
                head = piece if take == piece.num_rows else piece.slice(0, take)
                if max_bytes is not None and pending and pending_bytes + head.nbytes > max_bytes:
                    room = max_bytes - pending_bytes  # fill by the piece's mean width
                    fit = min(int(room // max(head.nbytes / head.num_rows, 1e-9)), take)
                    if fit > 0:
                        pending.append(piece.slice(0, fit))
                        piece = piece.slice(fit)
                    yield _combine(pending)
                    pending, pending_bytes, pending_rows = [], 0, 0
                    continue
                pending.append(head)
                pending_bytes += head.nbytes
                pending_rows += take
                piece = piece.slice(take)
                full_rows = max_rows is not None and pending_rows >= max_rows
                if full_rows or (max_bytes is not None and pending_bytes >= max_bytes):
                    yield _combine(pending)
                    pending, pending_bytes, pending_rows = [], 0, 0
            del piece
        del batch
    if pending:
        yield _combine(pending)


def _split(batch: pa.RecordBatch, max_bytes: int | None,
           max_rows: int | None) -> Iterator[pa.RecordBatch]:
    """Slices of ``batch`` within both bounds (rows guessed from the mean width, then halved)."""
    n = batch.num_rows
    if n == 0:
        return
    if (max_bytes is None or batch.nbytes <= max_bytes) and (max_rows is None or n <= max_rows):
        yield batch
        return
    width = max(batch.nbytes / n, 1e-9)
    start = 0
    while start < n:
        take = n - start if max_bytes is None else min(n - start, max(int(max_bytes // width), 1))
        if max_rows is not None:
            take = min(take, max_rows)
        piece = batch.slice(start, take)
        # wide rows bunched here: halve
        while max_bytes is not None and take > 1 and piece.nbytes > max_bytes:
            take //= 2
            piece = batch.slice(start, take)
        yield piece
        start += take


def _even(batch: pa.RecordBatch, max_bytes: int,
          max_rows: int | None) -> Iterator[pa.RecordBatch]:
    """``batch`` in slices of about equal rows, each within both bounds (a remnant of a few
    rows would be a batch of its own)."""
    n = batch.num_rows
    parts = -(-batch.nbytes // max_bytes)
    if max_rows is not None:
        parts = max(parts, -(-n // max_rows))
    step = max(-(-n // parts), 1)
    for start in range(0, n, step):
        yield from _split(batch.slice(start, step), max_bytes, max_rows)


def _combine(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_batches(pieces)
