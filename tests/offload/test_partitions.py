"""Partitions (pushed-down filters whose union is the query) and map_partitions in children.

Spawned children cost about a second each, so the tests that start them keep their number
small; the others run the same code in this process (``isolate=False``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

import pandas as pd
import pytest

import queryref as qr
from _partition_fns import (
    double_qty,
    out_of_memory,
    pid_and_cmdline,
    segfault_or_wait,
    summarize,
)
from conftest import same_rows
from queryref.errors import ParameterError, PartitionError, ResultTooLarge
from queryref.sinks import progress as _progress

MiB = 2**20
PG_URL = os.environ.get("QUERYREF_POSTGRES_URL",
                        "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"



# -- partitions ---------------------------------------------------------------------------------
def _union(parts: list[qr.QueryRef]) -> pd.DataFrame:
    return pd.concat([p.to_pandas() for p in parts], ignore_index=True)


@pytest.mark.parametrize("by", ["region", "status", ["region", "status"]])
def test_partitions_by_value_hold_every_row_once(orders, orders_df, by):
    parts = orders.partitions(by)
    keys = orders_df[[by] if isinstance(by, str) else by].drop_duplicates()
    assert len(parts) == len(keys)  # one per distinct value, NULL included
    same_rows(_union(parts), orders_df)
    for p in parts:  # each partition holds one value of the key
        got = p.to_pandas()[by if isinstance(by, str) else by[0]]
        assert got.nunique(dropna=False) == 1


def test_the_null_partition_is_its_own(orders, orders_df):
    parts = orders.partitions("region")
    nulls = [p for p in parts if "IS NULL" in p.sql]
    assert len(nulls) == 1
    assert nulls[0].count() == orders_df["region"].isna().sum() > 0


@pytest.mark.parametrize(("by", "n"), [("amount", 4), ("id", 3), ("region", 2), ("qty", 50),
                                       ("amount", 1)])
def test_range_partitions_hold_every_row_once(orders, orders_df, by, n):
    parts = orders.partitions(by, n=n)
    has_nulls = orders_df[by].isna().any()
    assert 1 <= len(parts) <= n + has_nulls
    same_rows(_union(parts), orders_df)
    sizes = [p.count() for p in parts]
    assert all(s > 0 for s in sizes)
    if by == "id":  # distinct values: NTILE splits evenly
        assert max(sizes) - min(sizes) <= 1


def test_partitions_keep_the_query_meaning_after_limit_and_aggregate(orders, orders_df):
    top = orders.order_by("id").limit(50)
    same_rows(_union(top.partitions("status")), orders_df.sort_values("id").head(50))
    agg = orders.group_by("status").agg(n=qr.count())
    want = orders_df.groupby("status", as_index=False).size().rename(columns={"size": "n"})
    same_rows(_union(agg.partitions("n", n=2)), want)


def test_partitions_refuse_bad_arguments(orders):
    with pytest.raises(qr.errors.UnknownColumnError):
        orders.partitions("nope")
    with pytest.raises(ParameterError):
        orders.partitions("id", n=0)
    with pytest.raises(ParameterError):
        orders.partitions(["id", "qty"], n=2)
    from queryref.offload.partitions import split

    with pytest.raises(ParameterError, match="n=") as err:
        split(orders._relation(), ["id"], max_partitions=100)  # 400 distinct ids
    assert "distinct" in str(err.value)


# -- map_partitions in this process ----------------------------------------------------------
def _reference(orders_df: pd.DataFrame) -> pd.DataFrame:
    return orders_df.groupby("region", dropna=False, as_index=False).agg(
        n=("id", "size"), qty=("qty", "sum"))


def test_map_partitions_in_process_equals_groupby_apply(orders, orders_df):
    got = orders.map_partitions(summarize, by="region", isolate=False)
    same_rows(got.drop(columns="pid"), _reference(orders_df))
    assert set(got["pid"]) == {os.getpid()}


def test_map_partitions_arrow_in_and_out(orders, orders_df):
    got = orders.map_partitions(double_qty, by="status", isolate=False, as_="arrow")
    want = orders_df[["id"]].assign(qty2=orders_df["qty"] * 2)
    same_rows(got.to_pandas(), want)


def test_map_partitions_results_are_under_the_budget(orders):
    with pytest.raises(ResultTooLarge) as err:
        orders.map_partitions(summarize, by="status", isolate=False, max_bytes=100)
    assert "map_partitions" in str(err.value)


def test_map_partitions_refuses_what_a_child_cannot_import(orders):
    with pytest.raises(ParameterError, match="lambda"):
        orders.map_partitions(lambda df: df, by="region")

    def nested(df):
        return df

    with pytest.raises(ParameterError, match="top level of a module"):
        orders.map_partitions(nested, by="region")
    with pytest.raises(ParameterError, match="isolate=True"):
        orders.map_partitions(nested, by="region", isolate=False, workers=2)
    with pytest.raises(ParameterError):
        orders.map_partitions(summarize, by="region", as_="polars")
    with pytest.raises(ParameterError):
        orders.map_partitions(summarize, by="region", workers=0)


def test_progress_counts_partitions(orders, monkeypatch, capsys):
    clock = iter(range(0, 1000, 2))  # every reading two seconds later: each step prints
    monkeypatch.setattr(_progress.time, "monotonic", lambda: float(next(clock)))
    orders.map_partitions(summarize, by="status", isolate=False, progress=True)
    err = capsys.readouterr().err
    assert "3/3 partitions" in err and "rows" in err


# -- map_partitions in child processes ---------------------------------------------------------
@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Temporary files go to a folder of this test's own, to check they are cleaned up."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_isolated_partitions_run_in_children_and_equal_the_reference(orders, orders_df,
                                                                     private_tmp):
    got = orders.map_partitions(summarize, by="region", n=2, workers=2)
    want = _reference(orders_df)
    # two region ranges plus NULL: three children, each its own process, none this one
    same_rows(got.drop(columns="pid"), want)
    assert os.getpid() not in set(got["pid"])
    assert got["pid"].nunique() == 3
    assert list(private_tmp.iterdir()) == []
    assert multiprocessing.active_children() == []


def test_a_crashed_child_names_its_partition_and_stops_the_others(orders, private_tmp):
    start = time.monotonic()
    with pytest.raises(PartitionError) as err:
        orders.filter("region IS NOT NULL").map_partitions(
            segfault_or_wait, by="region", workers=2)
    assert time.monotonic() - start < 30  # the sleeping sibling was stopped, not awaited
    assert err.value.partition == "region = 'east'"
    assert err.value.exitcode == -11 and "SIGSEGV" in str(err.value)
    assert multiprocessing.active_children() == []
    assert list(private_tmp.iterdir()) == []


def test_an_exception_in_a_child_comes_back_typed(orders, private_tmp, monkeypatch):
    # as in an IPython shell, whose stand-in __main__ has no __spec__ for spawn to read
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace())
    with pytest.raises(PartitionError) as err:
        orders.filter("status = 'held'").map_partitions(out_of_memory, by="status")
    assert err.value.child_error == "MemoryError"
    assert "status = 'held'" in str(err.value) and "80 GiB" in str(err.value)
    assert "out_of_memory" in err.value.child_traceback
    assert list(private_tmp.iterdir()) == []


PARENT_RSS = textwrap.dedent("""
    import json, sys, threading, time
    import psutil
    import queryref as qr
    sys.path.insert(0, sys.argv[2])
    from _partition_fns import arrow_rows_and_pid

    rows = int(sys.argv[1])
    con = qr.connect()
    con.execute(f"CREATE TABLE t AS SELECT range AS id, range % 2 AS g, range * 3 AS qty, "
                f"CAST(range AS DOUBLE) AS d FROM range({rows})")
    q = con.table("t")
    q.columns
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def poll():
        global peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    threading.Thread(target=poll, daemon=True).start()
    out = q.map_partitions(arrow_rows_and_pid, by="g", workers=2, as_="arrow").to_pandas()
    done.set()
    print(json.dumps({"increase": peak - base, "rows": out["rows"].tolist(),
                      "pids": out["pid"].tolist(), "me": proc.pid}))
""")


def test_the_parent_does_not_hold_the_partitions():
    rows = 24_000_000  # two partitions of 12M rows, 4 columns: 384 MB each in pandas
    done = subprocess.run([sys.executable, "-c", PARENT_RSS, str(rows),
                           str(Path(__file__).parents[1])],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print(out)
    assert out["rows"] == [rows // 2, rows // 2]
    assert out["me"] not in out["pids"]
    partition_bytes = rows // 2 * 4 * 8
    # the parent only runs COPY to Parquet (the engine's buffers: 100-210 MB measured here)
    # and reads two tiny results; holding one partition, even as Arrow, would be 384 MB
    assert out["increase"] < 0.75 * partition_bytes, out


# -- PostgreSQL: the child reconnects itself ---------------------------------------------------
@pytest.fixture
def pg():
    try:
        import adbc_driver_postgresql  # noqa: F401
        con = qr.connect(PG_URL)
        con.sql("SELECT 1 AS x").to_arrow()
    except (ImportError, qr.errors.QueryRefError) as err:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is not usable at {PG_URL.split('@')[-1]}: {err}")
        pytest.skip(f"PostgreSQL is not usable at {PG_URL.split('@')[-1]}: {err}")
    yield con
    con.close()


def test_postgres_children_fetch_their_own_partition(pg, orders_df, private_tmp):
    import uuid

    name = f"qr_parts_{uuid.uuid4().hex[:8]}"
    q = pg.create_table(name, orders_df)
    try:
        assert pg.backend.reopen() is not None  # so the children reconnect: no file spilled
        got = q.map_partitions(pid_and_cmdline, by="status", workers=2)
        want = orders_df.groupby("status").agg(rows=("id", "size"), qty=("qty", "sum"))
        assert sorted(zip(got["rows"], got["qty"], strict=True)) == \
            sorted(zip(want["rows"], want["qty"], strict=True))
        assert os.getpid() not in set(got["pid"])
        password = PG_URL.split("://", 1)[1].split("@")[0]
        assert not any(password in c or PG_URL in c for c in got["cmdline"])
        assert list(private_tmp.iterdir()) == []
    finally:
        pg.execute(f"DROP TABLE {name}")
