"""The command line: ``queryref`` (also ``python -m queryref``).

Every command reads SQL from its argument, a file (``@query.sql``) or stdin (``-``), connects
to ``--db`` (or ``$QUERYREF_URL``, else embedded DuckDB in memory) and does one thing. Errors
are one line with the way out (``--debug`` shows the traceback); passwords never show.

Exit codes: 0 ok, 2 usage (bad arguments, SQL that does not parse or is not read-only), 3 result
too large for its budget, 4 database error, 130 interrupted (the query is cancelled).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from queryref._options import _UNSET
from queryref._redact import redact, url_password
from queryref.cli import output as out
from queryref.errors import (
    CellReferenceError,
    ParameterError,
    QueryCancelled,
    QueryRefError,
    QueryTimeout,
    ReadOnlyError,
    ResultTooLarge,
    SQLParseError,
    UnknownColumnError,
)

if TYPE_CHECKING:
    from queryref.backends import Backend

OK, FAILED, USAGE, TOO_LARGE, DATABASE, INTERRUPTED = 0, 1, 2, 3, 4, 130
ENV_URL = "QUERYREF_URL"
_GRACE_SECONDS = 3.0  # after Ctrl-C: how long the cancelled query gets to wind down


class UsageError(Exception):
    """A command line that cannot run as given (exit code 2)."""


class NotAvailable(Exception):
    """A feature this version of queryref does not have yet (exit code 2)."""


# -- the parser -----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
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
    sql = _Parser(add_help=False)
    sql.add_argument("sql", metavar="SQL", help="the query; @file.sql reads a file, - stdin")
    sql.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a {{ NAME }} parameter, rendered as a quoted literal (repeatable)")
    run = _Parser(add_help=False)
    run.add_argument("--max-bytes", metavar="SIZE", default=None,
                     help="budget: '200MB', '2GiB' or 'none' (default: queryref's, a quarter "
                          "of available memory, for results shown here; none for files)")
    run.add_argument("--max-rows", metavar="N", type=_positive_int, default=None,
                     help="refuse results with more than N rows (LIMIT N+1 pushed down)")
    run.add_argument("--out", metavar="FILE", default=None,
                     help="stream the result to FILE (.parquet, .csv, .arrow, .json), or - for "
                          "stdout (CSV, or --format json); never whole in memory")
    run.add_argument("--format", choices=("table", "csv", "json"), default=None,
                     help="how to print the result (default: table; csv with --out -)")
    run.add_argument("--show", metavar="N", type=_positive_int, default=40,
                     help="rows the table shows (default 40)")
    run.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                     help="cancel the query in the database after this long")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar when writing a file (default: when stderr is a terminal)")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser("query", parents=[common, sql, run], help="run a query under the guard",
                   description="Run a read-only query under the size budget and print it, or "
                               "stream it to a file.")
    sub.add_parser("explain", parents=[common, sql], help="the database's plan for a query")
    sub.add_parser("estimate", parents=[common, sql],
                   help="rows and bytes a query would return, before running it")
    compile_ = sub.add_parser("compile", parents=[common, sql],
                              help="transpile a query to another SQL dialect")
    compile_.add_argument("--to", required=True, metavar="DIALECT",
                          help="target dialect: snowflake, postgres, duckdb, bigquery, tsql, ...")
    compile_.add_argument("--from", dest="from_", metavar="DIALECT", default=None,
                          help="the dialect the SQL is written in (default: the database's)")
    compile_.add_argument("--one-line", action="store_true", help="not pretty-printed")
    cells = sub.add_parser("cells", parents=[common, run],
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
    cells.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a {{ NAME }} parameter used by the cells (repeatable)")
    sub.add_parser("demo", help="the main job on TPC-H data (queryref demo --help)",
                   add_help=False)
    return parser


def _positive_int(text: str) -> int:
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
    return args.db or os.environ.get(ENV_URL) or None


def secret_of(url: str | None) -> str | None:
    """The password in a URL (or its ``?password=``), to scrub from anything printed."""
    return url_password(url) if url else None


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


# -- cancelling on Ctrl-C -------------------------------------------------------------------
class _TrackedBackend:
    """A backend that remembers its open streams, so Ctrl-C can cancel them in the database."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self.cancelled = False
        self.starting = 0  # stream() calls the engine has not returned from yet

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def stream(self, sql: str, batch_rows: int, **kwargs: Any) -> Any:
        with self._lock:
            self.starting += 1
        try:
            stream = self._backend.stream(sql, batch_rows, **kwargs)
        finally:
            with self._lock:
                self.starting -= 1
        with self._lock:
            self._streams = [s for s in self._streams if not getattr(s, "_done", False)]
            self._streams.append(stream)
            cancelled = self.cancelled
        if cancelled:  # Ctrl-C came while the engine was starting it
            stream.cancel()
        return stream

    def cancel_all(self) -> bool:
        """Cancel every open stream; False if a query is still starting (nothing to cancel
        through the interface until the engine hands its first result over)."""
        with self._lock:
            self.cancelled = True
            streams = list(self._streams)
            starting = self.starting
        for stream in streams:
            try:
                stream.cancel()
            except Exception:  # already finished or closed: nothing left to stop
                pass
        return starting == 0


class Session:
    """One command's connection (opened on first use) and its streams."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._con: Any = None
        self.tracked: _TrackedBackend | None = None

    @property
    def con(self) -> Any:
        if self._con is None:
            import queryref as qr

            con = qr.connect(self.url) if self.url else qr.connect()
            self.tracked = _TrackedBackend(con.backend)
            con.backend = cast("Backend", self.tracked)
            self._con = con
        return self._con

    def cancel(self) -> bool:
        """Cancel the running query; False when it cannot be reached (still starting)."""
        return self.tracked.cancel_all() if self.tracked is not None else True

    def close(self) -> None:
        if self._con is not None:
            with contextlib.suppress(Exception):  # closing is best effort after an error
                self._con.close()


# -- commands -------------------------------------------------------------------------------
def cmd_query(args: argparse.Namespace, s: Session, io: _IO) -> int:
    sql = read_sql(args.sql, io.stdin)
    q = s.con.sql(sql, **parse_params(args.param))
    return emit(q, args, io)


def emit(q: Any, args: argparse.Namespace, io: _IO) -> int:
    """Run ``q`` the way ``--out``/``--format``/``--max-*`` ask: to a file, stdout or a table."""
    import queryref as qr

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
        progress = io.stderr_tty if args.progress is None else args.progress
        written = out.write_file(q, args.out, fmt, max_bytes=explicit, max_rows=args.max_rows,
                                 timeout=args.timeout, progress=progress)
        io.stderr.write(written.summary() + "\n")
        return OK
    with qr.options.context(progress=False):
        table = q.to_arrow(max_bytes=budget, max_rows=args.max_rows, timeout=args.timeout)
    fmt = args.format or "table"
    if fmt == "table":
        io.stdout.write(out.render_table(table, args.show) + "\n")
    else:
        out.write_text([table], io.stdout, fmt)
    return OK


def cmd_explain(args: argparse.Namespace, s: Session, io: _IO) -> int:
    q = s.con.sql(read_sql(args.sql, io.stdin), **parse_params(args.param))
    io.stdout.write(q.explain().rstrip("\n") + "\n")
    return OK


def cmd_estimate(args: argparse.Namespace, s: Session, io: _IO) -> int:
    q = s.con.sql(read_sql(args.sql, io.stdin), **parse_params(args.param))
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


def cmd_compile(args: argparse.Namespace, s: Session, io: _IO) -> int:
    from queryref._queryref import QueryRef
    from queryref.sql.params import render

    sql = read_sql(args.sql, io.stdin)
    params = parse_params(args.param)
    if args.from_:
        _check_dialect(args.from_, "--from")
        tree = render(sql, params, s.con, dialect=args.from_)
        q = QueryRef(tree, s.con)
    else:
        q = s.con.sql(sql, **params)
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


def split_cells(text: str) -> list[tuple[str, str]]:
    """``-- name: x`` markers split a file into (name, SQL) cells.

    >>> split_cells("-- name: a\\nSELECT 1 AS x;\\n-- name: b\\nSELECT x FROM a\\n")
    [('a', 'SELECT 1 AS x'), ('b', 'SELECT x FROM a')]
    """
    import re

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


def cmd_cells(args: argparse.Namespace, s: Session, io: _IO) -> int:
    import queryref as qr

    text = read_sql(args.file if args.file == "-" else "@" + args.file, io.stdin)
    cells = split_cells(text)
    nb = qr.Notebook(s.con, namespace=parse_params(args.param))
    for name, sql in cells:
        nb.cell(name, sql)
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


COMMANDS: dict[str, Callable[[argparse.Namespace, Session, _IO], int]] = {
    "query": cmd_query,
    "explain": cmd_explain,
    "estimate": cmd_estimate,
    "compile": cmd_compile,
    "cells": cmd_cells,
}


# -- errors ---------------------------------------------------------------------------------
_USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, NotAvailable, SQLParseError, ReadOnlyError, ParameterError, CellReferenceError,
    UnknownColumnError)


def exit_code(err: BaseException) -> int:
    """The exit code a script sees for ``err``."""
    if isinstance(err, _USER_ERRORS):
        return USAGE
    if isinstance(err, ResultTooLarge):
        return TOO_LARGE
    if isinstance(err, QueryCancelled) and not isinstance(err, QueryTimeout):
        return INTERRUPTED
    if isinstance(err, QueryRefError | ImportError):
        return DATABASE
    return FAILED


def way_out(err: BaseException) -> str:
    """What to try next, for the command line (the library's messages speak Python)."""
    if isinstance(err, ResultTooLarge):
        return ("ways out: aggregate or filter in the SQL; stream it to a file with "
                "--out result.parquet (or .csv, .arrow, or - for stdout); or raise the limit "
                "knowingly with --max-bytes 2GB / --max-rows N (--max-bytes none: no budget)")
    if isinstance(err, ReadOnlyError):
        return "queryref runs read-only queries; run statements with your database's own client"
    if isinstance(err, ParameterError):
        return "give {{ name }} parameters with -p NAME=VALUE"
    if isinstance(err, QueryTimeout):
        return "raise --timeout, or filter/aggregate so the query does less"
    if isinstance(err, QueryRefError | ImportError) and exit_code(err) == DATABASE:
        return "check the SQL, the database and --db/$QUERYREF_URL; --debug shows the traceback"
    if isinstance(err, _USER_ERRORS):
        return ""
    return "--debug shows the traceback"


def one_line(err: BaseException, secret: str | None) -> str:
    """``err`` as one line: its message's first sentence(s), joined, redacted, with the way
    out; the library's Python-specific 'Ways out' block is replaced by the CLI's."""
    message = str(err)
    if isinstance(err, ResultTooLarge):
        message = message.split("\nWays out:")[0]
    name = type(err).__name__
    if isinstance(err, UsageError | NotAvailable):
        text = message
    else:
        text = message if message.startswith(f"{name}:") else f"{name}: {message}"
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    hint = way_out(err)
    return scrub(f"{text}{' -- ' + hint if hint else ''}", secret)


def scrub(text: str, secret: str | None) -> str:
    """No password, whether in a URL, a ``password=`` pair or on its own."""
    return redact(text, [secret])  # (each spelling: encoded, decoded ...)


# -- entry point ----------------------------------------------------------------------------
class _IO:
    def __init__(self) -> None:
        self.stdin = sys.stdin
        self.stdout = sys.stdout
        self.stderr = sys.stderr
        try:
            self.stderr_tty = bool(sys.stderr.isatty())
        except (AttributeError, ValueError):
            self.stderr_tty = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    io = _IO()
    debug = "--debug" in args_list
    secret = _find_secret(args_list)
    if args_list[:1] == ["demo"]:
        return cmd_demo(args_list[1:])
    try:
        args = build_parser().parse_args(args_list)
    except UsageError as err:
        io.stderr.write(f"queryref: error: {scrub(str(err), secret)}\n")
        return USAGE
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    url = database_url(args)
    secret = secret_of(url) or secret
    session = Session(url)
    try:
        return _run(lambda: COMMANDS[args.command](args, session, io), session, io)
    except KeyboardInterrupt:
        io.stderr.write("queryref: interrupted; the query was cancelled\n")
        return INTERRUPTED
    except BrokenPipeError:  # `queryref query ... | head`: the reader left, nothing to say
        _silence_stdout()
        return OK
    except BaseException as err:
        if not isinstance(err, Exception):
            raise
        if debug:
            io.stderr.write(scrub("".join(traceback.format_exception(err)), secret))
        io.stderr.write(f"queryref: error: {one_line(err, secret)}\n")
        return exit_code(err)
    finally:
        session.close()


def _find_secret(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            return secret_of(argv[i + 1])
        if arg.startswith("--db="):
            return secret_of(arg[5:])
    return secret_of(os.environ.get(ENV_URL))


def _run(work: Callable[[], int], session: Session, io: _IO) -> int:
    """Run ``work`` in a thread so Ctrl-C reaches us while the engine is busy in C code; then
    cancel the query in the database, and exit 130.

    Waiting is on an Event, not ``Thread.join``: a join interrupted by Ctrl-C can leave the
    thread looking finished while it still runs (CPython 3.11).
    """
    result: list[Any] = []
    done = threading.Event()

    def target() -> None:
        try:
            result.append(("ok", work()))
        except BaseException as err:
            result.append(("err", err))
        finally:
            done.set()

    worker = threading.Thread(target=target, name="queryref-cli", daemon=True)
    try:
        worker.start()
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        reached = session.cancel()
        # A query the engine is still starting cannot be cancelled through the backend
        # interface; leaving the process stops an embedded engine and drops a server's socket.
        finished = done.wait(_GRACE_SECONDS) if reached else done.is_set()
        io.stderr.write("queryref: interrupted; the query was cancelled\n")
        if not finished:  # the engine did not let go in time: leave without it
            _hard_exit(INTERRUPTED)
        return INTERRUPTED
    kind, value = result[0]
    if kind == "err":
        raise value
    return int(value)


def _hard_exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
