"""The command line on embedded DuckDB: outputs against DuckDB's own answers, exit codes, secrets.

Most tests call ``main(argv)`` in-process; a few run ``python -m queryref`` for real (the
console entry point, stdin). In a terminal (a pseudo-terminal): ``test_terminal.py``; the
messages: ``test_messages.py``; describe and plot: ``test_explore_cli.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from queryref.cli.main import main, split_cells

ROOT = Path(__file__).resolve().parents[2]
SQL = ("SELECT range AS id, 'r' || range AS label, range * 0.5 AS half, "
       "DATE '2024-01-01' + CAST(range % 30 AS INTEGER) AS day FROM range(5000)")
SECRET = "s3cr3t-pw"
PG_URL = f"postgresql://u:{SECRET}@127.0.0.1:1/x"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def reference(sql: str = SQL) -> list[dict]:
    """The same query, run by DuckDB directly."""
    return duckdb.connect().sql(sql).to_arrow_table().to_pylist()


# -- query: outputs -------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["parquet", "csv", "arrow", "json"])
@pytest.mark.parametrize("progress", ["--progress", "--no-progress"])
def test_query_to_a_file_matches_duckdb(capsys, tmp_path, ext, progress):
    path = tmp_path / f"out.{ext}"
    code, out, err = run(capsys, "query", SQL, "--out", str(path), progress)
    assert code == 0, err
    assert out == ""  # stdout stays clean; the summary goes to stderr
    assert "wrote 5,000 rows" in err
    if ext == "parquet":
        rows = pq.read_table(path).to_pylist()
    elif ext == "arrow":
        rows = ipc.open_file(path).read_all().to_pylist()
    elif ext == "json":
        rows = json.loads(path.read_text())
    else:
        rows = list(csv.DictReader(path.open()))
    expected = reference()
    if ext in ("csv", "json"):  # text formats: compare as text
        rows = [{k: str(v) for k, v in r.items()} for r in rows]
        expected = [{k: str(v) for k, v in r.items()} for r in expected]
    assert rows == expected
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_query_json_to_stdout_parses_to_the_rows(capsys):
    code, out, _ = run(capsys, "query", "SELECT range AS n, 'x' || range AS s FROM range(3)",
                       "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"n": 0, "s": "x0"}, {"n": 1, "s": "x1"}, {"n": 2, "s": "x2"}]


def test_query_csv_streamed_to_stdout(capsys):
    code, out, _ = run(capsys, "query", SQL, "--out", "-")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5000
    assert rows[7] == {k: str(v) for k, v in reference()[7].items()}


def test_query_prints_a_bounded_table(capsys):
    code, out, _ = run(capsys, "query", "SELECT range AS id, 'r' || range AS s FROM range(100)",
                       "--show", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "s"]
    assert [ln.split() for ln in lines[2:5]] == [["0", "r0"], ["1", "r1"], ["2", "r2"]]
    assert lines[-1] == "(showing 3 of 100 rows)"
    code, out, _ = run(capsys, "query", "SELECT range AS id FROM range(3)", "--show", "3")
    assert (code, out.splitlines()[-1]) == (0, "(3 rows)")


def test_the_table_shows_the_first_rows_and_counts_the_rest(capsys):
    sql = ("SELECT range AS id, CASE WHEN range % 5 = 0 THEN NULL ELSE 'v' || range END AS v "
           "FROM range(1234) WHERE range % 3 <> 1 ORDER BY range DESC")
    expected = reference(sql)
    code, out, _ = run(capsys, "query", sql, "--show", "7")
    assert code == 0
    lines = out.splitlines()
    rows = [ln.split() for ln in lines[2:-1]]
    assert rows == [[str(r["id"]), "NULL" if r["v"] is None else r["v"]] for r in expected[:7]]
    assert lines[-1] == f"(showing 7 of {len(expected):,} rows)"


def test_the_count_can_be_skipped_or_given_up(capsys, monkeypatch):
    code, out, _ = run(capsys, "query", "SELECT * FROM range(100)", "--show", "2", "--no-count")
    assert (code, out.splitlines()[-1]) == (
        0, "(showing the first 2 rows; more not counted: --count counts them)")
    # rows that come at once, a count that takes long: shown, and the count given up
    from queryref.cli import commands

    monkeypatch.setattr(commands, "COUNT_SECONDS", 0.5)
    slow = ("SELECT a.range AS x FROM range(100000) a, range(100000) b "
            "WHERE (a.range * b.range) % 7 = 1")
    start = time.monotonic()
    code, out, _ = run(capsys, "query", slow, "--show", "2")
    assert code == 0
    assert out.splitlines()[-1] == ("(showing the first 2 rows; more not counted: counting "
                                   "them took over 0.5s (--count waits for it))")
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(("preflight", "said"), [
    ("estimate", "is estimated at 16.0 MB for 2,000,000 rows"),
    ("count", "from an exact SELECT COUNT(*) run in the database"),
    ("none", "passed 1.6 MB after 200,000 rows")])
def test_preflight_is_a_flag(capsys, preflight, said):
    code, _, err = run(capsys, "query", "SELECT * FROM range(2000000)", "--format", "csv",
                       "--max-bytes", "1MB", "--preflight", preflight)
    assert code == 3
    assert said in err


def test_sql_from_a_file_with_parameters(capsys, tmp_path):
    (tmp_path / "q.sql").write_text("SELECT {{ n }} + 1 AS n, {{ s }} AS s")
    code, out, _ = run(capsys, "query", f"@{tmp_path / 'q.sql'}", "-p", "n=41", "-p", "s=it's",
                       "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"n": 42, "s": "it's"}]


def test_db_url_from_the_environment(capsys, tmp_path, monkeypatch):
    db = tmp_path / "file.duckdb"
    with duckdb.connect(str(db)) as raw:
        raw.execute("CREATE TABLE t AS SELECT 7 AS x")
    monkeypatch.setenv("QUERYREF_URL", f"duckdb:///{db}")
    code, out, err = run(capsys, "query", "SELECT x FROM t", "--format", "csv")
    assert (code, out.splitlines()) == (0, ['"x"', "7"]), err


# -- the guard and exit codes ---------------------------------------------------------------
def test_budget_crossed_exits_3_with_the_message(capsys):
    code, out, err = run(capsys, "query", "SELECT * FROM range(2000000)", "--max-bytes", "1MB",
                         "--format", "json")
    assert code == 3
    assert out == ""
    # 16 MB of int64 against 1MB: refused by the planner's estimate, before a row moved
    assert err.startswith("queryref: error: ResultTooLarge: the result is estimated at")
    assert "--out - (--format json) or --out result.parquet" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    # the table fetches only the rows it shows: the same query is no longer too large
    code, out, err = run(capsys, "query", "SELECT * FROM range(2000000)", "--max-bytes", "1MB")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "(showing 40 of 2,000,000 rows)"


def test_max_rows_to_a_file_refuses_and_leaves_nothing(capsys, tmp_path):
    code, _, err = run(capsys, "query", "SELECT * FROM range(100)", "--max-rows", "10",
                       "--out", str(tmp_path / "x.csv"))
    assert code == 3
    assert "more than 10 rows" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "code", "needle"), [
    (["query", "DROP TABLE t"], 2, "ReadOnlyError"),
    (["query", "SELECT 1; SELECT 2"], 2, "ReadOnlyError"),
    (["query", "SELECT * FROM no_such_table"], 4, "BackendError"),
    (["query", "SELECT {{ x }}"], 2, "give -p x=VALUE"),
    (["query", "SELECT 1", "--max-bytes", "lots"], 2, "--max-bytes"),
    (["query", "SELECT 1", "--out", "x.xlsx"], 2, "cannot tell the format"),
    (["query", "@/no/such/file.sql"], 2, "cannot read"),
    (["nonsense"], 2, "invalid choice"),
])
def test_errors_are_one_line_with_exit_codes(capsys, argv, code, needle):
    got, out, err = run(capsys, *argv)
    assert got == code, err
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys):
    code, _, err = run(capsys, "query", "SELECT * FROM no_such_table", "--debug")
    assert code == 4
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("queryref: error: BackendError")


def test_a_password_is_never_echoed(capsys, monkeypatch):
    for argv in (["query", "SELECT 1", "--db", PG_URL],
                 ["query", "SELECT 1", "--db", PG_URL, "--debug"],
                 ["explain", "SELECT 1", f"--db={PG_URL}", "--bogus"]):
        code, out, err = run(capsys, *argv)
        assert code in (2, 4), err
        assert SECRET not in out + err
    code, out, err = run(capsys, "query", "SELECT 1", PG_URL)  # a URL where none belongs
    assert code == 2
    assert "unrecognized arguments: postgresql://u:***@127.0.0.1" in err
    assert SECRET not in out + err
    monkeypatch.setenv("QUERYREF_URL", PG_URL)
    code, out, err = run(capsys, "query", "SELECT 1", "--debug")
    assert code == 4
    assert SECRET not in out + err


# -- the other commands ---------------------------------------------------------------------
def test_explain_shows_the_plan(capsys):
    code, out, _ = run(capsys, "explain", "SELECT SUM(range) FROM range(10)")
    assert code == 0
    assert "RANGE" in out.upper()


def test_estimate_when_available(capsys):
    code, out, _ = run(capsys, "estimate", "SELECT * FROM range(1000)")
    assert code == 0
    assert "rows: 1,000" in out and "method: planner" in out
    assert "bytes: 8,000 (7.8 KiB)" in out


def test_compile_transpiles_and_refuses_writes(capsys):
    code, out, _ = run(capsys, "compile", "SELECT a FROM t LIMIT 5", "--to", "tsql",
                       "--one-line")
    assert (code, out.strip()) == (0, "SELECT TOP 5 a FROM t")
    code, out, _ = run(capsys, "compile", "SELECT TOP 5 a FROM t", "--from", "tsql", "--to",
                       "snowflake", "--one-line")
    assert (code, out.strip()) == (0, "SELECT a FROM t LIMIT 5")
    code, _, err = run(capsys, "compile", "DELETE FROM t", "--to", "snowflake")
    assert code == 2
    assert "ReadOnlyError" in err
    code, _, err = run(capsys, "compile", "SELECT 1", "--to", "klingon")
    assert code == 2
    assert "unknown SQL dialect" in err


CELLS = """\
-- cells for the test
-- name: orders
SELECT range AS id, range % 3 AS region, range * 10 AS amount FROM range(30)
WHERE range >= {{ lo }};

-- name: by_region
SELECT region, SUM(amount) AS total FROM orders GROUP BY region;

-- name: top
SELECT * FROM by_region ORDER BY total DESC LIMIT 2
"""


def test_cells_compile_to_one_query_and_run(capsys, tmp_path):
    path = tmp_path / "cells.sql"
    path.write_text(CELLS)
    code, out, _ = run(capsys, "cells", str(path), "-p", "lo=5")
    assert code == 0
    assert out.startswith("WITH orders AS (")
    inner = ("SELECT range AS id, range % 3 AS region, range * 10 AS amount FROM range(30) "
             "WHERE range >= 5")
    expected = reference(f"SELECT region, SUM(amount) AS total FROM ({inner}) "
                         "GROUP BY region ORDER BY total DESC LIMIT 2")
    code, out, _ = run(capsys, "cells", str(path), "-p", "lo=5", "--run", "--format", "json")
    assert code == 0
    assert json.loads(out) == expected
    code, out, _ = run(capsys, "cells", str(path), "-p", "lo=5", "--cell", "by_region")
    assert "ORDER BY" not in out
    code, _, err = run(capsys, "cells", str(path), "-p", "lo=5", "--cell", "nope")
    assert code == 2
    assert "orders, by_region, top" in err


def test_split_cells_rejects_unnamed_sql():
    with pytest.raises(Exception, match="before the first"):
        split_cells("SELECT 1\n-- name: a\nSELECT 2")
    with pytest.raises(Exception, match="has no SQL"):
        split_cells("-- name: a\n-- just a comment\n-- name: b\nSELECT 1")


def test_demo_help_and_version(capsys):
    code, out, _ = run(capsys, "demo", "--help")
    assert code == 0
    assert "--data" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("queryref ")


# -- for real, in a child process -----------------------------------------------------------
def child(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "queryref", *argv], input=stdin, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_python_dash_m_reads_stdin_and_writes_parquet(tmp_path):
    path = tmp_path / "out.parquet"
    done = child("query", "-", "--out", str(path), stdin=SQL)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(path).to_pylist() == reference()


def test_python_dash_m_exit_code_and_redaction():
    done = child("query", "SELECT * FROM range(2000000)", "--max-bytes", "1MB", "--db",
                 "duckdb:///:memory:", "--format", "csv")
    assert done.returncode == 3
    assert "ResultTooLarge" in done.stderr
    done = child("query", "SELECT 1", "--db", PG_URL)
    assert done.returncode == 4
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.skipif(os.name != "posix", reason="SIGINT")
def test_ctrl_c_cancels_and_exits_130():
    heavy = "SELECT a.range AS x, b.range AS y FROM range(100000) a, range(200000) b"
    proc = subprocess.Popen([sys.executable, "-m", "queryref", "query", heavy, "--out", "-"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(2.0)  # started, and streaming
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert time.monotonic() - start < 5
