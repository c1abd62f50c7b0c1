"""The runnable examples and the demo run end to end (small data, so CI stays quick)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: int = 120) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_quickstart_runs():
    out = run("examples/quickstart.py")
    assert "Parquet" in out


def test_partitions_example_runs():
    out = run("examples/partitions.py")
    assert "children:" in out and "CSV:" in out


@pytest.mark.slow
def test_demo_runs_on_a_small_tpch(tmp_path):
    out = run("-m", "queryref.demo", "--data", str(tmp_path / "tpch"), "--scale", "0.05",
              "--max-bytes", "2MB", "--workdir", str(tmp_path), timeout=300)
    assert "ResultTooLarge" in out  # the guarded SELECT * is refused
    assert "count_order" in out  # the pushed-down aggregate answered
    assert "rows written" in out  # the big result streamed to Parquet


# -- connection recipes: the local PostgreSQL server and fakesnow (must run under CI=true) ------
def _orders(n: int):  # the recipes' orders, made here with pandas from the same formulas
    import numpy as np
    import pandas as pd

    ids = np.arange(n)
    return pd.DataFrame({"id": ids, "region": np.array(["north", "south", "east", "west"])[ids % 4],
                         "amount": ids * 37 % 1000 / 10.0})


def _table_rows(out: str, header: str) -> dict[str, list[float]]:
    """The rows printed under ``header`` (region, then numbers) until a blank line."""
    lines = out.split(header + "\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {cells[0]: [float(c) for c in cells[1:]] for cells in (ln.split() for ln in lines)}


def test_postgres_recipe():
    import datetime as dt

    import queryref as qr
    from conformance.qr_conformance import PG_URL, unavailable

    try:
        with qr.connect(PG_URL) as con:
            con.sql("SELECT 1 AS x").to_arrow()
    except (ImportError, qr.errors.QueryRefError) as err:
        unavailable(f"PostgreSQL is not reachable: {err}")
    out = run("examples/postgres_recipe.py", "--url", PG_URL)
    o = _orders(200_000)
    o["odate"] = [dt.date(2024, 1, 1) + dt.timedelta(days=int(i % 366)) for i in o.id]
    want = o[(o.odate >= dt.date(2024, 7, 1)) & (o.amount > 50)].groupby("region").amount
    got = _table_rows(out, "result:")
    assert sorted(got) == sorted(want.groups)
    for region, (total, n) in got.items():
        assert total == pytest.approx(want.sum()[region]) and n == want.size()[region]
    assert "orders: 200,000 rows" in out and "the guard said: ResultTooLarge" in out
    assert "wrote 200,000 rows to Parquet" in out
    assert f"cached {(o.amount >= 90).sum():,} rows" in out
    assert "postgres:postgres@" not in out


def test_snowflake_recipe_on_fakesnow():
    from conformance.qr_conformance import unavailable

    try:
        import fakesnow  # noqa: F401
        import snowflake.connector  # noqa: F401
    except ImportError as err:
        unavailable(f"fakesnow/the Snowflake connector are not installed: {err}")
    env_url = {k: v for k, v in os.environ.items() if k != "QUERYREF_SNOWFLAKE_URL"}
    done = subprocess.run([sys.executable, "examples/snowflake_recipe.py"], cwd=ROOT, env=env_url,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    o = _orders(2000)
    want = o[o.amount > 50].groupby("region").amount
    got = _table_rows(out, "result:")
    assert sorted(got) == sorted(want.groups)
    for region, (total, n) in got.items():
        assert total == pytest.approx(want.sum()[region]) and n == want.size()[region]
    assert "columns as Snowflake keeps them: ['ID', 'REGION', 'AMOUNT']" in out
    assert "the guard said: ResultTooLarge" in out and "streamed 2,000 rows" in out


# -- the API reference: what mkdocstrings is given (docs/griffe_examples.py) -------------------
def test_reference_shows_examples_as_code_and_option_defaults():
    """The reference's signatures show ``= qr.options.max_bytes`` (not the sentinel's source
    name) and each ``>>>`` block is an Examples section, rendered as console code."""
    griffe = pytest.importorskip("griffe")
    extensions = griffe.load_extensions(f"{ROOT / 'docs' / 'griffe_examples.py'}:DoctestExamples")
    package = griffe.load("queryref", search_paths=[str(ROOT / "src")], extensions=extensions)
    to_pandas = package["QueryRef.to_pandas"]
    assert str(to_pandas.parameters["max_bytes"].default) == "qr.options.max_bytes"
    assert str(to_pandas.parameters["decimals"].annotation) == "Decimals"
    sections = [s.kind.value for s in to_pandas.docstring.parse("numpy")]
    assert sections[-1] == "examples" and "parameters" in sections
    for name in ("QueryRef.filter", "QueryRef.join", "Connection.sql", "Expr.isin"):
        assert "examples" in [s.kind.value for s in package[name].docstring.parse("numpy")], name


def test_every_public_method_has_an_example():
    """Each public method and property of the API classes shows a runnable ``>>>`` example
    (pytest runs them as doctests with --doctest-modules)."""
    import inspect

    import queryref as qr
    from queryref._expr import DateTimeMethods, StringMethods

    missing = []
    api = (qr.QueryRef, qr.Connection, qr.Expr, qr.GroupBy, StringMethods, DateTimeMethods)
    for cls in api:
        # the class and the mixins it is assembled from (queryref's own, not object's)
        for part in (k for k in cls.__mro__ if k.__module__.startswith("queryref")):
            for name, member in vars(part).items():
                if name.startswith("_"):
                    continue
                func = member.fget if isinstance(member, property) else member
                if callable(func) and ">>>" not in (inspect.getdoc(func) or ""):
                    missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"no >>> example: {missing}"
