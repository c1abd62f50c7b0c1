"""The IPython extension, driven in a real InteractiveShell: %%qref, %qref_sql, reprs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import queryref as qr
from queryref import _display


@dataclass
class Ran:
    ok: bool
    error: BaseException | None
    stdout: str
    displays: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None


class Shell:
    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.ns = shell.user_ns

    def run(self, code: str) -> Ran:
        with capture_output() as cap:
            r = self.shell.run_cell(code, store_history=True)
        return Ran(r.success, r.error_in_exec or r.error_before_exec, cap.stdout + cap.stderr,
                   [o.data for o in cap.outputs], r.result)


@pytest.fixture
def ip() -> Iterator[Shell]:
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.run_line_magic("reload_ext", "queryref")  # fresh magics: a new notebook each test
    _display._recent.clear()
    yield Shell(shell)
    shell.run_line_magic("unload_ext", "queryref")
    shell.reset(new_session=False)


def test_cells_bind_names_reference_each_other_and_preview(ip):
    ip.ns["raw"] = pd.DataFrame({"region": ["n", "s", "n", None], "amount": [1.0, 2.0, 3.0, 4.0],
                                 "status": ["open", "open", "closed", "open"]})
    ip.ns["status"] = "open"
    r = ip.run("%%qref orders --preview 2\nSELECT * FROM raw WHERE status = {{ status }}")
    assert r.ok, r.stdout
    assert isinstance(ip.ns["orders"], qr.QueryRef)
    [shown] = r.displays
    assert "first 2 rows; more not shown" in shown["text/plain"]
    assert "<table" in shown["text/html"] and "<b>orders</b>" in shown["text/html"]
    r = ip.run("%%qref summary\n"
               "SELECT region, SUM(amount) AS total FROM orders GROUP BY ALL ORDER BY region")
    assert r.ok, r.stdout
    got = ip.ns["summary"].to_pandas()
    assert got.total.tolist() == [1.0, 2.0, 4.0]
    r = ip.run("%qref_sql summary")
    sql = str(r.result)
    assert sql.startswith("WITH orders AS") and "status = 'open'" in sql
    assert "<span" in r.result._repr_html_()
    r = ip.run("%qref_sql summary --dialect snowflake")
    assert "WITH orders AS" in str(r.result)
    r = ip.run("%qref_cells")
    assert "orders <- raw (DataFrame)\nsummary <- orders" in r.stdout


def test_the_magic_runs_only_the_limited_preview_of_one_query(ip, recorded):
    con, log = recorded
    con.execute("CREATE TABLE t AS SELECT range AS v FROM range(100)")
    ip.ns["rec"] = con
    assert "connected to duckdb recorded" in ip.run("%qref_connect rec").stdout
    log.clear()
    assert ip.run("%%qref a --no-preview\nSELECT v FROM t WHERE v % 2 = 0").ok
    assert ip.run("%%qref b --no-preview\nSELECT v FROM a WHERE v > 10").ok
    assert log == []  # defining cells runs nothing
    r = ip.run("%%qref c --preview 3\nSELECT v FROM b ORDER BY v")
    assert r.ok, r.stdout
    assert [kind for kind, _ in log] == ["probe", "run"]
    run = log[-1][1]
    assert run.startswith("WITH a AS") and "b AS" in run and run.rstrip().endswith("LIMIT 4")
    assert "12" in r.displays[0]["text/plain"]


def test_redefining_a_cell_rebinds_downstream_variables(ip):
    assert ip.run("%%qref base --no-preview\nSELECT 1 AS v").ok
    assert ip.run("%%qref mid --no-preview\nSELECT v + 1 AS v FROM base").ok
    assert ip.run("%%qref top --no-preview\nSELECT v * 10 AS v FROM mid").ok
    ip.run("mine = top")
    ip.run("mid = 'something of my own'")
    r = ip.run("%%qref base --no-preview\nSELECT 5 AS v")
    assert "top now uses the new base" in r.stdout
    assert ip.ns["top"].to_pandas().v.tolist() == [60]
    assert ip.ns["mid"] == "something of my own"  # a variable the user rebound is left alone
    assert ip.ns["mine"].to_pandas().v.tolist() == [20]  # handles keep their SQL


def test_errors_are_short_and_the_cell_fails(ip):
    assert ip.run("%%qref a --no-preview\nSELECT 1 AS v").ok
    assert ip.run("%%qref b --no-preview\nSELECT * FROM a").ok
    r = ip.run("%%qref a\nSELECT * FROM b")
    assert not r.ok and isinstance(r.error, qr.errors.CellReferenceError)
    assert "CellReferenceError: cells reference each other in a cycle: a -> b -> a" in r.stdout
    assert "Traceback" not in r.stdout and "site-packages" not in r.stdout
    r = ip.run("%%qref bad\nSELECT * FROM no_such_table")  # parses; the preview fails
    assert not r.ok and "Catalog Error" in r.stdout and "Traceback" not in r.stdout
    assert "bad" not in ip.ns  # a cell whose preview fails is not bound (--no-preview is)
    r = ip.run("%%qref p\nSELEC 1")
    assert "SQLParseError" in r.stdout and "Traceback" not in r.stdout
    for line, says in [("%%qref 1x", "plain Python name"), ("%%qref class", "plain Python"),
                       ("%%qref x --preview 2 --no-preview", "not both"),
                       ("%%qref x --max-bytes lots", "cannot read"),
                       ("%%qref x --preview -1", ">= 0")]:
        r = ip.run(f"{line}\nSELECT 1")
        assert not r.ok and says in r.stdout, (line, r.stdout)
    assert "needs a SQL query" in ip.run("%%qref empty\n  ").stdout
    r = ip.run("%qref_sql nothing")
    assert not r.ok and "neither a cell" in r.stdout


def test_the_preview_budget_shows_the_ways_out(ip):
    r = ip.run("%%qref wide --max-bytes 10KB\nSELECT repeat('x', 5000) AS s FROM range(100)")
    assert not r.ok and isinstance(r.error, qr.errors.ResultTooLarge)
    assert "Ways out" in r.stdout and "Traceback" not in r.stdout
    assert ip.run("%%qref wide --max-bytes 1MB --preview 2\n"
                  "SELECT repeat('x', 5000) AS s FROM range(100)").ok
    r = ip.run("big = wide.to_pandas(max_bytes='100KB')")
    assert isinstance(r.error, qr.errors.ResultTooLarge)


def test_connect_never_shows_a_password(ip):
    r = ip.run("%qref_connect postgresql://bob:hunter2@127.0.0.1:1/db")
    assert not r.ok and "hunter2" not in r.stdout and "could not connect" in r.stdout
    ip.ns["url"] = "postgresql://bob:hunter2@127.0.0.1:1/other"
    r = ip.run("%qref_connect url")
    assert not r.ok and "hunter2" not in r.stdout
    assert ip.run("%%qref x --no-preview\nSELECT 1 AS v").ok
    r = ip.run("%qref_connect")
    assert "connected to duckdb :memory: (1 cells of the previous connection are forgotten)" \
        in r.stdout


def test_dialect_and_namespace_queryrefs(ip):
    ip.run("import queryref as qr")
    assert ip.run("%%qref nums --no-preview\nSELECT range AS v FROM range(10)").ok
    ip.run("odd = nums.filter('v % 2 = 1')")
    r = ip.run("%%qref top2 --dialect tsql\nSELECT TOP 2 v FROM odd ORDER BY v DESC")
    assert r.ok, r.stdout
    assert ip.ns["top2"].to_pandas().v.tolist() == [9, 7]
    assert "odd (QueryRef)" in ip.run("%qref_cells").stdout


def test_reprs_through_the_ipython_formatter(ip, recorded):
    con, log = recorded
    q = con.sql("SELECT range AS n FROM range(50)")
    data, _ = ip.shell.display_formatter.format(q)
    assert "<td style='text-align:right'>9</td>" in data["text/html"]
    assert "int64" in data["text/html"]
    assert "SELECT" in data["text/html"]
    assert "(first 10 rows; more not shown)" in data["text/plain"]
    assert [kind for kind, _ in log].count("run") == 1  # both formats, one preview query
    failing = con.sql("SELECT * FROM nowhere")
    data, _ = ip.shell.display_formatter.format(failing)
    assert "Catalog Error" in data["text/html"] and "Traceback" not in data["text/plain"]


def test_unloading_removes_the_magics(ip):
    ip.shell.run_line_magic("unload_ext", "queryref")
    assert "qref" not in ip.shell.magics_manager.magics["cell"]
    assert "qref_sql" not in ip.shell.magics_manager.magics["line"]
    ip.shell.run_line_magic("load_ext", "queryref")
    assert "qref" in ip.shell.magics_manager.magics["cell"]


def test_removing_cells(ip):
    assert ip.run("%%qref a --no-preview\nSELECT 1 AS v").ok
    assert ip.run("%%qref b --no-preview\nSELECT v + 1 AS v FROM a").ok
    assert ip.run("%%qref c --no-preview\nSELECT 3 AS v").ok
    ip.run("c = 'mine now'")
    r = ip.run("%qref_rm a c")
    assert r.ok, r.stdout
    assert "removed a; b still references it: define a again or redefine them" in r.stdout
    assert "a" not in ip.ns and ip.ns["c"] == "mine now"  # only the magic's own handle goes
    assert ip.ns["b"].to_pandas().v.tolist() == [2]  # a handle keeps its SQL
    r = ip.run("%qref_sql b")
    assert not r.ok and "CellReferenceError" in r.stdout and "'a', which was removed" in r.stdout
    assert "Traceback" not in r.stdout
    assert "no cell named 'zz'" in ip.run("%qref_rm zz").stdout
    r = ip.run("%%qref a --no-preview\nSELECT 10 AS v")
    assert r.ok and "b now uses the new a" in r.stdout
    assert ip.ns["b"].to_pandas().v.tolist() == [11]  # b was rebound when a came back


def test_connect_to_a_duckdb_file(ip, tmp_path):
    import duckdb

    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as raw:
        raw.execute("CREATE TABLE orders AS SELECT range AS id, range % 2 AS g FROM range(10)")
    r = ip.run(f"%qref_connect duckdb:///{path}")
    assert r.ok and f"connected to duckdb {path}" in r.stdout, r.stdout
    r = ip.run("%%qref n\nSELECT g, COUNT(*) AS n FROM orders GROUP BY g ORDER BY g")
    assert r.ok, r.stdout
    assert ip.ns["n"].to_pandas().values.tolist() == [[0, 5], [1, 5]]


def test_jupysql_habits(ip, tmp_path):
    ip.ns["raw"] = pd.DataFrame({"g": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})
    # unnamed: the cell is "_" and its QueryRef is bound to _
    r = ip.run("%%qref\nSELECT g, SUM(v) AS total FROM raw GROUP BY g")
    assert r.ok, r.stdout
    assert isinstance(ip.ns["_"], qr.QueryRef)
    assert sorted(ip.ns["_"].to_pandas()["total"].tolist()) == [2.0, 4.0]
    # JupySQL's "name <<" and SQL from a file
    r = ip.run("%%qref totals <<\nSELECT SUM(v) AS s FROM raw")
    assert r.ok, r.stdout
    assert ip.ns["totals"].to_pandas()["s"].tolist() == [6.0]
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT s * 2 AS twice FROM totals")
    r = ip.run(f"%%qref twice -f {sql}\n-- the query is in the file")
    assert r.ok, r.stdout
    assert ip.ns["twice"].to_pandas()["twice"].tolist() == [12.0]
    # the line magic: a QueryRef over the cells, no cell defined, nothing run
    r = ip.run("x = %qref SELECT twice + 1 AS y FROM twice")
    assert r.ok, r.stdout
    assert ip.ns["x"].to_pandas()["y"].tolist() == [13.0]
    r = ip.run(f"y = %qref -f {sql}")
    assert r.ok and ip.ns["y"].to_pandas()["twice"].tolist() == [12.0], r.stdout
    assert not ip.run("%%qref both -f q.sql\nSELECT 1").ok  # the cell or the file, not both


def test_a_cell_whose_preview_fails_is_not_bound(ip):
    r = ip.run("%%qref good\nSELECT 1 AS x")
    assert r.ok, r.stdout
    before = ip.ns["good"]
    # parses, but fails when it runs: the old definition and binding stay
    r = ip.run("%%qref good\nSELECT CAST('not a number' AS INTEGER) AS x")
    assert not r.ok
    assert ip.ns["good"] is before and ip.ns["good"].to_pandas()["x"].tolist() == [1]
    r = ip.run("%%qref fresh\nSELECT CAST('nope' AS INTEGER) AS x")
    assert not r.ok and "fresh" not in ip.ns
    assert not ip.run("%qref_sql fresh").ok  # not defined either


def test_profile_and_plot_magics(ip):
    ip.ns["raw"] = pd.DataFrame({"g": ["a", "b", "a", "c"], "v": [1.0, 2.0, 3.0, 10.0]})
    assert ip.run("%%qref t --no-preview\nSELECT * FROM raw").ok
    r = ip.run("%qref_profile t")
    assert r.ok, r.stdout
    profile = r.result
    assert profile.loc["mean", "v"] == 4.0 and profile.loc["unique", "g"] == 3
    r = ip.run("%qref_plot hist t v --bins 3")
    assert r.ok, r.stdout
    assert r.result.data["count"].tolist() == [3, 0, 1]
    r = ip.run("%qref_plot bar t g")
    assert r.ok and sorted(r.result.data["count"].tolist()) == [1, 1, 2]
    assert not ip.run("%qref_plot line t g").ok  # line takes X and Y


def test_tables_and_columns_magics(ip):
    assert ip.run("%qref_connect").ok
    con = ip.shell.magics_manager.registry["QueryRefMagics"].notebook.con
    con.execute("CREATE TABLE shop (id INTEGER NOT NULL, item VARCHAR)")
    r = ip.run("%qref_tables")
    assert r.ok and r.result["name"].tolist() == ["shop"], r.stdout
    r = ip.run("%qref_columns shop")
    assert r.ok and r.result["name"].tolist() == ["id", "item"], r.stdout
    assert r.result["nullable"].tolist() == [False, True]
    r = ip.run("%qref_columns nothing_here")
    assert not r.ok and "no table" in r.stdout


def test_frames_are_named_readably_in_the_sql(ip):
    ip.ns["raw_sales"] = pd.DataFrame({"v": [1, 2]})
    assert ip.run("%%qref s --no-preview\nSELECT SUM(v) AS t FROM raw_sales").ok
    r = ip.run("%qref_sql s")
    assert r.ok and "_qr_frame_raw_sales_0_" in str(r.result), r.result
