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

    python benchmarks/bench_to_pandas.py --data data/tpch-sf1 --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
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
    import duckdb_engine  # noqa: F401  (skipped when the SQLAlchemy dialect is not installed)
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine("duckdb:///:memory:")
    with engine.connect() as conn:
        return df_result(pd.read_sql(sqlalchemy.text(src.sql()), conn))


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
    "qr_parquet": ("queryref to_parquet", queryref_to_parquet),
}

# Imported up front in the child, so their import cost is not counted as the method's.
OPTIONAL_IMPORTS = {"read_sql": ("sqlalchemy", "duckdb_engine"), "ibis": ("ibis",)}


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


def run_one(method: str, src: Source) -> dict[str, Any]:
    for module in OPTIONAL_IMPORTS.get(method, ()):
        try:
            __import__(module)
        except ImportError as exc:
            return {"skipped": f"{module} is not installed ({exc.__class__.__name__})"}
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
    return {"seconds": seconds, "peak_rss": peak, **sizes}


# --- parent: fresh processes, medians, a table ------------------------------------------------


def run_child(method: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", method, "--data", str(args.data)]
    if args.rows:
        cmd += ["--rows", str(args.rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {last[:120]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over successful runs, or the first skip/error note."""
    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return {"note": runs[0].get("skipped") or runs[0].get("error", "?")}
    keys = {k for r in ok for k in r}
    summary: dict[str, Any] = {k: statistics.median(r[k] for r in ok) for k in keys}
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
    parser.add_argument("--one", choices=list(METHODS), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    src = Source(lineitem_path(args.data), args.rows)
    if args.one:
        print(json.dumps(run_one(args.one, src)))
        return
    print(f"source: {src.sql()}\n{args.runs} runs per method, each in a fresh process; medians\n")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    for i in range(args.runs):
        for method in args.methods:
            if i and "seconds" not in runs[method][0]:
                continue  # skipped or failed on the first run: do not retry
            runs[method].append(run_child(method, args))
            print(".", end="", flush=True)
    print("\n")
    print_table({m: summarize(r) for m, r in runs.items()})


if __name__ == "__main__":
    main()
