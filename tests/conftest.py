"""Shared fixtures: an embedded DuckDB with data full of NULLs, duplicates and mixed case."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr


def make_orders(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Orders with ~20% NULLs, duplicate keys and a mixed-case column name."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "status": rng.choice(["open", "closed", "held"], n),
        "amount": rng.integers(-50, 500, n).astype("float64"),
        "qty": rng.integers(0, 20, n).astype("int64"),
        "CustomerId": rng.integers(0, 40, n).astype("int64"),
    })
    df.loc[rng.random(n) < 0.2, "amount"] = np.nan
    df.loc[rng.random(n) < 0.2, "region"] = None
    return df


def make_customers(seed: int = 11) -> pd.DataFrame:
    """Customers with duplicate ids (two rows for some) and a colliding column name."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.arange(0, 45), rng.integers(0, 45, 8)])
    return pd.DataFrame({
        "CustomerId": ids.astype("int64"),
        "name": [f"c{i}" for i in ids],
        "region": rng.choice(["north", "south", None], len(ids)),
    })


@pytest.fixture
def con() -> Iterator[qr.Connection]:
    c = qr.connect()
    yield c
    c.close()


@pytest.fixture
def orders_df() -> pd.DataFrame:
    return make_orders()


@pytest.fixture
def customers_df() -> pd.DataFrame:
    return make_customers()


@pytest.fixture
def orders(con: qr.Connection, orders_df: pd.DataFrame) -> qr.QueryRef:
    return con.create_table("orders", orders_df)


@pytest.fixture
def customers(con: qr.Connection, customers_df: pd.DataFrame) -> qr.QueryRef:
    return con.create_table("customers", customers_df)


def same_rows(got: pd.DataFrame, want: pd.DataFrame, *, ordered: bool = False) -> None:
    """Assert two frames hold the same rows (same columns; order ignored unless ``ordered``)."""
    assert list(got.columns) == list(want.columns), (list(got.columns), list(want.columns))
    assert len(got) == len(want), (len(got), len(want))
    g = got.reset_index(drop=True).astype(object).where(got.notna().reset_index(drop=True), None)
    w = want.reset_index(drop=True).astype(object).where(want.notna().reset_index(drop=True), None)
    grows = [tuple(_norm(v) for v in r) for r in g.itertuples(index=False)]
    wrows = [tuple(_norm(v) for v in r) for r in w.itertuples(index=False)]
    if not ordered:
        grows, wrows = sorted(grows, key=repr), sorted(wrows, key=repr)
    assert grows == wrows


def _norm(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return float(v)
    if isinstance(v, float | np.floating):
        return round(float(v), 6)
    return v


class _RecordedRelation:
    """A DuckDB relation that notes how it is used: a zero-row probe, or a run that streams."""

    def __init__(self, rel: Any, sql: str, log: list[tuple[str, str]]) -> None:
        self._rel, self._sql, self._log = rel, sql, log

    def limit(self, n: int, *args: Any) -> Any:
        self._log.append(("probe" if n == 0 else "limit", self._sql))
        return self._rel.limit(n, *args)

    def to_arrow_reader(self, *args: Any) -> Any:
        self._log.append(("run", self._sql))
        return self._rel.to_arrow_reader(*args)

    @property
    def columns(self) -> list[str]:  # the bound query's names: metadata, nothing runs
        return list(self._rel.columns)

    def __getattr__(self, name: str) -> Any:
        self._log.append((name, self._sql))
        return getattr(self._rel, name)


class _RecordingDuckDB:
    """A real duckdb connection that logs every statement it is given before running it."""

    def __init__(self, con: Any, log: list[tuple[str, str]]) -> None:
        self._con, self.log = con, log

    def sql(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return _RecordedRelation(self._con.sql(query, *args, **kwargs), query, self.log)

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self.log.append(("execute", query))
        return self._con.execute(query, *args, **kwargs)

    def register(self, name: str, data: Any) -> Any:
        self.log.append(("register", name))
        return self._con.register(name, data)

    def cursor(self) -> _RecordingDuckDB:
        return _RecordingDuckDB(self._con.cursor(), self.log)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@pytest.fixture
def recorded() -> Iterator[tuple[qr.Connection, list[tuple[str, str]]]]:
    """A connection to a real embedded DuckDB plus the log of what the engine received:
    ``("run", sql)`` for a query whose rows were streamed, ``("probe", sql)`` for a zero-row
    schema lookup, ``("execute", sql)``, ``("register", name)`` ..."""
    import duckdb

    from queryref.backends.duckdb import DuckDBBackend

    log: list[tuple[str, str]] = []
    backend = DuckDBBackend(_RecordingDuckDB(duckdb.connect(), log),  # type: ignore[arg-type]
                            owned=True, label="recorded")
    c = qr.Connection(backend)
    yield c, log
    c.close()
