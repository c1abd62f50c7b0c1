"""Parsing: one read-only query in, clear errors for everything else."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

import queryref as qr
from queryref.errors import ParameterError, QueryRefError, ReadOnlyError, SQLParseError
from queryref.sql.text import ident, literal, parse_query

WRITES = [
    "SELECT 1; DROP TABLE t",
    "DROP TABLE t",
    "INSERT INTO t VALUES (1)",
    "UPDATE t SET a = 1",
    "DELETE FROM t",
    "CREATE TABLE x AS SELECT 1",
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    "SELECT * INTO y FROM t",
    "COPY t TO 'x.csv'",
    "ATTACH 'x.db'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "PRAGMA version",
    "CALL foo()",
    "DESCRIBE t",
    "SELECT nextval('s')",
    "SELECT 1; SELECT 2",
    "ALTER TABLE t ADD COLUMN b INT",
    "TRUNCATE t",
    "BEGIN",
]


@pytest.mark.parametrize("sql", WRITES)
def test_writes_refused_before_the_database(con, sql):
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    with pytest.raises(ReadOnlyError) as info:
        con.sql(sql)
    assert "con.execute" in str(info.value) or "side effects" in str(info.value)
    assert con.table("t").count() == 1  # nothing ran


@pytest.mark.parametrize("sql,line,col", [
    ("SELEC oops FROM", 1, 15),
    ("SELECT * FROM", 1, 13),
    ("SELECT a\nFROM t\nWHERE", 3, 5),
])
def test_malformed_sql_points_at_the_spot(con, sql, line, col):
    with pytest.raises(SQLParseError) as info:
        con.sql(sql)
    assert (info.value.line, info.value.col) == (line, col)
    assert f"line {line}" in str(info.value)


def test_unterminated_string_and_empty(con):
    with pytest.raises(SQLParseError):
        con.sql("SELECT 'abc")
    with pytest.raises(SQLParseError):
        con.sql("   ")
    with pytest.raises(ParameterError):
        con.sql(42)  # type: ignore[arg-type]


def test_errors_are_catchable_as_builtins_too(con):
    with pytest.raises(ValueError):
        con.sql("SELECT * FROM")
    with pytest.raises(PermissionError):
        con.sql("DROP TABLE x")
    assert issubclass(SQLParseError, QueryRefError)


def test_queries_accepted():
    for sql in ["SELECT 1", "(SELECT 1)", "SELECT 1 UNION SELECT 2", "VALUES (1), (2)",
                "WITH a AS (SELECT 1 AS x) SELECT * FROM a", "FROM range(3)", "SELECT 1;"]:
        assert parse_query(sql, "duckdb") is not None


def test_values_query_runs(con):
    assert con.sql("VALUES (1), (2)").count() == 2


def test_identifiers_quoted_when_needed():
    assert ident("amount").sql() == "amount"
    assert ident("Amount").sql() == '"Amount"'
    assert ident('we"ird').sql(dialect="postgres") == '"we""ird"'
    assert ident("select").sql() == '"select"'
    with pytest.raises(ParameterError):
        ident("")
    with pytest.raises(ParameterError):
        ident("a\x00b")


@pytest.mark.parametrize("value", [
    "it's", "back\\slash", "semi; DROP TABLE t; --", "uni ☃ 𝄞", 0, -5, 2**62, 1.5, -0.25,
    True, False, None, decimal.Decimal("123.4500"), dt.date(2024, 2, 29),
    dt.datetime(2024, 2, 29, 13, 45, 1), dt.time(12, 30),
])
def test_literals_round_trip(con, value):
    got = con.sql("SELECT {{ v }} AS v", v=value).to_pandas(decimals="object")["v"].iloc[0]
    if value is None:
        assert got is None or got != got
    elif isinstance(value, dt.datetime | dt.date) and not isinstance(value, dt.time):
        assert got == (value if isinstance(value, dt.datetime)
                       else dt.datetime.combine(value, dt.time()))
    else:
        assert got == value


def test_float_specials(con):
    got = con.sql("SELECT {{ a }} AS a, {{ b }} AS b", a=float("inf"), b=float("nan")).to_pandas()
    assert got.a.iloc[0] == float("inf") and got.b.iloc[0] != got.b.iloc[0]


def test_unsupported_literal():
    with pytest.raises(ParameterError, match="cannot use a dict"):
        literal({"a": 1})
    with pytest.raises(ParameterError):
        literal("nul\x00")


def test_sql_text_expression_read_only(con):
    t = con.sql("SELECT 1 AS a")
    with pytest.raises(QueryRefError):
        t.filter("a = 1; DROP TABLE x")
    with pytest.raises(ReadOnlyError):
        t.filter("a IN (SELECT nextval('s'))")


def test_side_effect_functions_refused(con):
    with pytest.raises(ReadOnlyError, match="pg_sleep"):
        con.sql("SELECT pg_sleep(1)")


def test_qr_lit_and_col_quote(con):
    q = con.sql('SELECT 1 AS "Weird Name"').filter(qr.col("Weird Name") == qr.lit(1))
    assert q.count() == 1


def test_parse_errors_speak_sql_not_sqlglot_classes():
    """A typo's message says what is missing in SQL's words, with where it is."""
    con = qr.connect()
    cases = {
        "SELECT 2 * FROM t": "expected a value after '*', found 'FROM'",
        "SELECT 2 *": "expected a value after '*', but the SQL ends there",
        "SELECT * FROM t WHERE": "WHERE needs a condition, but the SQL ends there",
        "SELECT (1 + 2 FROM t": "expected ')' to close a '(', found 'FROM'",
    }
    for sql, said in cases.items():
        with pytest.raises(qr.errors.SQLParseError) as got:
            con.sql(sql)
        assert said in str(got.value) and got.value.line == 1, str(got.value)
        assert "<class" not in str(got.value) and "Required keyword" not in str(got.value)
