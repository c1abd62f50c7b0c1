"""Interop on DuckDB: the Arrow stream protocol (``pa.table(q)``, ``pl.DataFrame(q)``, DuckDB's
scan of a Python variable) streaming under the budget, and ``con.sql()`` taking sqlglot trees
and SQLAlchemy Core selectables."""

from __future__ import annotations

import gc
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

import queryref as qr
from queryref.backends import Stream
from queryref.errors import ParameterError, ReadOnlyError

#: the text of the budget's error, which each consumer's own error carries
TOO_LARGE = "ResultTooLarge: the result passed"


@pytest.fixture
def con() -> Any:
    with qr.connect() as c:
        yield c


class Fetches:
    """What the engine was asked for: each query opened, its batches read, whether it was
    closed. Wraps the real backend's ``stream`` (the engine still runs every query)."""

    def __init__(self, con: qr.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[dict[str, Any]] = []
        real = con.backend.stream

        def stream(sql: str, batch_rows: int, **options: Any) -> Stream:
            inner = real(sql, batch_rows, **options)
            run = {"sql": sql, "batches": 0, "closed": False}
            self.runs.append(run)

            def batches() -> Any:
                for batch in inner:
                    run["batches"] += 1
                    yield batch

            def close() -> None:
                run["closed"] = True
                inner.close()

            return Stream(inner.schema, batches(), cancel=inner.cancel, close=close)

        monkeypatch.setattr(con.backend, "stream", stream)

    def of(self, q: qr.QueryRef) -> list[dict[str, Any]]:
        """The runs of ``q`` itself (not the width samples the batch sizing asks for)."""
        return [r for r in self.runs if r["sql"] == q._relation().sql()]

    @property
    def open_now(self) -> int:
        return sum(not r["closed"] for r in self.runs)


MIXED = ("SELECT range AS i, CASE WHEN range % 7 = 0 THEN NULL ELSE 'é-' || range END AS s, "
         "range / 4 - 100 AS x, DATE '2024-02-29' + CAST(range % 3 AS INTEGER) AS d, "
         "CASE WHEN range % 5 = 0 THEN '' END AS e FROM range(5000)")


# -- the Arrow stream protocol ----------------------------------------------------------------
def test_every_consumer_gets_the_rows_to_arrow_gets(con):
    q = con.sql(MIXED).order_by("i")
    want = q.to_arrow()
    assert pa.table(q).equals(want)
    assert pa.RecordBatchReader.from_stream(q).read_all().equals(want)
    assert pl.DataFrame(q).equals(pl.from_arrow(want))
    assert pd.DataFrame.from_arrow(q).equals(want.to_pandas())
    other = duckdb.connect()  # DuckDB's scan of a Python variable, on another connection
    got = other.sql("SELECT * FROM q ORDER BY i").to_arrow_table()
    assert got.to_pylist() == want.to_pylist()
    assert duckdb.sql("SELECT count(*), sum(i), count(s) FROM q").fetchall() == [
        (5000, sum(range(5000)), sum(1 for i in range(5000) if i % 7))]


def test_batches_are_fetched_as_the_consumer_pulls(con, monkeypatch):
    q = con.sql("SELECT range AS i, 'row ' || range AS s FROM range(2000000)")
    seen = Fetches(con, monkeypatch)
    reader = pa.RecordBatchReader.from_stream(q)
    assert seen.runs == []  # nothing runs until the first batch is asked for
    first = reader.read_next_batch()
    assert 0 < first.num_rows < 2_000_000
    assert [r["batches"] for r in seen.of(q)] == [1]  # one batch fetched for one read
    reader.close()
    assert seen.open_now == 0  # releasing the stream closes the engine's cursor
    # DuckDB asks for three streams to plan one scan: the query runs once, and LIMIT stops it
    other = duckdb.connect()
    assert other.sql("SELECT * FROM q LIMIT 3").fetchall() == [(0, "row 0"), (1, "row 1"),
                                                                (2, "row 2")]
    runs = seen.of(q)
    assert len(runs) == 2 and runs[1]["batches"] <= 2 and seen.open_now == 0


def test_an_abandoned_stream_closes_its_cursor(con, monkeypatch):
    q = con.sql("SELECT range AS i FROM range(1000000)")
    seen = Fetches(con, monkeypatch)
    reader = pa.RecordBatchReader.from_stream(q)
    reader.read_next_batch()
    del reader
    gc.collect()
    assert len(seen.runs) == 1 and seen.open_now == 0
    capsule = q.__arrow_c_stream__()  # made, never read: the query never runs
    del capsule
    assert len(seen.runs) == 1
    assert q.count() == 1_000_000  # the connection is free


# -- the budget on what crosses ----------------------------------------------------------------
@pytest.fixture
def big(con) -> qr.QueryRef:
    """8 MB of int64 pairs: over a 1 MB budget."""
    return con.sql("SELECT range AS a, range * 2 AS b FROM range(500000)")


def test_pa_table_over_the_budget(big, con, monkeypatch):
    seen = Fetches(con, monkeypatch)
    with qr.options.context(max_bytes="1MB"), pytest.raises(pa.ArrowMemoryError) as err:
        pa.table(big)
    assert TOO_LARGE in str(err.value) and "over the budget of 1 MB" in str(err.value)
    assert isinstance(err.value, MemoryError)  # as ResultTooLarge is one
    (run,) = seen.of(big)
    assert run["closed"] and run["batches"] < 5  # stopped at the budget, not drained
    with qr.options.context(max_bytes="1MB"):
        assert pa.table(big.limit(1000)).num_rows == 1000
    with qr.options.context(max_bytes=None):
        assert pa.table(big).num_rows == 500_000


def test_from_stream_delivers_the_budget_then_fails(big):
    with qr.options.context(max_bytes="1MB"):
        reader = pa.RecordBatchReader.from_stream(big)
    taken = 0
    with pytest.raises(pa.ArrowMemoryError, match=TOO_LARGE):
        for batch in reader:
            taken += batch.nbytes
    assert 0 < taken <= 1_000_000


def test_polars_pandas_and_duckdb_over_the_budget(big):
    with qr.options.context(max_bytes="1MB"):
        with pytest.raises(pl.exceptions.ComputeError, match=TOO_LARGE):
            pl.DataFrame(big)
        with pytest.raises(pa.ArrowMemoryError, match=TOO_LARGE):
            pd.DataFrame.from_arrow(big)
        other = duckdb.connect()
        with pytest.raises(duckdb.InvalidInputException, match=TOO_LARGE):
            other.sql("SELECT * FROM big").to_arrow_table()
        # what crosses is counted, kept or not: an aggregate in DuckDB reads it all
        with pytest.raises(duckdb.InvalidInputException, match=TOO_LARGE):
            other.sql("SELECT sum(a) FROM big").fetchall()
        # the way out: a reader with no budget
        reader = big.to_arrow_batches()  # noqa: F841 (DuckDB reads it by its name)
        assert other.sql("SELECT sum(a) FROM reader").fetchall() == [(sum(range(500_000)),)]


def test_max_rows_applies_too(con):
    q = con.sql("SELECT range AS i FROM range(100)")
    with qr.options.context(max_rows=10), pytest.raises(pa.ArrowMemoryError,
                                                        match="more than 10 rows"):
        pa.table(q)
    with qr.options.context(max_rows=100):
        assert pa.table(q).num_rows == 100


def test_requested_schema_is_honoured_when_it_casts(con):
    q = con.sql("SELECT range AS i, 'x' AS s FROM range(3)")
    want = pa.schema([("i", pa.int32()), ("s", pa.large_string())])
    got = pa.RecordBatchReader.from_stream(q, schema=want).read_all()
    assert got.schema == want and got["i"].to_pylist() == [0, 1, 2]
    assert pa.table(q, schema=want).schema == want
    # other names, or types with no cast: ignored, as the protocol allows
    other = pa.schema([("j", pa.int32()), ("s", pa.string())])
    assert pa.RecordBatchReader.from_stream(q, schema=other).schema == q.schema
    nested = pa.schema([("i", pa.struct([("x", pa.int8())])), ("s", pa.string())])
    assert pa.RecordBatchReader.from_stream(q, schema=nested).read_all() == q.to_arrow()


def test_the_querys_own_duckdb_connection_refuses_clearly():
    raw = duckdb.connect()
    q = qr.connect(raw).sql("SELECT range AS i FROM range(10)")  # noqa: F841 (read by name)
    with pytest.raises(duckdb.InvalidInputException, match="busy"):
        raw.sql("SELECT count(*) FROM q").fetchall()
    assert duckdb.connect().sql("SELECT count(*) FROM q").fetchall() == [(10,)]


# -- con.sql() with sqlglot expressions ----------------------------------------------------
@pytest.fixture
def people(con) -> qr.QueryRef:
    names = ["O'Brien; DROP TABLE people --", "a\\'b", "Zoë", "", None, "50%_off"]
    return con.create_table("people", pa.table({"id": list(range(len(names))),
                                                "name": names,
                                                "age": [40, 31, 25, 18, 60, 5]}))


def test_sqlglot_expressions(con, people):
    built = sqlglot.select("id", "name").from_("people").where("age > 20")
    text = con.sql("SELECT id, name FROM people WHERE age > 20")
    assert con.sql(built).order_by("id").to_arrow() == text.order_by("id").to_arrow()
    parsed = sqlglot.parse_one("SELECT id FROM people WHERE age > 20", read="postgres")
    assert con.sql(parsed).to_arrow().column("id").to_pylist() == [0, 1, 2, 4]
    # its named placeholders take the parameters, as {{ name }} does in text
    tree = sqlglot.parse_one("SELECT id FROM people WHERE name = :who AND age > :lo")
    got = con.sql(tree, who="O'Brien; DROP TABLE people --", lo=1)
    assert got.to_arrow().column("id").to_pylist() == [0]
    tree = sqlglot.parse_one("SELECT id FROM people WHERE id IN (:ids) ORDER BY id")
    assert con.sql(tree, ids=[1, 3]).to_pandas()["id"].tolist() == [1, 3]
    adults = con.sql("SELECT * FROM people WHERE age >= 18")
    tree = sqlglot.select("count(*) AS n").from_(exp.to_table("src"))
    assert con.sql(tree.sql().replace("src", "{{ src }}"), src=adults).to_pandas()["n"][0] == 5
    # a literal that looks like SQL stays a literal
    lit = sqlglot.select("id").from_("people").where(
        exp.column("name").eq(exp.Literal.string("O'Brien; DROP TABLE people --")))
    assert con.sql(lit).to_pandas()["id"].tolist() == [0]
    assert people.count() == 6


def test_sqlglot_refusals(con, people):
    with pytest.raises(ReadOnlyError):
        con.sql(sqlglot.parse_one("DROP TABLE people"))
    with pytest.raises(ReadOnlyError):
        con.sql(exp.insert("VALUES (9, 'x', 1)", "people"))
    with pytest.raises(ParameterError, match="without a name"):
        con.sql(sqlglot.parse_one("SELECT id FROM people WHERE age > ?"), lo=1)
    with pytest.raises(ParameterError, match="missing value"):
        con.sql(sqlglot.parse_one("SELECT id FROM people WHERE age > :lo"))
    assert people.count() == 6


# -- con.sql() with SQLAlchemy Core ----------------------------------------------------------
PEOPLE = sa.table("people", sa.column("id"), sa.column("name"), sa.column("age"))


def test_sqlalchemy_selectables(con, people):
    stmt = sa.select(PEOPLE.c.id, PEOPLE.c.name).where(PEOPLE.c.age > 20)
    text = con.sql("SELECT id, name FROM people WHERE age > 20")
    assert con.sql(stmt).order_by("id").to_arrow() == text.order_by("id").to_arrow()
    for value in ["O'Brien; DROP TABLE people --", "a\\'b", "Zoë", ""]:
        q = con.sql(sa.select(PEOPLE.c.id).where(PEOPLE.c.name == value))
        assert q.to_pandas()["id"].tolist() == [people.to_pandas()["name"].tolist().index(value)]
    assert people.count() == 6
    like = sa.select(PEOPLE.c.id).where(PEOPLE.c.name.like("50%"))  # one %, not %%
    assert con.sql(like).to_pandas()["id"].tolist() == [5]
    listed = sa.select(PEOPLE.c.id).where(PEOPLE.c.id.in_([1, 3])).order_by(PEOPLE.c.id)
    assert con.sql(listed).to_pandas()["id"].tolist() == [1, 3]
    bound = sa.select(PEOPLE.c.id).where(PEOPLE.c.age > sa.bindparam("lo", 30))
    assert sorted(con.sql(bound).to_pandas()["id"]) == [0, 1, 4]
    raw = sa.text("SELECT id FROM people WHERE name = :n").bindparams(n="Zoë")
    assert con.sql(raw).to_pandas()["id"].tolist() == [2]
    # {{ }} parameters still work around it
    grouped = sa.select(sa.func.count().label("n")).select_from(sa.text("{{ src }} AS s"))
    assert con.sql(grouped, src=people.filter("age < 30")).to_pandas()["n"][0] == 3


def test_sqlalchemy_refusals(con, people):
    with pytest.raises(ReadOnlyError):
        con.sql(sa.delete(PEOPLE))
    with pytest.raises(ReadOnlyError, match="statements"):
        con.sql(sa.text("SELECT 1; DROP TABLE people"))
    with pytest.raises(ParameterError, match="bound parameter a value"):
        con.sql(sa.select(PEOPLE.c.id).where(PEOPLE.c.age > sa.bindparam("lo")))
    assert people.count() == 6


def test_anything_else_is_refused_with_what_is_accepted(con):
    for wrong in (42, b"SELECT 1", {"sql": "SELECT 1"}, None):
        with pytest.raises(ParameterError, match=r"sqlglot expression .* SQLAlchemy"):
            con.sql(wrong)
