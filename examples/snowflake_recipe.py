"""Connecting to Snowflake: a URL, a connector connection or a Snowpark Session, and its name rules.

    python examples/snowflake_recipe.py --url 'snowflake://user:pw@account/db/schema?warehouse=wh'
    python examples/snowflake_recipe.py     # $QUERYREF_SNOWFLAKE_URL, else a local fakesnow server

Needs the `snowflake` extra (`pip install 'queryref[snowflake]'`). Without a URL the recipe
starts fakesnow's server on loopback (`pip install 'fakesnow[server]'`), which speaks
Snowflake's wire protocol to the real connector: every call below is the one you would make
against a real account. The recipe works in a schema of its own, made and dropped here.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd

import queryref as qr


@contextlib.contextmanager
def fakesnow_kwargs() -> Iterator[dict[str, Any]]:
    """``snowflake.connector.connect`` arguments for a local fakesnow server (stopped after)."""
    import fakesnow

    with fakesnow.server() as kwargs:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fakesnow"):
            logging.getLogger(name).setLevel(logging.ERROR)
        yield kwargs


def recipe(con: qr.Connection) -> None:
    print(f"connected: {con.describe()}")  # never shows the password

    # Upload a DataFrame (under the size budget) as a table: Snowflake upper-cases unquoted
    # names, so lower-case column names become ID, REGION, AMOUNT, as in any Snowflake SQL.
    orders = pd.DataFrame({
        "id": range(2000),
        "region": [("north", "south", "east", "west")[i % 4] for i in range(2000)],
        "amount": [(i * 37) % 1000 / 10 for i in range(2000)],
    })
    t = con.create_table("orders", orders)
    print(f"orders: {t.count():,} rows; columns as Snowflake keeps them: {t.columns}")

    # Names are matched the way Snowflake does: qr.col("amount") means AMOUNT, and a new name
    # written in lower case (total=...) comes back upper-case, as in Snowpark.
    q = (con.table("orders")
         .filter(qr.col("amount") > 50)
         .group_by("region")
         .agg(total=qr.col("amount").sum(), n=qr.count())
         .order_by("region"))
    print("\nthe SQL that runs in Snowflake:\n" + q.sql)
    print("\nresult:\n" + q.to_pandas().to_string(index=False))

    # The guard: Snowflake reports a result's size before its chunks are downloaded, so a
    # result over budget can be refused before it moves; otherwise batches are counted.
    try:
        con.table("orders").to_pandas(max_bytes="10KB")
    except qr.errors.ResultTooLarge as err:
        print("\nthe guard said: " + str(err).splitlines()[0])

    # Streaming: fetch_arrow_batches under the hood.
    rows = sum(b.num_rows for b in con.table("orders").to_arrow_batches(batch_rows=500))
    print(f"streamed {rows:,} rows in batches")

    # The same query compiled for another engine, without running it.
    print("\nfor DuckDB: " + q.compile("duckdb", pretty=False))


def main(url: str | None) -> None:
    import snowflake.connector

    schema = f"QR_RECIPE_{uuid.uuid4().hex[:8].upper()}"
    with contextlib.ExitStack() as stack:
        if url:
            # the URL form: qr.connect("snowflake://user:pw@account/db/schema?warehouse=wh")
            con = stack.enter_context(qr.connect(url))
            con.execute(f"CREATE SCHEMA {schema}")
            stack.callback(con.execute, f"DROP SCHEMA {schema} CASCADE")
            con.execute(f"USE SCHEMA {schema}")
            recipe(con)
            return
        kwargs = stack.enter_context(fakesnow_kwargs())
        print("no Snowflake URL given: using a local fakesnow server")
        # the connector form: your own snowflake.connector connection, handed to queryref.
        # A connection you pass in stays yours: closing the qr.Connection leaves it open.
        # A Snowpark Session works the same way: qr.connect(session); q.to_snowpark() hands
        # a Snowpark DataFrame back.
        raw = stack.enter_context(contextlib.closing(
            snowflake.connector.connect(**kwargs, database="QR_RECIPE", schema=schema)))
        with qr.connect(raw) as con:
            recipe(con)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("QUERYREF_SNOWFLAKE_URL"))
    main(parser.parse_args().url)
