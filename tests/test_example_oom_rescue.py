"""examples/oom_rescue.ipynb run end to end in a real Jupyter kernel (nbclient), outputs checked.

The notebook makes its ``sales`` table with SQL; every expected figure here is computed
independently with pandas/numpy from the same formulas.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot

from _notebooks import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "oom_rescue.ipynb"
ROWS = 1_000_000  # the notebook's sales: range(1000000)
BUDGET_MIB = 24e6 / 2**20  # qr.options.max_bytes = "24MB"
CATEGORIES = ["food", "toys", "books", "garden", "music", "sport", "tools", "games"]


def sales() -> pd.DataFrame:
    ids = np.arange(ROWS)
    return pd.DataFrame({
        "id": ids,
        "store": [f"store_{i:02d}" for i in ids % 50],
        "category": np.array(CATEGORIES)[ids % 8],
        "day": np.datetime64("2024-01-01") + (ids % 366).astype("timedelta64[D]"),
        "qty": ids % 20 + 1,
        "price": (ids * 37 % 10000) / 100.0,
        "discount": (ids % 4) * 0.25,
    })


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return sales()


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook, run in a fresh python3 kernel; its code cells by id."""
    return run_notebook(NOTEBOOK, tmp_path_factory.mktemp("oom_rescue"))


def stream(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream"
                   and o.name == "stdout")


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, (pattern, text)
    return float(match.group(1).replace(",", ""))


def test_no_cell_failed(executed):
    assert [cid for cid, c in executed.items() for o in c.outputs
            if o.output_type == "error"] == []


def test_the_full_load_is_refused_and_the_kernel_lives(executed, ref):
    assert stream(executed["setup"]) == (
        f"sales: {len(ref):,} rows, columns {list(ref.columns)}\n")
    out = stream(executed["load-all"])
    assert out.startswith("ResultTooLarge: the result ")
    assert "over the budget of 24 MB" in out  # echoed in the unit the notebook wrote
    assert "Ways out" in out and ".to_pandas_batches()" in out and ".to_parquet(" in out
    if "the result passed" in out:  # refused while fetching: stopped part-way
        assert "stopped in the database" in out
        assert 0 < number(r"after ([\d,]+) rows", out) < len(ref)
    else:  # refused before fetching, from the estimate
        assert "Nothing was fetched" in out
    assert "the kernel is alive" in out


def test_pushdown_answers_the_question_in_sql(executed, ref):
    out = stream(executed["pushdown"])
    sql = out.split("\n\n")[0]
    [tree] = sqlglot.parse(sql, dialect="duckdb")
    assert isinstance(tree, sqlglot.exp.Select) and tree.args.get("group")
    month = ref.day.dt.to_period("M")
    revenue = ref.qty * ref.price * (1 - ref.discount)
    want = revenue.groupby([ref.store, month]).sum()
    assert number(r"\n(\d+) rows, ", out) == len(want)
    assert number(r"total revenue ([\d,.]+)", out) == pytest.approx(revenue.sum(), abs=0.01)
    best = revenue.groupby(ref.store).sum().idxmax()
    assert f"best store: {best}\n" in out


def test_batches_keep_one_batch_and_add_up(executed, ref):
    out = stream(executed["batches"])
    band = pd.cut(ref.price, bins=[0, 10, 50, 100], labels=["cheap", "mid", "dear"],
                  include_lowest=True)
    want = ref.qty.groupby(band, observed=True).sum()
    assert f"units sold per price band: { {str(k): int(v) for k, v in want.items()} }" in out
    biggest = number(r"largest batch in memory: ([\d.]+) MiB", out)
    assert biggest <= 100_000 * 16 / 2**20 + 0.1  # 100,000 rows of two 8-byte columns


def test_spill_to_parquet_and_cache(executed, ref):
    out = stream(executed["spill"])
    low = ref[ref.discount < 0.5]
    assert number(r"spilled ([\d,]+) rows", out) == len(low)
    top = (low.qty * low.price).groupby(low.category).sum().sort_values(ascending=False)
    assert f"top categories at a low discount: {list(top.index[:3])}" in out
    assert number(r"cached ([\d,]+) bulk orders", out) == (ref.qty >= 18).sum()


def test_shrink_makes_the_refused_frame_fit(executed, ref):
    out = stream(executed["shrink"])
    assert out.startswith("plain to_pandas: ResultTooLarge: ")
    assert number(r"shrink_dtypes=True: ([\d,]+) rows", out) == len(ref)
    after = number(r"rows in ([\d.]+) MiB", out)
    before = number(r"instead of ([\d.]+) MiB", out)
    assert after < BUDGET_MIB < before
    assert ("{'store': 'category', 'category': 'category', 'qty': 'int8', "
            "'discount': 'float32'}") in out
