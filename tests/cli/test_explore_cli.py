"""``queryref describe`` and ``queryref plot`` on embedded DuckDB: what they print and save
against pandas/numpy on the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.cli.main import main

pytest.importorskip("altair")

#: NULLs, negatives, ties, wide text, an empty string
ROWS = ("SELECT * FROM (VALUES (1, -2.5, '東京', 'a'), (2, 3.0, 'abc', 'b'), (3, NULL, '', 'a'), "
        "(4, 7.25, NULL, 'b'), (5, 3.0, '東京', 'a'), (6, -11.0, 'x', 'c'), (7, 0.0, 'x', 'a')) "
        "t(id, v, city, g)")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame]:
    path = tmp_path_factory.mktemp("explore") / "t.duckdb"
    with duckdb.connect(str(path)) as raw:
        raw.execute(f"CREATE TABLE t AS {ROWS}")
        raw.execute("CREATE SCHEMA s")
        raw.execute("CREATE TABLE s.big AS SELECT range AS x, (range * 7919) % 1000 - 500 AS y, "
                    "range % 5 AS k FROM range(20000)")
        frame = raw.sql("SELECT * FROM t").df()
    return f"duckdb:///{path}", frame


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def chart_rows(path: Path) -> list[dict]:
    spec = json.loads(path.read_text())
    (rows,) = spec["datasets"].values()
    return rows


# -- describe ---------------------------------------------------------------------------------
def test_describe_prints_the_profile(capsys, db):
    url, frame = db
    code, out, err = run(capsys, "describe", url, "t")
    assert (code, err) == (0, "")
    expected = qr.connect(url).table("t").describe()
    with pd.option_context("display.unicode.east_asian_width", True):
        assert out == expected.to_string() + "\n"
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    values = frame["v"].dropna()
    assert float(rows["count"][1]) == len(values)
    assert float(rows["mean"][1]) == pytest.approx(values.mean(), abs=1e-6)
    assert float(rows["50%"][1]) == pytest.approx(values.quantile(0.5), abs=1e-6)
    assert float(rows["nulls"][1]) == frame["v"].isna().sum()
    counts = frame["city"].value_counts()
    assert rows["top"][2] in counts[counts == counts.max()].index  # (a tie: either is the top)
    assert int(rows["freq"][2]) == counts.max()


def test_describe_takes_a_query_a_file_and_parameters(capsys, db, tmp_path):
    url, frame = db
    code, out, _ = run(capsys, "describe", "SELECT v FROM t WHERE g = {{ g }}", "-p", "g=a",
                       "--db", url)
    assert code == 0
    mean = frame.loc[frame["g"] == "a", "v"].mean()
    assert pytest.approx(mean, abs=1e-6) == float(
        next(ln for ln in out.splitlines() if ln.startswith("mean")).split()[1])
    (tmp_path / "q.sql").write_text("SELECT x FROM s.big")
    code, out, _ = run(capsys, "describe", url, f"@{tmp_path / 'q.sql'}")
    assert code == 0
    assert float(out.splitlines()[1].split()[1]) == 20000
    code, out, _ = run(capsys, "describe", url, "s.big")  # a schema-qualified table
    assert code == 0
    assert out.splitlines()[0].split() == ["x", "y", "k"]


def test_describe_errors(capsys, db, tmp_path):
    url, _ = db
    code, _, err = run(capsys, "describe", url, "t", "--db", url)
    assert code == 2 and "given twice" in err
    code, _, err = run(capsys, "describe", url, "no_such_table")
    assert code == 4 and "no_such_table" in err
    code, _, err = run(capsys, "describe", url)
    assert code == 2 and "expected a table name or a query" in err


# -- plot -------------------------------------------------------------------------------------
def test_plot_hist_bins_are_numpys(capsys, db, tmp_path):
    url, _ = db
    path = tmp_path / "h.json"
    code, _, err = run(capsys, "plot", "hist", url, "s.big", "y", "--bins", "7", "--out",
                       str(path))
    assert code == 0, err
    assert f"wrote hist chart of y to {path}: 7 rows crossed" in err
    values = duckdb.connect().sql("SELECT (range * 7919) % 1000 - 500 AS y FROM range(20000)"
                                  ).df()["y"].to_numpy()
    counts, edges = np.histogram(values, bins=7, range=(values.min(), values.max()))
    rows = chart_rows(path)
    assert [r["count"] for r in rows] == counts.tolist()
    assert [r["bin_start"] for r in rows] == pytest.approx(edges[:-1].tolist())


def test_plot_bar_line_scatter_box_against_pandas(capsys, db, tmp_path):
    url, _ = db
    big = duckdb.connect().sql("SELECT range AS x, (range * 7919) % 1000 - 500 AS y, "
                               "range % 5 AS k FROM range(20000)").df()
    path = tmp_path / "bar.json"
    assert run(capsys, "plot", "bar", "s.big", "k", "--db", url, "--out", str(path))[0] == 0
    got = {r["k"]: r["count"] for r in chart_rows(path)}
    assert got == big["k"].value_counts().to_dict()

    path = tmp_path / "line.json"
    assert run(capsys, "plot", "line", url, "SELECT x % 10 AS d, y, k FROM s.big", "d", "y",
               "--agg", "mean", "--by", "k", "--out", str(path))[0] == 0
    big["d"] = big["x"] % 10
    want = big.groupby(["d", "k"])["y"].mean()
    rows = chart_rows(path)
    assert len(rows) == len(want)
    for r in rows:
        assert r["mean_y"] == pytest.approx(want[(r["d"], r["k"])])

    path = tmp_path / "scatter.json"
    assert run(capsys, "plot", "scatter", url, "s.big", "x", "y", "--max-points", "300",
               "--out", str(path))[0] == 0
    points = chart_rows(path)
    assert len(points) == 300
    assert all(p["y"] == (p["x"] * 7919) % 1000 - 500 for p in points)  # rows of the table

    path = tmp_path / "box.json"
    assert run(capsys, "plot", "box", url, "s.big", "y", "--by", "k", "--out", str(path))[0] == 0
    for r in chart_rows(path):
        ys = big.loc[big["k"] == r["k"], "y"]
        assert (r["min"], r["max"]) == (ys.min(), ys.max())
        assert r["q1"] == pytest.approx(ys.quantile(0.25))
        assert r["median"] == pytest.approx(ys.quantile(0.5))


@pytest.mark.parametrize(("ext", "magic"), [("png", b"\x89PNG"), ("svg", b"<svg"),
                                            ("pdf", b"%PDF"), ("html", b"<!DOCTYPE html>")])
def test_plot_saves_each_format(capsys, db, tmp_path, ext, magic):
    url, _ = db
    path = tmp_path / f"chart.{ext}"
    code, _, err = run(capsys, "plot", "bar", url, "t", "city", "--out", str(path))
    assert code == 0, err
    assert path.read_bytes().lstrip()[: len(magic)] == magic
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(("argv", "said"), [
    (["hist", "t"], "plot hist takes the data, then COLUMN (0 columns given)"),
    (["scatter", "t", "v"], "plot scatter takes the data, then X Y (1 column given)"),
    (["bar", "t", "g", "--bins", "4"], "--bins is for hist charts, not bar"),
    (["hist", "t", "v", "--by", "g"], "--by is for line and box charts, not hist"),
    (["hist", "t", "nope"], "unknown column 'nope'"),
])
def test_plot_errors_leave_no_file(capsys, db, tmp_path, argv, said):
    url, _ = db
    code, _, err = run(capsys, "plot", *argv, "--db", url, "--out", str(tmp_path / "c.png"))
    assert code == 2
    assert said in err
    assert list(tmp_path.iterdir()) == []
    code, _, err = run(capsys, "plot", "hist", "t", "v", "--db", url, "--out",
                       str(tmp_path / "c.gif"))
    assert code == 2 and "cannot tell the chart format" in err
