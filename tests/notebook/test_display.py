"""How a QueryRef shows itself: SQL, columns and types, a LIMIT-only preview, short errors."""

from __future__ import annotations

import sys

import pytest

import queryref as qr
from queryref import _display
from queryref._display import MAYBE_FLOAT, Preview, SQLText, query_html, query_text, redact


@pytest.fixture(autouse=True)
def no_reuse():
    _display._recent.clear()
    yield
    _display._recent.clear()


def test_preview_is_fetched_with_a_limit_only(recorded):
    con, log = recorded
    q = con.sql("SELECT range AS n, 'r' || range AS s FROM range(1000000)")
    p = Preview.fetch(q, rows=3)
    assert p.table is not None and p.table.num_rows == 3 and p.more
    assert [kind for kind, _ in log] == ["probe", "run"]
    run = log[-1][1]
    assert run.rstrip().endswith("LIMIT 4")  # rows + 1: the extra one says "more"
    assert all("COUNT" not in sql.upper() for _, sql in log)
    assert str(p).splitlines() == [
        "n      s", "int64  str", "0      r0", "1      r1", "2      r2",
        "(first 3 rows; more not shown)",
    ]
    few = Preview.fetch(con.sql("SELECT 1 AS x"), rows=3)
    assert not few.more and few.footer() == "1 row"


def test_html_escapes_values_and_names_and_marks_nulls(con):
    q = con.sql("""SELECT '<script>alert(1)</script>' AS "<b>", NULL::INT AS z, 1 AS a, 2 AS a""")
    out = query_html(q)
    assert "<script>" not in out and "&lt;script&gt;" in out and "&lt;b&gt;" in out
    assert "NULL</i>" in out and "int32" in out
    right = "<td style='text-align:right'>"
    assert f"{right}1</td>{right}2</td>" in out  # both columns named a show
    assert "QueryRef on duckdb :memory:" in out and "<details open><summary>SQL" in out


def test_sql_is_highlighted_with_pygments_or_escaped_without(monkeypatch):
    html = SQLText("SELECT '<x>' AS a")._repr_html_()
    assert "<span" in html and "&lt;x&gt;" in html and "<x>" not in html
    monkeypatch.setitem(sys.modules, "pygments", None)  # as if it were not installed
    plain = SQLText("SELECT '<x>' AS a")._repr_html_()
    assert "<span" not in plain and "&lt;x&gt;" in plain
    assert repr(SQLText("SELECT 1")) == "SELECT 1"


def test_a_failing_preview_shows_the_message_not_a_traceback(con):
    q = con.sql("SELECT * FROM missing_table")
    out = query_html(q)
    assert "BackendError" in out and "missing_table" in out and "Traceback" not in out
    text = query_text(q)
    assert text.startswith("<QueryRef on duckdb :memory:>\nSELECT") and "BackendError" in text


def test_the_preview_respects_the_budget(con):
    q = con.sql("SELECT repeat('x', 10000) AS s FROM range(50)")
    with qr.options.context(max_bytes="20KB"):
        p = Preview.fetch(q, rows=40)
    assert isinstance(p.error, qr.errors.ResultTooLarge) and p.table is None
    assert str(p).startswith("ResultTooLarge: the result passed")
    assert "Ways out" in p._repr_html_()
    long_value = Preview.fetch(q, rows=1)
    assert "…" in str(long_value) and len(max(str(long_value).splitlines(), key=len)) <= 80


def test_passwords_never_show():
    assert redact("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert "s3cr3t" not in redact("connect failed: password=s3cr3t; user=bob")
    assert "s3cr3t" not in _display.error_text(
        qr.errors.BackendError("FATAL for snowflake://u:s3cr3t@acct/db"))


def test_wide_results_show_the_first_columns(con):
    cols = ", ".join(f"{i} AS c{i}" for i in range(60))
    p = Preview.fetch(con.sql(f"SELECT {cols}"), rows=1)
    assert "10 more columns" in p._repr_html_() and "10 more columns" in str(p)
    assert "c49" in str(p) and "c50" not in str(p)


def test_html_and_text_of_one_display_share_one_query(recorded):
    con, log = recorded
    q = con.sql("SELECT range AS n FROM range(20)")
    html, text = q._repr_html_(), query_text(q)
    assert "(first 10 rows; more not shown)" in text
    assert "<td style='text-align:right'>9</td>" in html
    assert [kind for kind, _ in log].count("run") == 1
    query_text(q)  # a later display runs the preview again
    assert [kind for kind, _ in log].count("run") == 2
    assert repr(q).startswith("<QueryRef on duckdb recorded>")  # repr() itself runs nothing
    assert [kind for kind, _ in log].count("run") == 2


def test_html_shows_the_pandas_dtypes_and_right_aligns_numbers(con):
    q = con.sql("SELECT 1.5::DECIMAL(4, 2) AS price, 'x' AS s, DATE '2024-01-02' AS d, 7 AS n")
    out = query_html(q)
    frame = q.to_pandas()
    for name, dtype in frame.dtypes.items():  # the dtypes to_pandas gives, under each name
        shown = f"{dtype}{MAYBE_FLOAT if dtype.kind in 'iu' else ''}"  # (n: NULLs -> float64)
        assert f"{name}<br><span style='font-weight:normal;color:#666'>{shown}</span>" in out
    assert "<td style='text-align:right'>1.50</td>" in out  # numbers right-aligned
    assert "<td>x</td>" in out
