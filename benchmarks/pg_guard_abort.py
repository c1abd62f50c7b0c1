"""A guard abort on PostgreSQL, measured: peak RSS, time from crossing the budget to the query
being gone from ``pg_stat_activity``, and a ``SELECT 1`` on the same connection afterwards.

    .venv/bin/python benchmarks/pg_guard_abort.py [--url postgresql://...] [--rows 50000000]
        [--budget 100MB]

Prints one JSON object. The query is ``generate_series`` with a text column (~40 bytes a row
in Arrow), far larger than the budget, so the fetch layer of the guard must stop it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import uuid

import queryref as qr
from queryref.backends import _base


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(url: str, rows: int, budget: str) -> dict[str, object]:
    """Run one guarded fetch that must abort; return the figures."""
    con = qr.connect(url)
    watcher = qr.connect(url)
    tag = f"qr_abort_{uuid.uuid4().hex[:8]}"
    # generate_series in the select list streams; in FROM it would be materialized first
    q = con.sql(f"SELECT g AS n, md5(g::text) AS h, '{tag}' AS tag "
                f"FROM (SELECT generate_series(1, {rows}) AS g) AS s")
    active = watcher.sql(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE state = 'active' "
        f"AND pid <> pg_backend_pid() AND query LIKE '%{tag}%'")
    crossed: list[float] = []
    original = _base.Stream.cancel

    def timed_cancel(self: _base.Stream) -> None:
        crossed.append(time.perf_counter())
        original(self)

    _base.Stream.cancel = timed_cancel  # type: ignore[method-assign]
    rss_before = rss_mb()
    start = time.perf_counter()
    try:
        q.to_arrow(max_bytes=budget)
        raise SystemExit("the guard did not stop the query")
    except qr.errors.ResultTooLarge as err:
        raised = time.perf_counter()
        message = str(err).splitlines()[0]
    finally:
        _base.Stream.cancel = original  # type: ignore[method-assign]
    gone = None
    while time.perf_counter() - raised < 10:
        if int(active.to_pandas().iloc[0, 0]) == 0:
            gone = time.perf_counter()
            break
        time.sleep(0.005)
    t0 = time.perf_counter()
    one = con.sql("SELECT 1 AS x").to_pandas().iloc[0, 0]
    select1 = time.perf_counter() - t0
    con.close()
    watcher.close()
    cross = crossed[0] if crossed else raised
    return {
        "rows_in_query": rows,
        "budget": budget,
        "error": message,
        "seconds_to_crossing": round(cross - start, 3),
        "ms_crossing_to_gone": round((gone - cross) * 1000, 1) if gone else None,
        "ms_crossing_to_error": round((raised - cross) * 1000, 1),
        "select_1_after": int(one),
        "ms_select_1": round(select1 * 1000, 1),
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
