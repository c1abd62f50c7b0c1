"""The wide-row matrix: every row shape through every in-memory sink, each in a fresh process.

A result far over a small budget (``--budget``, default 20 MB) whose rows are wide (20 KB and
200 KB text, a narrow head followed by wide rows, a blob, a list, a struct, JSON, one 100 MB
value, wide text under a filter the planner cannot estimate) runs through ``to_pandas``,
``to_arrow``, ``to_polars`` (each also with ``preflight=None``, so the fetch layer alone must
hold), ``to_pandas_batches`` (streamed to the end: memory must stay one batch) and the CLI's
``queryref query`` (``cli``: the terminal table, which fetches only the rows it shows and
counts the rest in the database, so it returns; ``cli_csv``: every row printed as CSV, held
first, so refused), on embedded DuckDB, PostgreSQL, MariaDB and Snowflake (fakesnow's server,
started here, outside the measured child). Each case reports the peak RSS increase of its
child over the RSS just before the sink, the outcome (``ResultTooLarge`` at which stage, or the
rows returned) and whether the peak stays within ``budget + 64 MiB (one batch) + 64 MiB``.

    python benchmarks/wide_rows.py                      # everything, a table at the end
    python benchmarks/wide_rows.py --engines duckdb --cases text_20k --sinks pandas arrow
    python benchmarks/wide_rows.py --json data/bench/wide_rows.json

A child stops itself (exit status 3, reported as "killed") if its RSS grows past
``--safety-cap`` (default 3 GiB over its start), so a guard that fails cannot take the machine
down. ``tests/test_guard_wide.py`` runs a compact set of the same cases.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

MiB = 2**20
MB = 10**6
BUDGET = "20MB"
SLACK = 64 * MiB  # the bound: budget + one batch (64 MiB) + 64 MiB
PG_URL = os.environ.get("QUERYREF_PG_URL",
                        "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("QUERYREF_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306/test")
ENGINES = ("duckdb", "postgres", "mariadb", "snowflake")
SINKS = ("pandas", "arrow", "polars", "pandas_fetch", "arrow_fetch", "pandas_batches", "cli",
         "cli_csv")

#: Each shape's SQL per engine (None: the engine has no such type). Totals are ~0.5-1.2 GB,
#: far over a 20 MB budget.
CASES: dict[str, dict[str, str | None]] = {
    "text_20k": {
        "duckdb": "SELECT i, repeat('x', 20000) AS s FROM range(60000) t(i)",
        "postgres": "SELECT i, repeat('x', 20000) AS s FROM generate_series(1, 60000) AS t(i)",
        "mariadb": "SELECT seq AS i, REPEAT('x', 20000) AS s FROM seq_1_to_40000",
        "snowflake": "SELECT SEQ4() AS i, REPEAT('x', 20000) AS s "
                     "FROM TABLE(GENERATOR(ROWCOUNT => 20000))",
    },
    "text_200k": {
        "duckdb": "SELECT i, repeat('y', 200000) AS s FROM range(6000) t(i)",
        "postgres": "SELECT i, repeat('y', 200000) AS s FROM generate_series(1, 6000) AS t(i)",
        "mariadb": "SELECT seq AS i, REPEAT('y', 200000) AS s FROM seq_1_to_4000",
        "snowflake": "SELECT SEQ4() AS i, REPEAT('y', 200000) AS s "
                     "FROM TABLE(GENERATOR(ROWCOUNT => 2000))",
    },
    "narrow_head": {
        "duckdb": "SELECT i, CASE WHEN i < 2000 THEN 'n' ELSE repeat('x', 20000) END AS s "
                  "FROM range(60000) t(i)",
        "postgres": "SELECT i, CASE WHEN i < 2000 THEN 'n' ELSE repeat('x', 20000) END AS s "
                    "FROM generate_series(1, 60000) AS t(i)",
        "mariadb": "SELECT seq AS i, CASE WHEN seq < 2000 THEN 'n' ELSE REPEAT('x', 20000) END "
                   "AS s FROM seq_1_to_40000",
        "snowflake": ("SELECT i, CASE WHEN i < 2000 THEN 'n' ELSE REPEAT('x', 20000) END "
                      "AS s FROM (SELECT SEQ4() AS i FROM TABLE(GENERATOR(ROWCOUNT => 20000)))"),
    },
    "blob": {
        "duckdb": "SELECT i, repeat('x', 20000)::BLOB AS b FROM range(40000) t(i)",
        "postgres": "SELECT i, convert_to(repeat('x', 20000), 'UTF8') AS b "
                    "FROM generate_series(1, 40000) AS t(i)",
        "mariadb": "SELECT seq AS i, CAST(REPEAT('x', 20000) AS BINARY) AS b FROM seq_1_to_40000",
        "snowflake": ("SELECT SEQ4() AS i, TO_BINARY(REPEAT('x', 20000), 'UTF-8') AS b "
                 "FROM TABLE(GENERATOR(ROWCOUNT => 20000))"),
    },
    "list": {
        "duckdb": "SELECT i, range(0, 5000) AS l FROM range(20000) t(i)",
        "postgres": "SELECT i, array_fill(i, ARRAY[5000]) AS l "
                    "FROM generate_series(1, 20000) AS t(i)",
        "mariadb": None,
        "snowflake": None,
    },
    "struct": {
        "duckdb": "SELECT i, {'s': repeat('z', 5000), 'l': range(0, 500)} AS st "
                  "FROM range(40000) t(i)",
        "postgres": None,
        "mariadb": None,
        "snowflake": None,
    },
    "json": {
        "duckdb": "SELECT i, to_json({'a': repeat('j', 20000)}) AS j FROM range(40000) t(i)",
        "postgres": "SELECT i, json_build_object('a', repeat('j', 20000)) AS j "
                    "FROM generate_series(1, 40000) AS t(i)",
        "mariadb": "SELECT seq AS i, JSON_OBJECT('a', REPEAT('j', 20000)) AS j "
                   "FROM seq_1_to_40000",
        "snowflake": ("SELECT SEQ4() AS i, OBJECT_CONSTRUCT('a', REPEAT('j', 20000)) AS j "
                 "FROM TABLE(GENERATOR(ROWCOUNT => 20000))"),
    },
    "one_100mb_value": {
        # (not a constant: DuckDB folds a constant while planning, in every query about it)
        "duckdb": "SELECT i, repeat('v', 100000000 + i::INTEGER) AS s FROM range(1) t(i)",
        "postgres": "SELECT i, repeat('v', 100000000 + i) AS s FROM generate_series(0, 0) t(i)",
        "mariadb": None,  # REPEAT past max_allowed_packet (16 MB) is NULL
        "snowflake": None,
    },
    "unfirm_4k": {
        "duckdb": "SELECT i, repeat('u', 4000) AS s FROM range(300000) t(i) "
                  "WHERE hash(i) % 3 = 0",
        "postgres": "SELECT i, repeat('u', 4000) AS s FROM generate_series(1, 300000) AS t(i) "
                    "WHERE (i::bigint * 7919) % 3 = 0",
        "mariadb": "SELECT seq AS i, REPEAT('u', 4000) AS s FROM seq_1_to_300000 "
                   "WHERE MOD(seq * 7919, 3) = 0",
        "snowflake": ("SELECT i, REPEAT('u', 4000) AS s FROM (SELECT SEQ4() AS i FROM "
                      "TABLE(GENERATOR(ROWCOUNT => 150000))) WHERE MOD(i * 7919, 3) = 0"),
    },
}


@dataclass(frozen=True)
class Outcome:
    engine: str
    case: str
    sink: str
    budget: int
    result: dict[str, Any]

    @property
    def increase(self) -> int:
        return int(self.result.get("increase", 0))

    @property
    def bound(self) -> int:
        return self.budget + 2 * SLACK

    @property
    def held(self) -> bool:
        return self.result.get("outcome") != "killed" and self.increase <= self.bound

    def line(self) -> str:
        r = self.result
        what = r.get("outcome", "?")
        if what == "ResultTooLarge":
            what = f"refused ({r.get('stage')})"
        elif what == "returned":
            what = f"returned {r.get('rows', 0):,} rows"
        return (f"{self.engine:9} {self.case:16} {self.sink:15} +{self.increase / MiB:8,.0f} MiB"
                f"  {'ok ' if self.held else 'OVER'} {what} ({r.get('seconds', 0):.1f}s)")


# -- the child ---------------------------------------------------------------------------------
CHILD = r'''
import gc, json, os, resource, sys, threading, time
import psutil

config = json.loads(sys.stdin.read())
proc = psutil.Process()
start_rss = proc.memory_info().rss
cap = config["safety_cap"]


class Peak:
    def __init__(self):
        self.base = self.peak = proc.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self):
        while not self.done.is_set():
            rss = proc.memory_info().rss
            self.peak = max(self.peak, rss)
            if rss - start_rss > cap:
                print(json.dumps({"outcome": "killed", "increase": rss - self.base}), flush=True)
                os._exit(3)
            time.sleep(0.002)

    def stop(self):
        self.peak = max(self.peak, proc.memory_info().rss)
        self.done.set()
        self.thread.join()
        return self.peak


import pandas, pyarrow, polars  # noqa: E401 (import costs paid before measuring)
import queryref as qr
from queryref.cli import main as _cli

engine, sql, sink, budget = config["engine"], config["sql"], config["sink"], config["budget"]
if engine == "duckdb":
    con = qr.connect()
elif engine == "snowflake":
    import snowflake.connector
    raw = snowflake.connector.connect(**config["snowflake"], database="QR_WIDE", schema="T")
    con = qr.connect(raw)
else:
    con = qr.connect(config["url"])
con.sql("SELECT 1 AS x").to_pandas()  # warm up
if sink.startswith("cli"):  # the CLI opens its own connection: warm that path up too
    with open(os.devnull, "w") as null:
        sys.stdout, saved = null, sys.stdout
        try:
            db = ["--db", config["url"]] if config["url"] else []
            _cli.main(["query", "SELECT 1 AS x", *db])
        finally:
            sys.stdout = saved
q = con.sql(sql)
q.columns  # the schema lookup, outside the measurement
gc.collect()
out = {"ru_before": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
rss = Peak()
out["base"] = rss.base
t0 = time.perf_counter()
try:
    preflight = None if sink.endswith("_fetch") else "estimate"
    if sink.startswith("pandas_batches"):
        out["rows"] = sum(len(df) for df in q.to_pandas_batches())
    elif sink.startswith("pandas"):
        out["rows"] = len(q.to_pandas(max_bytes=budget, preflight=preflight))
    elif sink.startswith("arrow"):
        out["rows"] = q.to_arrow(max_bytes=budget, preflight=preflight).num_rows
    elif sink == "polars":
        out["rows"] = q.to_polars(max_bytes=budget).height
    elif sink.startswith("cli"):
        import io, re
        args = ["query", sql, "--max-bytes", budget, "--show", "3"]
        if engine != "duckdb":
            args[1:1] = ["--db", config["url"]]
        if sink == "cli_csv":  # every row printed: held first, under the budget
            args += ["--format", "csv"]
        printed = io.StringIO() if sink == "cli" else open(os.devnull, "w")
        sys.stdout, saved = printed, sys.stdout
        try:
            code = _cli.main(args)
        finally:
            sys.stdout = saved
        out["exit_code"] = code
        if code == 3:
            raise qr.errors.ResultTooLarge(stage="cli")
        if code != 0:
            raise SystemExit(f"the CLI exited with {code}")
        if sink == "cli":  # the table: 3 rows shown, the rest counted in the database
            footer = re.search(r"showing (\d+) of ([\d,]+) rows", printed.getvalue())
            if footer:
                out["rows"] = int(footer.group(1))
                out["counted"] = int(footer.group(2).replace(",", ""))
    out["outcome"] = "returned"
except qr.errors.ResultTooLarge as err:
    out.update(outcome="ResultTooLarge", stage=err.stage, seen_bytes=err.seen_bytes,
               seen_rows=err.seen_rows)
out["seconds"] = time.perf_counter() - t0
peak = rss.stop()
ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rose = ru if ru > out["ru_before"] else 0
out["increase"] = max(peak, rose) - out["base"]
print(json.dumps(out), flush=True)
'''


def run_case(engine: str, case: str, sink: str, *, budget: str = BUDGET,
             safety_cap: int = 3 * 2**30, snowflake: dict[str, Any] | None = None,
             timeout: float = 300) -> Outcome:
    """One case in a fresh process (Snowflake: ``snowflake`` holds the connector's keyword
    arguments for a fakesnow server the caller started)."""
    from queryref._sizes import parse_bytes

    sql = CASES[case][engine]
    if sql is None:
        raise ValueError(f"{case} has no {engine} form")
    config = {"engine": engine, "sql": sql, "sink": sink, "budget": budget,
              "safety_cap": safety_cap, "snowflake": snowflake,
              "url": {"postgres": PG_URL, "mariadb": MYSQL_URL}.get(engine)}
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(config),
                          capture_output=True, text=True, timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{engine}/{case}/{sink} failed: {proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    limit = parse_bytes(budget)
    assert limit is not None
    return Outcome(engine, case, sink, limit, result)


def cases_for(engine: str) -> list[str]:
    return [name for name, forms in CASES.items() if forms.get(engine)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--sinks", nargs="+", default=list(SINKS), choices=SINKS)
    parser.add_argument("--budget", default=BUDGET)
    parser.add_argument("--safety-cap", type=int, default=3 * 2**30)
    parser.add_argument("--json", default=None, help="write the outcomes here")
    args = parser.parse_args(argv)
    snowflake = None
    if "snowflake" in args.engines:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "conformance"))
        from _snowflake import server_kwargs

        snowflake = server_kwargs()
    outcomes = []
    start = time.perf_counter()
    for engine in args.engines:
        for case in args.cases:
            if not CASES[case].get(engine):
                continue
            for sink in args.sinks:
                if engine == "snowflake" and sink.startswith("cli"):
                    continue  # (the CLI opens a URL; the fakesnow server takes keywords)
                try:
                    o = run_case(engine, case, sink, budget=args.budget,
                                 safety_cap=args.safety_cap, snowflake=snowflake)
                except Exception as err:  # an engine that is down: say so, go on
                    print(f"{engine:9} {case:16} {sink:15} failed: {str(err)[:300]}",
                          flush=True)
                    continue
                outcomes.append(o)
                print(o.line(), flush=True)
    held = sum(o.held for o in outcomes)
    print(f"\n{held}/{len(outcomes)} within budget + 128 MiB "
          f"({time.perf_counter() - start:.0f}s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"engine": o.engine, "case": o.case, "sink": o.sink, "budget": o.budget,
                        "held": o.held, **o.result} for o in outcomes], f, indent=1)
    return 0 if held == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
