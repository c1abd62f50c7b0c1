"""Rows from a DB-API cursor as Arrow batches: types from the cursor description, else the rows.

A description is precise for some drivers (MySQL's type codes carry precision and scale) and
vague for others (DB-API's ``NUMBER`` covers integers, floats and decimals); where it is
vague, the Python types of the first batch decide, and later batches are held to them.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator, Sequence
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


def _mysql_type(entry: Sequence[Any], unsigned: bool = False) -> pa.DataType | None:
    code = entry[1]
    if code in (0, 246):
        length, scale = int(entry[4] or entry[3] or 38), int(entry[5] or 0)
        return pa.decimal128(min(max(length, scale + 1, 1), 38), min(scale, 38))
    if code == 8 and unsigned:  # BIGINT UNSIGNED: up to 2**64 - 1
        return pa.uint64()
    return _MYSQL_TYPES.get(code)


def mysql_unsigned(cursor: Any) -> list[bool] | None:
    """Which columns of a MySQL/MariaDB result are UNSIGNED (the flags the DB-API description
    leaves out): mysqlclient's ``description_flags``, PyMySQL's result fields; None if
    unknown."""
    flags = getattr(cursor, "description_flags", None)
    if flags is None:
        fields = getattr(getattr(cursor, "_result", None), "fields", None)
        flags = [getattr(f, "flags", 0) for f in fields] if fields else None
    return None if flags is None else [bool(int(f) & 32) for f in flags]  # UNSIGNED_FLAG


def declared_types(description: Sequence[Sequence[Any]], dialect: str,
                   unsigned: Sequence[bool] | None = None) -> list[pa.DataType | None]:
    """Types the description states precisely; None where the rows must decide."""
    if dialect == "mysql":
        flags = list(unsigned or ()) + [False] * (len(description) - len(unsigned or ()))
        return [None if d[1] in _MYSQL_TEXT else _mysql_type(d, u)
                for d, u in zip(description, flags, strict=False)]
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
               rows: Sequence[Sequence[Any]] = (), *,
               unsigned: Sequence[bool] | None = None) -> pa.Schema:
    """The Arrow schema of a result: the description's types, then the first rows' types."""
    declared = declared_types(description, dialect, unsigned)
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
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError,
                OverflowError) as err:
            msg = (
                f"column {field.name!r} changed type within the result (first rows: "
                f"{field.type}): {err}. Cast it in the query, e.g. .cast({field.name}='DOUBLE')"
            )
            raise BackendError(msg) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class Fetcher:
    """Rows from a DB-API cursor in lists of at most ``batch_rows`` rows and, with
    ``batch_bytes``, about that many bytes.

    A server-side cursor hands rows over as they are asked for, so the rows asked for at
    once bound what is in memory. Without a byte bound that is ``batch_rows``; with one, rows
    are asked for in small fetches, each sized from the widest rows seen so far (measured
    in Python as they arrive, then in Arrow once a batch is built), so a batch ends close to
    ``batch_bytes`` whatever the row width: 20-byte rows come 65,536 to a 1 MiB batch, 20 KB
    rows 52. One fetch holds at most FETCH_ROWS rows, so rows far wider than those before
    them (a narrow head, then wide text) overshoot by at most that many rows.
    """

    FETCH_ROWS = 256
    FIRST_ROWS = 16

    def __init__(self, cursor: Any, description: Sequence[Sequence[Any]], dialect: str,
                 batch_rows: int, batch_bytes: int | None, ahead: Sequence[Any] = ()) -> None:
        self._cursor = cursor
        self._ahead = list(ahead)  # rows read before us (SQLAlchemy's first buffered row)
        self._rows = max(batch_rows, 1)
        self._bytes = batch_bytes
        declared = declared_types(description, dialect)
        self._varying = [i for i, t in enumerate(declared) if t is None or not _fixed(t)]
        self._fixed = 8 * len(description)
        self._width = float(self._fixed)  # bytes a row, the widest seen

    def next(self) -> list[Any]:
        """The next rows (an empty list at the end)."""
        out, self._ahead = self._ahead, []
        if self._bytes is None or not self._varying:
            more = self._cursor.fetchmany(max(self._rows_for(self._bytes) - len(out), 1))
            return out + list(more)
        nbytes = self._measure(out)
        step = self.FIRST_ROWS
        while len(out) < self._rows and nbytes < self._bytes:
            room = (self._bytes - nbytes) / self._width
            k = int(max(1, min(step, room, self._rows - len(out))))
            if len(out) >= self._rows:
                break
            chunk = self._cursor.fetchmany(k)
            if not chunk:
                break
            size = self._measure(chunk)
            self._width = max(self._width, size / len(chunk))
            out.extend(chunk)
            nbytes += size
            step = min(step * 2, self.FETCH_ROWS)
            del chunk
        return out

    def _rows_for(self, nbytes: int | None) -> int:
        if nbytes is None:
            return self._rows
        return int(max(1, min(self._rows, nbytes // max(self._width, 1))))

    def _measure(self, rows: Sequence[Sequence[Any]]) -> int:
        size = self._fixed * len(rows)
        for i in self._varying:
            for row in rows:
                v = row[i]
                if isinstance(v, str | bytes | bytearray | memoryview):
                    size += len(v)
        return size

    def saw(self, batch: pa.RecordBatch) -> None:
        """Learn the row width from a batch built in Arrow (exact for fixed-width results)."""
        if batch.num_rows:
            width = batch.nbytes / batch.num_rows
            self._width = max(self._width, width) if self._varying else width


def _fixed(t: pa.DataType) -> bool:
    try:
        t.bit_width  # noqa: B018
    except ValueError:
        return False
    return True


def split_bytes(batch: pa.RecordBatch, max_bytes: int) -> Iterator[pa.RecordBatch]:
    """``batch`` as zero-copy slices of at most ``max_bytes`` (one row may be over alone):
    rows per slice guessed from the mean width, then halved where wide rows bunch."""
    n = batch.num_rows
    if batch.nbytes <= max_bytes:
        yield batch
        return
    width = max(batch.nbytes / n, 1e-9)
    start = 0
    while start < n:
        take = min(n - start, max(int(max_bytes // width), 1))
        piece = batch.slice(start, take)
        while take > 1 and piece.nbytes > max_bytes:
            take //= 2
            piece = batch.slice(start, take)
        yield piece
        start += take


def sqlalchemy_type(t: pa.DataType) -> Any:
    """The SQLAlchemy column type that holds an Arrow type (``create_table``).

    On MySQL/MariaDB the defaults would lose data: ``DATETIME``/``TIME`` keep whole seconds,
    ``TEXT``/``BLOB`` stop at 64 KB; there they are ``DATETIME(6)``, ``TIME(6)``, ``LONGTEXT``
    and ``LONGBLOB``.
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    def on_mysql(generic: Any, exact: Any) -> Any:
        return generic.with_variant(exact, "mysql", "mariadb")

    if pa.types.is_boolean(t):
        return sa.Boolean()
    if pa.types.is_integer(t):
        return sa.BigInteger()
    if pa.types.is_floating(t):
        return sa.Double()
    if pa.types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if pa.types.is_date(t):
        return sa.Date()
    if pa.types.is_timestamp(t):
        return on_mysql(sa.DateTime(timezone=t.tz is not None), mysql.DATETIME(fsp=6))
    if pa.types.is_time(t):
        return on_mysql(sa.Time(), mysql.TIME(fsp=6))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return on_mysql(sa.LargeBinary(), mysql.LONGBLOB())
    return on_mysql(sa.Text(), mysql.LONGTEXT())
