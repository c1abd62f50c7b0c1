"""Snowflake's types as Arrow and back, and a result's size from its chunks (for
:mod:`.snowflake`)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp

from queryref.backends._quote import literal
from queryref.errors import ParameterError

# Lower bounds of a value's Arrow width by Snowflake type (text: its 4-byte offset only).
_MIN_WIDTH = {"FIXED": 8, "REAL": 8, "DATE": 4, "TIME": 8, "TIMESTAMP_NTZ": 8,
              "TIMESTAMP_LTZ": 8, "TIMESTAMP_TZ": 8, "TEXT": 4, "BINARY": 4}


def arrow_type(meta: Any) -> pa.DataType:
    """The Arrow type ``fetch_arrow_batches`` gives a column, from the cursor's metadata."""
    from snowflake.connector.constants import FIELD_TYPES

    kind = FIELD_TYPES[meta.type_code].name
    if kind == "FIXED":
        scale = meta.scale or 0
        return pa.int64() if scale == 0 else pa.decimal128(meta.precision or 38, scale)
    simple = {"REAL": pa.float64(), "TEXT": pa.string(), "DATE": pa.date32(),
              "BOOLEAN": pa.bool_(), "BINARY": pa.binary(), "TIME": pa.time64("ns"),
              "TIMESTAMP_NTZ": pa.timestamp("us"), "TIMESTAMP": pa.timestamp("us"),
              "TIMESTAMP_LTZ": pa.timestamp("us", "UTC"), "TIMESTAMP_TZ": pa.timestamp("us", "UTC")}
    return simple.get(kind, pa.string())


def snowflake_type(t: pa.DataType) -> exp.DataType:
    """The column type ``create_table`` declares for an Arrow type."""
    if pa.types.is_boolean(t):
        return exp.DataType.build("BOOLEAN")
    if pa.types.is_integer(t):
        return exp.DataType.build("BIGINT")
    if pa.types.is_floating(t):
        return exp.DataType.build("DOUBLE")
    if pa.types.is_decimal(t):
        return exp.DataType.build(f"DECIMAL({t.precision}, {t.scale})")
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return exp.DataType.build("VARCHAR")
    if pa.types.is_date(t):
        return exp.DataType.build("DATE")
    if pa.types.is_timestamp(t):
        return exp.DataType.build("TIMESTAMPTZ" if t.tz else "TIMESTAMP", dialect="snowflake")
    if pa.types.is_time(t):
        return exp.DataType.build("TIME")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return exp.DataType.build("BINARY", dialect="snowflake")
    raise ParameterError(f"create_table() cannot upload a column of Arrow type {t} to Snowflake")


def result_size(cur: Any) -> tuple[int | None, int | None]:
    """Rows and Arrow bytes of the result, from its chunks' metadata (nothing downloaded).

    Remote chunks report their uncompressed size; the first chunk, sent with the answer,
    does not, so its bytes are extrapolated from the others, and never counted below the
    fixed widths of the schema times its rows.
    """
    parts = cur.get_result_batches() or []
    rows = sum(b.rowcount for b in parts) if parts else cur.rowcount
    if rows is None:
        return None, None
    from snowflake.connector.constants import FIELD_TYPES

    width = sum(_MIN_WIDTH.get(FIELD_TYPES[m.type_code].name, 0)
                for m in cur.description or [])
    sized = [b for b in parts if b.uncompressed_size is not None]
    known = sum(b.uncompressed_size for b in sized)
    sized_rows = sum(b.rowcount for b in sized)
    extrapolated = known + (known * (rows - sized_rows) // sized_rows if sized_rows else 0)
    return rows, max(extrapolated, rows * width)


def insert_value(v: Any) -> exp.Expr:
    """A value for a typed column in INSERT ... VALUES: the column's type does the cast, so
    numbers, dates and times go as plain literals (no CAST per value to parse and plan);
    bytes as hexadecimal text decoded in the engine."""
    if isinstance(v, decimal.Decimal) and v.is_finite():
        return exp.Literal.number(str(v))
    if isinstance(v, dt.datetime):
        return exp.Literal.string(v.isoformat(sep=" "))
    if isinstance(v, dt.date | dt.time):
        return exp.Literal.string(v.isoformat())
    if isinstance(v, bytes):  # HEX_DECODE_BINARY('00ff'): whatever BINARY_INPUT_FORMAT says
        return exp.Unhex(this=exp.Literal.string(v.hex()))
    return literal(v)
