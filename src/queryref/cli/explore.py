"""``queryref describe`` and ``queryref plot``: a table's statistics and charts, computed in
the database (``q.describe()``, ``q.plot``); only the figures, bins or groups cross.

The data is a table name (``lineitem``, ``tpch.lineitem``), a Parquet file, or a query
(text, ``@file.sql``, ``-`` for stdin), optionally after a database URL::

    queryref describe duckdb:///tpch.duckdb lineitem
    queryref plot hist lineitem l_quantity --bins 50 --db duckdb:///tpch.duckdb --out q.png
"""

from __future__ import annotations

import argparse
import os
import re
import time
from typing import TYPE_CHECKING, Any

from queryref.cli.advice import OK
from queryref.cli.parser import UsageError, parse_params, read_sql
from queryref.cli.table import terminal_width
from queryref.sinks import files as _files

if TYPE_CHECKING:
    from queryref._queryref import QueryRef
    from queryref.cli.output import Terminal
    from queryref.cli.session import Session

_NAME = r'(?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*)'
_TABLE = re.compile(rf"\s*{_NAME}(?:\.{_NAME}){{0,2}}\s*\Z")
#: chart file formats (Altair's ``save``; PNG, SVG and PDF through vl-convert, offline)
CHART_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".html": "html", ".json": "json"}
#: how many columns each chart takes: (at least, at most)
COLUMNS = {"hist": (1, 1), "box": (1, 1), "bar": (1, 2), "line": (2, 2), "scatter": (2, 2)}
#: the options each chart takes, beyond its columns
OPTIONS = {"bins": ("hist",), "agg": ("bar", "line"), "by": ("line", "box"),
           "max_points": ("scatter",)}


def resolve(s: Session, text: str, args: argparse.Namespace, io: Terminal) -> QueryRef:
    """The data a command looks at: a table name, a Parquet file, or a query."""
    params = parse_params(args.param)
    if text != "-" and not text.startswith("@"):
        if _TABLE.match(text) and not params:
            s.sql = text
            return s.con.table(text.strip())
        if text.lower().endswith(".parquet") and os.path.exists(text):
            return s.con.read_parquet(text)
    return s.query(read_sql(text, io.stdin), params)


def cmd_describe(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    """Statistics of every column (pandas' ``describe(include="all")`` and null counts)."""
    import pandas as pd

    if len(args.target) != 1:
        raise UsageError("describe takes one table name or query (quote a query with spaces)")
    frame = resolve(s, args.target[0], args, io).describe()
    width = terminal_width(io.stdout) if io.stdout_tty else None
    with pd.option_context("display.unicode.east_asian_width", True):
        io.show(frame.to_string(line_width=width))
    return OK


def cmd_plot(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    """A chart whose data the database computes, saved to ``--out``."""
    source, columns = args.target[0], args.target[1:]
    least, most = COLUMNS[args.kind]
    if not least <= len(columns) <= most:
        takes = {"hist": "COLUMN", "box": "COLUMN", "bar": "X [Y]", "line": "X Y",
                 "scatter": "X Y"}[args.kind]
        raise UsageError(f"plot {args.kind} takes the data, then {takes} "
                         f"({len(columns)} column{'' if len(columns) == 1 else 's'} given)")
    for option, kinds in OPTIONS.items():
        if getattr(args, option) is not None and args.kind not in kinds:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} is for {' and '.join(kinds)} charts, not {args.kind}")
    fmt = CHART_FORMATS.get(os.path.splitext(args.out)[1].lower())
    if fmt is None:
        raise UsageError(f"cannot tell the chart format of {args.out!r}: name it "
                         f"{', '.join(CHART_FORMATS)}")
    start = time.perf_counter()
    chart = draw(resolve(s, source, args, io), args.kind, columns, args)
    with _files.atomic_file(args.out, os.path.splitext(args.out)[1]) as tmp:
        chart.save(tmp, format=fmt, scale_factor=args.scale)
    meta = chart.to_dict().get("usermeta", {}).get("queryref", {})
    rows = meta.get("rows")
    crossed = f": {rows:,} rows crossed" if isinstance(rows, int) else ""
    io.note(f"wrote {args.kind} chart of {', '.join(columns)} to {args.out}{crossed} "
            f"in {time.perf_counter() - start:.2f}s")
    return OK


def draw(q: QueryRef, kind: str, columns: list[str], args: argparse.Namespace) -> Any:
    """The chart ``kind`` of ``q``'s ``columns`` (``q.plot``), with the options given."""
    plot = q.plot
    if kind == "hist":
        return plot.hist(columns[0], bins=args.bins or 30)
    if kind == "box":
        return plot.box(columns[0], by=args.by)
    if kind == "bar":
        return plot.bar(columns[0], columns[1] if len(columns) > 1 else None,
                        agg=args.agg or "count")
    if kind == "line":
        return plot.line(columns[0], columns[1], agg=args.agg or "sum", by=args.by)
    return plot.scatter(columns[0], columns[1], max_points=args.max_points or 5_000)

