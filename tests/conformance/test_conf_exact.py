"""Composing on SQL someone else wrote stays exact, on every engine (issue 13's six cases).

CTEs keep their scope when other SQL joins the tree; positional and alias sort keys keep their
meaning when the projection changes; an ordered query stays ordered through the steps that
keep every row. Each case is checked against pandas on the same rows.
"""

from __future__ import annotations

import pandas as pd
import pytest

import queryref as qr
from queryref.errors import BackendError, ParameterError

from .qr_conformance import NUMS, Engine, gap, same

col = qr.col
N = NUMS.n  # 1 .. 2000, in the engine's table ``nums``


def frame(**columns: list[int]) -> pd.DataFrame:
    return pd.DataFrame(columns)


# -- 1, 2: CTE scope ------------------------------------------------------------------------
def test_set_operations_take_ctes_on_either_side(engine: Engine):
    q = engine.con.sql("WITH nums AS (SELECT 1 AS n) SELECT n FROM nums")
    same(q.union(q).to_pandas(), frame(n=[1, 1]))
    # the CTE is called like the real table: each side reads its own
    same(q.union(engine.nums).to_pandas(), frame(n=[1, *N]))
    same(engine.nums.filter(col("n") < 3).union(q).to_pandas(), frame(n=[1, 2, 1]))
    same(q.except_(engine.nums.filter(col("n") > 1)).to_pandas(), frame(n=[1]))
    same(q.intersect(engine.nums).to_pandas(), frame(n=[1]))


def test_subqueries_do_not_read_the_hosts_ctes(engine: Engine):
    q = engine.con.sql("WITH nums AS (SELECT 1 AS n) SELECT n FROM nums")
    biggest = engine.nums.agg(m=col("n").max()).as_scalar()
    same(q.filter(col("n") < biggest).to_pandas(), frame(n=[1]))
    same(q.filter(col("n").isin(engine.nums.filter(col("n") > 1).select("n"))).to_pandas(),
         frame(n=[]).astype("int64"))
    same(q.mutate(k=engine.nums.agg(k=qr.count()).as_scalar()).to_pandas(),
         frame(n=[1], k=[len(N)]))


def test_query_parameters_do_not_read_the_sqls_ctes(engine: Engine):
    q = engine.con.sql("WITH nums AS (SELECT 1 AS n) SELECT n, (SELECT COUNT(*) FROM {{ src }}) "
                       "AS k FROM nums", src=engine.nums)
    same(q.to_pandas(), frame(n=[1], k=[len(N)]))


# -- 3, 4: sort keys that read the projection ---------------------------------------------
def test_positional_order_keeps_its_column(engine: Engine):
    q = engine.con.sql("SELECT n AS a, 2001 - n AS b FROM nums ORDER BY 2 LIMIT 3")
    same(q.select("b", "a").to_pandas(), frame(b=[1, 2, 3], a=[2000, 1999, 1998]),
         ordered=True)
    same(q.drop("a").to_pandas(), frame(b=[1, 2, 3]), ordered=True)
    unlimited = engine.con.sql("SELECT n AS a, 2001 - n AS b FROM nums WHERE n > 1997 ORDER BY 2")
    same(unlimited.select("a").to_pandas(), frame(a=[2000, 1999, 1998]), ordered=True)


def test_positional_group_keeps_its_column(engine: Engine):
    q = engine.con.sql("SELECT n % 3 AS k, COUNT(*) AS c FROM nums GROUP BY 1")
    want = NUMS.assign(k=N % 3).groupby("k").size()
    same(q.select("c").to_pandas(), frame(c=list(want)))
    same(q.rename(k="key").filter(col("key") > 0).to_pandas(),
         frame(key=list(want.index[1:]), c=list(want[1:])))


def test_alias_in_a_sort_expression(engine: Engine):
    sql = "SELECT n AS a, n * 2 AS b2 FROM nums ORDER BY -b2 LIMIT 1"
    if engine.name == "postgres":  # PostgreSQL reads only input columns in ORDER BY expressions
        with pytest.raises(BackendError, match="b2"):
            engine.con.sql(sql).to_pandas()
        return
    o = engine.con.sql(sql)
    same(o.select("a").to_pandas(), frame(a=[2000]))
    same(o.mutate(b2=col("a") * -1).to_pandas(), frame(a=[2000], b2=[-2000]))


# -- 5: order through the steps that keep every row -----------------------------------------
def test_order_survives_steps_after_a_limit(engine: Engine):
    top = engine.nums.order_by(qr.desc("n")).limit(50)
    want = list(range(2000, 1950, -1))
    windowed = top.mutate(rn=qr.row_number().over(order_by="n"))
    same(windowed.to_pandas(), frame(n=want, rn=list(range(50, 0, -1))), ordered=True)
    same(windowed.filter(col("rn") < 5).select("n").to_pandas(),
         frame(n=[1954, 1953, 1952, 1951]), ordered=True)
    same(top.filter(col("n") % 2 == 0).to_pandas(), frame(n=want[::2]), ordered=True)
    same(top.distinct().to_pandas(), frame(n=want), ordered=True)
    same(top.mutate(m=col("n") * 10).select("m").to_pandas(), frame(m=[v * 10 for v in want]),
         ordered=True)


def test_order_by_a_column_that_is_no_longer_selected(engine: Engine):
    q = engine.nums.order_by(qr.desc("n")).mutate(m=col("n") % 7).select("m")
    same(q.limit(5).filter(col("m") > 0).to_pandas(), frame(m=[5, 4, 3, 2, 1]), ordered=True)


def test_order_of_a_set_operation_carries(engine: Engine):
    q = engine.con.sql("SELECT n FROM nums WHERE n < 4 UNION ALL SELECT n FROM nums "
                       "WHERE n > 1997 ORDER BY 1 DESC")
    same(q.filter(col("n") != 2).to_pandas(), frame(n=[2000, 1999, 1998, 3, 1]), ordered=True)


# -- 6: duplicate output names ----------------------------------------------------------------
@gap("mariadb", raises=BackendError,
     reason="MariaDB refuses a subquery with two columns of one name (1060), and the column "
            "lookup reads the query as a subquery")
def test_duplicate_names_are_what_the_rows_have(engine: Engine):
    q = engine.con.sql("SELECT n AS a, n + 1 AS a FROM nums WHERE n < 3")
    assert q.columns == list(q.to_pandas().columns)
    with pytest.raises(ParameterError, match="ambiguous"):
        q.select("a")
    wrapped = q.filter("1 = 1")
    assert wrapped.columns == list(wrapped.to_pandas().columns)


def test_filter_on_a_grouped_expression(engine: Engine):
    # MariaDB's HAVING cannot read the parts of a grouped expression (``HAVING n + n < 10``:
    # "Unknown column 'n' in 'HAVING'"): found by TLP with QUERYREF_FUZZ_SEED=7
    q = engine.nums.group_by(k=col("n") + col("n")).agg(s=col("n").sum()).filter(col("k") < 10)
    same(q.to_pandas(), frame(k=[2, 4, 6, 8], s=[1, 2, 3, 4]))


#: column names that are words of some engine's grammar (DuckDB refused ``SELECT DISTINCT
#: at``: its parser reserves ``at``, ``lambda``, ``positional`` ... which sqlglot reads as names)
GRAMMAR_WORDS = ["at", "lambda", "positional", "collation", "order", "key", "rank", "value"]


def test_columns_named_like_grammar_words(engine: Engine):
    data = pd.DataFrame({w: [i % 3, i % 2, i, i * 2, i % 4, i % 5, i, -i][k]
                         for k, w in enumerate(GRAMMAR_WORDS)} for i in range(12))
    t = engine.con.create_table("exact_grammar_words", data, replace=True)
    got = (t.filter(qr.col("at") < 2).group_by("at", "lambda")
           .agg(n=qr.col("order").count(), s=qr.col("key").sum())
           .order_by("at", "lambda").to_pandas())
    want = (data[data["at"] < 2].groupby(["at", "lambda"], as_index=False)
            .agg(n=("order", "count"), s=("key", "sum")))
    same(got, want)
    distinct = t.select("positional", "collation").distinct().to_pandas()
    same(distinct, data[["positional", "collation"]].drop_duplicates())
    counts = t.value_counts("rank")  # (a DataFrame: the counts are computed in the engine)
    assert counts["count"].sum() == len(data) and len(counts) == data["rank"].nunique()


def test_a_filter_on_an_instant_with_microseconds(engine: Engine):
    # MariaDB: ts > CAST('... 00:00:00.000500' AS DATETIME) compared with 00:00:00 (the cast
    # dropped the microseconds), so rows of the same second got through
    import datetime as dt

    base = dt.datetime(2024, 1, 1)
    stamps = [base + dt.timedelta(microseconds=m) for m in (0, 100, 499, 500, 501, 999_999)]
    data = pd.DataFrame({"i": range(len(stamps)), "ts": stamps})
    t = engine.con.create_table("exact_micro_filter", data, replace=True)
    cut = base + dt.timedelta(microseconds=500)
    got = t.filter(qr.col("ts") > cut).select("i").to_pandas()
    same(got, data[data["ts"] > cut][["i"]])
    got = t.filter(qr.col("ts") == cut).select("i").to_pandas()
    same(got, data[data["ts"] == cut][["i"]])
