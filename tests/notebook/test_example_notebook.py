"""examples/cells.ipynb executed end to end in a real Jupyter kernel (nbclient), outputs checked.

The notebook's data is made by SQL in the notebook; the expected results here are computed
independently with pandas from the same formulas.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot

from _notebooks import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "cells.ipynb"
ROWS = 200_000  # the notebook's orders: range(200000)


def orders() -> pd.DataFrame:
    ids = np.arange(ROWS)
    return pd.DataFrame({
        "id": ids,
        "region": np.array(["north", "south", "east", "west"])[ids % 4],
        "status": np.where(ids % 3 == 0, "closed", "open"),
        "amount": ids * 37 % 1000,
    })


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook, run in a fresh python3 kernel; its code cells by id."""
    return run_notebook(NOTEBOOK, tmp_path_factory.mktemp("notebook"))


def stream(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def data(cell: Any) -> dict[str, str]:
    """The one rich output of a cell (display_data or execute_result)."""
    [out] = [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
    return dict(out.data)


def test_every_cell_ran_and_only_the_guard_failed(executed):
    errors = {cid: o for cid, cell in executed.items() for o in cell.outputs
              if o.output_type == "error"}
    assert list(errors) == ["guard"]
    err = errors["guard"]
    assert err.ename == "ResultTooLarge"
    assert "budget" in err.evalue and "Ways out" in err.evalue and "to_arrow_batches" in err.evalue


def test_connect_and_the_bounded_preview(executed):
    assert stream(executed["connect"]) == "queryref: connected to duckdb :memory:\n"
    shown = data(executed["open-orders"])
    text = shown["text/plain"].splitlines()
    assert text[0] == "open_orders"
    assert text[1].split() == ["id", "region", "status", "amount"]
    assert text[-1] == "(first 5 rows; more not shown)"
    ref = orders().set_index("id")
    rows = [line.split() for line in text[3:-1]]
    assert len(rows) == 5
    for ident, region, status, amount in rows:  # each previewed row is an open order as made
        want = ref.loc[int(ident)]
        assert (region, status, int(amount)) == (want.region, "open", want.amount)
    assert "<table" in shown["text/html"] and "<b>open_orders</b>" in shown["text/html"]


def expected_summary() -> pd.DataFrame:
    df = orders()
    open_ = df[df.status == "open"]
    out = open_.groupby("region").agg(n=("id", "size"), total=("amount", "sum"))
    out["n_large"] = open_[open_.amount >= 900].groupby("region").size()
    managers = pd.DataFrame({"region": ["north", "south", "east", "west"],
                             "manager": ["Ana", "Bo", "Cy", "Di"]})
    out = managers.merge(out.reset_index(), on="region").sort_values("region")
    return out[["region", "manager", "n", "total", "n_large"]].reset_index(drop=True)


def test_the_chain_result_matches_pandas(executed):
    got = pd.DataFrame(ast.literal_eval(data(executed["summary"])["text/plain"]))
    want = expected_summary()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    preview = data(executed["by-region"])["text/plain"].splitlines()
    assert preview[0] == "by_region" and preview[-1] == "(4 rows)"
    assert [line.split()[:3] for line in preview[3:-1]] == \
        [[r.region, r.manager, str(r.n)] for r in want.itertuples()]


def test_the_chain_compiles_to_one_query(executed):
    sql = data(executed["sql"])["text/plain"]
    [tree] = sqlglot.parse(sql, dialect="duckdb")  # one statement
    assert isinstance(tree, sqlglot.exp.Select)
    ctes = [cte.alias for cte in tree.args["with_"].expressions]
    assert sorted(ctes) == ["large", "open_orders"]
    assert "status = 'open'" in sql  # the parameter, rendered as a quoted literal
    assert "<span" in data(executed["sql"])["text/html"]  # highlighted
    assert stream(executed["graph"]) == (
        "open_orders\nby_region <- large (QueryRef), open_orders, managers (DataFrame)\n")


def test_a_queryref_shows_sql_types_and_a_preview(executed):
    shown = data(executed["repr"])
    text = shown["text/plain"]
    assert text.startswith("<QueryRef on duckdb :memory:>\nWITH")
    want = expected_summary().sort_values("total", ascending=False).head(2)
    lines = text.splitlines()
    assert lines[-1] == "(2 rows)"
    assert [line.split() for line in lines[-3:-1]] == \
        [[r.region, str(r.total)] for r in want.itertuples()]
    assert "<details open><summary>SQL" in shown["text/html"]
    assert "<td>west</td>" in shown["text/html"]


def test_redefining_a_cell_rebinds_downstream_and_keeps_old_handles(executed):
    assert stream(executed["redefine"]) == "queryref: by_region now uses the new open_orders\n"
    assert not [o for o in executed["redefine"].outputs if o.output_type != "stream"]  # no preview
    assert ast.literal_eval(data(executed["counts"])["text/plain"]) == {"before": 4, "after": 3}
