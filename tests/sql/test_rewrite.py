"""The rewriter on SQL text alone: when a step extends the SELECT and when it wraps."""

from __future__ import annotations

import pytest

import queryref as qr
from queryref.sql.rewrite import wrap

col = qr.col


@pytest.fixture
def t(con):
    con.execute("CREATE TABLE t (a INT, b INT, s TEXT)")
    return con.table("t")


def flat(q: qr.QueryRef) -> str:
    return q.compile(pretty=False)


@pytest.mark.parametrize("build,expected", [
    (lambda t: t.filter(col("a") > 1).filter("b < 2"),
     "SELECT * FROM t WHERE a > 1 AND b < 2"),
    (lambda t: t.mutate(c=col("a") + col("b")).filter(col("c") > 3).select("a", "c"),
     "SELECT a, a + b AS c FROM t WHERE a + b > 3"),
    (lambda t: t.mutate(c=(col("a") + 1) * 2),
     "SELECT *, (a + 1) * 2 AS c FROM t"),
    (lambda t: t.group_by("s").agg(n=qr.count()).filter(col("n") > 1),
     "SELECT s, COUNT(*) AS n FROM t GROUP BY s HAVING COUNT(*) > 1"),
    (lambda t: t.order_by("a").limit(3).filter(col("b") > 0),
     "SELECT * FROM (SELECT * FROM t ORDER BY a ASC LIMIT 3) AS _q1 WHERE b > 0 ORDER BY a ASC"),
    (lambda t: t.limit(10).limit(3),
     "SELECT * FROM t LIMIT 3"),
    (lambda t: t.limit(10, offset=5).limit(3, offset=2),
     "SELECT * FROM t LIMIT 3 OFFSET 7"),
    (lambda t: t.order_by("a").order_by(qr.desc("b")),
     "SELECT * FROM t ORDER BY b DESC, a ASC"),
    (lambda t: t.distinct().filter(col("a") > 0),
     "SELECT * FROM (SELECT DISTINCT * FROM t) AS _q1 WHERE a > 0"),
    (lambda t: t.filter((col("a") > 1) | (col("b") > 1)).filter(col("s") == "x"),
     "SELECT * FROM t WHERE (a > 1 OR b > 1) AND s = 'x'"),
    (lambda t: t.mutate(c=col("a") - (col("b") - 1)),
     "SELECT *, a - (b - 1) AS c FROM t"),
    (lambda t: t.mutate(n=-(col("a") + 1)),
     "SELECT *, -(a + 1) AS n FROM t"),
])
def test_rewrites(t, build, expected):
    assert flat(build(t)) == expected


def test_aggregate_after_limit_wraps(t):
    sql = flat(t.limit(5).agg(n=qr.count()))
    assert sql == "SELECT COUNT(*) AS n FROM (SELECT * FROM t LIMIT 5) AS _q1"


def test_aggregate_after_order_drops_the_order(t):
    assert flat(t.order_by("a").group_by("s").agg(n=qr.count())) == \
        "SELECT s, COUNT(*) AS n FROM t GROUP BY s"


def test_wrap_keeps_order_outside(t):
    q = t.order_by(qr.desc("a")).mutate(r=qr.row_number().over(order_by="b")).filter(
        col("r") < 3)
    sql = flat(q)
    assert sql.endswith("WHERE r < 3 ORDER BY a DESC")


def test_nested_aggregation_wraps(t):
    q = t.group_by("s").agg(n=qr.count()).agg(m=col("n").max())
    assert flat(q) == ("SELECT MAX(n) AS m FROM (SELECT s, COUNT(*) AS n FROM t GROUP BY s)"
                       " AS _q1")


def test_true_division_everywhere(t):
    q = t.mutate(r=col("a") / 2)
    assert "CAST(a AS DOUBLE) / 2" in flat(q)
    assert "CAST(a AS DOUBLE PRECISION) / 2" in q.compile("postgres", pretty=False)


# -- order carried through a wrap; clauses that read the projection (issue 13) -------------
def test_a_positional_key_becomes_the_output_it_names(con):
    con.execute("CREATE TABLE t (a INT, b INT, s TEXT)")
    q = con.sql("SELECT a AS x, b AS y FROM t ORDER BY 2 LIMIT 3")
    assert flat(q.select("y", "x")) == ("SELECT y, x FROM (SELECT a AS x, b AS y FROM t "
                                        "ORDER BY 2 LIMIT 3) AS _q1 ORDER BY y")


def test_a_sort_key_that_is_not_an_output_travels_hidden(t):
    q = t.order_by(qr.desc("a")).select("b").limit(2).filter(col("b") > 0)
    assert flat(q) == ("SELECT b FROM (SELECT b, a AS _qr_o1 FROM t ORDER BY a DESC LIMIT 2) "
                       "AS _q1 WHERE b > 0 ORDER BY _qr_o1 DESC")


def test_an_alias_inside_a_sort_expression_keeps_its_meaning(con):
    con.execute("CREATE TABLE t (a INT, b INT, s TEXT)")
    o = con.sql("SELECT a, a * 2 AS b2 FROM t ORDER BY -b2 LIMIT 1")
    assert flat(o.mutate(b2=col("a") * -1)) == (
        "SELECT a, a * -1 AS b2 FROM (SELECT a, a * 2 AS b2, -b2 AS _qr_o1 FROM t "
        "ORDER BY -b2 LIMIT 1) AS _q1 ORDER BY _qr_o1")
    # MySQL's projection cannot read an alias: the hidden key is the alias's definition
    assert "-(a * 2) AS _qr_o1" in wrap(o.tree, ["a", "b2"], "mysql").sql(dialect="mysql")


def test_positions_and_lateral_aliases_wrap_before_the_projection_changes(con):
    con.execute("CREATE TABLE t (a INT, b INT, s TEXT)")
    grouped = con.sql("SELECT a % 3 AS k, COUNT(*) AS n FROM t GROUP BY 1")
    assert flat(grouped.select("n")) == \
        "SELECT n FROM (SELECT a % 3 AS k, COUNT(*) AS n FROM t GROUP BY 1) AS _q1"
    lateral = con.sql("SELECT a + 1 AS x, x * 2 AS y FROM t")
    assert flat(lateral.select("y")) == \
        "SELECT y FROM (SELECT a + 1 AS x, x * 2 AS y FROM t) AS _q1"
    # a name inside its own definition is the source column: no wrap needed
    assert flat(con.table("t").mutate(a=col("a") * 2).filter(col("a") > 3).select("b")) == \
        "SELECT b FROM t WHERE a * 2 > 3"


def test_distinct_keeps_an_order_on_its_columns_and_drops_a_hidden_one(t):
    assert flat(t.order_by("a").limit(5).distinct()) == (
        "SELECT DISTINCT * FROM (SELECT * FROM t ORDER BY a ASC LIMIT 5) AS _q1 ORDER BY a ASC")
    assert flat(t.order_by("a").select("b").limit(5).distinct()) == (
        "SELECT DISTINCT b FROM (SELECT b, a AS _qr_o1 FROM t ORDER BY a ASC LIMIT 5) AS _q1")


def test_set_operation_operands_lose_their_order_and_share_one_with(con):
    con.execute("CREATE TABLE c AS SELECT 42 AS x")
    q = con.sql("WITH c AS (SELECT 1 AS x) SELECT x FROM c ORDER BY x")
    assert flat(q.union(con.table("c"))) == (
        "WITH c_1 AS (SELECT 1 AS x) SELECT x FROM c_1 AS c UNION ALL SELECT * FROM c")
