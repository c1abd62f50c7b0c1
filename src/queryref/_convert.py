"""Arrow to pandas without doubling peak memory, and with dtypes a pandas user computes with.

Batches are converted as they arrive, into memory of their own, and the engine's batch is
released at once: engines export Arrow through the C data interface, which frees a batch only
when every column of it is gone, and an engine's allocator keeps what it frees for itself, so
holding the whole Arrow result until the end would double peak memory. At the end each
column's pieces are joined and freed one column at a time (their pages handed back to the OS,
which glibc does not do by itself for blocks of this size), so the peak is the DataFrame plus
one column (plus the engine's working memory).

Decimals become float64 and dates datetime64 (as Python objects they dominate memory and
time); NULL-able booleans become pandas' ``boolean``; text stays Arrow-backed (pandas 3).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from queryref._memory import release_free_memory
from queryref.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

_DECIMAL_MODES = ("float", "object", "arrow")


def _check_mode(decimals: str) -> None:
    if decimals not in _DECIMAL_MODES:
        msg = f"decimals must be one of {_DECIMAL_MODES}, not {decimals!r}"
        raise ParameterError(msg)


def _arrow_backed(t: pa.DataType, decimals: str) -> bool:
    """Types that pandas keeps as Arrow arrays (so they must be copied out of engine memory)."""
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_string_view(t)
            or (decimals == "arrow" and pa.types.is_decimal(t)))


def _zero_copy_candidate(t: pa.DataType) -> bool:
    """Types whose NULL-free arrays pyarrow may hand to pandas without copying."""
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t)
            or pa.types.is_duration(t))


class FrameBuilder:
    """Builds a pandas DataFrame from Arrow batches, one batch at a time.

    >>> import pyarrow as pa
    >>> b = FrameBuilder(pa.schema([("a", pa.int64())]))
    >>> b.add(pa.record_batch({"a": [1, 2]})); b.add(pa.record_batch({"a": [3]}))
    >>> b.finish()["a"].tolist()
    [1, 2, 3]
    """

    def __init__(self, schema: pa.Schema, decimals: str = "float") -> None:
        _check_mode(decimals)
        self.schema = schema
        self.decimals = decimals
        self._chunks: list[list[Any]] = [[] for _ in schema]

    def add(self, batch: pa.RecordBatch) -> None:
        """Convert one batch into owned pandas pieces; the batch can be dropped after."""
        for i, field in enumerate(self.schema):
            self._chunks[i].append(self._convert(batch.column(i), field.type))

    def clear(self) -> None:
        """Drop everything converted so far."""
        self._chunks = [[] for _ in self.schema]

    def _convert(self, arr: pa.Array, t: pa.DataType) -> Any:
        if _arrow_backed(t, self.decimals):
            return pa.concat_arrays([arr])  # a copy in pyarrow's memory, not the engine's
        engine_memory = True
        if pa.types.is_decimal(t) and self.decimals == "float":
            arr = pc.cast(arr, pa.float64())
            engine_memory = False
        # a types_mapper sends every column through a slower path: pass it for booleans only
        mapper = _types_mapper() if pa.types.is_boolean(t) else None
        values = arr.to_pandas(date_as_object=False, types_mapper=mapper).array
        if engine_memory and arr.null_count == 0 and _zero_copy_candidate(arr.type):
            values = values.copy()
        return values

    def finish(self) -> pd.DataFrame:
        """Join each column's pieces (freeing them column by column) into the DataFrame."""
        import pandas as pd

        if not self._chunks or not self._chunks[0]:
            empty = self.schema.empty_table()
            return empty.to_pandas(date_as_object=False, types_mapper=_types_mapper())
        data: dict[str, Any] = {}
        for i, field in enumerate(self.schema):
            pieces, self._chunks[i] = self._chunks[i], []
            data[f"{i}"] = _join(pieces, field.type)
            del pieces
            release_free_memory()  # the pieces' pages, before the next column is allocated
        frame = pd.DataFrame(data, copy=False)
        frame.columns = self.schema.names  # set by position, so duplicate names survive
        return frame


def _join(pieces: list[Any], t: pa.DataType) -> Any:
    import pandas as pd

    if isinstance(pieces[0], pa.Array):
        chunked = pa.chunked_array(pieces, type=pieces[0].type)
        pieces.clear()
        if pa.types.is_decimal(t):
            return pd.arrays.ArrowExtensionArray(chunked)
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return chunked.to_pandas().array
        return pd.array(chunked, dtype=_text_dtype())
    if len(pieces) == 1:
        return pieces.pop()
    series = [pd.Series(p, copy=False) for p in pieces]
    pieces.clear()
    return pd.concat(series, ignore_index=True).array


@functools.lru_cache(maxsize=1)
def _types_mapper() -> Any:
    import pandas as pd

    return {pa.bool_(): pd.BooleanDtype()}.get


@functools.lru_cache(maxsize=1)
def _text_dtype() -> Any:
    """pandas 3's default text dtype (``str``: Arrow-backed, NaN for missing)."""
    import numpy as np
    import pandas as pd

    return pd.StringDtype("pyarrow", na_value=np.nan)


def batch_to_pandas(batch: pa.RecordBatch, decimals: str = "float") -> pd.DataFrame:
    """One batch to pandas with the same dtype rules as the sinks."""
    builder = FrameBuilder(batch.schema, decimals)
    builder.add(batch)
    return builder.finish()


def pandas_nbytes(batch: pa.RecordBatch) -> int:
    """The bytes this batch will take as pandas columns (at least its Arrow bytes).

    Decimals and dates become 8-byte floats and datetimes, booleans 2 bytes with their mask,
    text stays Arrow-backed (pandas 3), nested values become Python objects (counted 3x).
    """
    total = 0
    n = batch.num_rows
    for arr in batch.columns:
        t = arr.type
        arrow_bytes = arr.nbytes
        if pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_integer(t) \
                or pa.types.is_floating(t) or pa.types.is_temporal(t):
            total += max(arrow_bytes, 8 * n)
        elif pa.types.is_boolean(t):
            total += 2 * n
        elif pa.types.is_nested(t) or pa.types.is_dictionary(t):
            total += 3 * arrow_bytes + 8 * n
        else:
            total += arrow_bytes
    return total
