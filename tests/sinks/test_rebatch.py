"""max_batch_bytes: batches bounded in bytes, re-cut from what the engine hands over."""

from __future__ import annotations

import pyarrow as pa
import pytest

import queryref as qr
from queryref.errors import ParameterError
from queryref.sinks.rebatch import rebatch


def table_of(batches: list[pa.RecordBatch]) -> pa.Table:
    return pa.Table.from_batches(batches).combine_chunks()


def test_splits_big_and_combines_small_batches() -> None:
    big = pa.record_batch({"x": list(range(10_000)), "s": [f"v{i}" for i in range(10_000)]})
    small = [big.slice(i, 10) for i in range(0, 500, 10)]
    given = [*small, big, *small]
    out = list(rebatch(iter(given), max_bytes=8_000, max_rows=5_000))
    assert table_of(out).equals(table_of(given))  # same rows, same order
    assert all(b.nbytes <= 8_000 and b.num_rows <= 5_000 for b in out)
    assert out[0].num_rows > 10  # small ones were combined
    assert len(out) < len(given)


def test_uneven_widths_and_a_row_wider_than_the_bound() -> None:
    text = ["a"] * 1000 + ["b" * 50_000] + ["c"] * 1000
    batch = pa.record_batch({"s": text})
    out = list(rebatch(iter([batch]), max_bytes=4_096))
    assert table_of(out).equals(table_of([batch]))
    wide = [b for b in out if b.nbytes > 4_096]
    assert [b.num_rows for b in wide] == [1]  # only the one row that cannot fit alone
    with pytest.raises(ValueError):
        list(rebatch(iter([batch]), max_bytes=0))


def test_to_arrow_batches_bounded_in_bytes(con: qr.Connection) -> None:
    q = con.sql("SELECT range AS i, repeat('x', (range % 50)::INT) AS s FROM range(30000)")
    expected = q.to_arrow()
    out = list(q.to_arrow_batches(max_batch_bytes="64KB"))
    assert all(b.nbytes <= 64_000 for b in out)
    assert pa.Table.from_batches(out).equals(expected)
    rows = list(q.to_arrow_batches(batch_rows=1000, max_batch_bytes="10MB"))
    assert max(b.num_rows for b in rows) == 1000  # rows still bound (DuckDB rounds to 2048)
    assert sum(b.num_rows for b in rows) == 30_000


def test_to_pandas_batches_and_the_option(con: qr.Connection) -> None:
    q = con.sql("SELECT range AS i, 'k' || (range % 4) AS k FROM range(20000)")
    with qr.options.context(max_batch_bytes="32KB"):
        frames = list(q.to_pandas_batches())
        arrow = list(q.to_arrow_batches())
    assert len(frames) > 3 and all(b.nbytes <= 32_000 for b in arrow)
    import pandas as pd

    assert pd.concat(frames, ignore_index=True).equals(q.to_pandas())
    shrunk = list(q.to_pandas_batches(max_batch_bytes="32KB", shrink_dtypes=True))
    assert len(shrunk) > 1 and all(str(f["k"].dtype) == "category" for f in shrunk)
    assert qr.options.max_batch_bytes == 16 * 2**20  # the default: bounded whatever the width
    with pytest.raises(ParameterError):
        qr.options.max_batch_bytes = 0
