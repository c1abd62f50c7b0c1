"""A guard abort on PostgreSQL, measured: peak RSS, time from crossing the budget to the query
being gone from ``pg_stat_activity``, and a ``SELECT 1`` on the same connection afterwards.

    .venv/bin/python benchmarks/pg_guard_abort.py [--url postgresql://...] [--rows 50000000]
        [--budget 100MB]

Prints one JSON object. The query is ``generate_series`` with a text column (~40 bytes a row
in Arrow), far larger than the budget, so the fetch layer of the guard must stop it (the
pre-flight estimate is turned off: it would refuse before the query runs). The
pieces (:class:`CancelClock`, :func:`active_with_tag`, :func:`wait_gone`, :func:`select_one`)
are shared with ``bench_guard.py``, which runs the same checks on TPC-H ``lineitem``; the
PostgreSQL conformance tests call :func:`measure`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

import queryref as qr
from queryref.backends import _base


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class CancelClock:
    """While active, records when a stream's ``cancel()`` is first called: the moment the
    guard saw the budget crossed (``perf_counter`` seconds, or None)."""

    def __init__(self) -> None:
        self.crossed: float | None = None
        self._original: Callable[[_base.Stream], None] = _base.Stream.cancel

    def __enter__(self) -> CancelClock:
        original = self._original

        def timed_cancel(stream: _base.Stream) -> None:
            if self.crossed is None:
                self.crossed = time.perf_counter()
            original(stream)

        _base.Stream.cancel = timed_cancel  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        _base.Stream.cancel = self._original  # type: ignore[method-assign, assignment]


def active_with_tag(watcher: Any, tag: str) -> Callable[[], int]:
    """A counter of the active queries (other than the watcher's) whose text holds ``tag``."""
    active = watcher.sql(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE state = 'active' "
        f"AND pid <> pg_backend_pid() AND query LIKE '%{tag}%'")
    return lambda: int(active.to_pandas().iloc[0, 0])


def wait_gone(count: Callable[[], int], since: float, limit_s: float = 10.0) -> float | None:
    """Poll ``count()`` every 5 ms until it is 0: the ``perf_counter`` time, or None after
    ``limit_s`` seconds past ``since``."""
    while time.perf_counter() - since < limit_s:
        if count() == 0:
            return time.perf_counter()
        time.sleep(0.005)
    return None


def select_one(con: Any) -> tuple[int, float]:
    """``SELECT 1`` on ``con`` (the connection a guarded fetch used): its value and ms."""
    t0 = time.perf_counter()
    one = con.sql("SELECT 1 AS x").to_pandas().iloc[0, 0]
    return int(one), round((time.perf_counter() - t0) * 1000, 1)


def measure(url: str, rows: int, budget: str) -> dict[str, object]:
    """Run one guarded fetch that must abort; return the figures."""
    con = qr.connect(url)
    watcher = qr.connect(url)
    tag = f"qr_abort_{uuid.uuid4().hex[:8]}"
    # generate_series in the select list streams; in FROM it would be materialized first
    q = con.sql(f"SELECT g AS n, md5(g::text) AS h, '{tag}' AS tag "
                f"FROM (SELECT generate_series(1, {rows}) AS g) AS s")
    active = active_with_tag(watcher, tag)
    rss_before = rss_mb()
    start = time.perf_counter()
    with CancelClock() as clock:
        try:
            q.to_arrow(max_bytes=budget, preflight=None)  # the fetch layer, not the estimate
            raise SystemExit("the guard did not stop the query")
        except qr.errors.ResultTooLarge as err:
            raised = time.perf_counter()
            message = str(err).splitlines()[0]
    gone = wait_gone(active, raised)
    one, select1_ms = select_one(con)
    con.close()
    watcher.close()
    cross = clock.crossed or raised
    return {
        "rows_in_query": rows,
        "budget": budget,
        "error": message,
        "seconds_to_crossing": round(cross - start, 3),
        "ms_crossing_to_gone": round((gone - cross) * 1000, 1) if gone else None,
        "ms_crossing_to_error": round((raised - cross) * 1000, 1),
        "select_1_after": one,
        "ms_select_1": select1_ms,
        "rss_mb_before": round(rss_before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get(
        "QUERYREF_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--budget", default="100MB")
    args = parser.parse_args()
    print(json.dumps(measure(args.url, args.rows, args.budget), indent=2))


if __name__ == "__main__":
    main()
