"""Rows from a DB-API cursor as Arrow batches: types from the cursor description, else the rows.

A description is precise for some drivers (MySQL's type codes carry precision and scale) and
vague for others (DB-API's ``NUMBER`` covers integers, floats and decimals); where it is
vague, the Python types of the first batch decide, and later batches are held to them.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from queryref.errors import BackendError

# MySQL/MariaDB field type codes (pymysql.constants.FIELD_TYPE, mysqlclient's the same).
_MYSQL_TYPES: dict[int, pa.DataType | None] = {
    1: pa.int16(), 2: pa.int32(), 3: pa.int64(), 8: pa.int64(), 9: pa.int32(), 13: pa.int16(),
    4: pa.float32(), 5: pa.float64(),
    0: None, 246: None,  # DECIMAL / NEWDECIMAL: precision and scale from the description
    7: pa.timestamp("us"), 12: pa.timestamp("us"), 10: pa.date32(), 14: pa.date32(),
    11: pa.duration("us"), 245: pa.string(), 247: pa.string(), 248: pa.string(),
    6: pa.null(), 16: pa.binary(), 255: pa.binary(),
}
# Text-or-bytes codes: VARCHAR, VAR_STRING, STRING and the BLOB family (TEXT is a BLOB there).
_MYSQL_TEXT = {15, 253, 254, 249, 250, 251, 252}


def _mysql_type(entry: Sequence[Any]) -> pa.DataType | None:
    code = entry[1]
    if code in (0, 246):
        length, scale = int(entry[4] or entry[3] or 38), int(entry[5] or 0)
        return pa.decimal128(min(max(length, scale + 1, 1), 38), min(scale, 38))
    return _MYSQL_TYPES.get(code)


def declared_types(description: Sequence[Sequence[Any]], dialect: str) -> list[pa.DataType | None]:
    """Types the description states precisely; None where the rows must decide."""
    if dialect == "mysql":
        return [None if d[1] in _MYSQL_TEXT else _mysql_type(d) for d in description]
    return [None] * len(description)


def _vague_type(entry: Sequence[Any], dbapi: Any) -> pa.DataType:
    """A type for a column whose rows say nothing (no rows, or all NULL)."""
    code = entry[1]
    for attr, t in (("NUMBER", pa.float64()), ("DATETIME", pa.timestamp("us")),
                    ("BINARY", pa.binary()), ("STRING", pa.string())):
        try:
            if dbapi is not None and code == getattr(dbapi, attr):
                return t
        except Exception:
            continue
    return pa.string()


_PY_TYPES: tuple[tuple[type, pa.DataType], ...] = (
    (bool, pa.bool_()), (int, pa.int64()), (float, pa.float64()), (str, pa.string()),
    (bytes, pa.binary()), (bytearray, pa.binary()), (memoryview, pa.binary()),
    (dt.datetime, pa.timestamp("us")), (dt.date, pa.date32()), (dt.time, pa.time64("us")),
    (dt.timedelta, pa.duration("us")),
)


def _from_values(values: Sequence[Any]) -> pa.DataType | None:
    sample = next((v for v in values if v is not None), None)
    if sample is None:
        return None
    if isinstance(sample, decimal.Decimal):
        exps = [v.as_tuple().exponent for v in values if isinstance(v, decimal.Decimal)]
        scale = max((-e for e in exps if isinstance(e, int)), default=0)
        return pa.decimal128(38, min(max(scale, 0), 37))
    if isinstance(sample, dt.datetime) and sample.tzinfo is not None:
        return pa.timestamp("us", tz="UTC")
    for py, t in _PY_TYPES:
        if isinstance(sample, py):
            return t
    return pa.string()


def schema_for(description: Sequence[Sequence[Any]], dialect: str, dbapi: Any,
               rows: Sequence[Sequence[Any]] = ()) -> pa.Schema:
    """The Arrow schema of a result: the description's types, then the first rows' types."""
    declared = declared_types(description, dialect)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(description)
    fields = []
    for entry, t, values in zip(description, declared, columns, strict=True):
        if t is None or (t == pa.null() and values):
            t = _from_values(values) or (
                pa.null() if t == pa.null()
                else pa.string() if dialect == "mysql"  # TEXT is a BLOB type code there
                else _vague_type(entry, dbapi))
        fields.append(pa.field(str(entry[0]), t))
    return pa.schema(fields)


def _plain(t: pa.DataType, values: Sequence[Any]) -> list[Any]:
    if pa.types.is_string(t):
        return [v if v is None or isinstance(v, str) else
                v.decode() if isinstance(v, bytes | bytearray) else str(v) for v in values]
    return list(values)


def to_batch(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Rows (tuples) as one record batch of ``schema``."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = []
    for field, values in zip(schema, columns, strict=True):
        try:
            arrays.append(pa.array(_plain(field.type, values), type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
            msg = (
                f"column {field.name!r} changed type within the result (first rows: "
                f"{field.type}): {err}. Cast it in the query, e.g. .cast({field.name}='DOUBLE')"
            )
            raise BackendError(msg) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
