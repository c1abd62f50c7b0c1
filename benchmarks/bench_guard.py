"""The size guard and the streaming sinks under load, on embedded DuckDB and on PostgreSQL.

Default mode, **guard abort**: for each budget (``--budgets``, default 64 MiB and 16 MiB) and
each factor (``--factors``, default 10 and 100), a result that many times over the budget runs
through ``to_pandas(max_bytes=budget)`` in a fresh process:

- ``preflight=None``: the pre-flight estimate is off, so the fetch layer must stop the query
  mid-stream (the case that decides what memory a refusal costs);
- ``preflight="estimate"`` (the default): refused from the planner's estimate, before a row
  moves;
- ``raw``: no queryref: the engine's own reader (DuckDB ``to_arrow_reader``, ADBC
  ``fetch_record_batch``) on the same query with the same batch size, dropped once past the
  budget: the memory the engine itself takes to get that far, the floor under the guard.

The result is TPC-H ``lineitem`` (DuckDB: ``read_parquet`` over ``--data``; PostgreSQL: the
``lineitem`` table at ``--url``, see ``load_postgres.py``), repeated with ``UNION ALL`` when one
copy is not enough, with a ``LIMIT`` so that its size as a DataFrame is ``factor x budget``.
That size is rows times the bytes a row takes in the DataFrame, measured first on 200,000 rows
(``memory_usage(deep=True)``). Reported, medians over ``--runs``: whether ``ResultTooLarge``
was raised and at which stage, the rows and bytes counted before the abort, the time to the
error, the peak RSS increase over the RSS just before the call, the largest batch the engine
handed over, and whether the peak stays within ``budget + one batch + 64 MiB``. On PostgreSQL
also the time from the budget crossing to the query being gone from ``pg_stat_activity`` and a
``SELECT 1`` on the same connection afterwards (the pieces of ``pg_guard_abort.py``).

``--streaming``: ``to_arrow_batches(100_000)`` (rows summed) and ``to_parquet`` (a temporary
file) on 1,000,000 rows, all of ``lineitem`` and ``--copies`` (default 3) copies of it via
``UNION ALL``, to show their peak RSS does not grow with the result.

    python benchmarks/bench_guard.py --data data/tpch-sf1 --runs 3
    python benchmarks/bench_guard.py --engines postgres --budgets 64MiB --factors 10 100
    python benchmarks/bench_guard.py --streaming --runs 3 --json data/bench/streaming.json

Wide rows (20 KB and 200 KB text, a narrow head then wide rows, blobs, lists, structs, JSON,
one 100 MB value, an estimate the planner cannot make firm) through every sink and engine are
``benchmarks/wide_rows.py``'s matrix; this script keeps to ``lineitem``'s narrow rows.

Each child stops itself (exit status 3) if its RSS grows past ``--safety-cap`` (default 4 GiB
over its start): a guard that failed to stop a 100x result must not take the machine down.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_to_pandas import (
    PG_DEFAULT_URL,
    PeakRSS,
    Source,
    check_postgres,
    child_result,
    lineitem_path,
    machine,
    mib,
    queryref_source,
    safe_url,
)

MiB = 2**20
SLACK = 64 * MiB  # the target: peak RSS <= budget + one batch + 64 MiB
SAMPLE_ROWS = 200_000
BATCH_ROWS = 100_000
STREAM_SINKS = ("qr_batches", "qr_parquet")


def parse_size(text: str) -> int:
    """``64MiB``, ``16MB`` (taken as MiB), ``1GiB``, or a number of bytes."""
    units = {"kib": 2**10, "kb": 2**10, "mib": MiB, "mb": MiB, "gib": 2**30, "gb": 2**30}
    low = text.strip().lower()
    for unit, factor in units.items():
        if low.endswith(unit):
            return int(float(low[: -len(unit)]) * factor)
    return int(low)


# --- the result of a case -------------------------------------------------------------------


def result(src: Source, con: Any, rows: int | None, copies: int, tag: str | None = None) -> Any:
    """``lineitem`` repeated ``copies`` times with UNION ALL, limited to ``rows``; a tag
    (PostgreSQL) makes the query findable in ``pg_stat_activity`` without changing its rows."""
    import queryref as qr

    q = src.base(con)
    for _ in range(copies - 1):
        q = q.union(src.base(con))  # UNION ALL
    if tag:
        q = q.filter(qr.lit(tag) == qr.lit(tag))
    return q.limit(rows) if rows else q


def measure_row(src: Source) -> dict[str, Any]:
    """Bytes a row of ``lineitem`` takes in queryref's DataFrame, and the rows of one copy."""
    con = src.connect()
    base = src.base(con)
    df = base.limit(SAMPLE_ROWS).to_pandas(max_bytes=None)
    per_row = int(df.memory_usage(deep=True).sum()) / len(df)
    return {"bytes_per_row": per_row, "base_rows": base.count()}


# --- child: one guard case ------------------------------------------------------------------


def run_guard_case(src: Source, budget: int, rows: int, copies: int, preflight: str | None,
                   safety_cap: int) -> dict[str, Any]:
    import pandas  # noqa: F401  (import costs paid before measuring)
    import pyarrow  # noqa: F401
    from pg_guard_abort import CancelClock, active_with_tag, select_one, wait_gone

    import queryref as qr
    from queryref.backends import _base

    con = src.connect()
    tag = f"qr_guard_{uuid.uuid4().hex[:8]}" if src.engine == "postgres" else None
    q = result(src, con, rows, copies, tag)
    watcher = qr.connect(src.url) if tag else None
    active = active_with_tag(watcher, tag) if watcher is not None and tag else None

    batches: list[int] = []  # Arrow bytes of each batch the engine handed over
    original_iter = _base.Stream.__iter__

    def counting_iter(stream: _base.Stream) -> Any:
        for batch in original_iter(stream):
            batches.append(batch.nbytes)
            yield batch

    _base.Stream.__iter__ = counting_iter  # type: ignore[method-assign]
    out: dict[str, Any] = {}
    meter = PeakRSS(kill_above=safety_cap)
    start = time.perf_counter()
    try:
        with CancelClock() as clock:
            df = q.to_pandas(max_bytes=budget, preflight=preflight)
        out.update(raised=False, seconds=time.perf_counter() - start, rows=len(df),
                   df_bytes=int(df.memory_usage(deep=True).sum()))
        del df
    except qr.errors.ResultTooLarge as err:
        raised = time.perf_counter()
        out.update(raised=True, stage=err.stage, seconds=raised - start,
                   seen_rows=err.seen_rows, seen_bytes=err.seen_bytes)
        if clock.crossed is not None:
            out["ms_crossing_to_error"] = (raised - clock.crossed) * 1000
    finally:
        _base.Stream.__iter__ = original_iter  # type: ignore[method-assign]
    out["peak_rss"] = meter.stop()
    out["batches"] = len(batches)
    out["max_batch_bytes"] = max(batches, default=0)
    if active is not None and clock.crossed is not None:
        gone = wait_gone(active, clock.crossed)
        out["ms_crossing_to_gone"] = (gone - clock.crossed) * 1000 if gone else None
        out["select_1_after"], out["ms_select_1"] = select_one(con)
    if watcher is not None:
        watcher.close()
    con.close()
    return out


def run_raw_case(src: Source, budget: int, rows: int, copies: int,
                 safety_cap: int) -> dict[str, Any]:
    """The engine's own reader over the same query, with the batch size the guard would
    use, dropped after ``budget`` bytes: the memory the engine itself takes to get that far
    (DuckDB's Parquet scan), which no guard in Python can go below."""
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from queryref.sinks import budget as _budget

    con = src.connect()
    q = result(src, con, rows, copies)
    batch_rows = _budget.batch_rows_for(q.schema, BATCH_ROWS, _budget.batch_bytes(budget),
                                         unit=2048)
    sql = q.sql
    if src.engine == "duckdb":
        import duckdb

        raw = duckdb.connect()
        cancel = raw.interrupt
    else:
        import adbc_driver_postgresql.dbapi as adbc

        raw = adbc.connect(src.url, autocommit=True)
        cur = raw.cursor()
        cancel = cur.adbc_cancel
        cur.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(max(batch_rows * 64, 1 << 16))})
    seen_rows = seen = batches = biggest = 0
    meter = PeakRSS(kill_above=safety_cap)
    start = time.perf_counter()
    if src.engine == "duckdb":
        reader = raw.sql(sql).to_arrow_reader(batch_rows)
    else:
        cur.execute(sql)
        reader = cur.fetch_record_batch()
    for batch in reader:  # each batch dropped at once: only the engine's memory remains
        seen_rows += batch.num_rows
        seen += batch.nbytes
        batches += 1
        biggest = max(biggest, batch.nbytes)
        if seen > budget:
            cancel()
            break
    reader.close()
    seconds = time.perf_counter() - start
    peak = meter.stop()
    raw.close()
    con.close()
    return {"raised": False, "stage": "raw", "seconds": seconds, "seen_rows": seen_rows,
            "seen_bytes": seen, "peak_rss": peak, "batches": batches,
            "max_batch_bytes": biggest}


# --- child: one streaming case --------------------------------------------------------------


def run_stream_case(src: Source, sink: str, rows: int | None, copies: int,
                    safety_cap: int) -> dict[str, Any]:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    con = src.connect()
    q = result(src, con, rows, copies)
    meter = PeakRSS(kill_above=safety_cap)
    start = time.perf_counter()
    out: dict[str, Any] = {}
    if sink == "qr_batches":
        out["rows"] = sum(b.num_rows for b in q.to_arrow_batches(batch_rows=BATCH_ROWS))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            path = Path(tmp) / "out.parquet"
            written = q.to_parquet(str(path))
            out.update(rows=written.rows, file_bytes=path.stat().st_size)
    out["seconds"] = time.perf_counter() - start
    out["peak_rss"] = meter.stop()
    con.close()
    return out


# --- parent ---------------------------------------------------------------------------------


def child(args: argparse.Namespace, src: Source, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--engine-one", src.engine,
           "--data", str(args.data), "--url", src.url, "--safety-cap", str(args.safety_cap),
           *extra]
    return child_result(subprocess.run(cmd, capture_output=True, text=True))


def sources(args: argparse.Namespace) -> list[Source]:
    found = []
    for engine in args.engines:
        if engine == "duckdb":
            found.append(Source("duckdb", None, path=lineitem_path(args.data)))
            continue
        src = Source("postgres", None, url=args.url)
        try:
            check_postgres(src)
        except SystemExit as why:
            print(f"PostgreSQL skipped: {why}\n")
            continue
        found.append(src)
    return found


def median_of(runs: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return None
    if all(isinstance(v, bool) for v in values):
        return all(values)
    if all(isinstance(v, str) for v in values):
        return values[0]
    return statistics.median(values)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"note": runs[0]["error"]}
    keys = {k for r in ok for k in r}
    summary = {k: median_of(ok, k) for k in sorted(keys)}
    summary["n_runs"] = len(ok)
    if len(ok) < len(runs):
        summary["note"] = f"{len(runs) - len(ok)} of {len(runs)} runs failed: " + \
            next(r["error"] for r in runs if "error" in r)
    return summary


def guard_cases(args: argparse.Namespace, src: Source) -> list[dict[str, Any]]:
    row = json.loads(subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--engine-one", src.engine, "--data",
         str(args.data), "--url", src.url, "--measure-row"],
        capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    print(f"{src.engine}: a row of lineitem takes {row['bytes_per_row']:.1f} bytes in the "
          f"DataFrame (first {SAMPLE_ROWS:,} rows); one copy holds {row['base_rows']:,} rows")
    cases = []
    for budget in args.budgets:
        for factor in args.factors:
            rows = math.ceil(factor * budget / row["bytes_per_row"])
            copies = math.ceil(rows / row["base_rows"])
            for preflight in ("none", "estimate", "raw"):
                cases.append({"engine": src.engine, "budget": budget, "factor": factor,
                              "rows": rows, "copies": copies, "preflight": preflight,
                              "result_bytes": rows * row["bytes_per_row"], "runs": []})
    return cases


def run_guard(args: argparse.Namespace, srcs: list[Source]) -> list[dict[str, Any]]:
    cases = [c for src in srcs for c in guard_cases(args, src)]
    by_engine = {s.engine: s for s in srcs}
    for _ in range(args.runs):
        for case in cases:  # interleaved, each in a fresh process
            case["runs"].append(child(
                args, by_engine[case["engine"]], "--guard-one", str(case["budget"]),
                str(case["rows"]), str(case["copies"]), case["preflight"]))
            print(".", end="", flush=True)
    print("\n")
    for case in cases:
        case["summary"] = summarize(case["runs"])
    print_guard(cases)
    return cases


def print_guard(cases: list[dict[str, Any]]) -> None:
    header = (f"{'engine':8} {'budget':>7} {'result':>9} {'x':>4} {'preflight':>9} "
              f"{'raised':>14} {'rows before':>12} {'MiB before':>10} {'s to error':>10} "
              f"{'peak +MiB':>9} {'batch MiB':>9} {'bound MiB':>9} {'holds':>5} "
              f"{'ms to gone':>10} {'SELECT 1':>8}")
    print(header)
    print("-" * len(header))
    for c in cases:
        s = c["summary"]
        if "seconds" not in s:
            print(f"{c['engine']:8} {mib(c['budget']):>7} {mib(c['result_bytes']):>9} "
                  f"{c['factor']:>4} {c['preflight']:>9}  {s.get('note', '?')}")
            continue
        raw = s.get("stage") == "raw"
        raised = "(engine only)" if raw else f"yes ({s['stage']})" if s.get("raised") else "NO"
        bound = c["budget"] + s["max_batch_bytes"] + SLACK
        s["bound"] = bound
        s["holds"] = s["peak_rss"] <= bound
        fetched = s.get("stage") in ("fetch", "raw")
        rows = f"{int(s['seen_rows']):,}" if fetched else "0"
        before = mib(s.get("seen_bytes")) if fetched else "0"
        gone = f"{s['ms_crossing_to_gone']:.0f}" if s.get("ms_crossing_to_gone") else ""
        one = {True: "ok", False: "FAILED", None: ""}[
            s["select_1_after"] == 1 if "select_1_after" in s else None]
        print(f"{c['engine']:8} {mib(c['budget']):>7} {mib(c['result_bytes']):>9} "
              f"{c['factor']:>4} {c['preflight']:>9} {raised:>14} {rows:>12} {before:>10} "
              f"{s['seconds']:>10.3f} {mib(s['peak_rss']):>9} {mib(s['max_batch_bytes']):>9} "
              f"{mib(bound):>9} {'yes' if s['holds'] else 'NO':>5} {gone:>10} {one:>8}"
              f"  {s.get('note', '')}")
    print("\nbudget, result, MiB before, peak, batch and bound in MiB; result = rows x the bytes "
          "a row takes in the DataFrame;\nbound = budget + the largest batch handed over + "
          "64 MiB; 'ms to gone': from the guard's cancel to the query leaving pg_stat_activity;"
          "\npreflight 'none': to_pandas(max_bytes=budget, preflight=None), stopped mid-stream; "
          "'estimate': the default pre-flight check;\n'raw': no queryref, the engine's own "
          "reader (DuckDB to_arrow_reader / ADBC fetch_record_batch) on the same query and "
          "batch size,\ndropped once past the budget: what the engine alone costs to get there")


def run_streaming(args: argparse.Namespace, srcs: list[Source]) -> list[dict[str, Any]]:
    sizes = [("1M rows", 1_000_000, 1), ("all of lineitem", None, 1),
             (f"lineitem x{args.copies}", None, args.copies)]
    cases = [{"engine": src.engine, "size": name, "rows_limit": rows, "copies": copies,
              "sink": sink, "runs": []}
             for src in srcs for name, rows, copies in sizes for sink in STREAM_SINKS]
    by_engine = {s.engine: s for s in srcs}
    for _ in range(args.runs):
        for case in cases:
            case["runs"].append(child(
                args, by_engine[case["engine"]], "--stream-one", case["sink"],
                str(case["rows_limit"] or 0), str(case["copies"])))
            print(".", end="", flush=True)
    print("\n")
    for case in cases:
        case["summary"] = summarize(case["runs"])
    header = (f"{'engine':8} {'sink':32} {'result':>16} {'rows':>12} {'wall s':>8} "
              f"{'peak +MiB':>9} {'file MiB':>9}")
    print(header)
    print("-" * len(header))
    for c in cases:
        s = c["summary"]
        sink = ("queryref to_arrow_batches(100,000)" if c["sink"] == "qr_batches"
                else "queryref to_parquet")
        if "seconds" not in s:
            print(f"{c['engine']:8} {sink:32} {c['size']:>16}  {s.get('note', '?')}")
            continue
        print(f"{c['engine']:8} {sink:32} {c['size']:>16} {int(s['rows']):>12,} "
              f"{s['seconds']:>8.2f} {mib(s['peak_rss']):>9} {mib(s.get('file_bytes')):>9}"
              f"  {s.get('note', '')}")
    print()
    for src in srcs:
        for sink in STREAM_SINKS:
            peaks = [c["summary"]["peak_rss"] for c in cases
                     if c["engine"] == src.engine and c["sink"] == sink
                     and "peak_rss" in c["summary"]]
            if peaks:
                print(f"{src.engine} {sink}: peak RSS increase {mib(min(peaks))} to "
                      f"{mib(max(peaks))} MiB across result sizes (spread "
                      f"{mib(max(peaks) - min(peaks))} MiB; the target: within 300 MiB)")
    return cases


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", choices=("duckdb", "postgres"),
                        default=["duckdb", "postgres"],
                        help="default both; PostgreSQL is skipped with a message if unreachable")
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="TPC-H Parquet directory for DuckDB (default data/tpch-sf1)")
    parser.add_argument("--url", default=os.environ.get("QUERYREF_BENCH_PG", PG_DEFAULT_URL),
                        help="PostgreSQL database holding lineitem (default $QUERYREF_BENCH_PG "
                             f"or {PG_DEFAULT_URL})")
    parser.add_argument("--budgets", nargs="+", type=parse_size,
                        default=[64 * MiB, 16 * MiB], help="default 64MiB 16MiB")
    parser.add_argument("--factors", nargs="+", type=int, default=[10, 100],
                        help="how many times over the budget the result is (default 10 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument("--streaming", action="store_true",
                        help="measure the streaming sinks instead of the guard")
    parser.add_argument("--copies", type=int, default=3,
                        help="--streaming: the largest result is lineitem this many times")
    parser.add_argument("--safety-cap", type=parse_size, default=4 * 2**30,
                        help="a child stops itself past this RSS increase (default 4GiB)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    parser.add_argument("--engine-one", help=argparse.SUPPRESS)
    parser.add_argument("--measure-row", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--guard-one", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--stream-one", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.engine_one:
        src = (Source("duckdb", None, path=lineitem_path(args.data))
               if args.engine_one == "duckdb" else Source("postgres", None, url=args.url))
        if args.measure_row:
            out = measure_row(src)
        elif args.guard_one:
            budget, rows, copies, preflight = args.guard_one
            if preflight == "raw":
                out = run_raw_case(src, int(budget), int(rows), int(copies), args.safety_cap)
            else:
                out = run_guard_case(src, int(budget), int(rows), int(copies),
                                     None if preflight == "none" else preflight,
                                     args.safety_cap)
        else:
            sink, rows, copies = args.stream_one
            out = run_stream_case(src, sink, int(rows) or None, int(copies), args.safety_cap)
        print(json.dumps(out))
        return
    started = machine()
    load = ", ".join(f"{x:.2f}" for x in started["load_avg_before"])
    print(f"{'streaming sinks' if args.streaming else 'guard abort'}: {args.runs} runs per "
          f"case, each in a fresh process; medians\nload average before: {load} on "
          f"{started['cpus']} CPUs; {started['available_bytes_before'] / 2**30:.1f} GiB "
          f"available\nDuckDB: read_parquet over {args.data}; PostgreSQL: lineitem at "
          f"{safe_url(args.url)}\n")
    srcs = sources(args)
    if not srcs:
        raise SystemExit("no engine to measure")
    cases = run_streaming(args, srcs) if args.streaming else run_guard(args, srcs)
    if args.json:
        doc = {"benchmark": "streaming" if args.streaming else "guard", "runs": args.runs,
               "machine": {**started, "load_avg_after": os.getloadavg()},
               "queryref_source": queryref_source(), "cases": cases}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
