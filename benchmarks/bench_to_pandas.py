"""Fetching a big result into pandas: queryref's sinks against the engines' own paths,
``pandas.read_sql`` and Ibis, on embedded DuckDB or on PostgreSQL.

Each method runs in a fresh Python process (this script re-run with ``--one METHOD``), so one
method's leftovers cannot flatter or penalise the next; runs are interleaved across methods and
the table shows medians of:

- wall time of the fetch (imports and connecting excluded),
- peak RSS increase over the process's RSS just before the fetch (sampled every 5 ms in a
  thread, cross-checked with ``getrusage`` max RSS),
- the result: DataFrame bytes (``memory_usage(deep=True)``; it counts a Python object shared by
  many rows once per row, so it can over-count), rows streamed, or the Parquet file's size.

The source is TPC-H ``lineitem``: with ``--engine duckdb`` (default) read with DuckDB's
``read_parquet`` from ``--data``; with ``--engine postgres`` the ``lineitem`` table of the
database at ``--url`` (``benchmarks/load_postgres.py`` loads it). ``--rows N`` adds ``LIMIT N``
(no ORDER BY), the same for every method. The Ibis method can run under another interpreter
(``--ibis-python``), for when Ibis cannot share queryref's environment; its child never imports
queryref.

    python benchmarks/bench_to_pandas.py --data data/tpch-sf1 --rows 1000000 --runs 3
    python benchmarks/bench_to_pandas.py --duckdb-file data/tpch-sf1.duckdb \
        --methods qr_to_pandas duckdb_arrow --runs 5
    python benchmarks/bench_to_pandas.py --engine postgres --rows 1000000 --runs 3
    python benchmarks/bench_to_pandas.py --engine postgres --runs 3 --slow-runs 1
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

BATCH_ROWS = 100_000
PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/queryref_bench"
ENGINES = ("duckdb", "postgres")


@dataclass(frozen=True)
class Source:
    """Where the rows come from: DuckDB over a Parquet path (or glob), or a PostgreSQL table;
    and an optional row limit."""

    engine: str
    rows: int | None
    path: str = ""
    url: str = ""
    table: str = "lineitem"
    db: str = ""  # a DuckDB database file holding lineitem (instead of read_parquet)

    def sql(self) -> str:
        limit = f" LIMIT {self.rows}" if self.rows else ""
        if self.engine == "duckdb" and not self.db:
            return f"SELECT * FROM read_parquet('{self.path}'){limit}"
        return f"SELECT * FROM {self.table}{limit}"

    def describe(self) -> str:
        """The query, and for PostgreSQL where it runs (never with a password)."""
        if self.engine == "duckdb":
            return f"{self.sql()}  (embedded DuckDB{', ' + self.db if self.db else ''})"
        return f"{self.sql()}  (PostgreSQL {safe_url(self.url)})"

    def connect(self) -> Any:
        """A queryref connection to the engine."""
        import queryref as qr

        if self.engine == "duckdb":
            return qr.connect(self.db) if self.db else qr.connect()
        return qr.connect(self.url)

    def duckdb(self) -> Any:
        """DuckDB's own connection to the same data."""
        import duckdb

        return duckdb.connect(self.db, read_only=True) if self.db else duckdb.connect()

    def base(self, con: Any) -> Any:
        """The whole of ``lineitem`` as a QueryRef on ``con``."""
        if self.engine == "duckdb" and not self.db:
            return con.read_parquet(self.path)
        return con.table(self.table)

    def queryref(self) -> Any:
        q = self.base(self.connect())
        return q.limit(self.rows) if self.rows else q

    def sqlalchemy_url(self) -> str:
        if self.engine == "duckdb":
            return "duckdb:///:memory:"  # the duckdb_engine dialect
        return "postgresql+psycopg://" + self.url.split("://", 1)[1]


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# --- the methods: prepare(src) connects and returns fetch(); fetch() returns (what it
# produced, a short description of its size) and is what is measured --------------------------

Fetch = Callable[[], tuple[Any, dict[str, int]]]


def df_result(df: Any) -> tuple[Any, dict[str, int]]:
    return df, {"rows": len(df), "df_bytes": int(df.memory_usage(deep=True).sum())}


def queryref_to_pandas(src: Source) -> Fetch:
    q = src.queryref()
    return lambda: df_result(q.to_pandas(max_bytes=None))


def queryref_to_pandas_arrow(src: Source) -> Fetch:
    """``dtype_backend="pyarrow"``: every column ``pd.ArrowDtype``, like the raw Arrow paths."""
    q = src.queryref()
    return lambda: df_result(q.to_pandas(max_bytes=None, dtype_backend="pyarrow"))


def queryref_arrow_batches(src: Source) -> Fetch:
    q = src.queryref()

    def fetch() -> tuple[Any, dict[str, int]]:
        rows = sum(b.num_rows for b in q.to_arrow_batches(batch_rows=BATCH_ROWS))
        return None, {"rows": rows}

    return fetch


def queryref_to_parquet(src: Source) -> Fetch:
    q = src.queryref()

    def fetch() -> tuple[Any, dict[str, int]]:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            out = Path(tmp) / "out.parquet"
            q.to_parquet(str(out))
            return None, {"file_bytes": out.stat().st_size}

    return fetch


def duckdb_df(src: Source) -> Fetch:
    con = src.duckdb()
    return lambda: df_result(con.sql(src.sql()).df())


def duckdb_arrow_to_pandas(src: Source) -> Fetch:
    import pandas as pd
    import pyarrow as pa

    con = src.duckdb()

    def fetch() -> tuple[Any, dict[str, int]]:
        result = con.sql(src.sql()).arrow()  # DuckDB 2.0: a RecordBatchReader
        table = result.read_all() if isinstance(result, pa.RecordBatchReader) else result
        return df_result(table.to_pandas(types_mapper=pd.ArrowDtype))

    return fetch


def duckdb_reader(src: Source) -> Fetch:
    con = src.duckdb()

    def fetch() -> tuple[Any, dict[str, int]]:
        reader = con.sql(src.sql()).to_arrow_reader(BATCH_ROWS)
        return None, {"rows": sum(b.num_rows for b in reader)}

    return fetch


def adbc_cursor(src: Source) -> Any:
    import adbc_driver_postgresql.dbapi as adbc

    return adbc.connect(src.url, autocommit=True).cursor()


def adbc_to_pandas(src: Source) -> Fetch:
    """The driver's Arrow table, then pyarrow's default conversion (decimals, dates: objects)."""
    cur = adbc_cursor(src)

    def fetch() -> tuple[Any, dict[str, int]]:
        cur.execute(src.sql())
        return df_result(cur.fetch_arrow_table().to_pandas())

    return fetch


def adbc_arrow_dtypes(src: Source) -> Fetch:
    import pandas as pd

    cur = adbc_cursor(src)

    def fetch() -> tuple[Any, dict[str, int]]:
        cur.execute(src.sql())
        return df_result(cur.fetch_arrow_table().to_pandas(types_mapper=pd.ArrowDtype))

    return fetch


def adbc_reader(src: Source) -> Fetch:
    cur = adbc_cursor(src)

    def fetch() -> tuple[Any, dict[str, int]]:
        cur.execute(src.sql())
        reader = cur.fetch_record_batch()  # the driver's batch size (16 MB by default)
        return None, {"rows": sum(b.num_rows for b in reader)}

    return fetch


def pandas_read_sql(src: Source) -> Fetch:
    import pandas as pd
    import sqlalchemy

    conn = sqlalchemy.create_engine(src.sqlalchemy_url()).connect()
    return lambda: df_result(pd.read_sql(sqlalchemy.text(src.sql()), conn))


def pandas_read_sql_chunks(src: Source) -> Fetch:
    """``read_sql(chunksize=...)`` consumed chunk by chunk, as a user would to bound memory.

    pandas fetches the chunks from an ordinary (client-side) cursor, so psycopg has received
    the whole result before the first chunk is built; only ``stream_results=True`` on the
    connection, which a user has to know about, would make it a server-side cursor.
    """
    import pandas as pd
    import sqlalchemy

    conn = sqlalchemy.create_engine(src.sqlalchemy_url()).connect()

    def fetch() -> tuple[Any, dict[str, int]]:
        rows = 0
        for chunk in pd.read_sql(sqlalchemy.text(src.sql()), conn, chunksize=BATCH_ROWS):
            rows += len(chunk)
            del chunk
        return None, {"rows": rows}

    return fetch


def ibis_to_pandas(src: Source) -> Fetch:
    """Ibis's own table expression (not ``con.sql``), ``.limit(rows)``, ``.to_pandas()``.

    DuckDB: the time includes ``read_parquet`` creating its view; PostgreSQL: ``con.table``
    reading the table's schema.
    """
    import ibis

    if src.engine == "duckdb":
        con = ibis.duckdb.connect()
        open_table = lambda: con.read_parquet(src.path)  # noqa: E731
    else:
        u = urlsplit(src.url)
        con = ibis.postgres.connect(
            host=u.hostname or "localhost", port=u.port or 5432,
            user=unquote(u.username or "postgres"),
            password=unquote(u.password) if u.password else None,
            database=u.path.lstrip("/") or "postgres")
        open_table = lambda: con.table(src.table)  # noqa: E731

    def fetch() -> tuple[Any, dict[str, int]]:
        t = open_table()
        return df_result((t.limit(src.rows) if src.rows else t).to_pandas())

    return fetch


@dataclass(frozen=True)
class Method:
    """A way to fetch the result: its label per engine, and what it needs to import."""

    labels: Mapping[str, str]
    prepare: Callable[[Source], Fetch]
    imports: Mapping[str, tuple[str, ...]]
    slow: bool = False  # builds Python objects row by row: minutes and gigabytes on full SF1


QR_IMPORTS = {"duckdb": (), "postgres": ("adbc_driver_postgresql",)}
ADBC = {"postgres": ("adbc_driver_postgresql",)}
SQLA = {"duckdb": ("sqlalchemy", "duckdb_engine"), "postgres": ("sqlalchemy", "psycopg")}

# The DataFrame methods first, then the streamed ones; each engine's raw paths take the same
# places (duckdb_df / adbc_df, duckdb_arrow / adbc_arrow, duckdb_batches / adbc_batches), so
# tables and plots of both engines line up.
METHODS: dict[str, Method] = {
    "qr_to_pandas": Method(
        {"duckdb": "queryref to_pandas(max_bytes=None)",
         "postgres": "queryref to_pandas(max_bytes=None)"},
        queryref_to_pandas, QR_IMPORTS),
    "duckdb_df": Method({"duckdb": "DuckDB .df()"}, duckdb_df, {"duckdb": ()}),
    "adbc_df": Method({"postgres": "ADBC fetch_arrow_table().to_pandas()"},
                      adbc_to_pandas, ADBC),
    "duckdb_arrow": Method({"duckdb": "DuckDB .arrow() -> to_pandas(ArrowDtype)"},
                           duckdb_arrow_to_pandas, {"duckdb": ()}),
    "adbc_arrow": Method({"postgres": "ADBC fetch_arrow_table() -> to_pandas(ArrowDtype)"},
                         adbc_arrow_dtypes, ADBC),
    "qr_to_pandas_arrow": Method(
        {e: "queryref to_pandas(dtype_backend='pyarrow')" for e in ENGINES},
        queryref_to_pandas_arrow, QR_IMPORTS),
    "read_sql": Method(
        {"duckdb": "pandas.read_sql via duckdb_engine",
         "postgres": "pandas.read_sql via SQLAlchemy+psycopg"},
        pandas_read_sql, SQLA, slow=True),
    "ibis": Method({"duckdb": "Ibis (DuckDB) to_pandas()",
                    "postgres": "Ibis (Postgres) to_pandas()"},
                   ibis_to_pandas, {"duckdb": ("ibis",), "postgres": ("ibis", "psycopg")},
                   slow=True),
    "qr_batches": Method(
        {e: f"queryref to_arrow_batches({BATCH_ROWS:,}) streamed" for e in ENGINES},
        queryref_arrow_batches, QR_IMPORTS),
    "duckdb_batches": Method({"duckdb": f"DuckDB to_arrow_reader({BATCH_ROWS:,}) streamed"},
                             duckdb_reader, {"duckdb": ()}),
    "adbc_batches": Method({"postgres": "ADBC fetch_record_batch() streamed"},
                           adbc_reader, ADBC),
    "read_sql_chunks": Method(
        {e: f"pandas.read_sql(chunksize={BATCH_ROWS:,}) streamed" for e in ENGINES},
        pandas_read_sql_chunks, SQLA, slow=True),
    "qr_parquet": Method({e: "queryref to_parquet" for e in ENGINES},
                         queryref_to_parquet, QR_IMPORTS),
}


def methods_for(engine: str) -> list[str]:
    """The methods that run on ``engine``, in table order."""
    return [name for name, m in METHODS.items() if engine in m.labels]


def label(method: str, engine: str) -> str:
    return METHODS[method].labels.get(engine, method)


# Distributions whose versions each child reports (those it can import).
VERSIONED = ("duckdb", "pandas", "pyarrow", "sqlglot", "queryref", "sqlalchemy", "duckdb-engine",
             "psycopg", "adbc-driver-postgresql", "ibis-framework")


# --- child: one method, one run ---------------------------------------------------------------


class PeakRSS:
    """Sample this process's RSS every ``interval`` seconds on a thread until stopped.

    With ``kill_above`` (bytes over the baseline), the process exits at once (status 3, a
    message on stderr) when the increase passes it: a safety net on a shared machine.
    """

    def __init__(self, interval: float = 0.005, kill_above: int | None = None) -> None:
        import psutil

        self._proc = psutil.Process()
        self.baseline = self._proc.memory_info().rss
        self._maxrss_before = _maxrss()
        self._peak = self.baseline
        self._kill_above = kill_above
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, self._proc.memory_info().rss)
            if self._kill_above is not None and self._peak - self.baseline > self._kill_above:
                print(f"peak RSS increase passed the safety cap of {self._kill_above / 2**20:,.0f}"
                      " MiB: stopped", file=sys.stderr, flush=True)
                os._exit(3)

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
    for module in METHODS[method].imports.get(src.engine, ()):
        try:
            __import__(module)
        except ImportError as exc:
            return {"skipped": f"{module} is not installed ({exc.__class__.__name__}: {exc})"}
    for module in ("pandas", "pyarrow", "psutil"):  # import costs paid before measuring
        __import__(module)
    if src.engine == "duckdb":
        __import__("duckdb")
    if method.startswith("qr_"):
        __import__("queryref")
    fetch = METHODS[method].prepare(src)  # connecting is not measured
    meter = PeakRSS()
    start = time.perf_counter()
    result, sizes = fetch()
    seconds = time.perf_counter() - start
    peak = meter.stop()
    del result
    return {"seconds": seconds, "peak_rss": peak, **sizes, "versions": versions()}


# --- parent: fresh processes, medians, a table ------------------------------------------------


def interpreter(method: str, args: argparse.Namespace) -> str:
    """The Python that runs ``method``: Ibis may live in an environment of its own."""
    return str(args.ibis_python) if method == "ibis" and args.ibis_python else sys.executable


def source_args(src: Source) -> list[str]:
    """Command-line arguments that give a child the same source."""
    cmd = ["--engine", src.engine]
    cmd += ["--data", str(Path(src.path).parent)] if src.engine == "duckdb" else ["--url", src.url]
    if src.rows:
        cmd += ["--rows", str(src.rows)]
    if src.db:
        cmd += ["--duckdb-file", src.db]
    return cmd


def child_result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON a child printed last, or an error note."""
    # DuckDB's progress bar goes to stdout; the result is the last line.
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {last[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_child(method: str, src: Source, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [interpreter(method, args), os.path.abspath(__file__), "--one", method,
           *source_args(src)]
    return child_result(subprocess.run(cmd, capture_output=True, text=True))


def wait_for_memory(need_gib: float, wait_s: float) -> str | None:
    """Wait (up to ``wait_s``) until ``need_gib`` GiB are available; None, or why not."""
    import psutil

    deadline = time.monotonic() + wait_s
    while True:
        available = psutil.virtual_memory().available / 2**30
        if available >= need_gib:
            return None
        if time.monotonic() >= deadline:
            return (f"skipped: {available:.1f} GiB available, this method needs about "
                    f"{need_gib:.0f} GiB on all of lineitem (--min-available)")
        time.sleep(10)


NUMERIC = ("seconds", "peak_rss", "rows", "df_bytes", "file_bytes")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over successful runs, or the first skip/error note."""
    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return {"note": runs[0].get("skipped") or runs[0].get("error", "?")}
    keys = [k for k in NUMERIC if any(k in r for r in ok)]
    summary: dict[str, Any] = {k: statistics.median(r[k] for r in ok if k in r) for k in keys}
    summary["n_runs"] = len(ok)
    if len(ok) < len(runs):
        summary["note"] = f"{len(runs) - len(ok)} of {len(runs)} runs failed"
    return summary


def mib(n: float | None) -> str:
    return "" if n is None else f"{n / 2**20:,.1f}"


def print_table(summaries: dict[str, dict[str, Any]], engine: str) -> None:
    header = (f"{'method':50} {'runs':>4} {'wall s':>8} {'peak RSS +MiB':>14} {'rows':>11} "
              f"{'DataFrame MiB':>14} {'file MiB':>9}  note")
    print(header)
    print("-" * len(header))
    for method, s in summaries.items():
        seconds = f"{s['seconds']:.2f}" if "seconds" in s else ""
        rows = f"{int(s['rows']):,}" if "rows" in s else ""
        print(f"{label(method, engine):50} {s.get('n_runs', 0):>4} {seconds:>8} "
              f"{mib(s.get('peak_rss')):>14} {rows:>11} {mib(s.get('df_bytes')):>14} "
              f"{mib(s.get('file_bytes')):>9}  {s.get('note', '')}")


def lineitem_path(data: Path) -> str:
    """tpchgen-cli writes lineitem.parquet, or a lineitem/ directory of parts with --parts."""
    if (data / "lineitem.parquet").is_file():
        return str(data / "lineitem.parquet")
    if (data / "lineitem").is_dir():
        return str(data / "lineitem" / "*.parquet")
    raise SystemExit(f"no lineitem in {data}: run `make data` (or tpchgen-cli parquet ...) first")


def make_source(args: argparse.Namespace) -> Source:
    if args.engine == "duckdb":
        path = lineitem_path(args.data)
        if args.duckdb_file is None:
            return Source("duckdb", args.rows, path=path)
        db = str(args.duckdb_file)
        if not args.duckdb_file.exists() and not args.one:
            import duckdb

            with duckdb.connect(db) as con:  # the DuckDB database file the issue measured on
                con.execute(f"CREATE TABLE lineitem AS SELECT * FROM read_parquet('{path}')")
        return Source("duckdb", args.rows, path=path, db=db)
    return Source("postgres", args.rows, url=args.url)


def check_postgres(src: Source) -> None:
    """Exit with a clear message when the database or its ``lineitem`` table is not there."""
    try:
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(src.url) as con, con.cursor() as cur:
            cur.execute(f"SELECT to_regclass('{src.table}') IS NOT NULL")
            row = cur.fetchone()
    except Exception as err:  # the driver's errors, or the driver missing
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SystemExit(f"PostgreSQL is not reachable at {safe_url(src.url)}: {first}") from None
    if not row or not row[0]:
        raise SystemExit(f"no table {src.table} in {safe_url(src.url)}: run "
                         "benchmarks/load_postgres.py first")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="duckdb: read_parquet over --data (default); postgres: the "
                             "lineitem table at --url")
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="TPC-H Parquet directory (default data/tpch-sf1)")
    parser.add_argument("--url", default=os.environ.get("QUERYREF_BENCH_PG", PG_DEFAULT_URL),
                        help="PostgreSQL database holding lineitem (default $QUERYREF_BENCH_PG "
                             f"or {PG_DEFAULT_URL})")
    parser.add_argument("--duckdb-file", type=Path, default=None,
                        help="duckdb: read lineitem from this DuckDB database file (made from "
                             "--data when missing) instead of read_parquet")
    parser.add_argument("--rows", type=int, default=None,
                        help="LIMIT the source to this many rows (default: all of lineitem)")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (default 3)")
    parser.add_argument("--slow-runs", type=int, default=None,
                        help="runs of the slow row-by-row methods (read_sql, read_sql_chunks, "
                             "ibis); default: --runs")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None,
                        help="which methods to run (default: all those of the engine)")
    parser.add_argument("--min-available", type=float, default=17.0, metavar="GIB",
                        help="on all of lineitem, run the slow methods only when this many GiB "
                             "are available (read_sql and Ibis take 11-15 GB there); default 17")
    parser.add_argument("--wait", type=float, default=600.0, metavar="S",
                        help="how long to wait for --min-available before skipping (default 600)")
    parser.add_argument("--ibis-python", type=Path, default=None,
                        help="the Python that runs the Ibis method (default: this one), e.g. "
                             "/tmp/ibis-venv/bin/python when Ibis needs its own environment")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write every run and the medians here (read by plot.py)")
    parser.add_argument("--one", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    wrong = [m for m in args.methods or () if args.engine not in METHODS[m].labels]
    if wrong:
        parser.error(f"not a {args.engine} method: {', '.join(wrong)} "
                     f"(those are: {', '.join(methods_for(args.engine))})")
    return args


def machine() -> dict[str, Any]:
    import psutil

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "available_bytes_before": psutil.virtual_memory().available,
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
        "engine": src.engine,
        "source": src.describe(),
        "rows_limit": args.rows,
        "runs": args.runs,
        "slow_runs": args.slow_runs,
        "machine": {**started, "load_avg_after": os.getloadavg()},
        "queryref_source": queryref_source(),
        "methods": {
            m: {"label": label(m, src.engine), "summary": summaries[m],
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
    src = make_source(args)
    if args.one:
        print(json.dumps(run_one(args.one, src)))
        return
    if src.engine == "postgres":
        check_postgres(src)
    methods = args.methods or methods_for(src.engine)
    slow_runs = args.runs if args.slow_runs is None else args.slow_runs
    started = machine()
    load = ", ".join(f"{x:.2f}" for x in started["load_avg_before"])
    print(f"source: {src.describe()}\n{args.runs} runs per method ({slow_runs} for the slow "
          f"row-by-row ones), each in a fresh process; medians\nload average before: {load} on "
          f"{started['cpus']} CPUs; {started['available_bytes_before'] / 2**30:.1f} GiB "
          "available\n")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for i in range(max(args.runs, slow_runs)):
        for method in methods:
            if i >= (slow_runs if METHODS[method].slow else args.runs):
                continue
            if i and "seconds" not in runs[method][0]:
                continue  # skipped or failed on the first run: do not retry
            heavy = METHODS[method].slow and not src.rows
            why = wait_for_memory(args.min_available, args.wait) if heavy else None
            runs[method].append({"skipped": why} if why else run_child(method, src, args))
            print(".", end="", flush=True)
    print("\n")
    summaries = {m: summarize(r) for m, r in runs.items()}
    print_table(summaries, src.engine)
    if args.json:
        write_json(args.json, args, src, started, runs, summaries)


if __name__ == "__main__":
    main()
