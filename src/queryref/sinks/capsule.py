"""A query as an Arrow C stream (the PyCapsule interface, ``__arrow_c_stream__``), under the
budget.

Consumers that speak the protocol (``pa.table``, ``pa.RecordBatchReader.from_stream``,
``pl.DataFrame``, DuckDB's scan of a Python variable) pull batches through the C interface.
Each pull fetches the next batch from the engine, and the budget counts it as it crosses
(:meth:`~queryref.sinks.budget.Budget.admit`, the guard every sink uses): a consumer that keeps
everything is stopped where ``to_arrow`` would be. One that stops early (``LIMIT``, reading one
batch) fetches no more than it read, and releasing the stream closes the engine's cursor.

The query opens on the first pull, not when the stream is made: DuckDB asks for a fresh stream
three times to plan one scan and reads only the last, and each would otherwise run the query.
The schema the consumer sees before that is the relation's (``QueryRef.schema``, cached).

What the consumer raises when the budget is crossed is its own error, carrying the message of
:class:`~queryref.errors.ResultTooLarge` (an error cannot cross the C interface as a Python
object): pyarrow raises ``ArrowMemoryError`` (a ``MemoryError``, as ``ResultTooLarge`` is one),
Polars ``ComputeError``, DuckDB ``InvalidInputException``.

>>> import pyarrow as pa
>>> from sqlglot import exp
>>> from queryref.backends.duckdb import DuckDBBackend
>>> rel = Relation(exp.select("*").from_("range(5)"), DuckDBBackend.open(":memory:"))
>>> pa.table(ArrowStream(rel))["range"].to_pylist()
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from queryref._options import _UNSET, resolve
from queryref.sinks import budget as _budget
from queryref.sinks.budget import Budget
from queryref.sinks.relation import Relation, with_limit
from queryref.sinks.streams import open_stream

#: how the budget's error names what was counted
WHAT = ("read through the Arrow stream protocol; a consumer that does not keep the rows "
        "(an aggregate in DuckDB, a writer) can read q.to_arrow_batches(), which has no budget")


class ArrowStream:
    """``rel`` as an object with ``__arrow_c_stream__``: each call is a new run of the query
    under a budget of its own (``max_bytes``, ``max_rows``: the ``qr.options`` ones unless
    given).
    """

    __slots__ = ("_batch_rows", "_max_bytes", "_max_rows", "_rel")

    def __init__(self, rel: Relation, *, max_bytes: Any = _UNSET, max_rows: Any = _UNSET,
                 batch_rows: Any = _UNSET) -> None:
        self._rel = rel
        self._max_bytes = max_bytes
        self._max_rows = max_rows
        self._batch_rows = batch_rows

    def reader(self) -> pa.RecordBatchReader:
        """A reader whose batches are fetched, and counted, as they are pulled."""
        budget = Budget(resolve("max_bytes", self._max_bytes),
                        resolve("max_rows", self._max_rows), what=WHAT)
        run = with_limit(self._rel, budget.max_rows + 1) if budget.max_rows is not None \
            else self._rel
        schema = run.schema
        rows = resolve("batch_rows", self._batch_rows)
        progress = resolve("progress", _UNSET)

        def batches() -> Iterator[pa.RecordBatch]:
            stream = open_stream(run, rows, _budget.batch_bytes(budget.max_bytes))
            admitted = budget.admit(stream, size_of=_nbytes, progress=progress)
            with contextlib.closing(admitted):  # released early: the cursor closes now
                for batch in admitted:
                    yield conform(batch, schema)
                    del batch

        return pa.RecordBatchReader.from_batches(schema, batches())

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule stream protocol; ``requested_schema`` is honoured when pyarrow
        can cast the result to it, else ignored (as the protocol allows)."""
        reader = self.reader()
        if requested_schema is not None:
            reader = cast(reader, pa.Schema._import_from_c_capsule(requested_schema))
        return reader.__arrow_c_stream__()


def _nbytes(batch: pa.RecordBatch) -> int:
    return int(batch.nbytes)  # what to_arrow counts: the batch as Arrow holds it


def cast(reader: pa.RecordBatchReader, target: pa.Schema) -> pa.RecordBatchReader:
    """``reader`` cast to ``target`` batch by batch, or ``reader`` itself where pyarrow cannot
    (other names, or types with no cast).

    >>> r = pa.RecordBatchReader.from_batches(pa.schema([("a", pa.int64())]), [])
    >>> cast(r, pa.schema([("a", pa.int32())])).schema.types
    [DataType(int32)]
    >>> cast(r, pa.schema([("b", pa.int32())])) is r
    True
    """
    if reader.schema.equals(target):
        return reader
    try:
        return reader.cast(target)
    except (ValueError, TypeError, NotImplementedError, pa.ArrowException):
        return reader


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``schema``'s names and types, as the reader declared them before the
    query ran (the engine's zero-row answer can differ from its rows in details: a narrower
    integer, field metadata).

    >>> b = pa.record_batch([pa.array([1, 2])], names=["a"])
    >>> conform(b, pa.schema([("a", pa.int32())])).schema.types
    [DataType(int32)]
    """
    if batch.schema.equals(schema):
        return batch
    columns = [col if col.type == field.type else col.cast(field.type)
               for col, field in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
