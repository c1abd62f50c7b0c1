"""CTE scoping on SQL text alone: renaming where names would collide, merging two WITH lists."""

from __future__ import annotations

from sqlglot import parse_one

from queryref.sql.ctes import engine_key, merge, plain_key, private


def sql(tree) -> str:
    return tree.sql(dialect="duckdb")


def test_no_collision_leaves_the_tree_alone():
    host = parse_one("WITH c AS (SELECT 1 AS x) SELECT x FROM c")
    assert private(host, [parse_one("SELECT * FROM d")], plain_key) is host


def test_a_colliding_cte_is_renamed_with_its_references_and_their_alias():
    host = parse_one("WITH c AS (SELECT 1 AS x), d AS (SELECT c.x FROM c) "
                     "SELECT c.x FROM c JOIN d ON c.x = d.x")
    out = private(host, [parse_one("SELECT x FROM c")], plain_key)
    assert sql(out) == ("WITH c_1 AS (SELECT 1 AS x), d AS (SELECT c.x FROM c_1 AS c) "
                        "SELECT c.x FROM c_1 AS c JOIN d ON c.x = d.x")


def test_a_nested_cte_of_the_same_name_keeps_its_own_references():
    host = parse_one("WITH c AS (SELECT 1 AS x) SELECT * FROM c, "
                     "(WITH c AS (SELECT 2 AS y) SELECT y FROM c) AS s")
    out = private(host, [parse_one("SELECT 1 FROM c")], plain_key)
    assert sql(out) == ("WITH c_1 AS (SELECT 1 AS x) SELECT * FROM c_1 AS c, "
                        "(WITH c AS (SELECT 2 AS y) SELECT y FROM c) AS s")


def test_the_fresh_name_is_free_on_both_sides():
    host = parse_one("WITH c AS (SELECT 1 AS x) SELECT x FROM c, c_1")
    out = private(host, [parse_one("SELECT * FROM c, c_2")], plain_key)
    assert sql(out) == "WITH c_3 AS (SELECT 1 AS x) SELECT x FROM c_3 AS c, c_1"


def test_names_match_by_the_engines_rules():
    host = parse_one('WITH "C" AS (SELECT 1 AS x) SELECT x FROM "C"', read="postgres")
    guest = parse_one("SELECT * FROM c", read="postgres")
    # PostgreSQL: "C" and c are two names, but renaming is only ever too careful, never wrong
    out = private(host, [guest], engine_key("postgres", False))
    assert out.sql(dialect="postgres") == \
        'WITH "C_1" AS (SELECT 1 AS x) SELECT x FROM "C_1" AS "C"'
    assert sql(private(parse_one("WITH C AS (SELECT 1) SELECT * FROM c"),
                       [guest], plain_key)) == 'WITH "C_1" AS (SELECT 1) SELECT * FROM "C_1" AS c'


def test_merge_renames_each_side_away_from_the_other():
    left = parse_one("WITH c AS (SELECT 1 AS x) SELECT x FROM c")
    right = parse_one("WITH d AS (SELECT x FROM c) SELECT x FROM d")  # c: the real table
    this, other, with_ = merge(left, right, plain_key)
    assert [cte.alias for cte in with_.expressions] == ["c_1", "d"]
    assert sql(this) == "SELECT x FROM c_1 AS c"
    assert sql(other) == "SELECT x FROM d"
    assert sql(with_.expressions[1].this) == "SELECT x FROM c"


def test_merge_of_the_same_query_twice():
    q = parse_one("WITH c AS (SELECT 1 AS x) SELECT x FROM c")
    this, other, with_ = merge(q, q, plain_key)
    names = [cte.alias for cte in with_.expressions]
    assert len(set(names)) == 2
    assert {sql(this), sql(other)} == {f"SELECT x FROM {n} AS c" if n != "c" else
                                       "SELECT x FROM c" for n in names}


def test_recursive_ctes_stay_recursive():
    q = parse_one("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r "
                  "WHERE n < 3) SELECT n FROM r")
    _, _, with_ = merge(q, parse_one("SELECT n FROM r"), plain_key)
    assert with_.args["recursive"]
    assert sql(with_).startswith("WITH RECURSIVE r_1 AS (SELECT 1 AS n UNION ALL SELECT n + 1 "
                                  "FROM r_1 AS r")
