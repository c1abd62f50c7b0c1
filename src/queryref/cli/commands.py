"""The commands that run SQL: ``query`` (and ``cells --run``), ``explain``, ``estimate``,
``compile``, ``cells`` and ``demo``. (``describe`` and ``plot``: :mod:`queryref.cli.explore`.)

Each takes its parsed arguments, the session (the connection, opened on first use) and the
terminal, and returns the exit code; errors are raised and told by :mod:`queryref.cli.advice`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from queryref._options import _UNSET
from queryref.cli import output as out
from queryref.cli.advice import FAILED, INTERRUPTED, OK
from queryref.cli.parser import (
    COUNT_SECONDS,
    NotAvailable,
    UsageError,
    parse_params,
    parse_size,
    preflight_of,
    read_sql,
)
from queryref.cli.table import render_table, rows_footer
from queryref.errors import QueryTimeout

if TYPE_CHECKING:
    from queryref._queryref import QueryRef
    from queryref.cli.output import Terminal
    from queryref.cli.session import Session


# -- query ----------------------------------------------------------------------------------
def cmd_query(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    q = s.query(read_sql(args.sql, io.stdin), parse_params(args.param))
    return emit(q, args, io)


def emit(q: QueryRef, args: argparse.Namespace, io: Terminal) -> int:
    """Run ``q`` the way ``--out``/``--format``/``--max-*`` ask: to a file, stdout or a table."""
    budget = parse_size(args.max_bytes)
    explicit = None if budget is _UNSET else budget  # files: only a budget given counts
    if args.out == "-":
        fmt = args.format or "csv"
        if fmt == "table":
            raise UsageError("--out - streams csv or json: add --format csv or --format json")
        out.stream_text(q, io.stdout, fmt, max_bytes=explicit, max_rows=args.max_rows,
                        timeout=args.timeout)
        return OK
    if args.out:
        fmt = out.format_for(args.out)
        if fmt is None:
            if args.format in ("csv", "json"):
                fmt = args.format
            else:
                known = ", ".join(sorted(out.EXTENSIONS))
                raise UsageError(f"cannot tell the format of {args.out!r}: name it {known}")
        meter = io.meter(f"writing {os.path.basename(args.out)}", args.progress)
        written = out.write_file(q, args.out, fmt, max_bytes=explicit, max_rows=args.max_rows,
                                 timeout=args.timeout, meter=meter)
        io.note(written.summary())
        return OK
    fmt = args.format or "table"
    if fmt == "table":
        return show_table(q, args, io, budget)
    table = q.to_arrow(max_bytes=budget, max_rows=args.max_rows, timeout=args.timeout,
                       preflight=preflight_of(args))
    out.write_text([table], io.stdout, fmt)
    return OK


def show_table(q: QueryRef, args: argparse.Namespace, io: Terminal, budget: Any) -> int:
    """The first ``--show`` rows as a table: only those rows (and one more, to know whether
    there are more) are fetched; the rest are counted in the database."""
    head = q.limit(args.show + 1).to_arrow(max_bytes=budget, max_rows=args.max_rows,
                                           timeout=args.timeout, preflight=preflight_of(args))
    more = head.num_rows > args.show
    shown = head.slice(0, args.show)
    io.show(render_table(shown, None))
    total, why = count_rest(q, args) if more else (shown.num_rows, "")
    if more:
        io.stdout.flush()  # the rows first: the count may take a moment
    io.show(rows_footer(shown.num_rows, total, more=more, why=why))
    return OK


def count_rest(q: QueryRef, args: argparse.Namespace) -> tuple[int | None, str]:
    """The result's row count (``SELECT COUNT(*)`` in the database), or None and why not: not
    asked for (``--no-count``), or it took longer than :data:`COUNT_SECONDS` (``--count``
    waits for it, up to ``--timeout``)."""
    import queryref as qr

    if args.count is False:
        return None, "--count counts them"
    cap = None if args.count else COUNT_SECONDS
    if cap is not None and (args.timeout is None or cap <= args.timeout):
        timeout: float | None = cap
        more = "--count waits for it"
    else:
        timeout, more = args.timeout, "a larger --timeout waits longer"
    try:
        counted = q.agg(n=qr.count()).to_arrow(max_bytes=None, timeout=timeout, preflight=None)
    except QueryTimeout:
        return None, f"counting them took over {timeout:g}s ({more})"
    return int(counted.column(0)[0].as_py()), ""


# -- explain, estimate, compile --------------------------------------------------------------
def cmd_explain(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    q = s.query(read_sql(args.sql, io.stdin), parse_params(args.param))
    io.stdout.write(q.explain().rstrip("\n") + "\n")
    return OK


def cmd_estimate(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    q = s.query(read_sql(args.sql, io.stdin), parse_params(args.param))
    estimate = getattr(q, "estimate", None)
    if estimate is None:
        raise NotAvailable(
            "estimates are not available yet in this version of queryref; meanwhile "
            "'queryref explain' shows the plan, and 'queryref query --max-rows N "
            "--max-bytes SIZE' refuses a result as soon as it passes a limit")
    io.stdout.write(describe_estimate(estimate()) + "\n")
    return OK


def describe_estimate(value: Any) -> str:
    """An estimate's figures one per line (rows and bytes first, bytes also for people)."""
    from queryref._sizes import format_bytes

    if isinstance(value, dict):
        items = dict(value)
    elif hasattr(value, "_asdict"):
        items = dict(value._asdict())
    elif hasattr(value, "__dataclass_fields__"):
        items = {k: getattr(value, k) for k in value.__dataclass_fields__}
    else:
        return str(value)
    lines = []
    for key, v in items.items():
        text = f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
        if "bytes" in key and isinstance(v, int | float) and not isinstance(v, bool):
            text += f" ({format_bytes(v)})"
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


def cmd_compile(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    from queryref._queryref import QueryRef
    from queryref.sql.params import render

    sql = read_sql(args.sql, io.stdin)
    params = parse_params(args.param)
    if args.from_:
        _check_dialect(args.from_, "--from")
        s.sql = sql
        q = QueryRef(render(sql, params, s.con, dialect=args.from_), s.con)
    else:
        q = s.query(sql, params)
    _check_dialect(args.to, "--to")
    io.stdout.write(q.compile(args.to, pretty=not args.one_line) + "\n")
    return OK


def _check_dialect(name: str, flag: str) -> None:
    import sqlglot

    try:
        sqlglot.Dialect.get_or_raise(name)
    except ValueError:
        raise UsageError(f"{flag}: unknown SQL dialect {name!r} (e.g. duckdb, postgres, "
                         "snowflake, bigquery, mysql, tsql, trino, spark)") from None


# -- cells ----------------------------------------------------------------------------------
def split_cells(text: str) -> list[tuple[str, str]]:
    """``-- name: x`` markers split a file into (name, SQL) cells.

    >>> split_cells("-- name: a\\nSELECT 1 AS x;\\n-- name: b\\nSELECT x FROM a\\n")
    [('a', 'SELECT 1 AS x'), ('b', 'SELECT x FROM a')]
    """
    marker = re.compile(r"^[ \t]*--[ \t]*name[ \t]*:[ \t]*(\S*)[ \t]*$", re.M | re.I)
    found = list(marker.finditer(text))
    if not found:
        raise UsageError("no cells found: start each cell with a line '-- name: <cell name>'")
    before = text[: found[0].start()]
    if _has_sql(before):
        raise UsageError("there is SQL before the first '-- name: ...' line: give it a name")
    cells = []
    for i, m in enumerate(found):
        name = m.group(1)
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        body = text[m.end(): end].strip().rstrip(";").strip()
        line = text.count("\n", 0, m.start()) + 1
        if not name:
            raise UsageError(f"line {line}: '-- name:' needs a cell name")
        if not _has_sql(body):
            raise UsageError(f"line {line}: the cell {name!r} has no SQL")
        cells.append((name, body))
    return cells


def _has_sql(text: str) -> bool:
    return any(ln.strip() and not ln.strip().startswith("--") for ln in text.splitlines())


def cmd_cells(args: argparse.Namespace, s: Session, io: Terminal) -> int:
    import queryref as qr

    text = read_sql(args.file if args.file == "-" else "@" + args.file, io.stdin)
    cells = split_cells(text)
    nb = qr.Notebook(s.con, namespace=parse_params(args.param))
    for name, sql in cells:
        s.sql, s.cell = sql, name
        nb.cell(name, sql)
    s.sql = s.cell = None
    if args.graph:
        io.stdout.write(nb.graph() + "\n")
        return OK
    name = args.cell or cells[-1][0]
    if name not in nb:
        raise UsageError(f"no cell named {name!r}; the file has: {', '.join(nb.cells)}")
    q = nb[name]
    if args.run:
        return emit(q, args, io)
    io.stdout.write((q.compile(args.to) if args.to else q.sql) + "\n")
    return OK


# -- demo -----------------------------------------------------------------------------------
def cmd_demo(argv: list[str]) -> int:
    from queryref import demo

    try:
        demo.main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("queryref demo: interrupted\n")
        return INTERRUPTED
    except SystemExit as done:  # the demo's own --help or usage errors
        code = done.code
        if code is None or isinstance(code, int):
            return code or 0
        sys.stderr.write(f"queryref demo: {code}\n")
        return FAILED
    return OK
