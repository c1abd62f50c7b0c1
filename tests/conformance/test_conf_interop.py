"""Interop on every engine: ``pa.table(q)`` (the Arrow stream protocol) against ``to_arrow()``
and the budget, and ``con.sql()`` taking sqlglot trees and SQLAlchemy selectables."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

import queryref as qr

from .qr_conformance import ORDERS, Engine, same

COLUMNS = ["id", "region", "amount", "odate", "CustomerId"]


def test_arrow_stream_protocol(engine: Engine):
    q = engine.orders.select(*COLUMNS).order_by("id")
    want = q.to_arrow()
    got = pa.table(q)
    assert got.schema.equals(want.schema)
    assert got.to_pylist() == want.to_pylist()
    same(got.to_pandas(), ORDERS[COLUMNS], ordered=True)
    assert pl.DataFrame(q).equals(pl.from_arrow(want))


def test_arrow_stream_stops_at_the_budget(engine: Engine):
    # 2,000 BIGINTs: 16 KB, against a budget of 4 KB
    with qr.options.context(max_bytes="4KB"), pytest.raises(
            pa.ArrowMemoryError, match="ResultTooLarge: the result passed"):
        pa.table(engine.nums)
    assert engine.nums.count() == 2000  # stopped in the database; the connection goes on


ORDERS_T = sa.table("orders", *(sa.column(c) for c in [*COLUMNS, "qty", "status"]))


def test_sqlglot_and_sqlalchemy_give_the_rows_of_the_same_text(engine: Engine):
    text = engine.con.sql(
        "SELECT id, region, amount, {{ c | identifier }} FROM orders "
        "WHERE qty > 5 AND status = 'open' AND amount IS NOT NULL", c="CustomerId")
    tree = (sqlglot.select("id", "region", "amount", exp.column("CustomerId", quoted=True))
            .from_("orders").where("qty > 5").where(exp.column("status").eq("open"))
            .where("amount IS NOT NULL"))
    stmt = (sa.select(ORDERS_T.c.id, ORDERS_T.c.region, ORDERS_T.c.amount,
                      ORDERS_T.c.CustomerId)
            .where(ORDERS_T.c.qty > 5, ORDERS_T.c.status == "open",
                   ORDERS_T.c.amount.is_not(None)))
    want = ORDERS[(ORDERS.qty > 5) & (ORDERS.status == "open") & ORDERS.amount.notna()]
    want = want[["id", "region", "amount", "CustomerId"]]
    same(text.to_pandas(), want)
    same(engine.con.sql(tree).to_pandas(), want)
    same(engine.con.sql(stmt).to_pandas(), want)


NAMES = ["O'Brien; DROP TABLE interop_names --", "back\\slash'", "Zoë", "", "50%_off", None]


def test_values_that_look_like_sql_stay_literals(engine: Engine):
    table = engine.con.create_table(
        "interop_names", pd.DataFrame({"id": range(len(NAMES)), "name": NAMES}), replace=True)
    tried = [n for n in NAMES if n is not None]
    t = sa.table("interop_names", sa.column("id"), sa.column("name"))
    stmt = sa.select(t.c.id, *((t.c.name == v).label(f"m{i}") for i, v in enumerate(tried)))
    tree = sqlglot.select("id", *(exp.column("name").eq(exp.Literal.string(v)).as_(f"m{i}")
                                  for i, v in enumerate(tried))).from_("interop_names")
    want = pd.DataFrame({"id": range(len(NAMES)),
                         **{f"m{i}": [None if n is None else n == v for n in NAMES]
                            for i, v in enumerate(tried)}})
    same(engine.con.sql(stmt).to_pandas(), want)
    same(engine.con.sql(tree).to_pandas(), want)
    assert table.count() == len(NAMES)
