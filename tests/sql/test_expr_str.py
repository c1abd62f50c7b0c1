"""``Expr.str`` as SQL text per engine (no database): the spellings the conformance suite
relies on, and the gaps that are errors when the SQL is written."""

from __future__ import annotations

import pytest

import queryref as qr
from queryref.errors import ParameterError, UnsupportedError
from queryref.sql.portable_text import replacement_parts, time_format

S = qr.col("s").str
DIALECTS = ("duckdb", "postgres", "mysql", "snowflake", "spark", "databricks", "bigquery", "")


@pytest.mark.parametrize(("expr", "dialect", "sql"), [
    # literal search is by position, never LIKE (whose % and _ are wildcards)
    (S.contains("a%_"), "postgres", "POSITION('a%_' IN s) > 0"),
    (S.contains("a%_"), "spark", "LOCATE('a%_', s) > 0"),
    (S.contains("Æ", case=False), "duckdb", "STRPOS(LOWER(s), LOWER('Æ')) > 0"),
    # MariaDB's columns compare with a _ci collation: positions as utf8mb4_bin, affixes as bytes
    (S.find("x"), "mysql", "LOCATE(CAST('x' AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin, "
                           "CAST(s AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin) - 1"),
    (S.endswith("ø "), "mysql", "RIGHT(CAST(CAST(s AS CHAR CHARACTER SET utf8mb4) AS BINARY), 3) "
                                "= CAST(CAST('ø ' AS CHAR CHARACTER SET utf8mb4) AS BINARY)"),
    (S.endswith("ø "), "postgres", "RIGHT(s, 2) = 'ø '"),
    (S.contains("a.b", regex=True), "mysql", "REGEXP_INSTR(s, '(?-i)a.b') > 0"),
    (S.contains("æ", regex=True, case=False), "spark", "s RLIKE '(?iu)æ'"),
    (S.contains("æ", regex=True, case=False), "snowflake",
     "REGEXP_INSTR(s, 'æ', 1, 1, 0, 'i') > 0"),
    (S.replace(r"(\d)", r"<\1$>", regex=True), "spark", r"REGEXP_REPLACE(s, '(\\d)', '<$1\\$>')"),
    (S.replace(r"(\d)", r"<\1$>", regex=True), "postgres",
     r"REGEXP_REPLACE(s, '(\d)', '<\1$>', 'g')"),
    (S.lstrip("]-"), "mysql", r"REGEXP_REPLACE(s, '(?-i)^[\\]\\-]+', '')"),
    (S.rstrip("x"), "mysql", r"REGEXP_REPLACE(s, '(?-i)[x]+\\z', '')"),
    (S.rstrip("x"), "spark", "TRIM(TRAILING 'x' FROM s)"),
    (S.split("."), "spark", r"SPLIT(s, '\\.', -1)"),
    (S.split(","), "postgres", "CASE WHEN s = '' THEN ARRAY[''] ELSE STRING_TO_ARRAY(s, ',') END"),
    (S.slice(-2), "duckdb", "RIGHT(s, 2)"),
    (S.slice(1, 3), "postgres", "SUBSTRING(s FROM 2 FOR 2)"),
    (S.pad(3), "mysql", "CASE WHEN CHAR_LENGTH(s) >= 3 THEN s ELSE LPAD(s, 3, ' ') END"),
    (S.to_date("%d.%m.%Y"), "spark", r"TO_DATE(s, 'dd\'.\'MM\'.\'yyyy')"),
    (S.to_datetime("%Y-%m-%dT%H:%M"), "snowflake",
     """TO_TIMESTAMP_NTZ(s, 'YYYY-MM-DD"T"HH24:MI')"""),
    (qr.concat_str("a", qr.lit("-"), "b"), "mysql",
     "CONCAT(CAST(a AS CHAR), '-', CAST(b AS CHAR))"),
])
def test_spelling(expr: qr.Expr, dialect: str, sql: str):
    assert expr.sql(dialect) == sql


EVERY = {
    "upper": S.upper(), "lower": S.lower(), "len": S.len(), "strip": S.strip(),
    "lstrip": S.lstrip("ab"), "rstrip": S.rstrip(), "contains": S.contains("x"),
    "icontains": S.contains("x", case=False), "regex": S.contains("x+", regex=True),
    "iregex": S.contains("x+", regex=True, case=False), "startswith": S.startswith("x"),
    "endswith": S.endswith("x"), "find": S.find("x"), "replace": S.replace("x", "y"),
    "reregex": S.replace("(x)", r"\1\1", regex=True), "slice": S.slice(-3, -1),
    "pad": S.pad(5, "both"), "to_date": S.to_date("%Y-%m-%d"),
    "to_datetime": S.to_datetime("%Y-%m-%d %H:%M:%S.%f"), "concat": qr.concat_str("s", "t"),
    "split": S.split(","),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_function_is_written_for_every_dialect(dialect: str):
    for name, expr in EVERY.items():
        if name == "split" and dialect == "mysql":
            with pytest.raises(UnsupportedError, match="no list type"):
                expr.sql(dialect)
            continue
        assert expr.sql(dialect), name


def test_engine_gaps_are_errors_when_sql_is_written():
    with pytest.raises(UnsupportedError, match="two-digit years"):
        S.to_date("%d/%m/%y").sql("spark")
    with pytest.raises(UnsupportedError, match="day of the year"):
        S.to_date("%Y-%j").sql("snowflake")
    with pytest.raises(UnsupportedError, match="literal %"):
        S.to_date("%Y%%").sql("mysql")


def test_helpers():
    assert replacement_parts(r"a\\b\1\g<2>") == ["a\\b", 1, 2]
    assert time_format("%Y-%m-%d %I:%M %p", "mysql") == "%Y-%m-%d %h:%i %p"
    assert time_format("100%% %B", "postgres") == "100% Month"
    with pytest.raises(ParameterError, match="%z"):
        time_format("%Y %z", "duckdb")
