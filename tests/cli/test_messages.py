"""What the command line says when something fails: in its own words (flags, not Python
calls), pointing at a SQL typo, naming the nearest URL scheme, with a way out that fits the run.
"""

from __future__ import annotations

import re

import pytest

from queryref.cli.advice import cli_words, parse_message, scheme_hint
from queryref.cli.main import main
from queryref.errors import SQLParseError

#: what Python code looks like in a message: keyword arguments, method calls
PYTHON = re.compile(r"\b(max_bytes|max_rows|preflight|timeout|batch_rows)=|\bcon\.\w+\(|"
                    r"\.(to_\w+|cache|count|execute)\(|pass them as keywords")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


# -- SQL typos --------------------------------------------------------------------------------
@pytest.mark.parametrize(("sql", "token", "said"), [
    ("SELECT a * FROM t", "FROM", "expected a value after '*', found 'FROM'"),
    ("SELECT 1 +", "+", "expected a value after '+', but the SQL ends there"),
    ("SELECT range FROM range(3) WHERE", "WHERE", "WHERE needs a condition, but the SQL ends"),
    ("SELECT range AS x\nFROM range(3)\nWHERE range = = 3", "= 3",
     "expected a value after '=', found '='"),
    ("SELECT a FROM t LIMIT", "LIMIT", "LIMIT needs a number of rows"),
    ("SELECT range FROM range(9) WHERE range BETWEEN 1", "1", "BETWEEN needs 'low AND high'"),
    ("SELECT CAST(a AS) FROM t", ")", "expected TYPE after CAST"),
    ("SELECT (1 + 2", "2", "expected ')' to close a '(', but the SQL ends there"),
    ("SELEC 1", "1", "unexpected '1' (is 'SELEC' meant to be SELECT?)"),
    ("SELECT 'it''s', 東京 * FROM t", "FROM", "expected a value after '*', found 'FROM'"),
])
def test_a_sql_typo_shows_where_and_what_was_expected(capsys, sql, token, said):
    code, out, err = run(capsys, "query", sql)
    assert (code, out) == (2, "")
    head, shown, marker = err.rstrip("\n").split("\n")
    assert head.startswith("queryref: error: SQLParseError: line ")
    assert said in head
    assert "sqlglot" not in err and "<class" not in err and "Required keyword" not in err
    # the marker sits under the token, on the line the token is on
    line_no = int(re.search(r"line (\d+), column (\d+)", head).group(1))
    column = int(re.search(r"line (\d+), column (\d+)", head).group(2))
    line = sql.splitlines()[line_no - 1]
    start = line.rindex(token) if token != "= 3" else line.rindex("= 3")
    assert column == start + 1
    assert shown == "  " + line
    from queryref.cli.table import display_width

    assert marker.index("^") - 2 == display_width(line[:start])  # wide characters counted
    assert marker.strip() == "^" * display_width(token.split(" ")[0])


def test_unclosed_quotes_and_comments_are_named(capsys):
    for sql, what, at in (("SELECT * FROM t WHERE x = 'abc", "a quoted text (') is not closed",
                           "'abc"),
                          ('SELECT "abc FROM t', 'a quoted name (") is not closed', '"abc'),
                          ("SELECT 1 /* note", "a /* comment is not closed", "/*")):
        code, _, err = run(capsys, "query", sql)
        head, _, marker = err.rstrip("\n").split("\n")
        assert code == 2
        assert what in head and f"column {sql.index(at) + 1}:" in head, err
        assert marker.index("^") - 2 == sql.index(at)


def test_the_engines_own_parse_error_is_pointed_at(capsys):
    # sqlglot reads GROUP as an alias here; DuckDB's parser refuses it
    code, _, err = run(capsys, "query", "SELECT * FROM range(3) GROUP")
    assert code == 2
    head, _, marker = err.rstrip("\n").split("\n")
    assert 'syntax error at or near "GROUP"' in head
    assert marker.index("^") - 2 == "SELECT * FROM range(3) GROUP".index("GROUP")


def test_a_cells_typo_names_the_cell(capsys, tmp_path):
    path = tmp_path / "cells.sql"
    path.write_text("-- name: a\nSELECT 1 AS x\n-- name: b\nSELECT x *\nFROM a\n")
    code, _, err = run(capsys, "cells", str(path))
    assert code == 2
    assert "in cell 'b', line 2, column 1: expected a value after '*', found 'FROM'" in err


def test_parse_message_without_the_sql_still_reads():
    err = SQLParseError("Required keyword: 'this' missing for <class "
                        "'sqlglot.expressions.query.Where'>", line=1, col=21, snippet="WHERE")
    assert parse_message(err, None) == ("SQLParseError: line 1, column 21: WHERE needs a "
                                        "condition, found 'WHERE'")


# -- URLs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "nearest"), [
    ("postgress://u:pw@127.0.0.1/db", "postgres://"),
    ("postgresq://u@127.0.0.1/db", "postgresql://"),
    ("duckbd:///x.db", "duckdb://"),
    ("snowflak://u@acct/db", "snowflake://"),
    ("mysql+pymsql://root@127.0.0.1/test", "mysql+pymysql://"),
])
def test_a_mistyped_url_scheme_gets_the_nearest_known_one(capsys, tmp_path, url, nearest):
    code, out, err = run(capsys, "query", "SELECT 1", "--db", url)
    assert (code, out) == (2, "")
    assert f"did you mean '{nearest}'?" in err
    assert "{{" not in err and "-p NAME" not in err  # not the hint for parameters
    assert "pw" not in err and "127.0.0.1" not in err  # nothing of the URL but its scheme
    assert len(err.strip().splitlines()) == 1
    if "+" not in url:
        assert "duckdb://, postgresql://, snowflake://, sc://" in err
    assert list(tmp_path.iterdir()) == []


def test_a_known_scheme_has_no_scheme_hint():
    assert scheme_hint("postgresql://u@h/db") == ""
    assert scheme_hint("sqlite:///x.db") == ""
    assert "unknown database URL scheme 'zzz://'" in scheme_hint("zzz://x")
    assert "did you mean" not in scheme_hint("zzz://x")


def test_a_url_that_is_not_one(capsys):
    code, _, err = run(capsys, "query", "SELECT 1", "--db", "not-a-url")
    assert code == 2
    assert "--db (or $QUERYREF_URL) takes a URL such as duckdb:///file.duckdb" in err
    assert "{{" not in err


# -- advice in the command line's words -------------------------------------------------------
def test_messages_name_flags_not_python(capsys, tmp_path):
    cases = [
        ["query", "SELECT * FROM range(2000000)", "--format", "csv", "--max-bytes", "1MB"],
        ["query", "SELECT * FROM range(100)", "--max-rows", "10", "--format", "json"],
        ["query", "SELECT repeat('x', 100000) AS s FROM range(10000)", "--max-bytes", "10MB",
         "--format", "csv"],
        ["query", "SELECT * FROM range(10000000)", "--timeout", "0.001", "--out",
         str(tmp_path / "x.csv")],
        ["query", "DROP TABLE t"],
        ["query", "SELECT 1; SELECT 2"],
        ["query", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"],
        ["query", "SELECT {{ lo }} AS a, {{ hi }} AS b"],
        ["query", "SELECT 1", "-p", "unused=3"],
    ]
    for argv in cases:
        code, _, err = run(capsys, *argv)
        assert code in (2, 3, 4), (argv, err)
        assert not PYTHON.search(err), (argv, err)
        assert any(way in err for way in (" -- ", "give -p", "own client", "larger --timeout"))


def test_the_way_out_fits_the_run(capsys, tmp_path):
    # a file already: no "--out" to try; a file has no budget unless one is given
    code, _, err = run(capsys, "query", "SELECT * FROM range(100)", "--max-rows", "10",
                       "--out", str(tmp_path / "x.parquet"))
    assert code == 3
    assert "more than 10 rows (--max-rows 10)" in err
    assert "--out" not in err
    assert "leave them off" in err
    # every row printed: stream them instead
    code, _, err = run(capsys, "query", "SELECT * FROM range(100)", "--max-rows", "10",
                       "--format", "json")
    assert code == 3
    assert "--out - (--format json)" in err
    # the table: rows so wide that the ones shown pass the budget
    code, _, err = run(capsys, "query", "SELECT repeat('x', 100000) AS s FROM range(1000)",
                       "--max-bytes", "1MB")
    assert code == 3
    assert "show fewer rows (--show 5)" in err
    # the pre-flight's own advice, as flags
    code, _, err = run(capsys, "query", "SELECT repeat('x', 100000) AS s FROM range(10000)",
                       "--max-bytes", "10MB", "--format", "csv")
    assert "--preflight count counts exactly first, --preflight none skips this check" in err
    # parameters
    code, _, err = run(capsys, "query", "SELECT {{ lo }} AS a, {{ hi }} AS b")
    assert "missing value for parameter(s) hi, lo: give -p hi=VALUE -p lo=VALUE" in err
    code, _, err = run(capsys, "query", "SELECT 1", "-p", "unused=3")
    assert "-p unused given but not used" in err
    # statements
    code, _, err = run(capsys, "query", "DROP TABLE t")
    assert "queryref takes read-only queries only" in err
    assert "your database's own client" in err


def test_cli_words():
    assert cli_words("the query ran longer than timeout=2.5s and was cancelled; give a larger "
                     "timeout=") == ("the query ran longer than --timeout 2.5 and was "
                                     "cancelled; give a larger --timeout")
    assert cli_words("raise it: max_bytes='2GB' (or max_bytes=None)") == (
        "raise it: --max-bytes 2GB (or --max-bytes none)")
