"""The guard holds for every row shape: wide text, a narrow head then wide rows, blobs, lists,
structs, JSON, one 100 MB value, an estimate the planner cannot make firm, on every engine and
through every in-memory sink, each case in a fresh child process (``benchmarks/wide_rows.py``).

The bound: the child's peak RSS increase stays within the budget + 64 MiB (one batch) + 64 MiB,
and a result whose row count is firm is refused before any row moves. CI runs a compact set
chosen to cover each shape, engine and sink at least once (~1 minute); ``QUERYREF_WIDE_ALL=1``
(set by ``make fuzz``) runs the whole matrix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from wide_rows import CASES, SINKS, run_case

#: (engine, case, sink, expected stage): each shape, engine and sink at least once
COMPACT = [
    ("duckdb", "text_20k", "pandas", "estimate"),
    ("duckdb", "text_200k", "arrow", "estimate"),
    ("duckdb", "narrow_head", "pandas_fetch", "fetch"),
    ("duckdb", "blob", "polars", "estimate"),
    ("duckdb", "list", "arrow", "estimate"),
    ("duckdb", "struct", "pandas", "estimate"),
    ("duckdb", "json", "cli", None),  # the table fetches the rows it shows: returned
    ("duckdb", "text_20k", "cli_csv", None),  # every row printed, held first: refused
    ("postgres", "json", "cli", None),
    ("duckdb", "one_100mb_value", "pandas", "estimate"),
    ("duckdb", "unfirm_4k", "pandas", "fetch"),
    ("duckdb", "struct", "pandas_batches", "returned"),
    ("mariadb", "text_20k", "pandas", "estimate"),
    ("mariadb", "narrow_head", "arrow_fetch", "fetch"),
    ("mariadb", "unfirm_4k", "pandas_fetch", "fetch"),
    ("postgres", "text_200k", "pandas", None),
    ("postgres", "one_100mb_value", "arrow", "estimate"),
    # Snowflake has no row estimate: a count bounded by LIMIT in the pre-flight refuses
    ("snowflake", "text_20k", "pandas", "estimate"),
    ("snowflake", "json", "polars", "estimate"),
]
#: a single row over the bound cannot be bounded by fetching: only the pre-flight can refuse
#: (DuckDB's 2,048-row vector of 40 KB lists is 80 MB: the same with preflight=None)
NOT_BOUNDABLE = {("one_100mb_value", s) for s in ("pandas_fetch", "arrow_fetch",
                                                   "pandas_batches")}


#: fakesnow's server sends a whole result in its one response (real Snowflake sends chunks
#: the connector downloads one by one): with the pre-flight off, or streamed, nothing bounds it
FAKESNOW_WHOLE = ("pandas_fetch", "arrow_fetch", "pandas_batches")


def _all() -> list[tuple[str, str, str, str | None]]:
    # (the CLI opens its database from a URL; the fakesnow server is reached by keywords)
    return [(e, c, s, None) for c, forms in CASES.items() for e, sql in forms.items() if sql
            for s in SINKS if (c, s) not in NOT_BOUNDABLE and not (e == "snowflake" and (
                s in FAKESNOW_WHOLE or s.startswith("cli")))]


MATRIX = _all() if os.environ.get("QUERYREF_WIDE_ALL") else COMPACT


def _generated_rows(sql: str) -> int | None:
    """How many rows a case's generator makes (its size in the SQL), when nothing filters it."""
    import re

    sizes = re.search(r"range\((\d+)\)|generate_series\([01], (\d+)\)|seq_1_to_(\d+)|"
                      r"ROWCOUNT => (\d+)", sql)
    if sizes is None or " WHERE " in sql.upper():
        return None
    n = int(next(v for v in sizes.groups() if v))
    return n + 1 if "generate_series(0," in sql else n


@pytest.fixture(scope="module")
def snowflake_server() -> dict[str, object] | None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "conformance"))
    try:
        from _snowflake import server_kwargs

        return server_kwargs()
    except ImportError:
        return None
    finally:
        sys.path.pop(0)


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "case", "sink", "stage"), MATRIX,
                         ids=["-".join(m[:3]) for m in MATRIX])
def test_wide_rows_stay_within_the_budget(engine, case, sink, stage, snowflake_server):
    if engine == "postgres":
        pytest.importorskip("adbc_driver_postgresql")
    out = run_case(engine, case, sink,
                   snowflake=snowflake_server if engine == "snowflake" else None)
    r = out.result
    if "skip" in r:  # pragma: no cover - the engine is not reachable here
        pytest.skip(r["skip"])
    print(out.line())
    assert r["outcome"] != "killed", r
    assert out.held, (out.line(), r)
    if sink == "pandas_batches":
        assert r["outcome"] == "returned", r
    elif sink == "cli":  # the terminal table: the rows it shows, the rest counted
        assert (r["outcome"], r["exit_code"], r["rows"]) == ("returned", 0, 3), r
        expected = _generated_rows(CASES[case][engine] or "")
        assert r["counted"] == expected if expected is not None else r["counted"] > 3, r
    else:
        assert r["outcome"] == "ResultTooLarge", r
    if stage in ("estimate", "fetch"):
        assert r["stage"] == stage, r
