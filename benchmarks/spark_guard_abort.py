"""A guard abort on Apache Spark (Spark Connect), measured beside the plain pyspark client.

    .venv/bin/python benchmarks/spark_guard_abort.py [--url sc://127.0.0.1:15002]
        [--rows 100000] [--width 2000] [--partitions 50] [--budget 20MB] [--runs 3]

The query is ``range()`` with a text column of ``--width`` characters: 100,000 rows of 2,000
characters are ~200 MB in Arrow, ten times the default budget. In ``--partitions`` partitions,
so the server (which builds a partition's Arrow batches in its own heap, 1 GB in the tests)
holds a few MB at a time. Each method runs in a fresh process (this script re-runs itself with
``--one METHOD``), the runs interleaved; the table shows medians:

- ``qr_arrow`` / ``qr_pandas``: queryref ``to_arrow`` / ``to_pandas`` with ``max_bytes=budget``
  and ``preflight=None``, so the fetch layer of the guard must stop the query mid-stream;
- ``qr_pandas_default``: ``to_pandas(max_bytes=budget)`` as a user writes it, the pre-flight
  on (Spark's ``EXPLAIN COST`` has a row count for ``range()``): refused before the query
  runs, so there is nothing to cancel;
- ``pyspark_arrow`` / ``pyspark_pandas``: the plain Spark Connect client,
  ``spark.sql(q).toArrow()`` / ``toPandas()``, which reads the whole result.

Figures: the peak RSS increase of the child over its RSS just before the call (sampled every
5 ms on a thread, cross-checked with ``getrusage``); the seconds to the error (or to the whole
result); for queryref, the time from the guard's cancel (the budget crossed) to the server
no longer running the query (Spark Connect's ``GetStatus`` of the session's operations, polled
every 5 ms: the operation left ``RUNNING``/``TERMINATING``; Spark has cancelled the job's
tasks by then), and a ``SELECT 1`` on the same connection afterwards. When the server is a
process on this machine and ``jstack`` is installed, also the Spark tasks still running
one second after the abort (0: the job stopped; other sessions' tasks would count too, so
measure on a server of your own).

``--json FILE`` writes every run. Nothing starts a server: point ``--url`` at one
(``tests/conformance/_spark.py`` shows how the tests start theirs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

METHODS = ("qr_arrow", "qr_pandas", "qr_pandas_default", "pyspark_arrow", "pyspark_pandas")
BUSY = (2, 3)  # GetStatusResponse.OperationStatus: RUNNING, TERMINATING
HERE = os.path.dirname(os.path.abspath(__file__))


def query(rows: int, width: int, partitions: int) -> str:
    return (f"SELECT id AS n, repeat('x', {width}) AS s "
            f"FROM range(0, {rows}, 1, {partitions})")


def busy_operations(client: Any) -> int:
    """How many of the session's operations the server still runs or is ending."""
    reply = client._get_operation_statuses()
    return sum(1 for o in reply.operation_statuses if o.state in BUSY)


def server_pid(url: str) -> int | None:
    """The local Spark Connect server's process for ``url`` (None: not on this machine)."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    wanted = f"spark.connect.grpc.binding.port={parts.port or 15002}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read()
            except OSError:
                continue
            if b"SparkConnectServer" in args and wanted in args:
                return int(entry)
    return None


def running_tasks(pid: int | None) -> int | None:
    """Spark tasks running in the server's JVM now (a ``jstack`` thread dump), or None."""
    jstack = shutil.which("jstack")
    if pid is None or jstack is None:
        return None
    out = subprocess.run([jstack, str(pid)], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    if not out:
        return None
    return len(re.findall(r'^"Executor task launch worker for task ', out, re.M))


# -- the child ----------------------------------------------------------------------------------
def one(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``method`` once in this process; its figures."""
    sys.path.insert(0, HERE)
    import pandas  # noqa: F401 (import costs paid before measuring)
    import pyarrow  # noqa: F401
    from bench_to_pandas import PeakRSS
    from pg_guard_abort import CancelClock, select_one, wait_gone

    import queryref as qr

    sql = query(args.rows, args.width, args.partitions)
    out: dict[str, Any] = {"method": method}
    if method.startswith("pyspark"):
        from pyspark.sql.connect.session import SparkSession

        spark = SparkSession.builder.remote(args.url).create()
        spark.sql("SELECT 1 AS x").toArrow()  # connected, warm
        peak = PeakRSS()
        t0 = time.perf_counter()
        result = spark.sql(sql).toArrow() if method == "pyspark_arrow" \
            else spark.sql(sql).toPandas()
        out["seconds"] = time.perf_counter() - t0
        out["outcome"] = f"{len(result):,} rows"
        del result
        out["peak_increase_mb"] = peak.stop() / 2**20
        spark.stop()
        return out
    con = qr.connect(args.url)
    client = con.backend._spark.client  # type: ignore[attr-defined]
    con.sql("SELECT 1 AS x").to_arrow()
    q = con.sql(sql)
    _ = q.columns  # (the schema lookup, outside the measurement)
    options: dict[str, Any] = {"max_bytes": args.budget}
    if method != "qr_pandas_default":
        options["preflight"] = None
    peak = PeakRSS()
    t0 = time.perf_counter()
    with CancelClock() as clock:
        try:
            (q.to_arrow if method == "qr_arrow" else q.to_pandas)(**options)
            out["outcome"] = "returned (the guard did not stop it)"
        except qr.errors.ResultTooLarge as err:
            out["outcome"] = f"ResultTooLarge ({err.stage})"
        raised = time.perf_counter()
    out["seconds"] = raised - t0
    out["peak_increase_mb"] = peak.stop() / 2**20
    if clock.crossed is not None:  # (else refused before the query ran: nothing to cancel)
        cross = clock.crossed
        gone = wait_gone(lambda: busy_operations(client), cross)
        out["ms_cancel_to_gone"] = round((gone - cross) * 1000, 1) if gone else None
        out["ms_cancel_to_error"] = round((raised - cross) * 1000, 1)
    else:
        out["busy_after"] = busy_operations(client)
    pid = server_pid(args.url)
    time.sleep(max(0.0, 1.0 - (time.perf_counter() - raised)))
    out["tasks_1s_after"] = running_tasks(pid)
    value, ms = select_one(con)
    out["select_1_after"] = value
    out["ms_select_1"] = ms
    con.close()
    return out


# -- the parent ---------------------------------------------------------------------------------
def run(method: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", method, "--url", args.url,
           "--rows", str(args.rows), "--width", str(args.width),
           "--partitions", str(args.partitions), "--budget", args.budget]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"method": method, "outcome": f"failed: {proc.stderr.strip()[-500:]}"}
    return dict(json.loads(lines[-1]))


def table(results: list[dict[str, Any]]) -> str:
    def median(rows: list[dict[str, Any]], key: str) -> str:
        values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
        if not values:
            return "-"
        return f"{statistics.median(values):,.1f}"

    head = (f"{'method':18} {'outcome':26} {'peak MB':>8} {'seconds':>8} "
            f"{'cancel->gone ms':>15} {'cancel->error ms':>16} {'tasks 1s after':>14} "
            f"{'SELECT 1':>8}")
    lines = [head, "-" * len(head)]
    for method in METHODS:
        rows = [r for r in results if r["method"] == method]
        if not rows:
            continue
        outcomes = sorted({str(r.get("outcome")) for r in rows})
        tasks = sorted({str(r.get("tasks_1s_after")) for r in rows if "tasks_1s_after" in r})
        select1 = sorted({str(r.get("select_1_after")) for r in rows
                          if "select_1_after" in r})
        lines.append(
            f"{method:18} {' / '.join(outcomes)[:26]:26} {median(rows, 'peak_increase_mb'):>8} "
            f"{median(rows, 'seconds'):>8} {median(rows, 'ms_cancel_to_gone'):>15} "
            f"{median(rows, 'ms_cancel_to_error'):>16} {','.join(tasks) or '-':>14} "
            f"{','.join(select1) or '-':>8}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("QUERYREF_SPARK_URL",
                                                        "sc://127.0.0.1:15002"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=50)
    parser.add_argument("--budget", default="20MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--json", default=None, help="write every run here")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args)), flush=True)
        return
    mb = args.rows * (args.width + 8) / 1e6
    print(f"{args.url}: {args.rows:,} rows x {args.width:,} chars (~{mb:,.0f} MB in Arrow) in "
          f"{args.partitions} partitions, budget {args.budget}, {args.runs} run(s) each",
          flush=True)
    results = []
    for i in range(args.runs):
        for method in args.methods:
            r = run(method, args)
            r["run"] = i
            results.append(r)
            figures = {k: v for k, v in r.items() if k != "method"}
            print(f"  run {i} {method}: {json.dumps(figures)}", flush=True)
    print()
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
