"""Opening a query's stream with batches bounded in rows and bytes, and reading it.

:func:`open_stream` sizes the batches (from the schema, or widths measured in the engine);
:func:`bounded` re-cuts what arrives to exact sizes (:mod:`queryref.sinks.rebatch`);
:func:`collect` feeds a sink under the budget (:mod:`queryref.sinks.budget`) after the
pre-flight check (:mod:`queryref.sinks.estimate`). The sinks in :mod:`queryref.sinks.run`,
:mod:`queryref.sinks.files` and :mod:`queryref.sinks.shrink` all open their queries here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from queryref._options import _UNSET, resolve
from queryref.backends import Stream
from queryref.backends._common import check_timeout
from queryref.sinks import budget as _budget
from queryref.sinks import estimate as _estimate
from queryref.sinks.budget import Budget
from queryref.sinks.prefetch import read_ahead as ahead
from queryref.sinks.rebatch import rebatch
from queryref.sinks.relation import Relation, with_limit


def open_stream(rel: Relation, batch_rows: int, batch_bytes: int | None = None,
                timeout: float | None = None, widths: _estimate.Widths | None = None) -> Stream:
    """Open ``rel``'s stream, its batches bounded by ``batch_rows`` and ``batch_bytes``.

    An engine whose reader cannot change its batch size once the query runs (DuckDB) gets
    its rows per batch from the schema's fixed widths, else the widths the pre-flight
    measured, else widths measured now over a sample in the engine (a query that streams),
    else the engine's own unit (a 2,048-row vector). The other engines take ``batch_bytes``
    and size their fetches from what arrives (no schema query first).
    """
    backend = rel.backend
    rows = batch_rows
    if batch_bytes is not None and not backend.adapts_batches:
        schema = rel.schema
        limit = _estimate.limit_of(rel.tree)  # (a preview's LIMIT 11: nothing to measure)
        small = limit is not None and limit <= _estimate.SMALL_LIMIT
        if widths is None and not small and not _budget.fixed_width(schema)[1]:
            widths = _estimate.measure_widths(rel, _budget.layout(schema), None)
        rows = _budget.batch_rows_for(schema, batch_rows, batch_bytes,
                                      width=widths.widest if widths and widths.rows else None,
                                      unit=backend.batch_unit)
    options: dict[str, Any] = {}
    if check_timeout(timeout) is not None:
        options["timeout"] = timeout
    if batch_bytes is not None:
        options["batch_bytes"] = batch_bytes
    return rel.open(rel.sql(), rows, **options)


def bounded(stream: Stream, batch_rows: int, limit: int | None,
            size_of: Callable[[pa.RecordBatch], int] | None = None
            ) -> Iterator[pa.RecordBatch]:
    """The stream's batches re-cut to exactly ``batch_rows`` rows (but the last), or fewer
    where ``limit`` bytes would be crossed (see :mod:`queryref.sinks.rebatch`).

    ``size_of`` measures a batch as its consumer will hold it (pandas: nested values become
    Python objects, dates 8-byte datetimes): the Arrow bound is scaled down by how much larger
    the first batch is that way, so the converted batch is what stays within ``limit``.
    """
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


def to_arrow_batches(rel: Relation, *, batch_rows: Any, timeout: float | None = None,
                     max_batch_bytes: Any = _UNSET) -> pa.RecordBatchReader:
    """A ``RecordBatchReader`` over the running query; memory holds one batch at a time."""
    rows = resolve("batch_rows", batch_rows)
    limit = resolve("max_batch_bytes", max_batch_bytes)
    stream = open_stream(rel, rows, limit, timeout=timeout)
    return pa.RecordBatchReader.from_batches(stream.schema, bounded(stream, rows, limit))


def collect(rel: Relation, sink_for: Callable[[pa.Schema], Any], *, max_bytes: Any,
            max_rows: Any, batch_rows: Any,
            size_of: Callable[[pa.RecordBatch], int] | None = None,
            timeout: float | None = None, preflight: Any = None,
            read_ahead: bool = False, what: str = "") -> Any:
    """Run ``rel`` under the budget into the sink ``sink_for(schema)`` makes; return the sink.

    ``preflight`` (``"estimate"``, ``"count"``, None: off) refuses up front what cannot fit
    (:mod:`queryref.sinks.estimate`), before the query is opened; what it measured sizes the
    batches. ``size_of`` measures a batch for the budget (default: the sink's own
    ``size_of``). With ``read_ahead`` the next batch is read on a thread while the sink takes
    this one, where the engine allows it (:mod:`queryref.sinks.prefetch`).
    """
    budget = Budget(resolve("max_bytes", max_bytes), resolve("max_rows", max_rows), what=what)
    per_batch = resolve("batch_rows", batch_rows)
    run = with_limit(rel, budget.max_rows + 1) if budget.max_rows is not None else rel
    found = _estimate.preflight(run, budget=budget, mode=resolve("preflight", preflight))
    stream = open_stream(run, per_batch, _budget.batch_bytes(budget.max_bytes), timeout,
                         found.widths)
    try:
        if read_ahead:
            stream = ahead(stream)
        sink = sink_for(stream.schema)
    except BaseException:  # (a Ctrl-C too: the query's connection goes back now, not at gc)
        stream.close()
        raise
    budget.collect(stream, sink, size_of=size_of or sink.size_of,
                   progress=resolve("progress", _UNSET))
    return sink
