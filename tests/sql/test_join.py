"""Joins against pandas merges (no NULL keys) and hand-written SQL (NULL keys)."""

from __future__ import annotations

import pandas as pd
import pytest

import queryref as qr
from conftest import same_rows
from queryref.errors import ParameterError, UnknownColumnError

col = qr.col


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_join_on_names_matches_pandas(orders, orders_df, customers, customers_df, how):
    got = orders.select("id", "CustomerId", "qty").join(
        customers.select("CustomerId", "name"), on="CustomerId", how=how).to_pandas()
    want = orders_df[["id", "CustomerId", "qty"]].merge(
        customers_df[["CustomerId", "name"]], on="CustomerId", how=how)
    same_rows(got, want)


def test_join_collisions_get_suffixes(orders, orders_df, customers, customers_df):
    q = orders.join(customers, on="CustomerId", how="left")
    assert q.columns == ["id", "region", "status", "amount", "qty", "CustomerId", "name",
                         "region_right"]
    want = orders_df.merge(customers_df, on="CustomerId", how="left", suffixes=("", "_right"))
    same_rows(q.to_pandas(), want[q.columns])
    q2 = orders.join(customers, on="CustomerId", suffixes=("_o", "_c"))
    assert "region_o" in q2.columns and "region_c" in q2.columns


def test_semi_and_anti(orders, orders_df, customers, customers_df):
    north = customers.filter(col("region") == "north")
    ids = set(customers_df[customers_df.region == "north"].CustomerId)
    same_rows(orders.join(north, "CustomerId", how="semi").to_pandas(),
              orders_df[orders_df.CustomerId.isin(ids)])
    same_rows(orders.join(north, "CustomerId", how="anti").to_pandas(),
              orders_df[~orders_df.CustomerId.isin(ids)])


def test_anti_join_is_not_not_in(con):
    # NOT IN with a NULL on the right returns no rows; an anti-join keeps SQL's anti semantics.
    a = con.sql("SELECT * FROM (VALUES (1), (2), (NULL)) v(k)")
    b = con.sql("SELECT * FROM (VALUES (2), (NULL)) v(k)")
    assert sorted(a.join(b, "k", how="anti").to_pandas().k.fillna(-1).tolist()) == [-1, 1]
    assert a.filter(~col("k").isin(b)).count() == 0  # NOT IN keeps SQL semantics too


def test_null_keys_never_match(con):
    a = con.sql("SELECT * FROM (VALUES (1, 'a'), (NULL, 'b')) v(k, x)")
    b = con.sql("SELECT * FROM (VALUES (1, 'c'), (NULL, 'd')) v(k, y)")
    ref = con.backend._con.sql(
        "SELECT COALESCE(a.k, b.k) AS k, x, y FROM (VALUES (1, 'a'), (NULL, 'b')) a(k, x) "
        "FULL JOIN (VALUES (1, 'c'), (NULL, 'd')) b(k, y) ON a.k = b.k").df()
    same_rows(a.join(b, "k", how="outer").to_pandas(), ref)


def test_join_on_predicate(orders, orders_df, customers, customers_df):
    q = orders.join(customers, on="l.CustomerId = r.CustomerId AND qty > 10")
    want = orders_df.merge(customers_df, on="CustomerId", suffixes=("", "_right"))
    want = want[want.qty > 10]
    got = q.to_pandas()
    assert "CustomerId_right" in got.columns
    assert len(got) == len(want)
    # an Expr predicate: names found on one side only are qualified automatically
    c2 = customers.rename(CustomerId="cid")
    q2 = orders.join(c2, on=(qr.col("CustomerId") == qr.col("cid")) & (qr.col("qty") < 3))
    want2 = orders_df.merge(customers_df.rename(columns={"CustomerId": "cid"}),
                            left_on="CustomerId", right_on="cid", suffixes=("", "_right"))
    same_rows(q2.to_pandas(), want2[want2.qty < 3][q2.columns])
    with pytest.raises(ParameterError, match="both sides"):
        orders.join(customers, on=qr.col("region") == "north")
    with pytest.raises(UnknownColumnError):
        orders.join(customers, on="l.nope = r.CustomerId")


def test_left_on_right_on_keeps_both(orders, orders_df, customers, customers_df):
    c2 = customers.rename(CustomerId="cid")
    got = orders.join(c2, left_on="CustomerId", right_on="cid").to_pandas()
    want = orders_df.merge(customers_df.rename(columns={"CustomerId": "cid"}),
                           left_on="CustomerId", right_on="cid", suffixes=("", "_right"))
    same_rows(got, want[got.columns.tolist()])
    assert "cid" in got.columns and "CustomerId" in got.columns


def test_cross_join(con):
    a = con.sql("SELECT range AS i FROM range(3)")
    b = con.sql("SELECT range AS j FROM range(4)")
    assert a.join(b, how="cross").count() == 12
    with pytest.raises(ParameterError):
        a.join(b, on="i", how="cross")


def test_join_then_compose(orders, orders_df, customers, customers_df):
    q = (orders.join(customers.select("CustomerId", "name"), "CustomerId")
         .filter(col("qty") > 5).group_by("name").agg(n=qr.count())
         .order_by(qr.desc("n"), "name").limit(3))
    m = orders_df.merge(customers_df[["CustomerId", "name"]], on="CustomerId")
    want = (m[m.qty > 5].groupby("name").size().rename("n").reset_index()
            .sort_values(["n", "name"], ascending=[False, True]).head(3))
    same_rows(q.to_pandas(), want, ordered=True)


def test_self_join(orders, orders_df):
    got = orders.select("id", "qty").join(orders.select("id", "qty"), "id").to_pandas()
    assert got.columns.tolist() == ["id", "qty", "qty_right"]
    assert (got.qty == got.qty_right).all() and len(got) == len(orders_df)


def test_bad_join_arguments(orders, customers, con):
    with pytest.raises(ParameterError, match="how"):
        orders.join(customers, "CustomerId", how="sideways")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        orders.join(customers, "CustomerId", left_on="id")
    with pytest.raises(UnknownColumnError):
        orders.join(customers, "nope")
    other = qr.connect()
    try:
        with pytest.raises(ParameterError, match="same connection"):
            orders.join(other.sql("SELECT 1 AS CustomerId"), "CustomerId")
    finally:
        other.close()
    with pytest.raises(ParameterError):
        orders.join(pd.DataFrame(), "id")  # type: ignore[arg-type]
