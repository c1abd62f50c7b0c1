"""TPC-H (tpchgen-cli, scale 0.01) on every engine: queries built with the API give the answers
plain SQL gives on DuckDB over the same Parquet files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import queryref as qr

from .qr_conformance import Engine, same

TABLES = ("lineitem", "orders", "customer", "nation", "region", "supplier")


# fakesnow's server takes about 3 ms a row to INSERT (it transpiles every statement), so
# Snowflake gets TPC-H at a tenth of the scale: 6k lineitem rows load in about 20 s.
SCALES = {"snowflake": "0.001"}
DEFAULT_SCALE = "0.01"


@pytest.fixture(scope="session")
def _tpch_dirs() -> dict[str, Path]:
    return {}


@pytest.fixture
def tpch_dir(engine: Engine, _tpch_dirs: dict[str, Path],
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    scale = SCALES.get(engine.name, DEFAULT_SCALE)
    if scale not in _tpch_dirs:
        here = os.path.dirname(sys.executable)
        exe = shutil.which("tpchgen-cli", path=here + os.pathsep + os.environ.get("PATH", ""))
        if exe is None:
            pytest.skip("tpchgen-cli is not installed (it is in the dev extra)")
        out = tmp_path_factory.mktemp(f"tpch-{scale}")
        subprocess.run([exe, "parquet", "-s", scale, f"--tables={','.join(TABLES)}",
                        f"--output-dir={out}"], check=True, capture_output=True)
        _tpch_dirs[scale] = out
    return _tpch_dirs[scale]


@pytest.fixture(scope="session")
def _tpch_loaded() -> dict[str, dict[str, qr.QueryRef]]:
    return {}


@pytest.fixture
def tpch(engine: Engine, tpch_dir: Path,
         _tpch_loaded: dict[str, dict[str, qr.QueryRef]]) -> dict[str, qr.QueryRef]:
    if engine.name not in _tpch_loaded:
        _tpch_loaded[engine.name] = {
            t: engine.con.create_table(f"h_{t}", _plain_strings(tpch_dir / f"{t}.parquet"),
                                       replace=True)
            for t in TABLES
        }
        if engine.name == "mariadb":  # without keys its join order makes Q5 take ~20 s
            for table, key in KEYS:
                engine.con.execute(f"CREATE INDEX ix_{key} ON h_{table} ({key})")
    return _tpch_loaded[engine.name]


KEYS = (("lineitem", "l_orderkey"), ("orders", "o_orderkey"), ("customer", "c_custkey"),
        ("supplier", "s_suppkey"), ("nation", "n_nationkey"), ("region", "r_regionkey"))


def _plain_strings(path: Path) -> pa.Table:
    """tpchgen-cli writes string_view columns; not every engine's loader takes them."""
    table = pq.read_table(path)
    schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_string_view(f.type)
                        else f for f in table.schema])
    return table.cast(schema)


def reference(tpch_dir: Path, sql: str):
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{tpch_dir / t}.parquet')")
    return con.sql(sql).df()


def _d(s: str) -> qr.Expr:
    return qr.lit(dt.date.fromisoformat(s))


def q1(t: dict[str, qr.QueryRef]) -> qr.QueryRef:
    li = t["lineitem"]
    price = qr.col("l_extendedprice")
    disc = price * (1 - qr.col("l_discount"))
    return (li.filter(qr.col("l_shipdate") <= _d("1998-09-02"))
            .group_by("l_returnflag", "l_linestatus")
            .agg(sum_qty=qr.col("l_quantity").sum(), sum_base_price=price.sum(),
                 sum_disc_price=disc.sum(), sum_charge=(disc * (1 + qr.col("l_tax"))).sum(),
                 avg_qty=qr.col("l_quantity").mean(), avg_disc=qr.col("l_discount").mean(),
                 count_order=qr.count())
            .order_by("l_returnflag", "l_linestatus"))


Q1 = """SELECT l_returnflag, l_linestatus, SUM(l_quantity) AS sum_qty,
  SUM(l_extendedprice) AS sum_base_price, SUM(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
  SUM(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, AVG(l_quantity) AS avg_qty,
  AVG(l_discount) AS avg_disc, COUNT(*) AS count_order
FROM lineitem WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""


def q3(t: dict[str, qr.QueryRef]) -> qr.QueryRef:
    c = t["customer"].filter(qr.col("c_mktsegment") == "BUILDING")
    o = t["orders"].filter(qr.col("o_orderdate") < _d("1995-03-15"))
    li = t["lineitem"].filter(qr.col("l_shipdate") > _d("1995-03-15"))
    j = (c.join(o, left_on="c_custkey", right_on="o_custkey")
         .join(li, left_on="o_orderkey", right_on="l_orderkey"))
    return (j.group_by("l_orderkey", "o_orderdate", "o_shippriority")
            .agg(revenue=(qr.col("l_extendedprice") * (1 - qr.col("l_discount"))).sum())
            .order_by(qr.desc("revenue"), "o_orderdate", "l_orderkey").limit(10)
            .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority"))


Q3 = """SELECT l_orderkey, SUM(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate,
  o_shippriority FROM customer, orders, lineitem
WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate < DATE '1995-03-15' AND l_shipdate > DATE '1995-03-15'
GROUP BY l_orderkey, o_orderdate, o_shippriority
ORDER BY revenue DESC, o_orderdate, l_orderkey LIMIT 10"""


def q5(t: dict[str, qr.QueryRef]) -> qr.QueryRef:
    o = t["orders"].filter(qr.col("o_orderdate") >= _d("1994-01-01"),
                           qr.col("o_orderdate") < _d("1995-01-01"))
    r = t["region"].filter(qr.col("r_name") == "ASIA")
    j = (t["customer"].join(o, left_on="c_custkey", right_on="o_custkey")
         .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
         .join(t["supplier"], on=qr.col("l_suppkey") == qr.col("s_suppkey"))
         .filter(qr.col("c_nationkey") == qr.col("s_nationkey"))
         .join(t["nation"], left_on="s_nationkey", right_on="n_nationkey")
         .join(r, left_on="n_regionkey", right_on="r_regionkey"))
    return (j.group_by("n_name")
            .agg(revenue=(qr.col("l_extendedprice") * (1 - qr.col("l_discount"))).sum())
            .order_by(qr.desc("revenue")))


Q5 = """SELECT n_name, SUM(l_extendedprice * (1 - l_discount)) AS revenue
FROM customer, orders, lineitem, supplier, nation, region
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND l_suppkey = s_suppkey
  AND c_nationkey = s_nationkey AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey
  AND r_name = 'ASIA' AND o_orderdate >= DATE '1994-01-01' AND o_orderdate < DATE '1995-01-01'
GROUP BY n_name ORDER BY revenue DESC"""


def q6(t: dict[str, qr.QueryRef]) -> qr.QueryRef:
    return t["lineitem"].filter(
        qr.col("l_shipdate") >= _d("1994-01-01"), qr.col("l_shipdate") < _d("1995-01-01"),
        qr.col("l_discount").between(0.05, 0.07), qr.col("l_quantity") < 24,
    ).agg(revenue=(qr.col("l_extendedprice") * qr.col("l_discount")).sum())


Q6 = """SELECT SUM(l_extendedprice * l_discount) AS revenue FROM lineitem
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24"""


def q10(t: dict[str, qr.QueryRef]) -> qr.QueryRef:
    o = t["orders"].filter(qr.col("o_orderdate") >= _d("1993-10-01"),
                           qr.col("o_orderdate") < _d("1994-01-01"))
    li = t["lineitem"].filter(qr.col("l_returnflag") == "R")
    j = (t["customer"].join(o, left_on="c_custkey", right_on="o_custkey")
         .join(li, left_on="o_orderkey", right_on="l_orderkey")
         .join(t["nation"], left_on="c_nationkey", right_on="n_nationkey"))
    return (j.group_by("c_custkey", "c_name", "n_name")
            .agg(revenue=(qr.col("l_extendedprice") * (1 - qr.col("l_discount"))).sum())
            .order_by(qr.desc("revenue"), "c_custkey").limit(20))


Q10 = """SELECT c_custkey, c_name, n_name, SUM(l_extendedprice * (1 - l_discount)) AS revenue
FROM customer, orders, lineitem, nation
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND o_orderdate >= DATE '1993-10-01'
  AND o_orderdate < DATE '1994-01-01' AND l_returnflag = 'R' AND c_nationkey = n_nationkey
GROUP BY c_custkey, c_name, n_name ORDER BY revenue DESC, c_custkey LIMIT 20"""

QUERIES = {"q1": (q1, Q1), "q3": (q3, Q3), "q5": (q5, Q5), "q6": (q6, Q6), "q10": (q10, Q10)}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_tpch_matches_duckdb_sql(engine: Engine, tpch, tpch_dir: Path, name: str):
    build, sql = QUERIES[name]
    got = build(tpch).to_pandas()
    want = reference(tpch_dir, sql)
    same(got, want, ordered=name != "q5")
