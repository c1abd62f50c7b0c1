"""The guard's pre-flight layer on every engine: estimates, exact counts, dry runs, refusals."""

from __future__ import annotations

import pytest

import queryref as qr
from queryref.errors import ResultTooLarge, UnsupportedError

from .qr_conformance import NUMS, ORDERS, Engine, gap


def _opened(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every stream the backend opens from now on (the engine runs as usual)."""
    backend = engine.con.backend
    seen: list[str] = []
    real = backend.stream

    def spy(sql: str, *args: object, **kwargs: object) -> object:
        seen.append(sql)
        return real(sql, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "stream", spy)
    return seen


@gap("snowflake", raises=UnsupportedError,
     reason="Snowflake's EXPLAIN has no row estimates (fakesnow has no EXPLAIN at all); its "
            "guard refuses from the result's metadata once the query has run")
@gap("spark", raises=UnsupportedError,
     reason="Spark's plan has a row count only for analyzed tables (ANALYZE TABLE ... COMPUTE "
            "STATISTICS); without one the guard counts over a LIMIT in the engine")
def test_planner_estimate_is_near_the_truth(engine: Engine):
    est = engine.nums.estimate(strict=True)
    truth = engine.nums.to_arrow()
    assert est.method == "planner" and not est.exact
    assert est.rows is not None and est.bytes is not None
    assert len(NUMS) / 4 <= est.rows <= len(NUMS) * 4, est
    assert truth.nbytes / 4 <= est.bytes <= truth.nbytes * 4, (est, truth.nbytes)


def test_count_is_exact_everywhere(engine: Engine):
    q = engine.orders.filter(qr.col("status") == "open")
    est = q.estimate(count=True)
    assert (est.rows, est.method, est.exact) == ((ORDERS.status == "open").sum(), "count", True)
    truth = q.to_arrow().nbytes
    assert est.bytes is not None and truth / 4 <= est.bytes <= truth * 4, (est, truth)
    assert q.to_pandas(dry_run=True, preflight="count") == est


def test_estimate_without_figures_says_why(engine: Engine):
    est = engine.orders.estimate()
    if est.known:
        assert est.rows is not None and est.rows > 0 and est.method == "planner"
    else:
        assert (est.rows, est.bytes, est.method) == (None, None, "unknown")
        with pytest.raises(UnsupportedError, match="count=True"):
            engine.orders.estimate(strict=True)
    assert est.details


def test_count_preflight_refuses_before_a_row_moves(engine: Engine, monkeypatch):
    q = engine.orders.select("id", "qty", "amount")
    opened = _opened(engine, monkeypatch)
    with pytest.raises(ResultTooLarge) as info:
        q.to_pandas(max_bytes=500, preflight="count")
    assert info.value.stage == "estimate"
    assert info.value.seen_rows == len(ORDERS)
    assert "Nothing was fetched" in str(info.value)
    assert len(opened) == 1 and "COUNT" in opened[0].upper()  # the count, never the rows
    monkeypatch.undo()
    same_rows = q.to_pandas(max_bytes="10MB", preflight="count")
    assert len(same_rows) == len(ORDERS)


def test_refused_up_front_without_the_rows(engine: Engine, monkeypatch):
    opened = _opened(engine, monkeypatch)
    with pytest.raises(ResultTooLarge) as info:
        engine.nums.to_arrow(max_bytes=1000)
    assert info.value.stage == "estimate"
    if engine.name == "snowflake":  # no planner estimate: the result's metadata, once it ran
        assert "metadata" in str(info.value) and len(opened) == 1
    elif engine.name == "spark":  # no row count in the plan: a COUNT over LIMIT k, no rows
        assert len(opened) == 1 and "COUNT" in opened[0].upper() and "LIMIT" in opened[0]
    else:
        assert opened == [], opened
