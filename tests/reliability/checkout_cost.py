"""What the read-only transaction and the session reset cost per query (docs/reliability.md).

Runs the same one-row query (``SELECT 1 AS x``, ``to_arrow``) on PostgreSQL and MariaDB with
and without them, in alternating rounds (the machine's load drifts), and prints the median
per-query time of each and the median difference::

    .venv/bin/python tests/reliability/checkout_cost.py [rounds] [queries_per_round]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import queryref as qr
from conformance.qr_conformance import MYSQL_URL, PG_URL
from queryref.backends import _pg_session, sqlalchemy


@contextmanager
def _without() -> Iterator[None]:
    """queryref as it was before: no read-only transaction, no reset at check-in."""
    sa = sqlalchemy.SQLAlchemyBackend
    saved: dict[str, Any] = {"statements": _pg_session._statements, "checkin": sa._checkin,
                             "checkout": sa._checkout}
    _pg_session._statements = lambda con, sql: None
    sa._checkin = sa._disconnect  # type: ignore[method-assign]
    sa._checkout = lambda self, retry=True: self._connect()  # type: ignore[method-assign, misc]
    try:
        yield
    finally:
        _pg_session._statements = saved["statements"]
        sa._checkin = saved["checkin"]  # type: ignore[method-assign]
        sa._checkout = saved["checkout"]  # type: ignore[method-assign]


def _per_query_us(q: qr.QueryRef, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        q.to_arrow(max_bytes=None)
    return (time.perf_counter() - start) / n * 1e6


def measure(url: str, rounds: int, n: int) -> tuple[float, float, float]:
    with qr.connect(url) as con:
        q = con.sql("SELECT 1 AS x")
        _per_query_us(q, 50)
        on, off = [], []
        for _ in range(rounds):
            on.append(_per_query_us(q, n))
            with _without():
                off.append(_per_query_us(q, n))
        diffs = [a - b for a, b in zip(on, off, strict=True)]
        return statistics.median(on), statistics.median(off), statistics.median(diffs)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    for name, url in (("PostgreSQL", PG_URL), ("MariaDB", MYSQL_URL)):
        on, off, diff = measure(url, rounds, n)
        print(f"{name}: {on:.0f} us a query with, {off:.0f} us without; "
              f"the read-only transaction and the reset cost {diff:.0f} us a checkout")


if __name__ == "__main__":
    main()
