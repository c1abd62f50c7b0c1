"""Per-partition work in child processes: each region's rows go to a fresh process.

Run: python examples/partitions.py

The function given to map_partitions must live at the top level of a module, and a script
that uses isolate=True needs the ``if __name__ == "__main__":`` guard (children are started
with ``spawn`` and import this file).
"""

from __future__ import annotations

import os

import pandas as pd

import queryref as qr


def region_report(df: pd.DataFrame) -> pd.DataFrame:
    """Runs in a child process on one region's rows (a pandas DataFrame)."""
    out = df.groupby("region", dropna=False, as_index=False).agg(
        orders=("id", "size"), revenue=("amount", "sum"), biggest=("amount", "max"))
    out["pid"] = os.getpid()
    return out


def main() -> None:
    con = qr.connect()  # embedded DuckDB
    con.execute(
        "CREATE TABLE orders AS SELECT range AS id, "
        "CASE WHEN range % 10 = 0 THEN NULL ELSE ['north', 'south', 'east'][range % 3 + 1] "
        "END AS region, round(random() * 100, 2) AS amount FROM range(200000)"
    )
    orders = con.table("orders")

    parts = orders.partitions("region")  # one pushed-down filter per region, NULL included
    print(f"{len(parts)} partitions:", [p.count() for p in parts])
    assert sum(p.count() for p in parts) == orders.count()

    ranges = orders.partitions("amount", n=4)  # about 4 ranges of similar size
    print("amount ranges:", [p.count() for p in ranges])

    report = orders.map_partitions(region_report, by="region", workers=2, max_bytes="50MB")
    print(report.to_string(index=False))
    print(f"parent pid {os.getpid()}; children: {sorted(set(report['pid']))}")

    written = orders.to_csv("orders.csv")
    print(f"CSV: {written.rows:,} rows, {written.bytes:,} bytes")
    os.remove(written.path)


if __name__ == "__main__":
    main()
