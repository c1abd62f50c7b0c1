"""What composing a query and generating its SQL cost: queryref against Ibis.

Four queries over the TPC-H Parquet files, each built with the library's own API on tables from
``con.read_parquet`` (DuckDB, embedded):

- ``chain6``: six steps on ``lineitem``: filter, mutate, select, group_by/agg, order_by, limit;
- ``tpch_q1``: TPC-H Q1 (one table, eight aggregates);
- ``tpch_q3``: TPC-H Q3 (customer, orders, lineitem joined, then filtered and aggregated);
- ``tpch_q5``: TPC-H Q5 (six tables joined, one join on two keys).

For each, the median over many repetitions (``timeit``) of:

- compose, cold: open the tables and build the query. Building checks column names, which needs
  each input's schema: queryref runs one zero-row query per table handle the first time
  (``con.read_parquet`` itself runs nothing); Ibis's ``read_parquet`` creates a view and reads its
  schema. So this is "first query of the session on fresh handles", DuckDB's Parquet-footer
  reads included;
- compose, warm: build the query again on handles whose schemas are already known (cached per
  handle): the pure cost of the composition API;
- SQL: generate the SQL text of an already-built query (queryref ``.sql``, Ibis
  ``ibis.to_sql(expr)``; both pretty-printed, in DuckDB's dialect);
- warm compose + SQL: both, on a new query each time: what an interactive loop pays per edit.

Each library runs in its own child process; the Ibis one can use another interpreter
(``--ibis-python``, for when Ibis cannot share queryref's environment) and never imports queryref.

    python benchmarks/bench_compose.py --data data/tpch-sf1
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

TABLES = ("lineitem", "orders", "customer", "supplier", "nation", "region")
CASES = {
    "chain6": "6 steps on lineitem: filter, mutate, select, group_by/agg, order_by, limit",
    "tpch_q1": "TPC-H Q1: lineitem, filter, 8 aggregates, order_by",
    "tpch_q3": "TPC-H Q3: 3 tables joined, filter, group_by/agg, order_by, limit",
    "tpch_q5": "TPC-H Q5: 6 tables joined (one on 2 keys), filter, group_by/agg, order_by",
}
# The tables each case reads: a cold build opens (and pays the schema of) only these.
USES = {
    "chain6": ("lineitem",),
    "tpch_q1": ("lineitem",),
    "tpch_q3": ("customer", "orders", "lineitem"),
    "tpch_q5": ("customer", "orders", "lineitem", "supplier", "nation", "region"),
}
MEASURES = {
    "cold": "compose, cold (ms)",
    "warm": "compose, warm (ms)",
    "sql": "SQL text (ms)",
    "warm_sql": "warm compose + SQL (ms)",
}
Q1_DATE = dt.date(1998, 9, 2)
Q3_DATE = dt.date(1995, 3, 15)
Q5_FROM, Q5_TO = dt.date(1994, 1, 1), dt.date(1995, 1, 1)
CHAIN_DATE = dt.date(1995, 1, 1)


def table_path(data: Path, name: str) -> str:
    """tpchgen-cli writes NAME.parquet, or a NAME/ directory of parts with --parts."""
    if (data / f"{name}.parquet").is_file():
        return str(data / f"{name}.parquet")
    if (data / name).is_dir():
        return str(data / name / "*.parquet")
    raise SystemExit(f"no {name} in {data}: run `make data` (or tpchgen-cli parquet ...) first")


# --- queryref ---------------------------------------------------------------------------------


def queryref_engine(data: Path) -> tuple[Callable[..., Any], dict[str, Callable[..., Any]],
                                         Callable[[Any], str]]:
    """(open tables, builders by case, sql of a query) for queryref."""
    import queryref as qr

    col = qr.col
    con = qr.connect()
    paths = {n: table_path(data, n) for n in TABLES}

    def open_tables(names: tuple[str, ...]) -> dict[str, Any]:
        return {n: con.read_parquet(paths[n]) for n in names}

    def revenue() -> Any:
        return col("l_extendedprice") * (1 - col("l_discount"))

    def chain6(t: dict[str, Any]) -> Any:
        return (t["lineitem"]
                .filter(col("l_shipdate") >= CHAIN_DATE)
                .mutate(revenue=revenue())
                .select("l_returnflag", "l_shipmode", "revenue")
                .group_by("l_returnflag", "l_shipmode")
                .agg(revenue=col("revenue").sum(), n=qr.count())
                .order_by(qr.desc("revenue"))
                .limit(10))

    def q1(t: dict[str, Any]) -> Any:
        return (t["lineitem"]
                .filter(col("l_shipdate") <= Q1_DATE)
                .group_by("l_returnflag", "l_linestatus")
                .agg(sum_qty=col("l_quantity").sum(),
                     sum_base_price=col("l_extendedprice").sum(),
                     sum_disc_price=revenue().sum(),
                     sum_charge=(revenue() * (1 + col("l_tax"))).sum(),
                     avg_qty=col("l_quantity").mean(),
                     avg_price=col("l_extendedprice").mean(),
                     avg_disc=col("l_discount").mean(),
                     count_order=qr.count())
                .order_by("l_returnflag", "l_linestatus"))

    def q3(t: dict[str, Any]) -> Any:
        return (t["customer"].filter(col("c_mktsegment") == "BUILDING")
                .join(t["orders"], left_on="c_custkey", right_on="o_custkey")
                .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
                .filter(col("o_orderdate") < Q3_DATE, col("l_shipdate") > Q3_DATE)
                .group_by("l_orderkey", "o_orderdate", "o_shippriority")
                .agg(revenue=revenue().sum())
                .order_by(qr.desc("revenue"), "o_orderdate")
                .limit(10))

    def q5(t: dict[str, Any]) -> Any:
        return (t["customer"]
                .join(t["orders"], left_on="c_custkey", right_on="o_custkey")
                .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
                .join(t["supplier"], "l.l_suppkey = r.s_suppkey AND l.c_nationkey = r.s_nationkey")
                .join(t["nation"], left_on="s_nationkey", right_on="n_nationkey")
                .join(t["region"], left_on="n_regionkey", right_on="r_regionkey")
                .filter(col("r_name") == "ASIA", col("o_orderdate") >= Q5_FROM,
                        col("o_orderdate") < Q5_TO)
                .group_by("n_name")
                .agg(revenue=revenue().sum())
                .order_by(qr.desc("revenue")))

    builders = {"chain6": chain6, "tpch_q1": q1, "tpch_q3": q3, "tpch_q5": q5}
    return open_tables, builders, lambda q: q.sql


# --- Ibis -------------------------------------------------------------------------------------


def ibis_engine(data: Path) -> tuple[Callable[..., Any], dict[str, Callable[..., Any]],
                                     Callable[[Any], str]]:
    """(open tables, builders by case, sql of a query) for Ibis on DuckDB."""
    import ibis
    from ibis import _

    con = ibis.duckdb.connect()
    paths = {n: table_path(data, n) for n in TABLES}

    def open_tables(names: tuple[str, ...]) -> dict[str, Any]:
        return {n: con.read_parquet(paths[n]) for n in names}

    def revenue() -> Any:
        return _.l_extendedprice * (1 - _.l_discount)

    def chain6(t: dict[str, Any]) -> Any:
        return (t["lineitem"]
                .filter(_.l_shipdate >= CHAIN_DATE)
                .mutate(revenue=revenue())
                .select("l_returnflag", "l_shipmode", "revenue")
                .group_by(["l_returnflag", "l_shipmode"])
                .agg(revenue=_.revenue.sum(), n=_.count())
                .order_by(ibis.desc("revenue"))
                .limit(10))

    def q1(t: dict[str, Any]) -> Any:
        return (t["lineitem"]
                .filter(_.l_shipdate <= Q1_DATE)
                .group_by(["l_returnflag", "l_linestatus"])
                .agg(sum_qty=_.l_quantity.sum(),
                     sum_base_price=_.l_extendedprice.sum(),
                     sum_disc_price=revenue().sum(),
                     sum_charge=(revenue() * (1 + _.l_tax)).sum(),
                     avg_qty=_.l_quantity.mean(),
                     avg_price=_.l_extendedprice.mean(),
                     avg_disc=_.l_discount.mean(),
                     count_order=_.count())
                .order_by(["l_returnflag", "l_linestatus"]))

    def q3(t: dict[str, Any]) -> Any:
        c, o, li = t["customer"], t["orders"], t["lineitem"]
        return (c.filter(c.c_mktsegment == "BUILDING")
                .join(o, _.c_custkey == o.o_custkey)
                .join(li, _.o_orderkey == li.l_orderkey)
                .filter(_.o_orderdate < Q3_DATE, _.l_shipdate > Q3_DATE)
                .group_by(["l_orderkey", "o_orderdate", "o_shippriority"])
                .agg(revenue=revenue().sum())
                .order_by([ibis.desc("revenue"), "o_orderdate"])
                .limit(10))

    def q5(t: dict[str, Any]) -> Any:
        c, o, li, s, n, r = (t[k] for k in USES["tpch_q5"])
        return (c.join(o, c.c_custkey == o.o_custkey)
                .join(li, o.o_orderkey == li.l_orderkey)
                .join(s, [li.l_suppkey == s.s_suppkey, c.c_nationkey == s.s_nationkey])
                .join(n, s.s_nationkey == n.n_nationkey)
                .join(r, n.n_regionkey == r.r_regionkey)
                .filter(_.r_name == "ASIA", _.o_orderdate >= Q5_FROM, _.o_orderdate < Q5_TO)
                .group_by("n_name")
                .agg(revenue=revenue().sum())
                .order_by(ibis.desc("revenue")))

    builders = {"chain6": chain6, "tpch_q1": q1, "tpch_q3": q3, "tpch_q5": q5}
    return open_tables, builders, lambda q: ibis.to_sql(q, dialect="duckdb")


ENGINES = {"queryref": ("queryref", queryref_engine), "ibis": ("Ibis", ibis_engine)}


# --- child: one library, every case -----------------------------------------------------------


def per_call(fn: Callable[[], Any], repeat: int, number: int | None = None) -> float:
    """Median seconds per call over ``repeat`` timeit repetitions of ``number`` calls each
    (``number`` picked so that one repetition takes about 50 ms when not given)."""
    timer = timeit.Timer(fn)
    if number is None:
        once = min(timer.repeat(repeat=3, number=1))
        number = max(1, int(0.05 / max(once, 1e-7)))
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def run_engine(engine: str, data: Path, repeat: int, cold_repeat: int) -> dict[str, Any]:
    try:
        open_tables, builders, to_sql = ENGINES[engine][1](data)
    except ImportError as exc:
        return {"skipped": f"{exc.name or exc} is not installed ({exc})"}
    results: dict[str, Any] = {}
    for case, build in builders.items():
        names = USES[case]
        def cold_build(b: Callable[..., Any] = build, n: Any = names) -> Any:
            return b(open_tables(n))

        cold = per_call(cold_build, cold_repeat, number=1)
        tables = open_tables(names)
        query = build(tables)  # warms the schema of every handle in `tables`
        text = to_sql(query)

        def warm_sql(b: Callable[..., Any] = build, t: Any = tables) -> Any:
            return to_sql(b(t))

        results[case] = {
            "cold": cold,
            "warm": per_call(functools.partial(build, tables), repeat),
            "sql": per_call(functools.partial(to_sql, query), repeat),
            "warm_sql": per_call(warm_sql, repeat),
            "sql_chars": len(text),
            "sql_lines": text.count("\n") + 1,
        }
    return {"cases": results, "versions": versions()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("queryref", "ibis-framework", "sqlglot", "duckdb", "pyarrow", "pandas"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found


# --- parent: one child per library, a side-by-side table --------------------------------------


def run_child(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    python = str(args.ibis_python) if engine == "ibis" and args.ibis_python else sys.executable
    cmd = [python, os.path.abspath(__file__), "--one", engine, "--data", str(args.data),
           "--repeat", str(args.repeat), "--cold-repeat", str(args.cold_repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {last[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def print_table(results: dict[str, dict[str, Any]]) -> None:
    engines = [e for e in ENGINES if "cases" in results.get(e, {})]
    for engine in ENGINES:
        if engine not in engines and engine in results:
            note = results[engine].get("skipped") or results[engine].get("error")
            print(f"{ENGINES[engine][0]}: not measured: {note}")
    if not engines:
        return
    labels = [ENGINES[e][0] for e in engines]
    width = 10 * len(engines)
    print(f"{'':9}" + "".join(f"  {MEASURES[m]:>{width}}" for m in MEASURES)
          + f"  {'SQL lines':>{width}}")
    print(f"{'case':9}" + ("  " + "".join(f"{x:>10}" for x in labels)) * (len(MEASURES) + 1))
    print("-" * (9 + (len(MEASURES) + 1) * (width + 2)))
    for case in CASES:
        cells = ""
        for m in MEASURES:
            cells += "  " + "".join(f"{results[e]['cases'][case][m] * 1e3:>10.3f}"
                                    for e in engines)
        cells += "  " + "".join(f"{results[e]['cases'][case]['sql_lines']:>10}" for e in engines)
        print(f"{case:9}{cells}")
    print()
    for case, what in CASES.items():
        print(f"{case:9} {what}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="TPC-H Parquet directory (default data/tpch-sf1)")
    parser.add_argument("--repeat", type=int, default=25,
                        help="timeit repetitions for the warm measures (default 25)")
    parser.add_argument("--cold-repeat", type=int, default=15,
                        help="fresh-handle builds timed for the cold measure (default 15)")
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES),
                        help="which libraries to measure (default: all)")
    parser.add_argument("--ibis-python", type=Path, default=None,
                        help="the Python that runs the Ibis side (default: this one), e.g. "
                             ".venv-bench-ibis/bin/python when Ibis needs its own environment")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one", choices=list(ENGINES), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.one:
        print(json.dumps(run_engine(args.one, args.data, args.repeat, args.cold_repeat)))
        return
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"data: {args.data}; medians of {args.repeat} timeit repetitions "
          f"({args.cold_repeat} for cold builds); load average before: {load}\n")
    results = {e: run_child(e, args) for e in args.engines}
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "compose", "data": str(args.data),
                                         "repeat": args.repeat, "cold_repeat": args.cold_repeat,
                                         "load_avg_after": os.getloadavg(),
                                         "results": results}, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
