"""queryref in a minute, on embedded DuckDB with data it makes itself.

    python examples/quickstart.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import queryref as qr


def main() -> None:
    con = qr.connect()  # embedded DuckDB, in memory
    con.execute(
        "CREATE TABLE orders AS "
        "SELECT range AS id, ['north', 'south', 'east', 'west'][range % 4 + 1] AS region, "
        "(range * 37) % 1000 / 10.0 AS amount, range % 10 = 0 AS refunded "
        "FROM range(1000000)"
    )
    orders = con.table("orders")  # a QueryRef: nothing has run yet
    print(f"orders: {orders.count():,} rows (COUNT(*) pushed down)")

    by_region = (
        orders.filter(qr.col("amount") > 50, "NOT refunded")  # an Expr and SQL text, ANDed
        .group_by("region")
        .agg(total=qr.col("amount").sum(), n=qr.count())
        .order_by(qr.desc("total"))
    )
    print("\nthe SQL that will run:\n" + by_region.sql)
    print("\nthe result:\n" + by_region.to_pandas().to_string(index=False))

    try:
        orders.to_pandas(max_bytes="1MB")  # a million rows do not fit in 1 MB
    except qr.errors.ResultTooLarge as exc:
        print("\nthe size guard said:\n" + str(exc))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "big_orders.parquet"
        orders.filter(qr.col("amount") >= 90).to_parquet(str(out))  # streamed, never in memory
        spilled = con.read_parquet(str(out))  # keep composing on the file
        print(f"\nspilled {spilled.count():,} rows to Parquet; the first three:")
        print(spilled.order_by("id").limit(3).to_pandas().to_string(index=False))


if __name__ == "__main__":
    main()
