"""What ``to_pandas(shrink_dtypes=True)`` saves on TPC-H lineitem (embedded DuckDB).

Each run happens in a fresh process (the script re-runs itself with ``--one MODE``); the table
shows medians of wall time, peak RSS increase over the RSS just before the fetch (sampled every
5 ms), the DataFrame's bytes (``memory_usage(deep=True)``), and for the shrunk frame the
saving queryref reports in ``df.attrs["queryref"]["shrink"]`` plus each column's new dtype.

    python benchmarks/bench_shrink.py --data data/tpch-sf1 [--rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

MODES = ("plain", "shrink")


def one(mode: str, data: str, rows: int | None) -> dict[str, object]:
    import psutil

    import queryref as qr

    con = qr.connect()
    q = con.read_parquet(os.path.join(data, "lineitem.parquet"))
    if rows:
        q = q.limit(rows)
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    df = q.to_pandas(max_bytes=None, shrink_dtypes=(mode == "shrink"))
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    out: dict[str, object] = {
        "mode": mode, "rows": len(df), "seconds": seconds,
        "peak_rss_increase": peak[0] - base,
        "frame_bytes": int(df.memory_usage(deep=True, index=False).sum()),
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
    }
    if mode == "shrink":
        out["report"] = df.attrs["queryref"]["shrink"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/tpch-sf1")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--one", choices=MODES)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.data, args.rows)))
        return
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    for _ in range(args.runs):
        for mode in MODES:  # interleaved, each in a fresh process
            cmd = [sys.executable, __file__, "--one", mode, "--data", args.data]
            if args.rows:
                cmd += ["--rows", str(args.rows)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    mib = 2**20
    what = f"{args.rows:,} rows of" if args.rows else "all of"
    print(f"to_pandas on {what} lineitem ({args.data}), medians of {args.runs} fresh processes")
    print(f"{'mode':8} {'rows':>10} {'seconds':>8} {'peak +MiB':>10} {'frame MiB':>10}")
    for mode in MODES:
        runs = results[mode]
        print(f"{mode:8} {runs[0]['rows']:>10,} "
              f"{statistics.median(r['seconds'] for r in runs):>8.2f} "
              f"{statistics.median(r['peak_rss_increase'] for r in runs) / mib:>10.0f} "
              f"{statistics.median(r['frame_bytes'] for r in runs) / mib:>10.0f}")
    report = results["shrink"][0]["report"]
    before, after = report["bytes_before"], report["bytes_after"]
    print(f"queryref's report: {before / mib:.0f} MiB -> {after / mib:.0f} MiB "
          f"({100 * (1 - after / before):.0f}% saved)")
    for name, c in report["columns"].items():
        print(f"  {name:16} {c['from']:>8} -> {c['to']:<9} "
              f"{c['bytes_before'] / mib:7.1f} -> {c['bytes_after'] / mib:6.1f} MiB")


if __name__ == "__main__":
    main()
