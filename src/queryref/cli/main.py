"""The command line: ``queryref`` (also ``python -m queryref``).

Every command reads SQL from its argument, a file (``@query.sql``) or stdin (``-``), connects
to ``--db`` (or ``$QUERYREF_URL``, else embedded DuckDB in memory) and does one thing. Errors
are one line with the way out (``--debug`` shows the traceback); passwords never show.

Exit codes: 0 ok, 2 usage (bad arguments, SQL that does not parse or is not read-only), 3 result
too large for its budget, 4 database error, 130 interrupted (the query is cancelled).

The modules: :mod:`~queryref.cli.parser` (arguments), :mod:`~queryref.cli.commands` (query,
explain, estimate, compile, cells, demo), :mod:`~queryref.cli.explore` (describe, plot),
:mod:`~queryref.cli.session` (the connection), :mod:`~queryref.cli.advice` (errors in the
command line's words), :mod:`~queryref.cli.output` and :mod:`~queryref.cli.table` (what is
printed and written).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from queryref._redact import redact, url_password
from queryref.cli import advice
from queryref.cli.advice import INTERRUPTED, OK, USAGE, exit_code
from queryref.cli.commands import (
    cmd_cells,
    cmd_compile,
    cmd_demo,
    cmd_estimate,
    cmd_explain,
    cmd_query,
    split_cells,
)
from queryref.cli.explore import cmd_describe, cmd_plot
from queryref.cli.output import Terminal
from queryref.cli.parser import ENV_URL, UsageError, build_parser, database_url, split_target
from queryref.cli.session import Session

__all__ = ["main", "scrub", "secret_of", "split_cells"]

Command = Callable[[argparse.Namespace, Session, Terminal], int]
COMMANDS: dict[str, Command] = {
    "query": cmd_query,
    "explain": cmd_explain,
    "estimate": cmd_estimate,
    "describe": cmd_describe,
    "plot": cmd_plot,
    "compile": cmd_compile,
    "cells": cmd_cells,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it).

    The command runs on the main thread, where Ctrl-C reaches the backends' calls: the
    query is cancelled in the database (while it starts or while it streams), the progress
    line is cleared, and the exit code is 130. Closing the connection at the end cancels any
    stream still open.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    io = Terminal()
    debug = "--debug" in args_list
    secret = _find_secret(args_list)
    if args_list[:1] == ["demo"]:
        return cmd_demo(args_list[1:])
    try:
        args = build_parser().parse_args(args_list)
        if hasattr(args, "target"):  # describe / plot: a database URL may lead
            args.target = split_target(args)
    except UsageError as err:
        io.note(f"queryref: error: {scrub(str(err), secret)}")
        return USAGE
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    url = database_url(args)
    secret = secret_of(url) or secret
    session = Session(url)
    try:
        import queryref as qr

        # the command line draws its own progress line (fit to the terminal, cleared on exit)
        with qr.options.context(progress=False):
            return COMMANDS[args.command](args, session, io)
    except KeyboardInterrupt:
        io.note("queryref: interrupted; the query was cancelled")
        return INTERRUPTED
    except BrokenPipeError:  # `queryref query ... | head`: the reader left, nothing to say
        _silence_stdout()
        return OK
    except Exception as err:
        if debug:
            io.note(scrub("".join(traceback.format_exception(err)), secret))
        io.note(f"queryref: error: {advice.message(err, session, args, secret)}")
        return exit_code(err)
    finally:
        session.close()


def secret_of(url: str | None) -> str | None:
    """The password in a URL (or its ``?password=``), to scrub from anything printed."""
    return url_password(url) if url else None


def scrub(text: str, secret: str | None) -> str:
    """No password, whether in a URL, a ``password=`` pair or on its own (the one redaction,
    :func:`queryref._redact.redact`, with this run's password)."""
    return redact(text, [secret])


def _find_secret(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            return secret_of(argv[i + 1])
        if arg.startswith("--db="):
            return secret_of(arg[5:])
        if "://" in arg:  # describe / plot take the URL as their first argument too
            found = secret_of(arg)
            if found:
                return found
    return secret_of(os.environ.get(ENV_URL))


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
