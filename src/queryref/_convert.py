"""Arrow to pandas without doubling peak memory, and with dtypes a pandas user computes with.

Decimals become float64 and dates datetime64 in Arrow, before pandas sees them (as Python
objects they dominate memory and time); the table is converted with ``self_destruct`` so
Arrow buffers are released column by column as pandas takes them over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from queryref.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

_DECIMAL_MODES = ("float", "object", "arrow")


def _check_mode(decimals: str) -> None:
    if decimals not in _DECIMAL_MODES:
        msg = f"decimals must be one of {_DECIMAL_MODES}, not {decimals!r}"
        raise ParameterError(msg)


def prepare(table: pa.Table, decimals: str = "float") -> pa.Table:
    """Cast decimal columns to float64 (unless asked to keep them), one column at a time."""
    _check_mode(decimals)
    if decimals != "float":
        return table
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.float64()))
    return table


def _own_text(table: pa.Table) -> pa.Table:
    """Copy text columns into memory of their own.

    pandas keeps text columns as Arrow arrays. Batches an engine exports through the Arrow C
    interface are freed as a whole, so one text column kept zero-copy would pin every
    column of every batch: the full Arrow table would live on beside the DataFrame.
    """
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type) \
                or pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            chunks = table.column(i).chunks
            merged = pa.concat_arrays(chunks) if chunks else pa.array([], field.type)
            table = table.set_column(i, field, pa.chunked_array([merged], field.type))
    return table


def _types_mapper(schema: pa.Schema, decimals: str) -> Any:
    import pandas as pd

    mapping: dict[pa.DataType, Any] = {}
    for field in schema:
        if pa.types.is_boolean(field.type):
            mapping[field.type] = pd.BooleanDtype()  # keeps NULLs without object columns
        elif decimals == "arrow" and pa.types.is_decimal(field.type):
            mapping[field.type] = pd.ArrowDtype(field.type)
    return mapping.get if mapping else None


def to_pandas(owned: list[pa.Table], decimals: str = "float") -> pd.DataFrame:
    """Convert the one table in ``owned``, releasing Arrow buffers as pandas takes them over.

    The table comes in a list that this function empties, so no caller frame keeps a
    reference that would pin the Arrow buffers (and double peak memory).
    """
    table = owned.pop()
    table = _own_text(prepare(table, decimals))
    mapper = _types_mapper(table.schema, decimals)
    return table.to_pandas(
        self_destruct=True,
        split_blocks=True,
        date_as_object=False,
        types_mapper=mapper,
    )


def batch_to_pandas(batch: pa.RecordBatch, decimals: str = "float") -> pd.DataFrame:
    """One batch to pandas with the same dtype rules as :func:`to_pandas`."""
    return to_pandas([pa.Table.from_batches([batch])], decimals)


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
