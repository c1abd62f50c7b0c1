"""Functions that map_partitions runs in spawned children (tests/test_partitions.py).

They live in a module of their own, with no test imports, so a child process imports only
this file (a test module would pull in a conftest, and several folders have one).
"""

from __future__ import annotations

import ctypes
import os
import time

import pandas as pd


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per region: rows, total qty, and which process did the work."""
    out = df.groupby("region", dropna=False, as_index=False).agg(
        n=("id", "size"), qty=("qty", "sum"))
    out["pid"] = os.getpid()
    return out


def pid_and_cmdline(df: pd.DataFrame) -> pd.DataFrame:
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode()
    return pd.DataFrame({"rows": [len(df)], "qty": [int(df["qty"].sum())],
                         "pid": [os.getpid()], "cmdline": [cmdline]})


def arrow_rows_and_pid(table):
    import pyarrow as pa

    return pa.table({"rows": [table.num_rows], "pid": [os.getpid()]})


def segfault_or_wait(df: pd.DataFrame) -> pd.DataFrame:
    """The first region crashes the interpreter; the others would take a minute."""
    if (df["region"] == "east").any():
        ctypes.string_at(0)  # SIGSEGV
    time.sleep(60)
    return df


def out_of_memory(df: pd.DataFrame) -> pd.DataFrame:
    raise MemoryError("cannot allocate 80 GiB")


def double_qty(table):  # an Arrow table in, an Arrow table out
    import pyarrow.compute as pc

    return table.select(["id"]).append_column("qty2", pc.multiply(table["qty"], 2))
