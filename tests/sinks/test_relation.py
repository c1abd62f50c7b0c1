"""The value the sinks run (sinks/relation.py): a tree, a backend and a lazily known schema,
and the sinks' rewrites as relation -> relation functions (no QueryRef below QueryRef)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlglot import exp

import queryref as qr
from queryref.sinks.count import count
from queryref.sinks.relation import Relation, decimals_as_double, with_casts, with_limit
from queryref.sinks.run import to_arrow


def _rows(rel: Relation) -> list[tuple]:
    table = to_arrow(rel, max_bytes=None, max_rows=None, batch_rows=10_000)
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def _schema_calls(con: qr.Connection, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = con.backend.schema

    def spy(sql: str) -> pa.Schema:
        seen.append(sql)
        return real(sql)

    monkeypatch.setattr(con.backend, "schema", spy)
    return seen


def test_a_limit_keeps_the_schema_it_was_given(con, monkeypatch):
    q = con.sql("SELECT range AS a, 'x' || range AS s FROM range(10) ORDER BY a DESC")
    q.schema  # noqa: B018 (known before the sink)
    seen = _schema_calls(con, monkeypatch)
    rel = with_limit(q._relation(), 3)
    assert rel.schema == q.schema and seen == []  # a LIMIT does not change the columns
    assert _rows(rel) == [(9, "x9"), (8, "x8"), (7, "x7")]
    assert q.to_pandas(max_rows=20)["a"].tolist()[:2] == [9, 8]
    assert seen == []  # max_rows' LIMIT + 1 asked nothing more


def test_no_schema_is_asked_for_when_nothing_needs_it(con, monkeypatch):
    seen = _schema_calls(con, monkeypatch)
    rel = Relation(exp.select("*").from_("range(4)"), con.backend)
    assert count(rel) == 4 and _rows(with_limit(rel, 2)) == [(0,), (1,)]
    assert seen == []
    assert rel.columns == ["range"] and len(seen) == 1  # asked once, when asked
    assert rel.schema.names == ["range"] and len(seen) == 1


@pytest.mark.parametrize("sql", [
    "SELECT range AS k, (range * 1.5)::DECIMAL(10, 2) AS d FROM range(6) ORDER BY k DESC",
    "SELECT 1 AS k, 2.5::DECIMAL(5, 1) AS d UNION ALL SELECT 2, 0.5 ORDER BY d",
    "SELECT range % 3 AS k, SUM(range)::DECIMAL(12, 2) AS d FROM range(9) GROUP BY 1 ORDER BY 2",
])
def test_decimals_are_cast_in_place_and_the_order_kept(con, sql):
    rel = con.sql(sql)._relation()
    cast = decimals_as_double(rel)
    assert [str(f.type) for f in cast.schema] == [str(rel.schema.field(0).type), "double"]
    assert "DOUBLE" in cast.sql()
    want = [(k, float(d)) for k, d in _rows(rel)]
    assert _rows(cast) == want  # same rows, same order


def test_casts_leave_a_result_with_a_name_twice_alone(con):
    rel = con.sql("SELECT 1.5::DECIMAL(3, 1) AS a, 2 AS a")._relation()
    assert decimals_as_double(rel) is rel
    assert with_casts(rel, {}) is rel


def test_count_ignores_an_order_no_limit_needs(con, monkeypatch):
    opened: list[str] = []
    real = con.backend.stream

    def spy(sql, *args, **kwargs):
        opened.append(sql)
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(con.backend, "stream", spy)
    assert con.sql("SELECT range AS a FROM range(7) ORDER BY a").count() == 7
    assert "ORDER" not in opened[-1].upper()
    assert con.sql("SELECT range AS a FROM range(7) ORDER BY a LIMIT 3").count() == 3
