"""Connecting to PostgreSQL, and the same habits as on DuckDB: compose, look, fetch under a budget.

    python examples/postgres_recipe.py            # $QUERYREF_POSTGRES_URL, else the local server
    python examples/postgres_recipe.py --url postgresql://user:pw@host:5432/db

Needs the `postgres` extra (`pip install 'queryref[postgres]'`: the ADBC driver, Arrow end to
end). The recipe works in a schema of its own, made and dropped here; with the
docker-compose TPC-H sample loaded (schema `tpch`), it also runs TPC-H Q1 there.
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import uuid
from pathlib import Path

import queryref as qr

DEFAULT_URL = "postgresql://postgres:postgres@127.0.0.1:5432/postgres"


def main(url: str) -> None:
    # 1. Connect. A URL goes through ADBC; an open psycopg or ADBC connection, or a SQLAlchemy
    #    Engine, works too: qr.connect(psycopg.connect(url)), qr.connect(create_engine(url)).
    admin = qr.connect(url)
    print(f"connected: {admin.describe()}")  # never shows the password

    schema = f"qr_recipe_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE SCHEMA {schema}")  # DDL goes through execute(), never con.sql()
    try:
        # A connection whose search_path is that schema: unqualified names land there.
        sep = "&" if "?" in url else "?"
        with qr.connect(f"{url}{sep}options=-csearch_path%3D{schema}") as con:
            recipe(con)
            run_tpch_q1(con)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def recipe(con: qr.Connection) -> None:
    # 2. Make data in the database (generate_series runs there: no rows through Python).
    con.execute(
        "CREATE TABLE orders AS SELECT g AS id, "
        "(ARRAY['north', 'south', 'east', 'west'])[g % 4 + 1] AS region, "
        "((g * 37) % 1000) / 10.0 AS amount, "
        "DATE '2024-01-01' + (g % 366) AS odate "
        "FROM generate_series(0, 199999) AS g"
    )
    orders = con.table("orders")
    print(f"orders: {orders.count():,} rows (COUNT(*) ran in PostgreSQL)")

    # 3. Compose: the SQL is generated in PostgreSQL's dialect (lower-case names need no quotes).
    q = (orders.filter(qr.col("odate") >= datetime.date(2024, 7, 1), "amount > 50")
         .group_by("region")
         .agg(total=qr.col("amount").sum(), n=qr.count())
         .order_by("region"))
    print("\nthe SQL that runs in PostgreSQL:\n" + q.sql)
    print("\nresult:\n" + q.to_pandas().to_string(index=False))

    # 4. The guard: the whole table under a 1 MB budget is refused; the query is cancelled
    #    in the server (pg_cancel) and nothing stays running.
    try:
        orders.to_pandas(max_bytes="1MB")
    except qr.errors.ResultTooLarge as err:
        print("\nthe guard said: " + str(err).splitlines()[0])

    # 5. Big results: stream in batches, or to Parquet (ADBC streams COPY ... TO STDOUT).
    n_batches = sum(1 for _ in orders.to_arrow_batches(batch_rows=50_000))
    with tempfile.TemporaryDirectory() as tmp:
        written = orders.to_parquet(str(Path(tmp) / "orders.parquet"))
        print(f"\nstreamed {n_batches} batches; wrote {written.rows:,} rows to Parquet")

    # 6. Keep an expensive intermediate in the warehouse: a TEMPORARY table for this session.
    with orders.filter("amount >= 90").cache() as hot:
        print(f"cached {hot.count():,} rows in temporary table {hot.table_name}")

    # 7. The planner's view, without running the query.
    first = q.explain().splitlines()[0]
    print(f"plan: {first.strip()}")


def run_tpch_q1(con: qr.Connection) -> None:
    """TPC-H Q1 on the docker-compose sample, when the schema ``tpch`` has ``lineitem``."""
    found = con.sql(
        "SELECT COUNT(*) AS n FROM information_schema.tables "
        "WHERE table_schema = 'tpch' AND table_name = 'lineitem'"
    ).to_pandas().iloc[0, 0]
    if not found:
        print("\n(no tpch.lineitem here: `docker compose up -d` loads a TPC-H sample)")
        return
    lineitem = con.table("tpch.lineitem")
    price = qr.col("l_extendedprice")
    q1 = (lineitem.filter(qr.col("l_shipdate") <= datetime.date(1998, 9, 2))
          .group_by("l_returnflag", "l_linestatus")
          .agg(sum_qty=qr.col("l_quantity").sum(),
               sum_disc_price=(price * (1 - qr.col("l_discount"))).sum(),
               count_order=qr.count())
          .order_by("l_returnflag", "l_linestatus"))
    print(f"\nTPC-H Q1 on tpch.lineitem ({lineitem.count():,} rows):")
    print(q1.to_pandas().to_string(index=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("QUERYREF_POSTGRES_URL", DEFAULT_URL))
    main(parser.parse_args().url)
