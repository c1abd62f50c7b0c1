"""The command line's arguments: the parser, and reading SQL, parameters and sizes from them."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from queryref._options import _UNSET
from queryref.errors import ParameterError

ENV_URL = "QUERYREF_URL"
PLOTS = ("hist", "bar", "line", "scatter", "box")
#: ``scheme://``: how a database URL starts (SQL text and table names never do)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class UsageError(Exception):
    """A command line that cannot run as given (exit code 2)."""


class NotAvailable(Exception):
    """A feature this version of queryref does not have yet (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The ``queryref`` parser, one sub-command per thing it does."""
    from queryref import __version__

    parser = _Parser(prog="queryref", description=(
        "Run SQL where the data is, under a size budget: results stream to files or come "
        "back bounded."), epilog="Exit codes: 0 ok, 2 usage, 3 result too large, "
        "4 database error, 130 interrupted. Docs: docs/cli.md")
    parser.add_argument("--version", action="version", version=f"queryref {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--db", metavar="URL", default=None,
                        help=f"database URL (default: ${ENV_URL}, else embedded DuckDB in "
                             "memory); e.g. duckdb:///file.duckdb, postgresql://user@host/db")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    params = _Parser(add_help=False)
    params.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a {{ NAME }} parameter, rendered as a quoted literal (repeatable)")
    sql = _Parser(add_help=False, parents=[params])
    sql.add_argument("sql", metavar="SQL", help="the query; @file.sql reads a file, - stdin")
    run = _Parser(add_help=False)
    run.add_argument("--max-bytes", metavar="SIZE", default=None,
                     help="budget: '200MB', '2GiB' or 'none' (default: queryref's, a quarter "
                          "of available memory, for results shown here; none for files)")
    run.add_argument("--max-rows", metavar="N", type=positive_int, default=None,
                     help="refuse results with more than N rows (LIMIT N+1 pushed down)")
    run.add_argument("--out", metavar="FILE", default=None,
                     help="stream the result to FILE (.parquet, .csv, .arrow, .json), or - for "
                          "stdout (CSV, or --format json); never whole in memory")
    run.add_argument("--format", choices=("table", "csv", "json"), default=None,
                     help="how to print the result (default: table; csv with --out -)")
    run.add_argument("--show", metavar="N", type=positive_int, default=40,
                     help="rows the table shows (default 40); only those are fetched")
    run.add_argument("--count", action=argparse.BooleanOptionalAction, default=None,
                     help="count the rows the table does not show, in the database (default: "
                          f"yes, given up after {COUNT_SECONDS:g}s; --count waits for it)")
    run.add_argument("--preflight", choices=("estimate", "count", "none"), default=None,
                     help="the check before rows move: the planner's estimate (default), an "
                          "exact COUNT first, or none")
    run.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                     help="cancel the query in the database after this long")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress line when writing a file (default: when stderr is a "
                          "terminal)")
    target = _Parser(add_help=False, parents=[params])
    target.add_argument("target", metavar="[URL] SQL_OR_TABLE", nargs="+",
                        help="a table name, or a query (@file.sql, - for stdin); a database "
                             "URL may come first instead of --db")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser("query", parents=[common, sql, run], help="run a query under the guard",
                   description="Run a read-only query under the size budget and print it, or "
                               "stream it to a file.")
    sub.add_parser("explain", parents=[common, sql], help="the database's plan for a query")
    sub.add_parser("estimate", parents=[common, sql],
                   help="rows and bytes a query would return, before running it")
    sub.add_parser("describe", parents=[common, target],
                   help="statistics of every column, computed in the database",
                   description="count, mean, std, min, quartiles, max (numbers and dates), "
                               "unique, top, freq (text) and nulls of every column, as pandas' "
                               "describe(include='all'): only the figures cross.")
    plot = sub.add_parser("plot", parents=[common, params],
                          help="a chart whose data the database computes, saved to a file",
                          description="hist COLUMN | bar X [Y] | line X Y | scatter X Y | "
                                      "box COLUMN: only the bins, groups, quartiles or sample "
                                      "cross; saved as PNG, SVG, PDF, HTML or Vega-Lite JSON.")
    plot.add_argument("kind", choices=PLOTS, help="the chart")
    plot.add_argument("target", metavar="[URL] SQL_OR_TABLE COLUMN...", nargs="+",
                      help="the data (a table name or a query, a database URL may come "
                           "first), then hist/box: COLUMN; bar: X [Y]; line/scatter: X Y")
    plot.add_argument("--out", metavar="FILE", required=True,
                      help="where to save it: .png, .svg, .pdf, .html or .json (Vega-Lite)")
    plot.add_argument("--bins", metavar="N", type=positive_int, default=None,
                      help="hist: the number of bins (default 30)")
    plot.add_argument("--agg", choices=("count", "sum", "mean", "min", "max"), default=None,
                      help="bar/line: how Y is aggregated per X (bar: count, line: sum)")
    plot.add_argument("--by", metavar="COLUMN", default=None,
                      help="line/box: one line or box per value of this column")
    plot.add_argument("--max-points", metavar="N", type=positive_int, default=None,
                      help="scatter: at most N points (default 5,000), drawn at random in "
                           "the database")
    plot.add_argument("--scale", metavar="X", type=float, default=1.0,
                      help="PNG: pixels per chart unit (2 for a sharper image)")
    compile_ = sub.add_parser("compile", parents=[common, sql],
                              help="transpile a query to another SQL dialect")
    compile_.add_argument("--to", required=True, metavar="DIALECT",
                          help="target dialect: snowflake, postgres, duckdb, bigquery, tsql, ...")
    compile_.add_argument("--from", dest="from_", metavar="DIALECT", default=None,
                          help="the dialect the SQL is written in (default: the database's)")
    compile_.add_argument("--one-line", action="store_true", help="not pretty-printed")
    cells = sub.add_parser("cells", parents=[common, params, run],
                           help="compile a file of named SQL cells into one query",
                           description="A file of SQL cells, each after a '-- name: x' line; "
                                       "later cells use earlier ones by name.")
    cells.add_argument("file", metavar="FILE.sql", help="the cells file (- for stdin)")
    cells.add_argument("--cell", metavar="NAME", default=None,
                       help="the cell to compile (default: the last one)")
    cells.add_argument("--run", action="store_true", help="run it under the guard, like query")
    cells.add_argument("--to", metavar="DIALECT", default=None,
                       help="print the SQL transpiled to this dialect")
    cells.add_argument("--graph", action="store_true", help="print which cell uses which")
    sub.add_parser("demo", help="the main job on TPC-H data (queryref demo --help)",
                   add_help=False)
    return parser


#: how long the table waits for the count of the rows it does not show (without --count)
COUNT_SECONDS = 5.0


def positive_int(text: str) -> int:
    """An argument that must be a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {value}")
    return value


# -- inputs ---------------------------------------------------------------------------------
def read_sql(arg: str, stdin: IO[str]) -> str:
    """SQL from the argument itself, a file (``@path``) or stdin (``-``)."""
    if arg == "-":
        text = stdin.read()
    elif arg.startswith("@"):
        try:
            with open(arg[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise UsageError(f"cannot read {arg[1:]!r}: {err.strerror}") from None
    else:
        text = arg
    if not text.strip():
        raise UsageError("the SQL is empty")
    return text


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; values that read as numbers become numbers, the rest text.

    >>> parse_params(["lo=100", "f=0.5", "s=open"])
    {'lo': 100, 'f': 0.5, 's': 'open'}
    """
    params: dict[str, Any] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"a parameter is NAME=VALUE, not {item!r}")
        params[name.strip()] = _number_or_text(value)
    return params


def _number_or_text(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def database_url(args: argparse.Namespace) -> str | None:
    """``--db``, else ``$QUERYREF_URL``, else None (embedded DuckDB in memory)."""
    return args.db or os.environ.get(ENV_URL) or None


def is_url(text: str) -> bool:
    """Whether an argument is a database URL (``scheme://...``) rather than SQL or a name.

    >>> is_url("duckdb:///x.duckdb"), is_url("lineitem"), is_url("SELECT 'a://b'")
    (True, False, False)
    """
    return bool(_URL.match(text))


def split_target(args: argparse.Namespace) -> list[str]:
    """``describe``/``plot``'s positional arguments without a leading database URL, which
    becomes ``args.db`` (given twice, with ``--db`` too, is an error)."""
    items = list(args.target)
    if items and is_url(items[0]):
        if args.db:
            raise UsageError("the database is given twice: as --db and before the query")
        args.db = items.pop(0)
    if not items:
        raise UsageError("expected a table name or a query after the database URL")
    return items


def parse_size(text: str | None) -> Any:
    """``--max-bytes``: None means "not given"; ``none``/``off`` turn the budget off."""
    from queryref._sizes import parse_bytes

    if text is None:
        return _UNSET
    if text.strip().lower() in ("none", "off", "unlimited"):
        return None
    try:
        return parse_bytes(text)
    except ParameterError as err:
        raise UsageError(f"--max-bytes: {err}") from None


def preflight_of(args: argparse.Namespace) -> Any:
    """``--preflight`` as the sinks take it (not given: queryref's default)."""
    choice = getattr(args, "preflight", None)
    if choice is None:
        return _UNSET
    return None if choice == "none" else choice
