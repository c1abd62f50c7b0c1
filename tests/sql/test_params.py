"""``{{ name }}`` parameters: literals through sqlglot, QueryRefs inlined, mistakes named."""

from __future__ import annotations

import datetime as dt

import pytest

import queryref as qr
from queryref.errors import ParameterError, ReadOnlyError


@pytest.fixture
def t(con):
    con.execute("CREATE TABLE t AS SELECT range AS id, 'n' || range AS name FROM range(10)")
    return con.table("t")


def test_scalar_parameters(con, t):
    q = con.sql("SELECT * FROM t WHERE id >= {{ lo }} AND id < {{lo}} + {{ width }}", lo=3,
                width=2)
    assert q.to_pandas().id.tolist() == [3, 4]
    assert "3" in q.sql and "{{" not in q.sql


def test_list_parameter_for_in(con, t):
    for sql in ("SELECT id FROM t WHERE id IN {{ ids }}",
                "SELECT id FROM t WHERE id IN ({{ ids }})"):
        assert sorted(con.sql(sql, ids=[1, 5, 7]).to_pandas().id) == [1, 5, 7]
    assert con.sql("SELECT id FROM t WHERE id IN {{ ids }}", ids=[]).count() == 0
    assert con.sql("SELECT id FROM t WHERE name IN {{ s }}", s={"n2", "n3"}).count() == 2


def test_queryref_parameter_is_inlined(con, t):
    small = t.filter(qr.col("id") < 4)
    q = con.sql("SELECT COUNT(*) AS n FROM {{ src }} WHERE id > {{ lo }}", src=small, lo=1)
    assert q.to_pandas().n.tolist() == [2]
    q2 = con.sql("SELECT s.id FROM {{ src }} AS s JOIN t ON s.id = t.id", src=small)
    assert q2.count() == 4
    q3 = con.sql("SELECT id FROM t WHERE id IN {{ ids }}", ids=small.select("id"))
    assert q3.count() == 4
    q4 = con.sql("SELECT {{ m }} AS m", m=t.agg(m=qr.col("id").max()))
    assert q4.to_pandas().m.tolist() == [9]


@pytest.mark.parametrize("payload", [
    "x' OR '1'='1", "'; DROP TABLE t; --", "\\'; DROP TABLE t; --", "$$; DROP TABLE t; $$",
    "/* */ OR 1=1", "n1\n; DELETE FROM t", "☃'", "{{ other }}",
])
def test_injection_payloads_stay_values(con, t, payload):
    q = con.sql("SELECT {{ v }} AS v, COUNT(*) AS n FROM t WHERE name = {{ v }}", v=payload)
    got = q.to_pandas()
    assert got.v.tolist() == [payload] and got.n.tolist() == [0]
    assert con.table("t").count() == 10


def test_dates_and_none(con):
    q = con.sql("SELECT {{ d }} AS d, {{ n }} IS NULL AS isnull", d=dt.date(2024, 1, 2), n=None)
    got = q.to_pandas()
    assert got.d.iloc[0] == dt.datetime(2024, 1, 2) and bool(got["isnull"].iloc[0])


def test_missing_and_unused(con, t):
    with pytest.raises(ParameterError, match="missing"):
        con.sql("SELECT * FROM t WHERE id = {{ x }}")
    with pytest.raises(ParameterError, match="not used"):
        con.sql("SELECT * FROM t", x=1)
    with pytest.raises(ParameterError, match="plain"):
        con.sql("SELECT * FROM t WHERE id = {{ x.y }}", x=1)


def test_misplaced_parameters(con, t):
    with pytest.raises(ParameterError, match="QueryRef"):
        con.sql("SELECT * FROM {{ tbl }}", tbl="t")  # a table name is not a value
    with pytest.raises(ParameterError, match=r"identifier|string literal"):
        con.sql("SELECT id AS {{ a }} FROM t", a="x")
    with pytest.raises(ParameterError, match=r"string literal|identifier"):
        con.sql("SELECT '{{ a }}' AS x", a="x")
    with pytest.raises(ParameterError, match="list"):
        con.sql("SELECT {{ a }} AS x", a=[1, 2])
    with pytest.raises(ParameterError, match="cannot use"):
        con.sql("SELECT {{ a }} AS x", a=object())


def test_parameter_cannot_smuggle_statements(con, t):
    other = qr.connect()
    try:
        with pytest.raises(ParameterError, match="same connection"):
            con.sql("SELECT * FROM {{ s }}", s=other.sql("SELECT 1"))
    finally:
        other.close()
    with pytest.raises(ReadOnlyError):
        con.sql("SELECT {{ a }}; DROP TABLE t", a=1)
