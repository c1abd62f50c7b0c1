"""Notebook cells: references inlined as CTEs, one query on the engine, redefinition flows."""

from __future__ import annotations

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
