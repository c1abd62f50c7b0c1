"""The command line in a real terminal (a pseudo-terminal, through pexpect): the progress line
fits the width and is cleared, Ctrl-C cancels the query while it starts or streams, the table
lines up wide characters, and the terminal table fetches only the rows it shows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pexpect
import pytest

from queryref.cli.table import render_table

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals")

ROOT = Path(__file__).resolve().parents[2]
CLEAR = "\r\x1b[2K"
#: rows that stream at once and go on for minutes
ENDLESS = "SELECT a.range AS x, b.range AS y FROM range(100000) a, range(200000) b"
#: a query that gives nothing back until it is done (a blocking aggregate over 2e12 pairs)
BLOCKING = ("SELECT count(*) AS n FROM range(1000000) a, range(2000000) b "
            "WHERE a.range + b.range = 7")


def spawn(*argv: str, columns: int = 80, env: dict[str, str] | None = None) -> pexpect.spawn:
    env = {**{k: v for k, v in os.environ.items() if k != "COLUMNS"}, **(env or {})}
    return pexpect.spawn(sys.executable, ["-m", "queryref", *argv], cwd=str(ROOT), env=env,
                         dimensions=(24, columns), encoding="utf-8", timeout=60)


def finish(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    return child.before


def progress_frames(text: str) -> list[str]:
    """Each state the progress line was drawn in (what follows each clear-line), without the
    summary that replaces it at the end."""
    return [part for part in text.split(CLEAR)[1:-1] if part]


@pytest.mark.parametrize("columns", [40, 100])
def test_progress_fits_the_terminal_and_gives_way_to_the_summary(tmp_path, columns):
    path = tmp_path / "out.csv"
    sql = "SELECT range AS id, 'label ' || range AS label FROM range(10000000)"
    # the line from the first batch on: a fast machine writes this file in under a second
    child = spawn("query", sql, "--out", str(path), columns=columns,
                  env={"QUERYREF_PROGRESS_AFTER": "0"})
    text = finish(child)
    assert child.exitstatus == 0, text
    frames = progress_frames(text)
    assert frames, text
    for frame in frames:  # nothing else on the line; never wraps onto a second one
        assert re.fullmatch(r"(writing out\.csv: )?[\d,]+ rows, [\d.]+ \w+( in [\d.]+s"
                            r"( \([\d.]+ \w+/s\))?)?", frame), frame
        assert len(frame) < columns, (columns, frame)
    if columns >= 100:  # all of it when it fits
        assert frames[0].startswith("writing out.csv: ") and frames[0].endswith("/s)"), frames
    summary = text.split(CLEAR)[-1]
    assert re.fullmatch(rf"wrote 10,000,000 rows \(.+\) to {re.escape(str(path))} in .+s\r\n",
                        summary), summary


@pytest.mark.parametrize("where", ["writing", "streaming", "starting"])
def test_ctrl_c_cancels_clears_the_line_and_exits_130(tmp_path, where):
    path = tmp_path / "out.csv"
    argv = {"writing": ["query", ENDLESS, "--out", str(path), "--progress"],
            "streaming": ["query", ENDLESS, "--out", "-"],
            "starting": ["query", BLOCKING]}[where]
    child = spawn(*argv, columns=60)
    if where == "writing":
        child.expect("writing out.csv")  # the progress line is up
    else:
        time.sleep(2.5)
    sent = time.monotonic()
    child.sendintr()
    text = finish(child)
    assert child.exitstatus == 130, text
    assert time.monotonic() - sent < 8, text  # the query was stopped, not waited for
    last = text.rstrip("\r\n").split("\n")[-1]
    # what the terminal shows on that line: what was written after the line was cleared
    assert last.split("\r")[-1] == "\x1b[2Kqueryref: interrupted; the query was cancelled", last
    assert "cancelledin" not in text and "Traceback" not in text
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file left behind


def test_ctrl_c_cancels_a_postgres_query_in_the_server():
    """After Ctrl-C, the server runs nothing for this command (asked on the server's side)."""
    psycopg = pytest.importorskip("psycopg")
    url = os.environ.get("QUERYREF_POSTGRES_URL",
                         "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:  # pragma: no cover - no server here
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable: {err}")
    tag = f"qr_cli_cancel_{os.getpid()}"
    sql = (f"SELECT a AS {tag}, b FROM generate_series(1, 100000) a, "
           "generate_series(1, 100000) b WHERE (a * b) % 7 = 3")
    for argv in (["query", sql, "--db", url, "--out", "-"],  # streaming
                 ["query", f"SELECT count(*) AS {tag} FROM ({sql}) t", "--db", url]):  # starting
        child = spawn(*argv)
        time.sleep(3)
        running = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                "AND query LIKE %s AND pid <> pg_backend_pid()",
                                [f"%{tag}%"]).fetchone()
        assert running == (1,), argv
        child.sendintr()
        text = finish(child)
        assert child.exitstatus == 130, text
        left = None
        for _ in range(50):  # the server's view catches up within moments
            left = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                 "AND query LIKE %s AND pid <> pg_backend_pid()",
                                 [f"%{tag}%"]).fetchone()
            if left == (0,):
                break
            time.sleep(0.1)
        assert left == (0,), argv
    admin.close()


def test_wide_characters_line_up_in_a_terminal():
    import wcwidth  # an independent measure of display width (in the dev extra)
    sql = ("SELECT * FROM (VALUES ('東京都', 1, 'x'), ('abc', -22, 'y'), ('Ａｂｃ', 333, 'z'), "
           "('e\u0301té', NULL, 'w'), ('한국어 텍스트', 5, 'v'), (NULL, 6, 'u')) t(city, n, tag)")
    child = spawn("query", sql)
    text = finish(child)
    assert child.exitstatus == 0, text
    lines = [ln.replace(CLEAR, "") for ln in text.replace("\r\n", "\n").split("\n")
             if ln.strip()]
    table = lines[:-1]
    assert lines[-1] == "(6 rows)"
    assert len(table) == 8
    # the third column starts at the same display column on every line
    starts = {wcwidth.wcswidth(ln[: ln.rindex("  ") + 2]) for ln in table}
    assert len(starts) == 1, table
    # and the numbers, right-aligned, end in the same column
    ends = {wcwidth.wcswidth(ln[: ln.rindex("  ")].rstrip()) for ln in table}
    assert len(ends) == 1, table


def test_render_table_pads_by_display_width():
    wcwidth = pytest.importorskip("wcwidth")
    import pyarrow as pa

    values = ["東京", "a", "ｆｕｌｌ", "e\u0301", "😀x", "naïve", None]
    text = render_table(pa.table({"s": values, "t": ["|"] * len(values)}), "(end)")
    rows = text.splitlines()[:-1]
    assert len({wcwidth.wcswidth(r[: r.index("|")]) for r in rows[2:]}) == 1, text


MEASURE = r"""
import io, json, resource, sys
from queryref.cli.main import main
main(["query", "SELECT 1 AS x"])  # imports and the first connection, outside the measure
sys.stdout, saved = io.StringIO(), sys.stdout
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out, sys.stdout = sys.stdout.getvalue(), saved
print(json.dumps({"code": code, "grew_kib": after - before, "out": out}))
"""


def test_the_terminal_table_fetches_only_what_it_shows(tmp_path):
    """1,000,000 rows of 1,000 bytes (about 1 GB): the table's process grows by far less
    than one such result, and the count comes from the database."""
    db = tmp_path / "wide.duckdb"
    with duckdb.connect(str(db)) as raw:
        raw.execute("CREATE VIEW wide AS SELECT range AS id, repeat(chr(65 + (range % 26)::INT),"
                    " 1000) AS s FROM range(1000000)")
        expected = raw.sql("SELECT id, s FROM wide LIMIT 40").fetchall()  # (insertion order)
    done = subprocess.run([sys.executable, "-c", MEASURE, "query",
                           "SELECT * FROM wide", "--db", f"duckdb:///{db}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["code"] == 0
    lines = got["out"].splitlines()
    assert lines[-1] == "(showing 40 of 1,000,000 rows)"
    shown = [ln.split() for ln in lines[2:-1]]
    assert [(int(r[0]), r[1]) for r in shown] == [(i, s[:39] + "…") for i, s in expected]
    assert got["grew_kib"] < 100 * 1024, got["grew_kib"]  # one result would be ~1 GB
