"""Exploring SF1 ``lineitem`` without loading it: ``describe()``, ``histogram()``,
``value_counts()`` and a histogram chart computed in the warehouse, against pandas doing the
same after pulling the rows.

Each method runs in a fresh Python process (this script re-run with ``--one METHOD``), runs are
interleaved across methods, and the table shows medians of: wall time (connecting excluded;
for pandas, the fetch and the computation), the peak RSS increase over the process's RSS just
before (sampled every 5 ms, cross-checked with ``getrusage``), and the rows and Arrow bytes
that crossed from the engine to Python, counted on the backend's result streams as they
arrive (``read_sql`` does not use them: its rows are the DataFrame's).

- ``qr_describe``: ``q.describe()``, one aggregate query plus one grouped query per text
  column; ``qr_histogram``: ``q.histogram("l_extendedprice")``, 30 bins (the range, then a
  grouped count); ``qr_value_counts``: ``q.value_counts("l_shipmode")``; ``qr_plot_hist``:
  ``q.plot.hist("l_extendedprice")`` and its Vega-Lite spec (what a notebook is sent).
- ``pd_*``: ``q.to_pandas()`` of the whole table (queryref's fast Arrow path), then pandas:
  ``df.describe(include="all")``, ``np.histogram(values, 30, range=(min, max))``,
  ``value_counts()``, and the same chart from ``np.histogram``'s bins.
- ``col_*``: only the column pulled (``q.select(column).to_pandas()``), then the same.
- ``read_sql_describe``: ``pandas.read_sql("SELECT * FROM lineitem")`` through SQLAlchemy, then
  ``describe(include="all")`` (slow: minutes and gigabytes).

On embedded DuckDB the engine runs inside the measured process, so its working memory (the
quartiles' sorts, the grouped counts) is part of the figure; on PostgreSQL it is not (another
process), the driver's buffers are. The queryref and pandas results are compared (the
quartiles, histogram counts, value counts) and the table says whether they agree.

    python benchmarks/explore.py --data data/tpch-sf1 --runs 3
    python benchmarks/explore.py --engine postgres --runs 3      # load_postgres.py first
    python benchmarks/explore.py --methods qr_describe pd_describe --runs 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_to_pandas import (
    ENGINES,
    PG_DEFAULT_URL,
    PeakRSS,
    Source,
    check_postgres,
    child_result,
    machine,
    make_source,
    mib,
    queryref_source,
    source_args,
    versions,
    wait_for_memory,
)

NUMBER = "l_extendedprice"
TEXT = "l_shipmode"
BINS = 30
#: a child that grows past this over its start stops itself (a shared machine)
SAFETY_CAP = 14 * 2**30


# --- counting what crosses --------------------------------------------------------------------
@dataclass
class Crossed:
    rows: int = 0
    bytes: int = 0
    queries: int = 0


def count_crossing(con: Any) -> Crossed:
    """Count the rows and Arrow bytes of every result ``con``'s backend streams."""
    crossed = Crossed()
    backend = con.backend
    stream = backend.stream

    def counted(*args: Any, **kwargs: Any) -> Any:
        s = stream(*args, **kwargs)
        crossed.queries += 1
        batches = s._batches

        def each() -> Any:
            for batch in batches:
                crossed.rows += batch.num_rows
                crossed.bytes += batch.nbytes
                yield batch

        s._batches = each()
        return s

    backend.stream = counted
    return crossed


# --- what each method computes, and a summary to compare across methods ----------------------
def describe_check(frame: Any) -> dict[str, Any]:
    """The figures of ``describe()`` both sides give alike: the number's, the text's."""
    num = frame[NUMBER]
    text = frame[TEXT]
    return {"number": [float(num[k]) for k in ("count", "mean", "std", "min", "25%", "50%",
                                                 "75%", "max")],
            "text": [int(text["count"]), int(text["unique"]), str(text["top"]).strip(),
                     int(text["freq"])]}


def hist_check(counts: Any, edges: Any) -> dict[str, Any]:
    return {"counts": [int(c) for c in counts], "edges": [float(e) for e in edges]}


def counts_check(values: Any, counts: Any) -> dict[str, Any]:
    return {"counts": {str(v).strip(): int(c) for v, c in zip(values, counts, strict=True)}}


def np_histogram(values: Any) -> tuple[Any, Any]:
    import numpy as np

    values = values.dropna().to_numpy(dtype="float64")
    return np.histogram(values, bins=BINS, range=(values.min(), values.max()))


def chart_of_bins(counts: Any, edges: Any) -> Any:
    """The chart ``q.plot.hist`` draws, from bins computed in pandas."""
    import altair as alt
    import pandas as pd

    data = pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "count": counts})
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("bin_start:Q", bin="binned", title=NUMBER), x2="bin_end:Q",
        y=alt.Y("count:Q", title="rows"))


Run = Callable[[], dict[str, Any]]


def qr_describe(q: Any) -> Run:
    return lambda: describe_check(q.describe())


def qr_histogram(q: Any) -> Run:
    def run() -> dict[str, Any]:
        h = q.histogram(NUMBER, bins=BINS)
        return hist_check(h["count"], [*h["bin_start"], h["bin_end"].iloc[-1]])
    return run


def qr_value_counts(q: Any) -> Run:
    def run() -> dict[str, Any]:
        v = q.value_counts(TEXT)
        return counts_check(v[TEXT], v["count"])
    return run


def qr_plot_hist(q: Any) -> Run:
    def run() -> dict[str, Any]:
        chart = q.plot.hist(NUMBER, bins=BINS)
        spec = chart.to_dict()
        [values] = spec["datasets"].values()
        return hist_check([r["count"] for r in values],
                          [*(r["bin_start"] for r in values), values[-1]["bin_end"]])
    return run


def whole(q: Any) -> Any:
    return q.to_pandas(max_bytes=None)


def pd_describe(q: Any) -> Run:
    return lambda: describe_check(whole(q).describe(include="all"))


def pd_histogram(q: Any, load: Callable[[Any], Any] = whole) -> Run:
    def run() -> dict[str, Any]:
        return hist_check(*np_histogram(load(q)[NUMBER]))
    return run


def pd_value_counts(q: Any, load: Callable[[Any], Any] = whole) -> Run:
    def run() -> dict[str, Any]:
        v = load(q)[TEXT].value_counts()
        return counts_check(v.index, v.to_numpy())
    return run


def pd_plot_hist(q: Any, load: Callable[[Any], Any] = whole) -> Run:
    def run() -> dict[str, Any]:
        counts, edges = np_histogram(load(q)[NUMBER])
        chart_of_bins(counts, edges).to_dict()
        return hist_check(counts, edges)
    return run


def column(name: str) -> Callable[[Any], Any]:
    return lambda q: q.select(name).to_pandas(max_bytes=None)


def read_sql_describe(q: Any, src: Source) -> Run:
    import pandas as pd
    import sqlalchemy

    conn = sqlalchemy.create_engine(src.sqlalchemy_url()).connect()
    sql = src.sql()
    return lambda: describe_check(pd.read_sql(sqlalchemy.text(sql), conn)
                                  .describe(include="all"))


@dataclass(frozen=True)
class Method:
    label: str
    op: str  # which results must agree: describe, histogram, value_counts
    prepare: Callable[[Any, Source], Run]
    imports: tuple[str, ...] = ()
    slow: bool = False


METHODS: dict[str, Method] = {
    "qr_describe": Method("queryref q.describe()", "describe", lambda q, s: qr_describe(q)),
    "pd_describe": Method("to_pandas() all + df.describe(include='all')", "describe",
                          lambda q, s: pd_describe(q)),
    "read_sql_describe": Method("pd.read_sql all + df.describe(include='all')", "describe",
                                read_sql_describe, ("sqlalchemy",), slow=True),
    "qr_histogram": Method(f"queryref q.histogram({NUMBER!r})", "histogram",
                           lambda q, s: qr_histogram(q)),
    "pd_histogram": Method("to_pandas() all + np.histogram", "histogram",
                           lambda q, s: pd_histogram(q)),
    "col_histogram": Method("to_pandas() of the column + np.histogram", "histogram",
                            lambda q, s: pd_histogram(q, column(NUMBER))),
    "qr_value_counts": Method(f"queryref q.value_counts({TEXT!r})", "value_counts",
                              lambda q, s: qr_value_counts(q)),
    "pd_value_counts": Method("to_pandas() all + value_counts()", "value_counts",
                              lambda q, s: pd_value_counts(q)),
    "col_value_counts": Method("to_pandas() of the column + value_counts()", "value_counts",
                               lambda q, s: pd_value_counts(q, column(TEXT))),
    "qr_plot_hist": Method(f"queryref q.plot.hist({NUMBER!r}) + spec", "histogram",
                           lambda q, s: qr_plot_hist(q), ("altair",)),
    "pd_plot_hist": Method("to_pandas() all + np.histogram + Altair", "histogram",
                           lambda q, s: pd_plot_hist(q), ("altair",)),
    "col_plot_hist": Method("to_pandas() of the column + np.histogram + Altair", "histogram",
                            lambda q, s: pd_plot_hist(q, column(NUMBER)), ("altair",)),
}


# --- child ------------------------------------------------------------------------------------
def run_one(method: str, src: Source) -> dict[str, Any]:
    m = METHODS[method]
    for module in (*m.imports, *({"postgres": ("adbc_driver_postgresql",)}.get(src.engine, ()))):
        try:
            __import__(module)
        except ImportError as exc:
            return {"skipped": f"{module} is not installed ({exc})"}
    if method == "read_sql_describe" and src.engine == "duckdb":
        try:
            __import__("duckdb_engine")
        except ImportError as exc:
            return {"skipped": f"duckdb_engine is not installed ({exc}): pip install "
                               "'queryref[bench]'"}
    for module in ("numpy", "pandas", "pyarrow", "psutil", "queryref", "altair"):
        __import__(module)
    import queryref.explore  # noqa: F401  (its import is not measured)

    con = src.connect()
    q = src.base(con)
    if src.rows:
        q = q.limit(src.rows)
    q.schema  # noqa: B018  (the schema lookup is not measured either)
    crossed = count_crossing(con)
    run = m.prepare(q, src)
    meter = PeakRSS(kill_above=SAFETY_CAP)
    start = time.perf_counter()
    check = run()
    seconds = time.perf_counter() - start
    peak = meter.stop()
    out: dict[str, Any] = {"seconds": seconds, "peak_rss": peak, "check": check,
                           "versions": versions()}
    if method == "read_sql_describe":
        out["rows"] = int(check["number"][0])  # every row crossed: count of a NOT NULL column
    else:
        out.update(rows=crossed.rows, arrow_bytes=crossed.bytes, queries=crossed.queries)
    return out


# --- parent -----------------------------------------------------------------------------------
def run_child(method: str, src: Source) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", method, *source_args(src)]
    return child_result(subprocess.run(cmd, capture_output=True, text=True))


NUMERIC = ("seconds", "peak_rss", "rows", "arrow_bytes", "queries")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return {"note": runs[0].get("skipped") or runs[0].get("error", "?")}
    out: dict[str, Any] = {k: statistics.median(r[k] for r in ok if k in r)
                           for k in NUMERIC if any(k in r for r in ok)}
    out["n_runs"] = len(ok)
    out["check"] = ok[0]["check"]
    if len(ok) < len(runs):
        out["note"] = f"{len(runs) - len(ok)} of {len(runs)} runs failed"
    return out


def same(a: Any, b: Any) -> bool:
    """Equal, numbers to 1e-9 relative (float sums in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def agreement(summaries: dict[str, dict[str, Any]]) -> dict[str, str]:
    """For each method, whether its result agrees with queryref's for the same operation."""
    ref = {METHODS[m].op: s["check"] for m, s in summaries.items()
           if m.startswith("qr_") and "check" in s}
    out = {}
    for m, s in summaries.items():
        want = ref.get(METHODS[m].op)
        if "check" not in s or want is None or m.startswith("qr_"):
            out[m] = ""
        else:
            out[m] = "same" if same(s["check"], want) else "DIFFERS"
    return out


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    agrees = agreement(summaries)
    header = (f"{'method':52} {'runs':>4} {'wall s':>8} {'peak RSS +MiB':>14} "
              f"{'rows crossed':>13} {'MiB crossed':>12} {'queries':>7}  result")
    print(header)
    print("-" * len(header))
    for method, s in summaries.items():
        seconds = f"{s['seconds']:.2f}" if "seconds" in s else ""
        rows = f"{int(s['rows']):,}" if "rows" in s else ""
        queries = f"{int(s['queries'])}" if "queries" in s else ""
        note = s.get("note", "") or agrees.get(method, "")
        print(f"{METHODS[method].label:52} {s.get('n_runs', 0):>4} {seconds:>8} "
              f"{mib(s.get('peak_rss')):>14} {rows:>13} {mib(s.get('arrow_bytes')):>12} "
              f"{queries:>7}  {note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="duckdb: read_parquet over --data (default); postgres: the "
                             "lineitem table at --url")
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="TPC-H Parquet directory (default data/tpch-sf1)")
    parser.add_argument("--url", default=os.environ.get("QUERYREF_BENCH_PG", PG_DEFAULT_URL),
                        help=f"PostgreSQL database holding lineitem (default $QUERYREF_BENCH_PG "
                             f"or {PG_DEFAULT_URL})")
    parser.add_argument("--duckdb-file", type=Path, default=None,
                        help="duckdb: lineitem from this DuckDB database file instead")
    parser.add_argument("--rows", type=int, default=None,
                        help="LIMIT the source to this many rows (default: all of lineitem)")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (default 3)")
    parser.add_argument("--slow-runs", type=int, default=1,
                        help="runs of read_sql_describe (default 1)")
    parser.add_argument("--min-available", type=float, default=17.0, metavar="GIB",
                        help="on all of lineitem, run read_sql_describe only when this many GiB "
                             "are available (it takes 10-15 GB); default 17")
    parser.add_argument("--wait", type=float, default=300.0, metavar="S",
                        help="how long to wait for --min-available before skipping (default 300)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    parser.add_argument("--one", choices=list(METHODS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    src = make_source(args)
    if args.one:
        print(json.dumps(run_one(args.one, src)))
        return
    if src.engine == "postgres":
        check_postgres(src)
    methods = args.methods or list(METHODS)
    started = machine()
    load = ", ".join(f"{x:.2f}" for x in started["load_avg_before"])
    print(f"source: {src.describe()}\n{args.runs} runs per method ({args.slow_runs} for "
          f"read_sql), each in a fresh process; medians\nload average before: {load} on "
          f"{started['cpus']} CPUs; {started['available_bytes_before'] / 2**30:.1f} GiB "
          "available\n")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for i in range(max(args.runs, args.slow_runs)):
        for method in methods:
            if i >= (args.slow_runs if METHODS[method].slow else args.runs):
                continue
            if i and "seconds" not in runs[method][0]:
                continue  # skipped or failed the first time: not again
            heavy = METHODS[method].slow and not src.rows
            why = wait_for_memory(args.min_available, args.wait) if heavy else None
            runs[method].append({"skipped": why} if why else run_child(method, src))
            print(".", end="", flush=True)
    print("\n")
    summaries = {m: summarize(r) for m, r in runs.items()}
    print_table(summaries)
    if args.json:
        doc = {"benchmark": "explore", "engine": src.engine, "source": src.describe(),
               "machine": {**started, "load_avg_after": os.getloadavg()},
               "queryref_source": queryref_source(),
               "methods": {m: {"label": METHODS[m].label, "summary": summaries[m],
                               "runs": [{k: v for k, v in r.items() if k != "versions"}
                                        for r in runs[m]]} for m in runs}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
