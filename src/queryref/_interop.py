"""``QueryRef`` speaking other libraries' protocols: Arrow's C stream interface (so
``pa.table(q)``, ``pl.DataFrame(q)`` and ``duckdb.sql("FROM q")`` read it, streaming, under
the budget). Mixed into ``QueryRef``."""

# mypy: disable-error-code="misc"
# (methods take ``self: QueryRef``, the class they are mixed into, as in ``_verbs``)
from __future__ import annotations

from typing import TYPE_CHECKING

from queryref.sinks.capsule import ArrowStream

if TYPE_CHECKING:
    from queryref._queryref import QueryRef


class ArrowInterop:
    """Mixed into ``QueryRef``: the Arrow PyCapsule stream protocol."""

    __slots__ = ()

    def __arrow_c_stream__(self: QueryRef, requested_schema: object | None = None) -> object:
        """The result as an Arrow C stream (the PyCapsule protocol), read as the consumer
        pulls, under the size budget.

        ``pa.table(q)``, ``pa.RecordBatchReader.from_stream(q)``, ``pl.DataFrame(q)``,
        ``pd.DataFrame.from_arrow(q)`` and ``duckdb.sql("FROM q")`` (on another DuckDB
        connection) take a QueryRef directly. The
        query runs when the consumer reads its first batch; each batch is fetched when the
        consumer asks for it, and the bytes that cross count against ``qr.options.max_bytes``
        (and ``max_rows``), as in [`to_arrow`][queryref.QueryRef.to_arrow]: past the budget the
        query is stopped and the consumer fails with the message of
        [`ResultTooLarge`][queryref.errors.ResultTooLarge] (pyarrow raises ``ArrowMemoryError``,
        a ``MemoryError``; Polars ``ComputeError``; DuckDB ``InvalidInputException``). A
        consumer that stops early fetches only what it read; releasing the stream closes the
        query's cursor. ``requested_schema`` is honoured when pyarrow can cast to it, else
        ignored (as the protocol allows). To stream more than the budget through a consumer
        that keeps nothing, hand it ``q.to_arrow_batches()`` instead.

        >>> import pyarrow as pa
        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT range AS id FROM range(5)")
        >>> pa.table(q)["id"].to_pylist()
        [0, 1, 2, 3, 4]
        >>> with qr.options.context(max_bytes="1KB"):
        ...     pa.table(qr.connect().sql("SELECT range AS id FROM range(1000)"))
        ...     # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        pyarrow.lib.ArrowMemoryError: Out of memory: ResultTooLarge: the result passed ...
        """
        return ArrowStream(self._relation()).__arrow_c_stream__(requested_schema)
