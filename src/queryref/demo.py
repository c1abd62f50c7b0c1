"""The main job: a 6-million-row table handled without loading it, on embedded DuckDB.

Run it with ``make demo`` or ``python -m queryref.demo --data data/tpch-sf1``. It uses TPC-H's
``lineitem`` table (generated with ``tpchgen-cli`` when the directory lacks it) and shows, with
wall time and the process's peak memory increase for each step:

a. the row count, pushed down as ``SELECT COUNT(*)``, and the table's size on disk;
b. ``lineitem.to_pandas(max_bytes="200MB")`` refused by the size guard with a clear message,
   while the process's memory stays near the budget (the whole table would take GBs);
c. the question asked the right way: a TPC-H Q1-style aggregate that runs in the database and
   returns a few rows, with the SQL that ran;
d. a big result streamed to Parquet with ``to_parquet``, then read back with ``read_parquet`` to
   keep composing.

Only queryref's public API is used here, so this file doubles as an example.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

import queryref as qr

Q1_CUTOFF = datetime.date(1998, 9, 2)  # TPC-H Q1: DATE '1998-12-01' - INTERVAL '90' DAY


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Usage:
    """Wall time and peak resident memory increase of one measured block."""

    seconds: float = 0.0
    peak_rss_increase: int = 0
    rss_after: int = 0

    def __str__(self) -> str:
        return (
            f"{self.seconds:.2f} s, peak RSS +{fmt_bytes(self.peak_rss_increase)} "
            f"(process at {fmt_bytes(self.rss_after)} after)"
        )


@contextmanager
def measured(interval: float = 0.005) -> Iterator[Usage]:
    """Time a block and sample this process's RSS every ``interval`` seconds while it runs."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(interval):
            peak = max(peak, proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    usage = Usage()
    start = time.perf_counter()
    try:
        yield usage
    finally:
        usage.seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        usage.rss_after = proc.memory_info().rss
        usage.peak_rss_increase = max(peak, usage.rss_after) - base


def fmt_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def disk_size(path: Path) -> int:
    """Bytes of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def section(title: str) -> None:
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


def indent(text: object, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in str(text).splitlines())


def table(df: Any) -> str:
    """A small DataFrame as text, floats with thousands separators."""
    return str(df.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


# --- data ------------------------------------------------------------------------------------


def lineitem_location(data: Path) -> Path | None:
    """Where tpchgen-cli put lineitem: one file by default, a directory with ``--parts``."""
    for candidate in (data / "lineitem.parquet", data / "lineitem"):
        if candidate.exists():
            return candidate
    return None


def generate_tpch(data: Path, scale: float) -> None:
    """Generate TPC-H Parquet files into ``data`` (written aside first, then renamed)."""
    here = str(Path(sys.executable).parent)
    exe = shutil.which("tpchgen-cli", path=here + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        msg = "tpchgen-cli not found: `pip install tpchgen-cli` (or `make install`), or pass --data"
        raise SystemExit(msg)
    partial = data.with_name(data.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"generating TPC-H at scale {scale:g} into {data} with tpchgen-cli ...", flush=True)
    subprocess.run([exe, "parquet", "-s", f"{scale:g}", f"--output-dir={partial}"], check=True)
    shutil.rmtree(data, ignore_errors=True)
    partial.rename(data)


def open_lineitem(con: Any, data: Path, scale: float) -> tuple[Any, Path]:
    """A QueryRef over lineitem (generating the data if needed) and where its files are."""
    location = lineitem_location(data)
    if location is None:
        generate_tpch(data, scale)
        location = lineitem_location(data)
        assert location is not None, f"tpchgen-cli wrote no lineitem into {data}"
    pattern = location / "*.parquet" if location.is_dir() else location
    return con.read_parquet(str(pattern)), location


# --- the four steps --------------------------------------------------------------------------


def show_size(lineitem: Any, location: Path) -> None:
    section("a. How big is lineitem?  (COUNT(*) pushed down: no row leaves DuckDB)")
    with measured() as usage:
        rows = lineitem.count()
    print(f"rows:            {rows:,}")
    print(f"Parquet on disk: {fmt_bytes(disk_size(location))}  ({location})")
    print(f"count():         {usage}")


def show_guard(lineitem: Any, budget: str) -> None:
    section(f'b. lineitem.to_pandas(max_bytes="{budget}")  -- the size guard')
    refused: qr.errors.ResultTooLarge | None = None
    fetched = 0
    with measured() as usage:
        try:
            fetched = len(lineitem.to_pandas(max_bytes=budget))
        except qr.errors.ResultTooLarge as exc:
            refused = exc
    if refused is None:
        print(f"it fit: {fetched:,} rows under the {budget} budget.  Try a larger --scale or")
        print("a smaller --max-bytes to see the guard refuse.")
    else:
        print("refused, with this message:\n")
        print(indent(refused))
    print(f"\nthe attempt:     {usage}")


def q1(lineitem: Any) -> Any:
    """TPC-H Q1 (pricing summary report), composed lazily: nothing runs here."""
    col = qr.col
    disc_price = col("l_extendedprice") * (1 - col("l_discount"))
    return (
        lineitem.filter(col("l_shipdate") <= Q1_CUTOFF)
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            sum_qty=col("l_quantity").sum(),
            sum_base_price=col("l_extendedprice").sum(),
            sum_disc_price=disc_price.sum(),
            sum_charge=(disc_price * (1 + col("l_tax"))).sum(),
            avg_qty=col("l_quantity").mean(),
            avg_price=col("l_extendedprice").mean(),
            avg_disc=col("l_discount").mean(),
            count_order=qr.count(),
        )
        .order_by("l_returnflag", "l_linestatus")
    )


def show_aggregate(lineitem: Any, budget: str) -> None:
    section("c. The same question asked the right way: aggregate in the database (TPC-H Q1)")
    query = q1(lineitem)
    print("the SQL that runs:\n")
    print(indent(query.sql))
    with measured() as usage:
        df = query.to_pandas(max_bytes=budget)
    print(f"\nthe result ({len(df)} rows):\n")
    print(indent(table(df)))
    print(f"\nto_pandas():     {usage}")


def show_spill(con: Any, lineitem: Any, out: Path) -> None:
    section("d. A big result streamed to Parquet, then read back to keep composing")
    big = lineitem.filter(qr.col("l_shipdate") >= datetime.date(1994, 1, 1)).select(
        "l_orderkey", "l_partkey", "l_shipdate", "l_shipmode", "l_quantity", "l_extendedprice"
    )
    with measured() as usage:
        big.to_parquet(str(out))
    back = con.read_parquet(str(out))
    print(f"rows written:    {back.count():,}  (counted on the file it wrote, pushed down)")
    print(f"file:            {fmt_bytes(out.stat().st_size)}  ({out})")
    print(f"to_parquet():    {usage}")
    by_mode = (
        back.group_by("l_shipmode")
        .agg(n=qr.count(), revenue=qr.col("l_extendedprice").sum())
        .order_by(qr.desc("revenue"))
    )
    print("\nand composing on the file: revenue by ship mode\n")
    print(indent(table(by_mode.to_pandas())))


# --- entry point -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m queryref.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="directory with TPC-H Parquet files (default: data/tpch-sf1)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="TPC-H scale factor to generate if --data lacks lineitem (default 1)")
    parser.add_argument("--max-bytes", default="200MB",
                        help="the budget for the guarded to_pandas (default 200MB)")
    parser.add_argument("--workdir", type=Path, default=Path("data"),
                        help="a temporary output directory is made under it (default: data)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary output directory instead of removing it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    con = qr.connect()
    lineitem, location = open_lineitem(con, args.data, args.scale)
    args.workdir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix="demo-", dir=args.workdir))
    try:
        show_size(lineitem, location)
        show_guard(lineitem, args.max_bytes)
        show_aggregate(lineitem, args.max_bytes)
        show_spill(con, lineitem, out_dir / "lineitem_since_1994.parquet")
    finally:
        if args.keep:
            print(f"\noutput kept in {out_dir}")
        else:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
