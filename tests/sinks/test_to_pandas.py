"""to_pandas / to_pandas_batches: each batch copied once into the frame, the next read ahead.

Every result is checked against pyarrow's own conversion of the same rows fetched as Arrow
(``to_arrow``), on DuckDB and PostgreSQL: NULLs (also appearing only in late batches),
decimals in every ``decimals`` mode, dates, timestamps with a time zone, booleans, text,
lists, empty results and duplicate column names, with the numpy default and with
``dtype_backend="pyarrow"``. The budget counts what the frame will hold.
"""

from __future__ import annotations

import decimal
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import queryref as qr
from queryref.errors import BackendError, ParameterError, ResultTooLarge
from queryref.sinks import buffers as _buffers

ROWS = 30_000
BATCH = 4_096  # several batches, and NULLs that only start in a late one

DUCKDB_SQL = f"""
SELECT i::BIGINT AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i * 3 END::INTEGER AS int_nulls,
  CASE WHEN i >= 20000 AND i % 5 = 0 THEN NULL ELSE i END::BIGINT AS late_nulls,
  (i % 100)::SMALLINT AS small,
  CASE WHEN i % 11 = 0 THEN NULL ELSE i / 4 END::DOUBLE AS dbl,
  CASE WHEN i % 29 = 0 THEN NULL ELSE CAST(i AS DECIMAL(12, 2)) / 100 END::DECIMAL(12, 2)
    AS price,
  CASE WHEN i % 13 = 0 THEN NULL ELSE DATE '1960-01-01' + i::INTEGER END AS day,
  TIMESTAMP '2020-01-01 00:00:00' + i * INTERVAL 1 SECOND AS ts,
  CASE WHEN i % 17 = 0 THEN NULL
       ELSE TIMESTAMPTZ '2020-03-29 00:30:00+00' + i * INTERVAL 1 MINUTE END AS tstz,
  CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS flag,
  CASE WHEN i % 19 = 0 THEN NULL WHEN i % 19 = 1 THEN '' ELSE 'ü-' || i END AS txt,
  CASE WHEN i >= 25000 AND i % 2 = 0 THEN NULL ELSE 'late' END AS late_txt,
  CASE WHEN i % 23 = 0 THEN NULL ELSE [i, i + 1] END AS lst
FROM range({ROWS}) t(i)
"""

POSTGRES_SQL = f"""
SELECT i::bigint AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i * 3 END::integer AS int_nulls,
  CASE WHEN i >= 20000 AND i % 5 = 0 THEN NULL ELSE i END::bigint AS late_nulls,
  (i % 100)::smallint AS small,
  CASE WHEN i % 11 = 0 THEN NULL ELSE i / 4.0 END::double precision AS dbl,
  CASE WHEN i % 29 = 0 THEN NULL ELSE i::numeric(12, 2) / 100 END::numeric(12, 2) AS price,
  CASE WHEN i % 31 = 0 THEN NULL ELSE i::numeric / 7 END AS free_numeric,
  CASE WHEN i % 13 = 0 THEN NULL ELSE DATE '1960-01-01' + i::integer END AS day,
  TIMESTAMP '2020-01-01 00:00:00' + i * INTERVAL '1 second' AS ts,
  CASE WHEN i % 17 = 0 THEN NULL
       ELSE TIMESTAMPTZ '2020-03-29 00:30:00+00' + i * INTERVAL '1 minute' END AS tstz,
  CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS flag,
  CASE WHEN i % 19 = 0 THEN NULL WHEN i % 19 = 1 THEN '' ELSE 'ü-' || i END AS txt,
  CASE WHEN i >= 25000 AND i % 2 = 0 THEN NULL ELSE 'late' END AS late_txt,
  CASE WHEN i % 23 = 0 THEN NULL ELSE ARRAY[i, i + 1] END AS lst
FROM generate_series(0, {ROWS - 1}) AS t(i)
"""

SQL = {"duckdb": DUCKDB_SQL, "postgres": POSTGRES_SQL}
#: a failure half-way through the result, raised by the engine while rows stream
FAILING = {
    "duckdb": "SELECT CASE WHEN range = 25000 THEN error('boom') ELSE range END AS x "
              "FROM range(40000)",
    "postgres": "SELECT CASE WHEN i = 25000 THEN i / (i - i) ELSE i END AS x "
                "FROM generate_series(0, 39999) AS t(i)",
}


def _postgres() -> qr.Connection:
    from conformance.qr_conformance import PG_URL, unavailable

    try:
        con = qr.connect(PG_URL)
        con.sql("SELECT 1 AS x").to_arrow()
    except (ImportError, qr.errors.QueryRefError) as err:
        unavailable(f"PostgreSQL is not reachable: {err}")
    return con


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, qr.Connection]]:
    with qr.connect() if request.param == "duckdb" else _postgres() as con:
        yield request.param, con


@pytest.fixture
def pg() -> Iterator[qr.Connection]:
    with _postgres() as con:
        yield con


def typed(engine: tuple[str, qr.Connection]) -> qr.QueryRef:
    name, con = engine
    return con.sql(SQL[name])


# -- the reference: pyarrow's own conversion of the same rows ---------------------------------
def reference(q: qr.QueryRef, decimals: str, dtype_backend: str | None) -> pd.DataFrame:
    table = q.to_arrow(max_bytes=None)
    columns = []
    for col in table.columns:
        if pa.types.is_decimal(col.type) and decimals == "float":
            col = pc.cast(col, pa.float64())
        columns.append(col)
    table = pa.Table.from_arrays(columns, names=table.column_names)
    if dtype_backend == "pyarrow":
        out = table.to_pandas(types_mapper=pd.ArrowDtype)
        for i, col in enumerate(table.columns):  # what decimals="object" asks for
            if pa.types.is_decimal(col.type) and decimals == "object":
                out.isetitem(i, pd.Series(col.to_pylist(), dtype=object))
        return out
    mapper = {pa.bool_(): pd.BooleanDtype()}.get
    out = table.to_pandas(date_as_object=False, types_mapper=mapper)
    for i, col in enumerate(table.columns):
        if pa.types.is_decimal(col.type) and decimals == "arrow":
            out.isetitem(i, pd.arrays.ArrowExtensionArray(col))
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out.isetitem(i, pd.array(col, dtype=pd.StringDtype("pyarrow", na_value=np.nan)))
    return out


def assert_frames_match(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert [str(t) for t in got.dtypes] == [str(t) for t in want.dtypes]
    for i, name in enumerate(want.columns):
        g, w = got.iloc[:, i], want.iloc[:, i]
        if w.dtype == object:  # lists (numpy arrays), Decimals: compare as Python values
            assert [_py(v) for v in g] == [_py(v) for v in w], name
        else:
            pd.testing.assert_series_equal(g, w, check_names=False, obj=name)


def _py(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_every_type_matches_pyarrows_conversion(engine, dtype_backend):
    q = typed(engine)
    got = q.to_pandas(batch_rows=BATCH, dtype_backend=dtype_backend, max_bytes=None)
    assert_frames_match(got, reference(q, "float", dtype_backend))
    # and the values are the engine's: a few computed in SQL by hand
    assert len(got) == ROWS
    want = q.filter("int_nulls IS NULL").count()
    assert int(got["int_nulls"].isna().sum()) == want
    assert int(got["late_nulls"].isna().sum()) == q.filter("late_nulls IS NULL").count()
    assert int(got["txt"].isna().sum()) == q.filter("txt IS NULL").count()
    assert got["price"].sum() == pytest.approx(float(q.agg(s=qr.col("price").sum())
                                                     .to_pandas(decimals="object")["s"][0]))


def test_default_dtypes_are_ones_pandas_computes_with(engine):
    got = typed(engine).to_pandas(batch_rows=BATCH, max_bytes=None)
    dtypes = {c: str(t) for c, t in got.dtypes.items()}
    assert dtypes["id"] == "int64" and dtypes["small"] == "int16"
    assert dtypes["int_nulls"] == dtypes["late_nulls"] == "float64"  # NULLs -> NaN
    assert dtypes["price"] == dtypes["dbl"] == "float64"
    assert dtypes["day"] == "datetime64[ms]" and dtypes["ts"].startswith("datetime64[")
    assert dtypes["tstz"].startswith("datetime64[us, ")
    assert dtypes["flag"] == "boolean" and dtypes["txt"] == dtypes["late_txt"] == "str"
    assert dtypes["lst"] == "object"
    assert not any(t == "object" for c, t in dtypes.items() if c != "lst")
    assert got["day"].iloc[1] == pd.Timestamp("1960-01-02")  # before the epoch too


@pytest.mark.parametrize(("decimals", "dtype_backend", "dtype"), [
    ("float", None, "float64"),
    ("object", None, "object"),
    ("arrow", None, "decimal128(12, 2)[pyarrow]"),
    ("float", "pyarrow", "double[pyarrow]"),
    ("object", "pyarrow", "object"),
    ("arrow", "pyarrow", "decimal128(12, 2)[pyarrow]"),
])
def test_decimals_and_dtype_backend_combine(engine, decimals, dtype_backend, dtype):
    q = typed(engine).select("id", "price", "dbl")
    got = q.to_pandas(batch_rows=BATCH, decimals=decimals, dtype_backend=dtype_backend)
    assert str(got["price"].dtype) == dtype
    assert_frames_match(got, reference(q, decimals, dtype_backend))
    if decimals != "float":  # exact values
        assert got["price"].iloc[1] == decimal.Decimal("0.01")


@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_empty_result_has_the_same_dtypes(engine, dtype_backend):
    q = typed(engine)
    full = q.filter("id BETWEEN 1 AND 5").to_pandas(dtype_backend=dtype_backend)
    empty = q.filter("id < 0").to_pandas(dtype_backend=dtype_backend)
    assert len(empty) == 0
    assert list(empty.columns) == list(full.columns)
    same = {c: (str(a), str(b)) for c, a, b in zip(full.columns, empty.dtypes, full.dtypes,
                                                    strict=True)}
    # with 5 rows the NULL-able integers have no NULL yet: they stay integers
    assert all(a == b for a, b in same.values()), same


@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_duplicate_column_names_survive(engine, dtype_backend):
    _, con = engine
    # (no decimal column: DuckDB's schema lookup calls the second ``a`` a_1, and the cast of
    # decimals to DOUBLE then selects it by that name)
    q = con.sql("SELECT 1 AS a, 'x' AS a, CAST(2.5 AS DOUBLE PRECISION) AS b")
    got = q.to_pandas(dtype_backend=dtype_backend)
    assert list(got.columns) == ["a", "a", "b"] == q.to_arrow().column_names
    assert got.iloc[0, 0] == 1 and got.iloc[0, 1] == "x" and got.iloc[0, 2] == 2.5


@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_batches_have_the_same_dtypes_as_the_whole(engine, dtype_backend):
    q = typed(engine).select("id", "price", "day", "flag", "txt")
    whole = q.to_pandas(dtype_backend=dtype_backend)
    parts = list(q.to_pandas_batches(BATCH, dtype_backend=dtype_backend))
    assert len(parts) > 1 and sum(len(p) for p in parts) == ROWS
    joined = pd.concat(parts, ignore_index=True)
    assert [str(t) for t in joined.dtypes] == [str(t) for t in whole.dtypes]
    pd.testing.assert_frame_equal(joined, whole)


# -- the budget counts what the frame holds ---------------------------------------------------
@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_budget_counts_the_frames_bytes(engine, dtype_backend):
    q = typed(engine).drop("lst")  # Python objects are counted by a rule of thumb
    frame = q.to_pandas(batch_rows=BATCH, dtype_backend=dtype_backend, max_bytes=None)
    nbytes = int(frame.memory_usage(index=False, deep=True).sum())
    # fetched under a budget a little over the frame: it fits
    ok = q.to_pandas(batch_rows=BATCH, dtype_backend=dtype_backend,
                     max_bytes=int(nbytes * 1.05), preflight=None)
    assert len(ok) == ROWS
    # a little under: refused while fetching, having counted about what the frame holds
    with pytest.raises(ResultTooLarge) as info:
        q.to_pandas(batch_rows=BATCH, dtype_backend=dtype_backend,
                    max_bytes=int(nbytes * 0.95), preflight=None)
    assert info.value.stage == "fetch"


# -- reading ahead: errors, aborts, no thread left behind --------------------------------------
def _read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "queryref-read-ahead"]


@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_an_error_half_way_is_raised_and_the_connection_lives(engine, dtype_backend):
    name, con = engine
    with pytest.raises(BackendError):
        con.sql(FAILING[name]).to_pandas(batch_rows=1000, dtype_backend=dtype_backend)
    assert not _read_ahead_threads()
    assert con.sql("SELECT 42 AS x").to_pandas()["x"].tolist() == [42]


@pytest.mark.parametrize("dtype_backend", [None, "pyarrow"])
def test_an_abort_stops_the_reader_and_the_connection_lives(engine, dtype_backend):
    _, con = engine
    q = typed(engine).select("id", "txt")
    with pytest.raises(ResultTooLarge):
        q.to_pandas(batch_rows=1000, max_bytes="100KB", preflight=None,
                    dtype_backend=dtype_backend)
    assert not _read_ahead_threads()
    assert len(q.to_pandas(batch_rows=1000, dtype_backend=dtype_backend)) == ROWS
    assert con.sql("SELECT 7 AS y").to_pandas()["y"].tolist() == [7]


def test_bad_dtype_backend_is_a_parameter_error(con):
    q = con.sql("SELECT 1 AS a")
    for bad in ("numpy", "arrow", "PyArrow", 1, True):
        with pytest.raises(ParameterError, match="dtype_backend"):
            q.to_pandas(dtype_backend=bad)
        with pytest.raises(ParameterError, match="dtype_backend"):
            q.to_pandas_batches(dtype_backend=bad)
        with pytest.raises(ParameterError, match="dtype_backend"):
            q.to_pandas(dtype_backend=bad, dry_run=True)
    with pytest.raises(ParameterError, match="shrink_dtypes"):
        q.to_pandas(dtype_backend="pyarrow", shrink_dtypes=True)
    with pytest.raises(ParameterError, match="decimals"):
        q.to_pandas(decimals="double", dtype_backend="pyarrow")


# -- the growable buffers ---------------------------------------------------------------------
@pytest.mark.parametrize("map_from", [_buffers.MAP_FROM, 1024])  # numpy arrays; memory maps
def test_growable_appends_many_pieces_in_order(monkeypatch, map_from):
    monkeypatch.setattr(_buffers, "MAP_FROM", map_from)
    rng = np.random.default_rng(1)
    pieces = [rng.integers(-(2**40), 2**40, int(n)) for n in rng.integers(0, 5000, 200)]
    g = _buffers.Growable(np.int64, capacity=1)
    held = None
    for i, p in enumerate(pieces):
        g.append(p)
        if i == 50:  # a view still open when the block grows: it is copied, not moved
            held = g.tail(1)
    assert held is not None
    del held
    g.fill(7, 3)
    out = g.finish()
    want = np.concatenate([*pieces, np.full(3, 7)])
    assert out.dtype == np.int64 and np.array_equal(out, want)
    assert out.flags.writeable and g.length == 0
    view = out[10:20]
    del out  # the block lives as long as any array over it
    assert np.array_equal(view, want[10:20])


def test_postgres_numeric_without_precision_comes_as_float8(pg):
    """The driver formats NUMERIC as text: to_pandas has the server cast it instead."""
    from queryref.sinks.relation import decimals_as_double

    q = pg.sql("SELECT x::numeric AS free, CASE WHEN abs(x) < 1e20 THEN x END::numeric(20, 9) "
                "AS fixed, x AS plain FROM (VALUES (1 / 3.0), ('NaN'), ('Infinity'), "
                "('-Infinity'), (NULL), (12345678901.123456789), (-0.000000001)) AS t(x)")
    assert [str(f.type) for f in q.schema] == ["double", "decimal128(20, 9)", "double"]
    sql = decimals_as_double(q._relation()).sql().upper()
    assert sql.count("AS DOUBLE PRECISION)") == 3  # free, fixed, and plain (NUMERIC too)
    got = q.to_pandas()
    want = q.to_arrow().column("free").to_numpy(zero_copy_only=False)  # parsed from text
    assert np.array_equal(got["free"].to_numpy(), want, equal_nan=True)
    assert np.array_equal(got["plain"].to_numpy(), want, equal_nan=True)
    assert got["free"].tolist()[2:4] == [np.inf, -np.inf]


def test_duckdb_bignum_arrives_as_numbers_not_bytes(con):
    big = 10 ** 40
    q = con.sql("SELECT {{ p }} AS v, -{{ p }} AS w, NULL::BIGNUM AS z, 5::BIGNUM AS s", p=big)
    assert q.to_arrow().to_pylist() == [{"v": decimal.Decimal(big), "w": decimal.Decimal(-big),
                                         "z": None, "s": decimal.Decimal(5)}]
    assert q.to_pandas().values.tolist()[0][:2] == [float(big), float(-big)]
    assert q.to_pandas(decimals="object").v.tolist() == [decimal.Decimal(big)]
