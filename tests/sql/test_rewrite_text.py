"""The composition rewrites on SQL text alone: no database, no connection.

sqlglot's ``validate_identity`` style: a query (SQL and its output column names), the steps
applied to it, and the SQL that comes out. The steps are the ones ``QueryRef``'s verbs run
(:mod:`queryref.sql.compose`, :mod:`queryref.sql.join`) on a :class:`Frame`, which carries the
column list a database would otherwise report. tests/sql/test_rewrite.py checks the same
rewrites through the public API on DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlglot import exp, parse_one

from queryref.errors import ParameterError, UnknownColumnError
from queryref.sql import compose
from queryref.sql import rewrite as rw
from queryref.sql.compose import Frame
from queryref.sql.join import join, set_operation
from queryref.sql.text import column, parse_expression

Step = Callable[[Frame], Frame]


# -- the steps, as QueryRef's verbs call them ---------------------------------------------------
def frame(sql: str, columns: str, dialect: str = "duckdb") -> Frame:
    return Frame(parse_one(sql, read=dialect), tuple(columns.split()), dialect,
                 case_insensitive=dialect == "duckdb")


def expr(f: Frame, sql: str) -> exp.Expr:
    node = parse_expression(sql, f.dialect)
    f.check([node])
    return node


def where(*predicates: str) -> Step:
    return lambda f: f.with_tree(compose.filter_rows(f, [expr(f, p) for p in predicates]))


def select(*names: str, **named: str) -> Step:
    def step(f: Frame) -> Frame:
        items = [(n, column(f.resolve(n))) for n in names]
        items += [(n, expr(f, sql)) for n, sql in named.items()]
        return f.with_tree(compose.project(f, items), [n for n, _ in items])
    return step


def mutate(**named: str) -> Step:
    def step(f: Frame) -> Frame:
        new = {n: expr(f, sql) for n, sql in named.items()}
        items = [(c, new.pop(c) if c in new else column(c)) for c in f.columns]
        items += list(new.items())
        return f.with_tree(compose.project(f, items), [n for n, _ in items])
    return step


def group(*keys: str, **aggs: str) -> Step:
    def step(f: Frame) -> Frame:
        k = [(n, column(f.resolve(n))) for n in keys]
        a = [(n, expr(f, sql)) for n, sql in aggs.items()]
        return f.with_tree(compose.aggregate(f, k, a), [*keys, *aggs])
    return step


def order(*keys: str) -> Step:
    def step(f: Frame) -> Frame:
        ordered = [exp.Ordered(this=expr(f, k.lstrip("-")), desc=k.startswith("-"),
                               nulls_first=False) for k in keys]
        return f.with_tree(compose.order(f, ordered))
    return step


def limit(n: int | None, offset: int = 0) -> Step:
    return lambda f: f.with_tree(compose.limit(f, n, offset))


def distinct() -> Step:
    return lambda f: f.with_tree(compose.distinct(f))


def sample(fraction: float, seed: int | None = None) -> Step:
    return lambda f: f.with_tree(compose.sample(f, fraction, seed))


def run(f: Frame, *steps: Step) -> str:
    for step in steps:
        f = step(f)
    return f.tree.sql(dialect=f.dialect)


T = ("SELECT * FROM t", "a b s")


# -- one SELECT as long as the clauses allow it; a wrap where they do not -----------------------
@pytest.mark.parametrize("source,steps,expected", [
    (T, [where("a > 1"), where("b < 2")],
     "SELECT * FROM t WHERE a > 1 AND b < 2"),
    (T, [where("a > 1 OR b > 1"), where("s = 'x'")],
     "SELECT * FROM t WHERE (a > 1 OR b > 1) AND s = 'x'"),
    (T, [mutate(c="a + b"), where("c > 3"), select("a", "c")],
     "SELECT a, a + b AS c FROM t WHERE a + b > 3"),
    (T, [mutate(c="(a + 1) * 2")],
     "SELECT *, (a + 1) * 2 AS c FROM t"),
    (T, [mutate(c="a - (b - 1)")],
     "SELECT *, a - (b - 1) AS c FROM t"),
    (T, [mutate(a="a * 2"), where("a > 3"), select("b")],  # a name inside its own definition
     "SELECT b FROM t WHERE a * 2 > 3"),
    (T, [limit(10), limit(3)],
     "SELECT * FROM t LIMIT 3"),
    (T, [limit(10, 5), limit(3, 2)],
     "SELECT * FROM t LIMIT 3 OFFSET 7"),
    (T, [order("a"), order("-b")],
     "SELECT * FROM t ORDER BY b DESC, a ASC"),
    (T, [sample(0.5, seed=7)],  # a plain table: sampled itself
     "SELECT * FROM t TABLESAMPLE BERNOULLI (50.0 PERCENT) REPEATABLE (7)"),
    (T, [where("a > 1"), sample(0.5, seed=7)],  # a query: sampled as a subquery
     "SELECT * FROM (SELECT * FROM t WHERE a > 1) AS _q1 "
     "TABLESAMPLE BERNOULLI (50.0 PERCENT) REPEATABLE (7)"),
])
def test_steps(source, steps, expected):
    assert run(frame(*source), *steps) == expected


# -- a column drawn by random() (or uuid(), nextval, ...) is read by name, never copied ----------
R = ("SELECT a, RANDOM() AS r FROM t", "a r")


@pytest.mark.parametrize("source,steps,expected", [
    (R, [where("r < 0.5")],
     "SELECT * FROM (SELECT a, RANDOM() AS r FROM t) AS _q1 WHERE r < 0.5"),
    (R, [mutate(d="r * 2")],
     "SELECT *, r * 2 AS d FROM (SELECT a, RANDOM() AS r FROM t) AS _q1"),
    (R, [order("r")],
     "SELECT * FROM (SELECT a, RANDOM() AS r FROM t) AS _q1 ORDER BY r ASC"),
    (R, [group("r", n="COUNT(*)")],
     "SELECT r, COUNT(*) AS n FROM (SELECT a, RANDOM() AS r FROM t) AS _q1 GROUP BY r"),
    (("SELECT a, nextval('s') AS id FROM t", "a id"), [where("id > 3")],
     "SELECT * FROM (SELECT a, NEXTVAL('s') AS id FROM t) AS _q1 WHERE id > 3"),
    (R, [where("a > 1"), limit(5)],  # (what does not read r merges as before)
     "SELECT a, RANDOM() AS r FROM t WHERE a > 1 LIMIT 5"),
])
def test_a_random_column_is_read_by_name(source, steps, expected):
    """Bug: ``filter(r < 0.5)`` was ``WHERE RANDOM() < 0.5`` beside ``RANDOM() AS r``: two
    draws, so rows came back with r >= 0.5 (likewise mutate, order_by and group_by)."""
    assert run(frame(*source), *steps) == expected


# -- a filter after a LIMIT, an aggregate, a window, DISTINCT --------------------------------
@pytest.mark.parametrize("source,steps,expected", [
    (T, [order("a"), limit(3), where("b > 0")],
     "SELECT * FROM (SELECT * FROM t ORDER BY a ASC LIMIT 3) AS _q1 WHERE b > 0 ORDER BY a ASC"),
    (T, [group("s", n="COUNT(*)"), where("n > 1")],
     "SELECT s, COUNT(*) AS n FROM t GROUP BY s HAVING COUNT(*) > 1"),
    (T, [distinct(), where("a > 0")],
     "SELECT * FROM (SELECT DISTINCT * FROM t) AS _q1 WHERE a > 0"),
    (T, [order("-a"), mutate(r="ROW_NUMBER() OVER (ORDER BY b)"), where("r < 3")],
     "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY b) AS r FROM t) AS _q1 WHERE r < 3 "
     "ORDER BY a DESC"),
    # HAVING would read the alias ``a`` (DuckDB), not the source column: filter the result
    (("SELECT * FROM t", "a b"), [group("b", a="SUM(a)"), where("a > 1")],
     "SELECT * FROM (SELECT b, SUM(a) AS a FROM t GROUP BY b) AS _q1 WHERE a > 1"),
])
def test_filter_after(source, steps, expected):
    assert run(frame(*source), *steps) == expected


def test_a_filter_after_an_aggregate_wraps_on_mysql():
    f = frame("SELECT * FROM t", "a b s", "mysql")
    assert run(f, group("s", n="COUNT(*)"), where("n > 1")) == (
        "SELECT * FROM (SELECT s, COUNT(*) AS n FROM t GROUP BY s) AS _q1 WHERE n > 1")


def test_aggregates():
    f = frame(*T)
    assert run(f, limit(5), group(n="COUNT(*)")) == \
        "SELECT COUNT(*) AS n FROM (SELECT * FROM t LIMIT 5) AS _q1"
    assert run(f, order("a"), group("s", n="COUNT(*)")) == \
        "SELECT s, COUNT(*) AS n FROM t GROUP BY s"
    assert run(f, group("s", n="COUNT(*)"), group(m="MAX(n)")) == \
        "SELECT MAX(n) AS m FROM (SELECT s, COUNT(*) AS n FROM t GROUP BY s) AS _q1"


# -- a projection after clauses that read it (ORDER BY / GROUP BY positions, lateral aliases) --
def test_a_positional_key_becomes_the_output_it_names():
    f = frame("SELECT a AS x, b AS y FROM t ORDER BY 2 LIMIT 3", "x y")
    assert run(f, select("y", "x")) == (
        "SELECT y, x FROM (SELECT a AS x, b AS y FROM t ORDER BY 2 LIMIT 3) AS _q1 ORDER BY y")


def test_positions_and_lateral_aliases_wrap_before_the_projection_changes():
    assert run(frame("SELECT a % 3 AS k, COUNT(*) AS n FROM t GROUP BY 1", "k n"),
               select("n")) == \
        "SELECT n FROM (SELECT a % 3 AS k, COUNT(*) AS n FROM t GROUP BY 1) AS _q1"
    assert run(frame("SELECT a + 1 AS x, x * 2 AS y FROM t", "x y"), select("y")) == \
        "SELECT y FROM (SELECT a + 1 AS x, x * 2 AS y FROM t) AS _q1"


def test_an_order_key_the_projection_redefines_is_qualified_or_wrapped():
    f = frame(*T)
    assert run(f, order("a"), mutate(a="b + 1")) == \
        "SELECT b + 1 AS a, b, s FROM t ORDER BY t.a ASC"
    assert run(frame("SELECT x.a, y.b FROM x JOIN y ON x.k = y.k ORDER BY a", "a b"),
               mutate(a="b + 1")) == \
        "SELECT y.b + 1 AS a, y.b FROM x JOIN y ON x.k = y.k ORDER BY x.a"
    # no single source to name the column by: the query is wrapped first
    assert run(frame("SELECT * FROM x JOIN y ON x.k = y.k ORDER BY a", "a b"),
               mutate(a="b + 1")) == ("SELECT b + 1 AS a, b FROM (SELECT * FROM x JOIN y ON "
                                      "x.k = y.k) AS _q1 ORDER BY _q1.a")


# -- ORDER BY carried through a wrap ------------------------------------------------------------
def test_a_sort_key_that_is_not_an_output_travels_hidden():
    assert run(frame(*T), order("-a"), select("b"), limit(2), where("b > 0")) == (
        "SELECT b FROM (SELECT b, a AS _qr_o1 FROM t ORDER BY a DESC LIMIT 2) AS _q1 "
        "WHERE b > 0 ORDER BY _qr_o1 DESC")


def test_an_alias_inside_a_sort_expression_keeps_its_meaning():
    source = "SELECT a, a * 2 AS b2 FROM t ORDER BY -b2 LIMIT 1"
    assert run(frame(source, "a b2"), mutate(b2="a * -1")) == (
        "SELECT a, a * -1 AS b2 FROM (SELECT a, a * 2 AS b2, -b2 AS _qr_o1 FROM t "
        "ORDER BY -b2 LIMIT 1) AS _q1 ORDER BY _qr_o1")
    # MySQL's projection cannot read an alias: the hidden key is the alias's definition
    assert "-(a * 2) AS _qr_o1" in rw.wrap(parse_one(source), ["a", "b2"], "mysql").sql("mysql")


def test_distinct_keeps_an_order_on_its_columns_and_drops_a_hidden_one():
    f = frame(*T)
    assert run(f, order("a"), limit(5), distinct()) == (
        "SELECT DISTINCT * FROM (SELECT * FROM t ORDER BY a ASC LIMIT 5) AS _q1 ORDER BY a ASC")
    assert run(f, order("a"), select("b"), limit(5), distinct()) == (
        "SELECT DISTINCT b FROM (SELECT b, a AS _qr_o1 FROM t ORDER BY a ASC LIMIT 5) AS _q1")


def test_a_query_that_reads_its_rows_drops_an_order_no_limit_needs():
    assert exp.select("COUNT(*)").from_(rw.subquery(parse_one("SELECT a FROM t ORDER BY a"))) \
        .sql() == "SELECT COUNT(*) FROM (SELECT a FROM t) AS _q"


# -- duplicate output names ---------------------------------------------------------------------
def test_a_wrap_gives_duplicate_names_back():
    f = frame("SELECT x AS a, y AS a FROM t LIMIT 5", "a a")
    assert run(f, distinct()) == (
        "SELECT DISTINCT a, _qr_d1 AS a FROM (SELECT x AS a, y AS _qr_d1 FROM t LIMIT 5) AS _q1")
    with pytest.raises(ParameterError, match="ambiguous"):
        f.resolve("a")


def test_names_resolve_by_the_engine_rules():
    assert frame("SELECT * FROM t", "Status n").resolve("status") == "Status"  # DuckDB
    assert not frame("SELECT * FROM t", "Status n", "postgres").has("status")
    assert frame("SELECT * FROM t", "AMOUNT", "snowflake").resolve("amount") == "AMOUNT"
    with pytest.raises(ParameterError, match="ambiguous"):
        frame("SELECT * FROM t", "Status status").resolve("status")
    with pytest.raises(UnknownColumnError):
        expr(frame(*T), "nope + 1")


# -- CTEs: a query's WITH names stay its own ----------------------------------------------------
def test_a_subquery_in_a_step_does_not_read_the_query_s_cte():
    f = frame("WITH c AS (SELECT 1 AS x) SELECT x FROM c", "x")
    assert run(f, where("x IN (SELECT x FROM c)")) == (
        "WITH c_1 AS (SELECT 1 AS x) SELECT x FROM c_1 AS c WHERE x IN (SELECT x FROM c)")


def test_a_wrap_moves_the_with_to_the_top():
    f = frame("WITH c AS (SELECT 1 AS x) SELECT x FROM c LIMIT 1", "x")
    assert run(f, where("x > 0")) == (
        "WITH c AS (SELECT 1 AS x) SELECT * FROM (SELECT x FROM c LIMIT 1) AS _q1 WHERE x > 0")


# -- set operations -----------------------------------------------------------------------------
def test_set_operation_operands_lose_their_order_and_share_one_with():
    left = frame("WITH c AS (SELECT 1 AS x) SELECT x FROM c ORDER BY x", "x")
    assert set_operation(left, frame("SELECT * FROM c", "x"), exp.Union,
                         distinct=False).sql("duckdb") == (
        "WITH c_1 AS (SELECT 1 AS x) SELECT x FROM c_1 AS c UNION ALL SELECT * FROM c")


def test_a_limited_operand_is_wrapped_and_a_set_operation_is_wrapped_before_a_filter():
    left = frame("SELECT a FROM t ORDER BY a LIMIT 2", "a")
    union = set_operation(left, frame("SELECT a FROM u", "a"), exp.Union, distinct=True)
    assert union.sql("duckdb") == (
        "SELECT * FROM (SELECT a FROM t ORDER BY a LIMIT 2) AS _q1 UNION SELECT a FROM u")
    assert run(left.with_tree(union), where("a > 1")) == (
        "SELECT * FROM (SELECT * FROM (SELECT a FROM t ORDER BY a LIMIT 2) AS _q1 UNION "
        "SELECT a FROM u) AS _q2 WHERE a > 1")


def test_set_operations_need_the_same_number_of_columns():
    with pytest.raises(ParameterError, match="same number of columns"):
        set_operation(frame(*T), frame("SELECT a FROM u", "a"), exp.Union, distinct=False)


# -- joins --------------------------------------------------------------------------------------
ORDERS = ("SELECT * FROM orders", "id region cid")
CUSTOMERS = ("SELECT * FROM customers", "cid name region")


def test_colliding_names_get_suffixes_and_the_key_is_kept_once():
    tree, names = join(frame(*ORDERS), frame(*CUSTOMERS), on="cid", how="left")
    assert names == ["id", "region", "cid", "name", "region_right"]
    assert tree.sql("duckdb") == (
        "SELECT l.id, l.region, l.cid, r.name, r.region AS region_right FROM orders AS l "
        "LEFT JOIN customers AS r ON l.cid = r.cid")
    _, names = join(frame(*ORDERS), frame(*CUSTOMERS), on="cid", suffixes=("_o", "_c"))
    assert names == ["id", "region_o", "cid", "name", "region_c"]


def test_an_outer_join_coalesces_its_key_and_names_equal_but_for_case_collide():
    tree, names = join(frame("SELECT * FROM a", "k Status"), frame("SELECT * FROM b", "k status"),
                       on="k", how="outer")
    assert names == ["k", "Status", "status_right"]
    assert tree.sql("duckdb") == (
        'SELECT COALESCE(l.k, r.k) AS k, l."Status", r.status AS status_right FROM a AS l '
        "FULL JOIN b AS r ON l.k = r.k")


def test_a_predicate_is_qualified_and_an_ambiguous_name_refused():
    tree, _ = join(frame(*ORDERS), frame("SELECT * FROM c", "cust label"), on="cid = cust")
    assert tree.sql("duckdb") == (
        "SELECT l.id, l.region, l.cid, r.cust, r.label FROM orders AS l JOIN c AS r "
        "ON l.cid = r.cust")
    with pytest.raises(ParameterError, match="both sides"):
        join(frame(*ORDERS), frame(*CUSTOMERS), on="region = 'x'")


def test_semi_and_anti_joins_are_exists():
    tree, names = join(frame(*ORDERS), frame(*CUSTOMERS), on="cid", how="anti")
    assert names == ["id", "region", "cid"]
    assert tree.sql("duckdb") == (
        "SELECT l.id, l.region, l.cid FROM orders AS l WHERE NOT EXISTS(SELECT 1 FROM "
        "customers AS r WHERE l.cid = r.cid)")


def test_a_chain_of_joins_stays_flat_and_a_filtered_side_is_a_subquery():
    first, names = join(frame(*ORDERS), frame(*CUSTOMERS), on="cid")
    nations = frame("SELECT * FROM nation WHERE n > 0", "region n")
    tree, names = join(Frame(first, tuple(names)), nations,
                       left_on="region_right", right_on="region")
    assert names == ["id", "region", "cid", "name", "region_right", "region_right_right", "n"]
    assert tree.sql("duckdb") == (
        "SELECT l.id, l.region, l.cid, r.name, r.region AS region_right, "
        "r2.region AS region_right_right, r2.n FROM orders AS l JOIN customers AS r "
        "ON l.cid = r.cid JOIN (SELECT * FROM nation WHERE n > 0) AS r2 ON r.region = r2.region")
