"""Fetching a big result into pandas: queryref's sinks against DuckDB's own paths.

Each method runs in a fresh Python process (this script re-run with ``--one METHOD``), so one
method's leftovers cannot flatter or penalise the next; runs are interleaved across methods and
the table shows medians of:

- wall time of the fetch (imports and connecting excluded),
- peak RSS increase over the process's RSS just before the fetch (sampled every 5 ms in a
  thread, cross-checked with ``getrusage`` max RSS),
- the result: DataFrame bytes (``memory_usage(deep=True)``; it counts a Python object shared by
  many rows once per row, so it can over-count), rows streamed, or the Parquet file's size.

The source is TPC-H ``lineitem`` read with DuckDB's ``read_parquet`` (optionally ``LIMIT --rows``).
The Ibis methods can run under another interpreter (``--ibis-python``), for when Ibis cannot share
queryref's environment; their child never imports queryref.

    python benchmarks/bench_to_pandas.py --data data/tpch-sf1 --rows 1000000 --runs 3
    python benchmarks/bench_to_pandas.py --json results.json   # then benchmarks/plot.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Source:
    """Where the rows come from: a Parquet path (or glob) and an optional row limit."""

    path: str
    rows: int | None

    def sql(self) -> str:
        limit = f" LIMIT {self.rows}" if self.rows else ""
        return f"SELECT * FROM read_parquet('{self.path}'){limit}"

    def queryref(self) -> Any:
        import queryref as qr

        q = qr.connect().read_parquet(self.path)
        return q.limit(self.rows) if self.rows else q


# --- the methods: each returns (what it produced, a short description of its size) ----------


def df_result(df: Any) -> tuple[Any, dict[str, int]]:
    return df, {"rows": len(df), "df_bytes": int(df.memory_usage(deep=True).sum())}


def queryref_to_pandas(src: Source) -> tuple[Any, dict[str, int]]:
    return df_result(src.queryref().to_pandas(max_bytes=None))


def duckdb_df(src: Source) -> tuple[Any, dict[str, int]]:
    import duckdb

    return df_result(duckdb.connect().sql(src.sql()).df())


def duckdb_arrow_to_pandas(src: Source) -> tuple[Any, dict[str, int]]:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    result = duckdb.connect().sql(src.sql()).arrow()  # DuckDB 2.0: a RecordBatchReader
    table = result.read_all() if isinstance(result, pa.RecordBatchReader) else result
    return df_result(table.to_pandas(types_mapper=pd.ArrowDtype))


def pandas_read_sql(src: Source) -> tuple[Any, dict[str, int]]:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine("duckdb:///:memory:")  # the duckdb_engine dialect
    with engine.connect() as conn:
        return df_result(pd.read_sql(sqlalchemy.text(src.sql()), conn))


def pandas_read_sql_chunks(src: Source) -> tuple[Any, dict[str, int]]:
    """``read_sql(chunksize=...)`` consumed chunk by chunk, as a user would to bound memory."""
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine("duckdb:///:memory:")
    rows = 0
    with engine.connect() as conn:
        for chunk in pd.read_sql(sqlalchemy.text(src.sql()), conn, chunksize=BATCH_ROWS):
            rows += len(chunk)
            del chunk
    return None, {"rows": rows}


def ibis_to_pandas(src: Source) -> tuple[Any, dict[str, int]]:
    import ibis

    t = ibis.duckdb.connect().read_parquet(src.path)
    return df_result((t.limit(src.rows) if src.rows else t).to_pandas())


def queryref_arrow_batches(src: Source) -> tuple[Any, dict[str, int]]:
    rows = sum(b.num_rows for b in src.queryref().to_arrow_batches(batch_rows=BATCH_ROWS))
    return None, {"rows": rows}


def duckdb_reader(src: Source) -> tuple[Any, dict[str, int]]:
    import duckdb

    reader = duckdb.connect().sql(src.sql()).to_arrow_reader(BATCH_ROWS)
    return None, {"rows": sum(b.num_rows for b in reader)}


def queryref_to_parquet(src: Source) -> tuple[Any, dict[str, int]]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "out.parquet"
        src.queryref().to_parquet(str(out))
        return None, {"file_bytes": out.stat().st_size}


METHODS: dict[str, tuple[str, Callable[[Source], tuple[Any, dict[str, int]]]]] = {
    "qr_to_pandas": ("queryref to_pandas(max_bytes=None)", queryref_to_pandas),
    "duckdb_df": ("DuckDB .df()", duckdb_df),
    "duckdb_arrow": ("DuckDB .arrow() -> to_pandas(ArrowDtype)", duckdb_arrow_to_pandas),
    "read_sql": ("pandas.read_sql via duckdb_engine", pandas_read_sql),
    "ibis": ("Ibis (DuckDB) to_pandas()", ibis_to_pandas),
    "qr_batches": (f"queryref to_arrow_batches({BATCH_ROWS:,}) streamed", queryref_arrow_batches),
    "duckdb_batches": (f"DuckDB to_arrow_reader({BATCH_ROWS:,}) streamed", duckdb_reader),
    "read_sql_chunks": (f"pandas.read_sql(chunksize={BATCH_ROWS:,}) streamed",
                        pandas_read_sql_chunks),
    "qr_parquet": ("queryref to_parquet", queryref_to_parquet),
}

# Imported up front in the child, so their import cost is not counted as the method's.
OPTIONAL_IMPORTS = {
    "read_sql": ("sqlalchemy", "duckdb_engine"),
    "read_sql_chunks": ("sqlalchemy", "duckdb_engine"),
    "ibis": ("ibis",),
}
# Distributions whose versions each child reports (those it can import).
VERSIONED = ("duckdb", "pandas", "pyarrow", "sqlglot", "queryref", "sqlalchemy", "duckdb-engine",
             "ibis-framework")


# --- child: one method, one run ---------------------------------------------------------------


class PeakRSS:
    """Sample this process's RSS every ``interval`` seconds on a thread until stopped."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self.baseline = self._proc.memory_info().rss
        self._maxrss_before = _maxrss()
        self._peak = self.baseline
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        """Stop sampling; the peak increase over the baseline, in bytes."""
        self._stop.set()
        self._thread.join()
        peak = max(self._peak, self._proc.memory_info().rss)
        maxrss = _maxrss()
        if maxrss > self._maxrss_before:  # a new lifetime peak: catches spikes between samples
            peak = max(peak, maxrss)
        return peak - self.baseline


def _maxrss() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024  # macOS reports bytes, Linux KiB


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in VERSIONED:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found


def run_one(method: str, src: Source) -> dict[str, Any]:
    for module in OPTIONAL_IMPORTS.get(method, ()):
        try:
            __import__(module)
        except ImportError as exc:
            return {"skipped": f"{module} is not installed ({exc.__class__.__name__}: {exc})"}
    for module in ("duckdb", "pandas", "pyarrow", "psutil"):  # import costs paid before measuring
        __import__(module)
    if method.startswith("qr_"):
        __import__("queryref")
    fn = METHODS[method][1]
    meter = PeakRSS()
    start = time.perf_counter()
    result, sizes = fn(src)
    seconds = time.perf_counter() - start
    peak = meter.stop()
    del result
    return {"seconds": seconds, "peak_rss": peak, **sizes, "versions": versions()}


# --- parent: fresh processes, medians, a table ------------------------------------------------


def interpreter(method: str, args: argparse.Namespace) -> str:
    """The Python that runs ``method``: Ibis may live in an environment of its own."""
    return str(args.ibis_python) if method == "ibis" and args.ibis_python else sys.executable


def run_child(method: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [interpreter(method, args), os.path.abspath(__file__), "--one", method,
           "--data", str(args.data)]
    if args.rows:
        cmd += ["--rows", str(args.rows)]
    # DuckDB's progress bar goes to stdout; the result is the last line.
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {last[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


NUMERIC = ("seconds", "peak_rss", "rows", "df_bytes", "file_bytes")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over successful runs, or the first skip/error note."""
    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return {"note": runs[0].get("skipped") or runs[0].get("error", "?")}
    keys = [k for k in NUMERIC if any(k in r for r in ok)]
    summary: dict[str, Any] = {k: statistics.median(r[k] for r in ok if k in r) for k in keys}
    if len(ok) < len(runs):
        summary["note"] = f"{len(runs) - len(ok)} of {len(runs)} runs failed"
    return summary


def mib(n: float | None) -> str:
    return "" if n is None else f"{n / 2**20:,.1f}"


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    header = (f"{'method':44} {'wall s':>8} {'peak RSS +MiB':>14} {'rows':>11} "
              f"{'DataFrame MiB':>14} {'file MiB':>9}  note")
    print(header)
    print("-" * len(header))
    for method, s in summaries.items():
        seconds = f"{s['seconds']:.2f}" if "seconds" in s else ""
        rows = f"{int(s['rows']):,}" if "rows" in s else ""
        print(f"{METHODS[method][0]:44} {seconds:>8} {mib(s.get('peak_rss')):>14} {rows:>11} "
              f"{mib(s.get('df_bytes')):>14} {mib(s.get('file_bytes')):>9}  {s.get('note', '')}")


def lineitem_path(data: Path) -> str:
    """tpchgen-cli writes lineitem.parquet, or a lineitem/ directory of parts with --parts."""
    if (data / "lineitem.parquet").is_file():
        return str(data / "lineitem.parquet")
    if (data / "lineitem").is_dir():
        return str(data / "lineitem" / "*.parquet")
    raise SystemExit(f"no lineitem in {data}: run `make data` (or tpchgen-cli parquet ...) first")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="TPC-H Parquet directory (default data/tpch-sf1)")
    parser.add_argument("--rows", type=int, default=None,
                        help="LIMIT the source to this many rows (default: all of lineitem)")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (default 3)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS),
                        help="which methods to run (default: all)")
    parser.add_argument("--ibis-python", type=Path, default=None,
                        help="the Python that runs the Ibis method (default: this one), e.g. "
                             ".venv-bench-ibis/bin/python when Ibis needs its own environment")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write every run and the medians here (read by plot.py)")
    parser.add_argument("--one", choices=list(METHODS), help=argparse.SUPPRESS)
    return parser.parse_args()


def machine() -> dict[str, Any]:
    import psutil

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "load_avg_before": os.getloadavg(),
    }


def queryref_source() -> dict[str, Any]:
    """Where the children import queryref from, and its git commit when that is a checkout."""
    import importlib.util

    spec = importlib.util.find_spec("queryref")
    if spec is None or spec.origin is None:
        return {}
    where = Path(spec.origin).parent
    info: dict[str, Any] = {"path": str(where)}
    git = ["git", "-C", str(where)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True).stdout.strip()
        info.update(commit=head.stdout.strip(), dirty=bool(dirty))
    return info


def write_json(path: Path, args: argparse.Namespace, src: Source, started: dict[str, Any],
               runs: dict[str, list[dict[str, Any]]],
               summaries: dict[str, dict[str, Any]]) -> None:
    doc = {
        "benchmark": "to_pandas",
        "source": src.sql(),
        "rows_limit": args.rows,
        "runs": args.runs,
        "machine": {**started, "load_avg_after": os.getloadavg()},
        "queryref_source": queryref_source(),
        "methods": {
            m: {"label": METHODS[m][0], "summary": summaries[m],
                "versions": next((r["versions"] for r in runs[m] if "versions" in r), {}),
                "runs": [{k: v for k, v in r.items() if k != "versions"} for r in runs[m]]}
            for m in runs
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {path}")


def main() -> None:
    args = parse_args()
    src = Source(lineitem_path(args.data), args.rows)
    if args.one:
        print(json.dumps(run_one(args.one, src)))
        return
    started = machine()
    load = ", ".join(f"{x:.2f}" for x in started["load_avg_before"])
    print(f"source: {src.sql()}\n{args.runs} runs per method, each in a fresh process; medians"
          f"\nload average before: {load} on {started['cpus']} CPUs\n")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    for i in range(args.runs):
        for method in args.methods:
            if i and "seconds" not in runs[method][0]:
                continue  # skipped or failed on the first run: do not retry
            runs[method].append(run_child(method, args))
            print(".", end="", flush=True)
    print("\n")
    summaries = {m: summarize(r) for m, r in runs.items()}
    print_table(summaries)
    if args.json:
        write_json(args.json, args, src, started, runs, summaries)


if __name__ == "__main__":
    main()
