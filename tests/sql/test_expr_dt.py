"""``Expr.dt``, ``qr.date_diff`` and timedelta arithmetic as SQL text, with no database: the
spellings per engine, the refused arguments, and the engines that get an error instead of an
unchecked spelling. (What they compute is checked on every engine in
``tests/conformance/test_conf_expr_dt.py``.)"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlglot import exp

import queryref as qr
from queryref.errors import ParameterError, UnsupportedError

ENGINES = ("duckdb", "postgres", "mysql", "snowflake", "spark")
TS = qr.col("ts")


def spell(e: qr.Expr) -> dict[str, str]:
    return {d: e.sql(d) for d in ENGINES}


def test_weekday_per_engine():
    assert spell(TS.dt.weekday()) == {
        "duckdb": "ISODOW(ts) - 1",
        "postgres": "CAST(EXTRACT(ISODOW FROM ts) AS INT) - 1",
        "mysql": "WEEKDAY(ts)",
        "snowflake": "DAYOFWEEKISO(ts) - 1",
        "spark": "(DAYOFWEEK(ts) + 5) % 7",
    }


def test_clock_parts_read_a_date_as_midnight():
    assert TS.dt.second().sql("postgres") == (
        "CAST(FLOOR(EXTRACT(SECOND FROM CAST(ts AS TIMESTAMP))) AS INT)")
    assert TS.dt.hour().sql("snowflake") == "HOUR(CAST(ts AS TIMESTAMPNTZ))"


def test_iso_week_per_engine():
    assert spell(TS.dt.week()) == {
        "duckdb": "WEEKOFYEAR(ts)", "postgres": "CAST(EXTRACT(WEEK FROM ts) AS INT)",
        "mysql": "WEEK(ts, 3)", "snowflake": "WEEKISO(ts)", "spark": "WEEKOFYEAR(ts)"}


def test_truncate():
    got = spell(TS.dt.truncate("WEEK"))
    assert got["duckdb"] == "DATE_TRUNC('week', ts)"
    # (+ 0 seconds: a DATE becomes a timestamp, a timestamptz stays one, at the local start)
    assert got["postgres"] == "DATE_TRUNC('week', ts + INTERVAL '0 SECOND')"
    assert got["mysql"] == "CAST(DATE(ts) - INTERVAL (WEEKDAY(ts)) DAY AS DATETIME)"
    with pytest.raises(ParameterError, match="decade"):
        TS.dt.truncate("decade")


def test_epoch_reads_naive_values_as_utc():
    got = spell(TS.dt.epoch())
    assert got["mysql"] == "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ts) / 1e6"
    assert "TYPEOF(ts) = 'timestamp'" in got["spark"]  # an instant, else read as UTC


def test_strftime_formats():
    fmt = "%d%a %Y-%m 'T' \"q\" 100%%"
    got = spell(TS.dt.strftime(fmt))
    assert got["duckdb"] == "STRFTIME(ts, '%d%a %Y-%m ''T'' \"q\" 100%%')"
    # PostgreSQL: text in double quotes; "" between codes (DDDy would read as DDD y)
    assert got["postgres"] == (
        "TO_CHAR(ts, 'DD\"\"Dy\" \"YYYY\"-\"MM\" ''T'' \\\"q\\\" 100%\"')")
    assert got["mysql"] == "DATE_FORMAT(ts, '%d%a %Y-%m ''T'' \"q\" 100%%')"
    # Spark: every letter is a pattern, text is quoted; MM beside MMM takes two calls
    assert qr.col("ts").dt.strftime("%m%b").sql("spark") == (
        "CONCAT(DATE_FORMAT(ts, 'MM'), DATE_FORMAT(ts, 'MMM'))")


@pytest.mark.parametrize("fmt", ["%e", "%f", "%Z", "%Y-%", "%-d", "%c", "%x"])
def test_strftime_refuses_codes_it_cannot_translate(fmt):
    with pytest.raises(ParameterError, match="not translated exactly"):
        TS.dt.strftime(fmt)


def test_strftime_takes_text():
    with pytest.raises(ParameterError, match="format is text"):
        TS.dt.strftime(5)  # type: ignore[arg-type]


def test_date_diff():
    e = qr.date_diff("Month", "a", qr.col("b"))
    assert e.sql("duckdb") == "CAST((YEAR(b) - YEAR(a)) * 12 + (MONTH(b) - MONTH(a)) AS BIGINT)"
    assert [c.name for c in e.node.find_all(exp.Column)] == ["a", "b"]
    literal = qr.date_diff("day", dt.date(2024, 1, 1), "b").sql("postgres")
    assert literal == "CAST(CAST(b AS DATE) - CAST(CAST('2024-01-01' AS DATE) AS DATE) AS BIGINT)"
    with pytest.raises(ParameterError, match="quarter"):
        qr.date_diff("quarter", "a", "b")


def test_seconds_count_in_64_bits():
    # PostgreSQL's and Spark's day counts are 32-bit: widened before multiplying
    assert qr.date_diff("second", "a", "b").sql("postgres").startswith(
        "CAST(((CAST(CAST(b AS DATE) - CAST(a AS DATE) AS BIGINT) * 24")


@pytest.mark.parametrize("make", [
    lambda: TS.dt.weekday(), lambda: TS.dt.truncate("day"), lambda: TS.dt.epoch(),
    lambda: TS.dt.strftime("%Y"), lambda: qr.date_diff("day", "a", "b")])
def test_unchecked_engines_get_an_error(make):
    e = make()
    with pytest.raises(UnsupportedError, match="bigquery"):
        e.sql("bigquery")
    assert e.node.sql()  # sqlglot's generic SQL (reprs, messages) writes DuckDB's spelling


@pytest.mark.parametrize(("span", "sql"), [
    # (whole days as hours: a timestamptz moves 24 hours a day across a DST change, as pandas)
    (dt.timedelta(days=2), "ts + INTERVAL '48' HOUR"),
    (dt.timedelta(days=1, hours=2), "ts + INTERVAL '26' HOUR"),
    (dt.timedelta(minutes=90), "ts + INTERVAL '90' MINUTE"),
    (dt.timedelta(seconds=61), "ts + INTERVAL '61' SECOND"),
    (dt.timedelta(seconds=1.5), "ts + INTERVAL '1500000' MICROSECOND"),
    (dt.timedelta(days=-2, seconds=5), "ts - INTERVAL '172795' SECOND"),
    (pd.Timedelta(hours=3), "ts + INTERVAL '3' HOUR"),
])
def test_timedelta_is_one_interval(span, sql):
    assert (TS + span).sql("duckdb") == sql


def test_timedelta_arithmetic():
    span = dt.timedelta(hours=1)
    assert (span + TS).sql("postgres") == "ts + INTERVAL '1 HOUR'"
    assert (TS - span).sql("snowflake") == "ts - INTERVAL '1 HOUR'"
    assert (TS - -span).sql("mysql") == "ts + INTERVAL '1' HOUR"
    assert qr.lit(-span).sql("spark") == "INTERVAL '-1' HOUR"
    days = dt.timedelta(days=2)  # (engines with no DST-aware timestamps keep calendar days)
    assert (TS + days).sql("mysql") == "ts + INTERVAL '2' DAY"
    assert (TS + days).sql("spark") == "ts + INTERVAL '2' DAY"
    with pytest.raises(ParameterError, match="timedelta minus a date"):
        span - TS
    with pytest.raises(ParameterError, match="nanoseconds"):
        TS + pd.Timedelta(nanoseconds=5)
