"""Functions map_partitions runs in spawned children for tests/reliability/test_secrets.py.

A module of its own with no test imports, so a child imports only this file.
"""

from __future__ import annotations

import pandas as pd


def row_count(df: pd.DataFrame, **ignored: object) -> pd.DataFrame:
    """One row: how many rows the partition had (keywords, e.g. a partial's, are ignored)."""
    return pd.DataFrame({"n": [len(df)]})


def fail_on_big_keys(df: pd.DataFrame) -> pd.DataFrame:
    """Raises for the partition holding k > 3, like user code with a bug."""
    if (df["k"] > 3).any():
        raise ValueError(f"cannot handle {len(df)} rows with k > 3")
    return pd.DataFrame({"n": [len(df)]})
