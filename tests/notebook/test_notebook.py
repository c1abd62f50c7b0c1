"""Notebook cells: references inlined as CTEs, one query on the engine, redefinition flows."""

from __future__ import annotations

import gc
import weakref

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import queryref as qr
from conftest import same_rows
from queryref.errors import CellReferenceError, ParameterError


@pytest.fixture
def nb(orders):
    return qr.Notebook(orders.connection)


def test_chain_is_one_query(nb, orders_df):
    nb.cell("open_orders", "SELECT * FROM orders WHERE status = {{ s }}", s="open")
    nb.cell("by_region", "SELECT region, SUM(amount) AS total FROM open_orders GROUP BY region")
    top = nb.cell("top", "SELECT * FROM by_region WHERE total IS NOT NULL ORDER BY total DESC")
    sql = top.sql
    assert sql.upper().startswith("WITH") and "open_orders AS" in sql and "by_region AS" in sql
    want = (orders_df[orders_df.status == "open"].groupby("region", dropna=False).amount
            .sum(min_count=1).rename("total").reset_index().dropna(subset=["total"]))
    same_rows(top.to_pandas(), want)


def test_redefining_updates_downstream_but_not_old_handles(nb, orders_df):
    nb.cell("base", "SELECT * FROM orders WHERE qty > 10")
    old = nb.cell("n", "SELECT COUNT(*) AS n FROM base")
    nb.cell("base", "SELECT * FROM orders WHERE qty > 15")
    assert nb["n"].to_pandas().n.tolist() == [int((orders_df.qty > 15).sum())]
    assert old.to_pandas().n.tolist() == [int((orders_df.qty > 10).sum())]


def test_user_cte_shadows_a_cell(nb):
    nb.cell("x", "SELECT 1 AS v")
    q = nb.cell("y", "WITH x AS (SELECT 2 AS v) SELECT v FROM x")
    assert q.to_pandas().v.tolist() == [2]


def test_references_in_subqueries_joins_and_set_operations(nb):
    nb.cell("a", "SELECT range AS k FROM range(5)")
    nb.cell("b", "SELECT range AS k FROM range(3, 8)")
    assert nb.cell("j", "SELECT a.k FROM a JOIN b ON a.k = b.k").count() == 2
    assert nb.cell("u", "SELECT k FROM a UNION SELECT k FROM b").count() == 8
    assert nb.cell("s", "SELECT * FROM a WHERE k IN (SELECT k FROM b)").count() == 2
    assert nb.dependencies("j") == ["a", "b"]


def test_bad_references(nb):
    nb.cell("a", "SELECT 1 AS v")
    with pytest.raises(CellReferenceError, match="itself"):
        nb.cell("self_ref", "SELECT * FROM self_ref")
    assert "self_ref" not in nb
    nb.cell("b", "SELECT * FROM a")
    with pytest.raises(CellReferenceError, match="cycle"):
        nb.cell("a", "SELECT * FROM b")
    assert nb["a"].to_pandas().v.tolist() == [1]  # the failed redefinition was rolled back
    with pytest.raises(CellReferenceError):
        nb["missing"]
    with pytest.raises(ParameterError):
        nb.cell("not a name", "SELECT 1")
    nb.remove("b")
    assert nb.cells == ["a"]


def test_cells_compose_further(nb, orders_df):
    nb.cell("big", "SELECT * FROM orders WHERE qty >= 10")
    q = nb["big"].group_by("status").agg(n=qr.count())
    want = orders_df[orders_df.qty >= 10].groupby("status").size().rename("n").reset_index()
    same_rows(q.to_pandas(), want)


# -- one query on the engine -----------------------------------------------------------------
def test_a_chain_of_cells_is_exactly_one_query_on_the_engine(recorded):
    con, log = recorded
    con.execute("CREATE TABLE raw AS SELECT range AS id, range % 3 AS g FROM range(30)")
    nb = qr.Notebook(con)
    log.clear()
    nb.cell("base", "SELECT * FROM raw WHERE id >= {{ lo }}", lo=5)
    nb.cell("grouped", "SELECT g, COUNT(*) AS n FROM base GROUP BY g")
    top = nb.cell("top", "SELECT * FROM grouped WHERE n > {{ k }} ORDER BY g", k=8)
    assert log == []  # defining cells runs nothing
    got = top.to_pandas()
    assert got.values.tolist() == [[2, 9]]
    final = top.tree.sql(dialect="duckdb")
    runs = [sql for kind, sql in log if kind == "run"]
    assert runs == [final]  # one query fetched rows: the whole chain, as CTEs
    # plus the guard's zero-row schema probe and its pre-flight plan (no rows either)
    assert [kind for kind, _ in log] == ["probe", "fetchall", "run"]
    assert log[1][1] == f"EXPLAIN (FORMAT JSON) {final}"
    assert all(sql == final for kind, sql in log if kind != "fetchall")
    assert final.startswith("WITH base AS") and "grouped AS" in final


# -- scope-aware resolution --------------------------------------------------------------------
@pytest.fixture
def plain(con):
    return qr.Notebook(con)


def values(q, col="v"):
    return sorted(q.to_pandas()[col].tolist())


def test_a_cte_of_the_same_name_reads_the_cell_inside_its_own_definition(plain):
    plain.cell("x", "SELECT range AS v FROM range(10)")
    q = plain.cell("y", "WITH x AS (SELECT * FROM x WHERE v > 6) SELECT v FROM x")
    assert values(q) == [7, 8, 9]
    # the generated CTE was renamed so the user's x keeps its name and meaning
    assert "x_1 AS x" in q.compile(pretty=False)
    assert plain.dependencies("y") == ["x"]


def test_shadowing_is_per_scope(plain):
    plain.cell("a", "SELECT 1 AS v")
    sql = """
        SELECT v FROM a                                             -- the cell
        UNION ALL SELECT * FROM (WITH a AS (SELECT 2 AS v) SELECT v FROM a) s   -- its own a
        UNION ALL SELECT v FROM a WHERE v IN (SELECT v FROM a)      -- the cell, in a subquery
    """
    assert values(plain.cell("b", sql)) == [1, 1, 2]


def test_later_ctes_see_earlier_ones_and_recursive_ones_see_themselves(plain):
    plain.cell("b", "SELECT 10 AS v")
    q = plain.cell("c", """
        WITH a AS (SELECT v FROM b), b AS (SELECT v + 1 AS v FROM a)
        SELECT v FROM b""")
    assert values(q) == [11]  # a reads the cell b; the body reads the CTE b
    r = plain.cell("r", """
        WITH RECURSIVE b(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM b WHERE v < 3)
        SELECT v FROM b""")
    assert values(r) == [1, 2, 3]
    assert plain.dependencies("r") == []


def test_nested_ctes_reach_cells_and_dependencies_keep_their_own_ctes(plain):
    plain.cell("base", "WITH t AS (SELECT range AS v FROM range(5)) SELECT v FROM t")
    q = plain.cell("nested", """
        WITH outer_cte AS (
            WITH inner_cte AS (SELECT v FROM base WHERE v > 1) SELECT v FROM inner_cte
        )
        SELECT v FROM outer_cte WHERE v < 4""")
    assert values(q) == [2, 3]
    assert plain.dependencies("nested") == ["base"]


def test_set_operations_and_joins(plain):
    plain.cell("a", "SELECT range AS v FROM range(5)")
    plain.cell("b", "SELECT range AS v FROM range(3, 8)")
    assert values(plain.cell("i", "SELECT v FROM a INTERSECT SELECT v FROM b")) == [3, 4]
    assert values(plain.cell("e", "SELECT v FROM a EXCEPT SELECT v FROM b")) == [0, 1, 2]
    q = plain.cell("w", "WITH k AS (SELECT v FROM a) SELECT v FROM k UNION SELECT v FROM b")
    assert values(q) == list(range(8))
    q = plain.cell("j", "SELECT a.v FROM a LEFT JOIN b USING (v) WHERE b.v IS NULL")
    assert values(q) == [0, 1, 2]
    q = plain.cell("ex", "SELECT v FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.v = a.v)")
    assert values(q) == [3, 4]


def test_aliases_are_not_references(plain):
    plain.cell("a", "SELECT 1 AS v")
    plain.cell("b", "SELECT 2 AS v")
    q = plain.cell("c", "SELECT a.v FROM b AS a")  # a is b's alias here
    assert values(q) == [2] and plain.dependencies("c") == ["b"]
    q = plain.cell("d", "SELECT a.v FROM (SELECT 3 AS v) AS a")
    assert values(q) == [3] and plain.dependencies("d") == []
    q = plain.cell("e", "SELECT x.v FROM a AS x JOIN b AS y ON x.v < y.v")
    assert values(q) == [1]


def test_qualified_names_are_tables(con, plain):
    con.execute("CREATE TABLE t AS SELECT 5 AS v")
    plain.cell("t", "SELECT 6 AS v")
    q = plain.cell("both", "SELECT v FROM main.t UNION ALL SELECT v FROM t")
    assert values(q) == [5, 6]
    # a cell named like the table it reads through a qualified name keeps its own name
    assert "WITH t AS" in q.compile(pretty=False)


def test_quoted_and_mixed_case_names_follow_the_engine(plain):
    plain.cell("Sales", "SELECT 5 AS v")
    assert "Sales" in plain and "sales" in plain
    q = plain.cell("up", 'SELECT v FROM sales UNION ALL SELECT v FROM "SALES" '
                         "UNION ALL SELECT s.v FROM SaLeS AS s")
    assert values(q) == [5, 5, 5]
    assert plain.dependencies("up") == ["Sales"]
    q = plain.cell("own", 'WITH "SALES" AS (SELECT 1 AS v) SELECT v FROM sales')
    assert values(q) == [1]  # the user's CTE wins, whatever its case
    with pytest.raises(CellReferenceError, match="same"):
        plain.cell("SALES", "SELECT 2 AS v")
    assert values(plain.cell("Sales", "SELECT 7 AS v")) == [7]
    assert values(plain["up"]) == [7, 7, 7]


def test_cells_written_in_other_dialects(plain):
    plain.cell("nums", "SELECT range AS v, range % 2 = 0 AS even FROM range(10)")
    q = plain.cell("top3", "SELECT TOP 3 v, even FROM [Nums] ORDER BY v DESC", dialect="tsql")
    assert values(q) == [7, 8, 9]
    snow = plain.cell("labels", """
        SELECT v, IFF(even, 'even', 'odd') AS kind FROM top3
        QUALIFY ROW_NUMBER() OVER (PARTITION BY even ORDER BY v) = 1""", dialect="snowflake")
    assert snow.to_pandas().sort_values("v").kind.tolist() == ["odd", "even"]
    back = plain.cell("back", "SELECT COUNT(*) AS n FROM labels")
    assert back.to_pandas().n.tolist() == [2]
    assert back.sql.startswith("WITH nums AS")  # one query, in the engine's dialect
    with pytest.raises(ParameterError, match="nosuch"):
        plain.cell("x", "SELECT 1", dialect="nosuch")


def test_generated_names_never_capture_other_tables(con):
    con.execute("CREATE TABLE a AS SELECT 100 AS v")
    ns = {"q": con.sql("SELECT v FROM a")}  # reads the real table a
    nb = qr.Notebook(con, ns)
    nb.cell("a", "SELECT 1 AS v")
    nb.cell("a_1", "SELECT 2 AS v")
    q = nb.cell("all", "WITH a_2 AS (SELECT 3 AS v) "
                       "SELECT v FROM a UNION ALL SELECT v FROM a_1 UNION ALL SELECT v FROM q "
                       "UNION ALL SELECT v FROM a_2")
    assert values(q) == [1, 2, 3, 100]
    sql = q.compile(pretty=False)
    assert "a_3 AS (SELECT 1 AS v)" in sql and "FROM a_3 AS a" in sql


def test_bad_references_name_the_problem(plain):
    plain.cell("a", "SELECT 1 AS v")
    plain.cell("b", "SELECT * FROM a")
    plain.cell("c", "SELECT * FROM b")
    with pytest.raises(CellReferenceError, match=r"cycle: a -> c -> b -> a"):
        plain.cell("a", "SELECT * FROM c")
    assert values(plain["c"]) == [1]
    with pytest.raises(CellReferenceError, match="itself"):
        plain.cell("s", "SELECT * FROM (SELECT * FROM s) x")
    plain.remove("a")
    with pytest.raises(CellReferenceError, match="'a', which was removed"):
        plain["c"]
    assert plain.dependencies("c") == ["b"]
    with pytest.raises(CellReferenceError, match="no cell named"):
        plain.remove("a")
    plain.cell("a", "SELECT 2 AS v")
    assert values(plain["c"]) == [2]


def test_listing_and_graph(con):
    ns = {"frame": pd.DataFrame({"v": [1]})}
    nb = qr.Notebook(con, ns)
    nb.cell("a", "SELECT * FROM frame")
    nb.cell("b", "SELECT * FROM a")
    nb.cell("c", "SELECT * FROM a JOIN b USING (v)")
    assert nb.cells == list(nb) == ["a", "b", "c"] and len(nb) == 3
    assert nb.dependencies("c") == ["a", "b"] and nb.dependencies("a") == ["frame"]
    assert nb.dependents("a") == ["b", "c"] and nb.downstream("a") == ["b", "c"]
    assert nb.graph() == "a <- frame (DataFrame)\nb <- a\nc <- a, b"
    mermaid = nb.graph("mermaid")
    assert mermaid.startswith("flowchart LR") and "c_a --> c_c" in mermaid
    assert "v_frame --> c_a" in mermaid
    dot = nb.graph("dot")
    assert dot.startswith("digraph") and '"a" -> "b";' in dot
    del ns["frame"]
    nb.cell("d", "SELECT {{ p }} AS v", p=1)
    assert "a <- " not in nb.graph()  # a now reads a table frame, which the engine lacks
    with pytest.raises(ParameterError):
        nb.graph("png")  # type: ignore[arg-type]
    assert "a, b, c, d" in repr(nb)


# -- parameters ------------------------------------------------------------------------------
def test_parameters_from_the_namespace_and_identifiers(con):
    con.execute('CREATE TABLE t AS SELECT range AS "Net Sales", range % 2 AS g FROM range(6)')
    ns = {"lo": 2, "metric": "Net Sales"}
    nb = qr.Notebook(con, ns)
    q = nb.cell("x", "SELECT {{ metric | identifier }} AS m FROM t WHERE g = {{ g }} "
                     "AND {{metric|identifier}} > {{ lo }}", g=1)
    assert values(q, "m") == [3, 5]
    assert nb.cell("y", "SELECT {{ lo }} AS v", lo=4).to_pandas().v.tolist() == [4]  # kw wins
    ns["lo"] = 0
    assert values(nb["x"], "m") == [1, 3, 5]  # namespace values are read at each build
    ns["metric"] = "g; DROP TABLE t"
    with pytest.raises(qr.errors.BackendError, match="g; DROP TABLE t"):
        nb["x"].to_pandas()  # one quoted name, never SQL
    assert con.table("t").count() == 6
    with pytest.raises(ParameterError, match=r"missing.*variables"):
        nb.cell("z", "SELECT {{ nope }} AS v")
    ns["dialect"] = "tsql"
    assert nb.cell("d", "SELECT {{ dialect }} AS v").to_pandas().v.tolist() == ["tsql"]


# -- Python objects referenced by name ----------------------------------------------------------
def test_queryrefs_and_frames_from_the_namespace(recorded):
    con, log = recorded
    pdf = pd.DataFrame({"k": [1, 2, 3], "s": ["a", "b", "c"]})
    ns = {
        "pdf": pdf,
        "adf": pa.table({"k": [2, 3, 4]}),
        "ldf": pl.DataFrame({"k": [3, 4, 5]}),
        "big": con.sql("SELECT range AS k FROM range(100)"),
    }
    nb = qr.Notebook(con, ns)
    q = nb.cell("j", "SELECT pdf.k, pdf.s FROM pdf JOIN adf USING (k) JOIN ldf USING (k) "
                     "WHERE k IN (SELECT k FROM big)")
    assert q.to_pandas().values.tolist() == [[3, "c"]]
    assert sorted(nb.dependencies("j")) == ["adf", "big", "ldf", "pdf"]
    registered = [name for kind, name in log if kind == "register"]
    assert len(registered) == 3  # read in place: no upload
    assert not any(kind == "execute" for kind, _ in log)
    log.clear()
    nb["j"]
    assert log == []  # the same objects are not registered again
    ns["pdf"] = pd.DataFrame({"k": [4], "s": ["new"]})  # rebinding the variable
    assert nb["j"].to_pandas().values.tolist() == [[4, "new"]]
    assert [name for kind, name in log if kind == "register"] == [registered[0]]
    gone = weakref.ref(pdf)
    del pdf
    gc.collect()
    assert gone() is None  # the engine let go of the old frame


def test_frames_are_uploaded_under_the_budget_when_not_read_in_place(con):
    ns = {"df": pd.DataFrame({"k": range(1000)})}
    nb = qr.Notebook(con, ns)
    nb._read_in_place = False  # what a remote warehouse gets
    assert nb.cell("n", "SELECT COUNT(*) AS n FROM df").to_pandas().n.tolist() == [1000]
    ns["df"] = pd.DataFrame({"k": range(100_000)})
    with qr.options.context(max_bytes="100KB"), pytest.raises(qr.errors.ResultTooLarge):
        nb["n"]


def test_a_queryref_on_another_connection_is_refused(con):
    other = qr.connect()
    nb = qr.Notebook(con, {"q": other.sql("SELECT 1 AS v")})
    with pytest.raises(CellReferenceError, match="another connection"):
        nb.cell("x", "SELECT * FROM q")
    other.close()


def test_current_builds_many_cells_like_getitem_and_reports_broken_ones(plain):
    plain.cell("a", "SELECT range AS v FROM range(4)")
    plain.cell("b", "SELECT v * 2 AS v FROM a")
    plain.cell("c", "SELECT v + 1 AS v FROM b UNION ALL SELECT v FROM a")
    plain.cell("d", "SELECT v FROM b")
    got = plain._current(["b", "c", "d"])
    assert {n: q.sql for n, q in got.items()} == {n: plain[n].sql for n in "bcd"}
    assert values(got["c"]) == [0, 1, 1, 2, 3, 3, 5, 7]
    plain.remove("a")
    broken = plain._current(["c", "d"])
    assert all(isinstance(broken[n], CellReferenceError) for n in "cd")
    assert plain.downstream("b") == ["c", "d"]


def test_uploaded_frames_are_dropped_on_close(con):
    ns = {"df": pd.DataFrame({"k": [1, 2, 3]})}
    with qr.Notebook(con, ns) as nb:
        nb._read_in_place = False  # as on a remote warehouse: the frame is uploaded
        assert nb.cell("n", "SELECT SUM(k) AS s FROM df").to_pandas().s.tolist() == [6]
        [uploaded] = nb._uploaded
        assert con.table(uploaded).count() == 3
        nb.close()
        with pytest.raises(qr.errors.BackendError, match=uploaded):
            con.table(uploaded).count()
        assert nb["n"].to_pandas().s.tolist() == [6]  # used again: uploaded again
        [again] = nb._uploaded
    with pytest.raises(qr.errors.BackendError, match=again):
        con.table(again).count()


def test_uploaded_frames_are_dropped_when_the_notebook_is_collected(con):
    ns = {"df": pd.DataFrame({"k": [1, 2, 3]})}
    nb = qr.Notebook(con, ns)
    nb._read_in_place = False  # as on a remote warehouse: the frame is uploaded
    assert nb.cell("n", "SELECT SUM(k) AS s FROM df").to_pandas().s.tolist() == [6]
    [uploaded] = nb._uploaded
    assert con.table(uploaded).count() == 3
    del nb
    gc.collect()
    with pytest.raises(qr.errors.BackendError, match=uploaded):
        con.table(uploaded).count()
