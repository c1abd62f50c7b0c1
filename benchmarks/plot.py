"""Draw bench_to_pandas.py's results: wall time and peak RSS per method, side by side.

    python benchmarks/bench_to_pandas.py --json data/bench/to_pandas_sf1.json
    python benchmarks/plot.py data/bench/to_pandas_sf1.json -o docs/img/to_pandas_sf1.png

Several JSON files (e.g. full SF1 and ``--rows 1000000``, DuckDB and PostgreSQL) give one row
of panels each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

FAMILIES = {  # method-name prefix -> (legend label, colour)
    "qr_": ("queryref", "#1f77b4"),
    "duckdb_": ("DuckDB's own API", "#7f7f7f"),
    "adbc_": ("the ADBC PostgreSQL driver", "#8c564b"),
    "read_sql": ("pandas.read_sql (SQLAlchemy: duckdb_engine / psycopg)", "#ff7f0e"),
    "ibis": ("Ibis (its DuckDB / Postgres backend)", "#2ca02c"),
}
ENGINES = {"duckdb": "DuckDB embedded", "postgres": "PostgreSQL"}


def family(method: str) -> tuple[str, str]:
    for prefix, fam in FAMILIES.items():
        if method.startswith(prefix):
            return fam
    return method, "#9467bd"


def title(doc: dict[str, Any]) -> str:
    rows = doc.get("rows_limit")
    what = f"first {rows:,} rows of lineitem" if rows else "all of TPC-H SF1 lineitem"
    m = doc.get("machine", {})
    load = m.get("load_avg_before")
    where = f"{m.get('cpus', '?')} CPUs" + (f", load {load[0]:.2f} before" if load else "")
    runs = doc.get("runs", "?")
    engine = ENGINES.get(doc.get("engine", "duckdb"), doc.get("engine", "?"))
    slow = doc.get("slow_runs")
    slower = f" ({slow} for the row-by-row ones)" if slow is not None and slow != runs else ""
    return (f"{what} into Python, {engine}: medians of {runs} fresh "
            f"process{'' if runs == 1 else 'es'} each{slower} ({where})")


def draw(doc: dict[str, Any], ax_time: Any, ax_mem: Any) -> None:
    methods = list(doc["methods"].items())[::-1]  # barh draws bottom-up: keep the file's order
    labels = [m["label"] for _, m in methods]
    ys = range(len(methods))
    colours = [family(name)[1] for name, _ in methods]
    secs = [m["summary"].get("seconds", 0.0) for _, m in methods]
    rss = [m["summary"].get("peak_rss", 0.0) / 2**20 for _, m in methods]
    dfs = [m["summary"].get("df_bytes", 0.0) / 2**20 for _, m in methods]

    ax_time.barh(ys, secs, color=colours)
    ax_time.set_yticks(list(ys), labels)
    ax_time.set_xlabel("wall time of the fetch, s (lower is better)")
    ax_mem.barh(ys, rss, color=colours)
    ax_mem.barh(ys, dfs, height=0.35, color="none", edgecolor="black", hatch="///",
                linewidth=0.8)
    ax_mem.tick_params(axis="y", labelleft=False)  # shares the time panel's labels
    ax_mem.set_xlabel("peak RSS increase, MiB (lower is better)")

    time_text = [f"{v:.2f} s" for v in secs]
    mem_text = [f"{v:,.0f} MiB" + (f"  ({v / d:.1f}x the DataFrame)" if d else "")
                for v, d in zip(rss, dfs, strict=True)]
    for ax, values, texts in ((ax_time, secs, time_text), (ax_mem, rss, mem_text)):
        top = max(values) if values and max(values) > 0 else 1.0
        ax.set_xlim(0, top * 1.35)
        for y, v, text, (_, m) in zip(ys, values, texts, methods, strict=True):
            ax.text(v + top * 0.01, y, text if "seconds" in m["summary"] else "not measured",
                    va="center", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    # A line between the methods that build a DataFrame and those that stream (bottom-up order).
    kept = [y for y, (_, m) in zip(ys, methods, strict=True) if "df_bytes" in m["summary"]]
    streamed = [y for y, (_, m) in zip(ys, methods, strict=True)
                if "seconds" in m["summary"] and "df_bytes" not in m["summary"]]
    if kept and streamed and max(streamed) < min(kept):
        for ax in (ax_time, ax_mem):
            ax.axhline(min(kept) - 0.5, color="black", linewidth=0.8, linestyle="--")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="JSON from bench_to_pandas --json")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/img/to_pandas_sf1.png"),
                        help="PNG to write (default docs/img/to_pandas_sf1.png)")
    args = parser.parse_args()

    docs = [json.loads(p.read_text()) for p in args.results]
    n = max(len(d["methods"]) for d in docs)
    fig, axes = plt.subplots(len(docs), 2, squeeze=False, sharey="row",
                             figsize=(14, (0.42 * n + 1.3) * len(docs) + 0.6))
    for doc, (ax_time, ax_mem) in zip(docs, axes, strict=True):
        draw(doc, ax_time, ax_mem)
        ax_time.set_title(title(doc), loc="left", fontsize=10)
    used = {family(name)[0] for doc in docs for name in doc["methods"]}
    handles: list[Artist] = [Patch(color=c, label=lab) for lab, c in FAMILIES.values()
                             if lab in used]
    handles.append(Patch(facecolor="none", edgecolor="black", hatch="///",
                         label="the DataFrame's memory_usage(deep=True)"))
    handles.append(Line2D([], [], color="black", linewidth=0.8, linestyle="--",
                          label="above: a whole DataFrame; below: streamed or written to a file"))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
