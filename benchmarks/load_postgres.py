"""Load TPC-H ``lineitem`` from the Parquet files into PostgreSQL, for the PostgreSQL benchmarks.

The table gets TPC-H's own column types (NUMERIC(15,2), DATE, CHAR/VARCHAR), so that a fetch
pays for what a real warehouse table costs (decimals and dates are most of the waste of the
naive paths). DuckDB writes the rows as CSV into a temporary file and PostgreSQL's ``COPY``
reads them (about a minute for SF1 here). It is skipped when the table already holds as many
rows as the file.

    python benchmarks/load_postgres.py --data data/tpch-sf1 \
        --url postgresql://postgres@127.0.0.1:5432/queryref_bench
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_to_pandas import safe_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/queryref_bench"

LINEITEM_COLUMNS = """
    l_orderkey      BIGINT NOT NULL,
    l_partkey       BIGINT NOT NULL,
    l_suppkey       BIGINT NOT NULL,
    l_linenumber    INTEGER NOT NULL,
    l_quantity      NUMERIC(15, 2) NOT NULL,
    l_extendedprice NUMERIC(15, 2) NOT NULL,
    l_discount      NUMERIC(15, 2) NOT NULL,
    l_tax           NUMERIC(15, 2) NOT NULL,
    l_returnflag    CHAR(1) NOT NULL,
    l_linestatus    CHAR(1) NOT NULL,
    l_shipdate      DATE NOT NULL,
    l_commitdate    DATE NOT NULL,
    l_receiptdate   DATE NOT NULL,
    l_shipinstruct  CHAR(25) NOT NULL,
    l_shipmode      CHAR(10) NOT NULL,
    l_comment       VARCHAR(44) NOT NULL
"""


def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (connecting to ``postgres`` to do it)."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    name = u.database or "postgres"
    admin = u.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as con:
        found = con.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone()
        if not found:
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def one(row: tuple[Any, ...] | None) -> Any:
    """The first value of a one-row result."""
    assert row is not None
    return row[0]


def load_lineitem(url: str, parquet: Path) -> int:
    import duckdb
    import psycopg

    duck = duckdb.connect()
    rows: int = one(duck.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchone())
    with psycopg.connect(url, autocommit=True) as con:
        have = one(con.execute("SELECT to_regclass('lineitem') IS NOT NULL").fetchone())
        if have and one(con.execute("SELECT count(*) FROM lineitem").fetchone()) == rows:
            print(f"lineitem already holds {rows:,} rows")
            return rows
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            csv = os.path.join(tmp, "lineitem.csv")
            duck.execute(f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{csv}'"
                         " (HEADER false)")
            con.execute("DROP TABLE IF EXISTS lineitem")
            con.execute(f"CREATE UNLOGGED TABLE lineitem ({LINEITEM_COLUMNS})")
            with con.cursor() as cur, cur.copy("COPY lineitem FROM STDIN (FORMAT csv)") as copy, \
                    open(csv, "rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
        con.execute("ANALYZE lineitem")
        print(f"loaded {rows:,} rows into lineitem in {time.perf_counter() - start:.1f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/tpch-sf1", help="folder with lineitem.parquet")
    parser.add_argument("--url", default=os.environ.get("QUERYREF_BENCH_PG", DEFAULT_URL))
    args = parser.parse_args()
    parquet = Path(args.data) / "lineitem.parquet"
    if not parquet.is_file():
        raise SystemExit(f"no {parquet}: run `make data` first")
    import psycopg

    try:
        ensure_database(args.url)
    except psycopg.OperationalError as err:  # unreachable: one clear line, no traceback
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SystemExit(f"PostgreSQL is not reachable at {safe_url(args.url)}: {first}") from None
    load_lineitem(args.url, parquet)


if __name__ == "__main__":
    main()
