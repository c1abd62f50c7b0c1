"""What the command line says when something fails: the exit code, and a message in the
command line's own words.

The library's messages speak Python (``max_rows=10``, ``preflight='count'``,
``con.execute()``) and end in a "Ways out" block of Python calls; here they name the flags a
person at a shell can use, and the way out fits what the run already does (no ``--out`` hint
to a run that writes a file). A SQL typo shows where it is, under the line it is on, and
what was expected, instead of sqlglot's internal names. A mistyped URL scheme gets the
schemes queryref knows and the nearest one.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from queryref._redact import redact
from queryref.cli.parser import NotAvailable, UsageError
from queryref.cli.session import ConnectError
from queryref.cli.table import display_width, truncate
from queryref.errors import (
    BackendError,
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
from queryref.sql.parse_errors import readable

if TYPE_CHECKING:
    from queryref.cli.session import Session

OK, FAILED, USAGE, TOO_LARGE, DATABASE, INTERRUPTED = 0, 1, 2, 3, 4, 130

_USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, NotAvailable, SQLParseError, ReadOnlyError, ParameterError, CellReferenceError,
    UnknownColumnError)


def exit_code(err: BaseException) -> int:
    """The exit code a script sees for ``err``."""
    if isinstance(err, ConnectError):
        cause = err.__cause__
        return USAGE if isinstance(cause, ParameterError) else DATABASE
    if isinstance(err, _USER_ERRORS):
        return USAGE
    if isinstance(err, ResultTooLarge):
        return TOO_LARGE
    if isinstance(err, QueryCancelled) and not isinstance(err, QueryTimeout):
        return INTERRUPTED
    if isinstance(err, QueryRefError | ImportError):
        return DATABASE
    return FAILED


def message(err: BaseException, session: Session | None, args: argparse.Namespace | None,
            secret: str | None) -> str:
    """``err`` for the command line: ``Type: what happened -- what to do`` on one line (a
    parse error adds the SQL line and a marker under the problem), passwords redacted."""
    url = session.url if session else None
    if (isinstance(err, ConnectError) and isinstance(err.__cause__, ParameterError) and url
            and "://" in url and scheme_hint(url)):
        text = scheme_hint(url)  # a mistyped scheme: the library's message would mislead
    elif isinstance(err, SQLParseError):
        text = parse_message(err, session.sql if session else None,
                             session.cell if session else None)
    else:
        name = type(err.__cause__ if isinstance(err, ConnectError) and err.__cause__
                    else err).__name__
        text = str(err)
        if isinstance(err, ResultTooLarge):
            text = text.split("\nWays out:")[0]
        if not isinstance(err, UsageError | NotAvailable):
            text = text if text.startswith(f"{name}:") else f"{name}: {text}"
        text = cli_words(" ".join(part.strip() for part in text.splitlines() if part.strip()))
        hint = way_out(err, args, session)
        text = f"{text}{' -- ' + hint if hint else ''}"
    return redact(text, [secret])


# -- Python words to command-line words -----------------------------------------------------
_PARAM_SENTINEL = re.compile(r"\bqr[pi]_\d+_[0-9a-f]{8}\b")
_CLI_WORDS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), replacement) for pattern, replacement in (
        (r"max_rows=([\d,_]+)", r"--max-rows \1"),
        (r"max_bytes=None", "--max-bytes none"),
        (r"max_bytes='([^']+)'", r"--max-bytes \1"),
        (r"preflight=None", "--preflight none"),
        (r"preflight='(\w+)'", r"--preflight \1"),
        (r"ran longer than timeout=([\d.e+-]+)s", r"ran longer than --timeout \1"),
        (r"a larger timeout=", "a larger --timeout"),
        (r"con\.sql\(\) takes", "queryref takes"),
        (r"run statements with con\.execute\(\)",
         "run statements with your database's own client"),
        (r"use con\.execute\(\) for statements that write or change settings",
         "run statements that write or change settings with your database's own client"),
        (r"use con\.execute\(\)", "use your database's own client"),
        (r"missing value for parameter\(s\) \[(.*?)\]: pass them as keywords"
         r"(?: or define them as variables)?", lambda m: _missing_params(m.group(1))),
        (r"parameter\(s\) \[(.*?)\] given but not used",
         lambda m: f"-p {m.group(1).replace(chr(39), '')} given but not used"),
    ))


def _missing_params(names: str) -> str:
    listed = [n.strip().strip("'\"") for n in names.split(",") if n.strip()]
    flags = " ".join(f"-p {n}=VALUE" for n in listed)
    return f"missing value for parameter(s) {', '.join(listed)}: give {flags}"


def cli_words(text: str) -> str:
    """A library message with its Python spellings turned into the command line's.

    >>> cli_words("more than 10 rows (max_rows=10); preflight='count' counts first")
    'more than 10 rows (--max-rows 10); --preflight count counts first'
    """
    for pattern, replacement in _CLI_WORDS:
        text = pattern.sub(replacement, text)
    return _PARAM_SENTINEL.sub("{{ parameter }}", text)


def way_out(err: BaseException, args: argparse.Namespace | None,
            session: Session | None = None) -> str:
    """What to try next, for what this run does (empty when the message already says)."""
    if isinstance(err, ConnectError):
        return connect_hint(err, session.url if session else None)
    if isinstance(err, ResultTooLarge):
        return _too_large_hint(args)
    if isinstance(err, ParameterError):
        text = str(err)
        if "given but not used" in text:
            return "drop that -p, or use it in the SQL as {{ name }}"
        return ""
    if isinstance(err, QueryTimeout):
        return "" if "larger timeout" in str(err) else "raise --timeout, or filter/aggregate first"
    if isinstance(err, QueryRefError | ImportError) and exit_code(err) == DATABASE:
        return "check the SQL, the database and --db/$QUERYREF_URL; --debug shows the traceback"
    if isinstance(err, (*_USER_ERRORS, QueryRefError)):
        return ""
    return "--debug shows the traceback"


def _too_large_hint(args: argparse.Namespace | None) -> str:
    raise_it = "or raise the limit knowingly with --max-bytes 2GB / --max-rows N"
    out = getattr(args, "out", None)
    fmt = getattr(args, "format", None)
    if out:  # a file or stdout: only the limits given apply
        return ("ways out: aggregate or filter in the SQL, " + raise_it
                + ", or leave them off (a file has no budget unless you give one)")
    if fmt in ("csv", "json"):  # every row printed, so every row held first
        return ("ways out: aggregate or filter in the SQL; stream the rows instead of holding "
                f"them: --out - (--format {fmt}) or --out result.parquet; {raise_it} "
                "(--max-bytes none: no budget)")
    return ("ways out: show fewer rows (--show 5) or fewer, narrower columns; stream the result "
            f"to a file with --out result.parquet; {raise_it} (--max-bytes none: no budget)")


# -- URLs -------------------------------------------------------------------------------------
#: the schemes queryref's own backends open (DuckDB, PostgreSQL, Snowflake, Spark Connect)
OWN_SCHEMES = ("duckdb", "postgresql", "snowflake", "sc")
_ALIASES = ("postgres",)
#: modules of a SQLAlchemy dialect package that are not drivers
_NOT_DRIVERS = {"base", "types", "json", "enumerated", "reflection", "dml", "expression",
                "reserved_words", "provision", "ranges", "array", "hstore", "named_types",
                "operators", "ext", "information_schema", "dictionary", "_psycopg_common"}


def sqlalchemy_schemes() -> list[str]:
    """The dialect names SQLAlchemy can open here: its own and those installed packages
    register (``sqlalchemy.dialects`` entry points), without importing any of them."""
    from importlib.metadata import entry_points

    names = {"mssql", "mysql", "mariadb", "oracle", "postgresql", "sqlite"}
    try:
        names |= {ep.name.split(".")[0] for ep in entry_points(group="sqlalchemy.dialects")}
    except Exception:  # a broken distribution's metadata: the built-in names still hold
        pass
    return sorted(names - set(OWN_SCHEMES))


def _drivers(dialect: str) -> list[str]:
    import importlib
    import pkgutil

    try:
        package = importlib.import_module(f"sqlalchemy.dialects.{dialect}")
    except Exception:
        return []
    return sorted(m.name for m in pkgutil.iter_modules(getattr(package, "__path__", []))
                  if m.name not in _NOT_DRIVERS and not m.name.startswith("_"))


def scheme_hint(url: str) -> str:
    """What to say when ``url``'s scheme opens nothing: the nearest known spelling and the
    schemes that work here (never the rest of the URL); empty when the scheme is known.

    >>> print(scheme_hint("postgress://u@h/db").split(" -- ")[0])
    unknown database URL scheme 'postgress://'
    >>> print(scheme_hint("duckbd:///x.db").split("? ")[0])
    unknown database URL scheme 'duckbd://' -- did you mean 'duckdb://'
    """
    scheme = url.split("://", 1)[0].lower()
    dialect, plus, driver = scheme.partition("+")
    others = sqlalchemy_schemes()
    known = [*OWN_SCHEMES, *_ALIASES, *others]
    if dialect in known:
        if not plus:
            return ""
        close = difflib.get_close_matches(driver, _drivers(dialect), n=1, cutoff=0.6)
        if close and close[0] != driver:
            return (f"the driver '{driver}' does not load -- did you mean "
                    f"'{dialect}+{close[0]}://'? (a driver after '+' must be installed too)")
        return (f"the driver '{driver}' does not load -- install it (pip install ...), or "
                f"leave '+{driver}' off for SQLAlchemy's default {dialect} driver")
    close = difflib.get_close_matches(dialect, known, n=1, cutoff=0.6)
    guess = f"did you mean '{close[0]}{plus}{driver}://'? " if close else ""
    return (f"unknown database URL scheme '{scheme}://' -- {guess}queryref opens "
            + ", ".join(f"{s}://" for s in OWN_SCHEMES) + "; through SQLAlchemy: "
            + ", ".join(f"{s}://" for s in others) + " (another SQLAlchemy dialect needs its "
            "package installed)")


def connect_hint(err: ConnectError, url: str | None) -> str:
    """The way out when the database cannot be opened (its scheme is known)."""
    if isinstance(err.__cause__, ParameterError):
        return ("--db (or $QUERYREF_URL) takes a URL such as duckdb:///file.duckdb, "
                "postgresql://user@host:5432/db or snowflake://user@account/db/schema")
    if isinstance(err.__cause__, ImportError):
        return "install the driver it names, or pick another --db"
    if isinstance(err.__cause__, BackendError):
        return "check --db/$QUERYREF_URL: is the server up, are the host, user and password right?"
    return "--debug shows the traceback"


# -- SQL that does not parse ------------------------------------------------------------------
_KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "JOIN", "WITH",
             "UNION", "VALUES", "DISTINCT", "BETWEEN", "QUALIFY", "OFFSET", "INNER", "OUTER",
             "LEFT", "RIGHT", "CROSS", "EXCEPT", "INTERSECT", "WINDOW", "PARTITION", "CASE",
             "WHEN", "THEN", "ELSE", "CAST")


def parse_message(err: SQLParseError, sql: str | None, cell: str | None = None) -> str:
    """A parse error as the command line shows it: where, what was expected, and (when the
    SQL is known) its line with a marker under the problem.

    >>> e = SQLParseError("Required keyword: 'expression' missing for <class "
    ...                   "'sqlglot.expressions.core.Mul'>", line=1, col=15, snippet="FROM")
    >>> print(parse_message(e, "SELECT a * FROM t"))
    SQLParseError: line 1, column 12: expected a value after '*', found 'FROM'
      SELECT a * FROM t
                 ^^^^
    """
    description = _description(err)
    place = _locate(sql, err.line, err.col, err.snippet) if sql else None
    if place is None and sql:
        place = _quoted_token(sql, description)
    if "Error tokenizing" in description and sql:
        opened = _unclosed(sql)
        if opened is not None:
            what, place = opened
            description = f"{what} is not closed"
    at_end = place is not None and sql is not None and not _rest(sql, place).strip(" \t\n;")
    text = readable(description, err.snippet, at_end=at_end)
    misspelt = _misspelt(sql, place) if sql else None
    if misspelt:
        text += f" (is '{misspelt[0]}' meant to be {misspelt[1]}?)"
    where = []
    if cell:
        where.append(f"in cell {cell!r}")
    if place is not None:
        where.append(f"line {place[0] + 1}, column {place[1] + 1}")
    elif err.line is not None:
        where.append(f"line {err.line}, column {err.col}")
    head = f"SQLParseError: {', '.join(where) + ': ' if where else ''}{cli_words(text)}"
    if place is None or sql is None:
        return head
    return "\n".join([head, *_pointer(sql.splitlines()[place[0]], place[1], place[2])])


def _description(err: SQLParseError) -> str:
    """The parser's own words, without the library's "could not parse SQL at ..." prefix."""
    where = f" at line {err.line}, column {err.col}" if err.line is not None else ""
    near = f" near {err.snippet!r}" if err.snippet else ""
    prefix = f"could not parse SQL{where}{near}: "
    text = str(err)
    return text[len(prefix):] if text.startswith(prefix) else text


def _locate(sql: str, line: int | None, col: int | None, snippet: str
            ) -> tuple[int, int, int] | None:
    """(line index, start, end) of the snippet the parser stopped at, in the text as given
    (a parameter swapped in before parsing can shift its columns: then it is looked for)."""
    lines = sql.splitlines()
    if line is None or col is None or not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    if not snippet:
        return (line - 1, max(min(col - 1, len(text) - 1), 0), max(min(col, len(text)), 1))
    start = col - len(snippet)
    if text[start:col] == snippet:
        return (line - 1, start, col)
    found = [m.start() for m in re.finditer(re.escape(snippet), text)]
    if len(found) == 1:
        return (line - 1, found[0], found[0] + len(snippet))
    return None


def _quoted_token(sql: str, description: str) -> tuple[int, int, int] | None:
    """An engine's 'syntax error at or near "X"': where X is, when it is there once."""
    m = re.search(r'at or near "([^"]+)"', description)
    if not m:
        return None
    hits = [(i, h.start(), h.end()) for i, text in enumerate(sql.splitlines())
            for h in re.finditer(rf"(?<!\w){re.escape(m.group(1))}(?!\w)", text, re.I)]
    return hits[0] if len(hits) == 1 else None


def _rest(sql: str, place: tuple[int, int, int]) -> str:
    lines = sql.splitlines()
    return "\n".join([lines[place[0]][place[2]:], *lines[place[0] + 1:]])


def _unclosed(sql: str) -> tuple[str, tuple[int, int, int]] | None:
    """A quote or block comment that is opened and never closed: what it is and where."""
    i, n = 0, len(sql)
    while i < n:
        two = sql[i:i + 2]
        if two == "--":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        closers = {"/*": ("*/", "a /* comment"), "'": ("'", "a quoted text (')"),
                   '"': ('"', 'a quoted name (")'), "`": ("`", "a quoted name (`)")}
        opener = "/*" if two == "/*" else sql[i]
        if opener in closers:
            close, what = closers[opener]
            end = sql.find(close, i + len(opener))
            if end < 0:
                line = sql.count("\n", 0, i)
                col = i - (sql.rfind("\n", 0, i) + 1)
                return what, (line, col, col + len(opener))
            i = end + len(close)
            continue
        i += 1
    return None


def _misspelt(sql: str, place: tuple[int, int, int] | None) -> tuple[str, str] | None:
    """A word that is nearly a SQL keyword (``SELEC``, ``FORM``) and that keyword: the SQL's
    first word, or one of the two words up to where the parser stopped."""
    def words(text: str) -> list[str]:
        return re.findall(r"(?<![\w'\"])[A-Za-z]{4,}(?![\w'\"])", _strip_quoted(text))

    candidates = words(sql)[:1]
    if place is not None:
        candidates += words(sql.splitlines()[place[0]][:place[2]])[-2:]
    for word in candidates:
        upper = word.upper()
        if upper in _KEYWORDS:
            continue
        close = difflib.get_close_matches(upper, _KEYWORDS, n=1, cutoff=0.8)
        if close:
            return word, close[0]
    return None


def _strip_quoted(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*", " ", sql)


def _pointer(text: str, start: int, end: int) -> list[str]:
    """The SQL line (cut around the problem when long) and a marker under the problem."""
    text = text.replace("\t", " ")
    before, mark, after = text[:start], text[start:end] or " ", text[end:]
    if display_width(before) > 60:
        tail = before[::-1]
        before = "…" + truncate(tail, 50).rstrip("…")[::-1]
    after = truncate(after, 30)
    return [f"  {before}{mark}{after}".rstrip(),
            "  " + " " * display_width(before) + "^" * max(display_width(mark), 1)]
