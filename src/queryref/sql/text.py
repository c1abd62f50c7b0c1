"""SQL text in, sqlglot trees out: parsing, the read-only check, identifiers and literals."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from queryref.backends._quote import _EXACT, _is_keyword
from queryref.backends._quote import ident as ident  # (re-exported: the SQL layer's quoting)
from queryref.backends._quote import literal as _quoted_literal
from queryref.errors import ParameterError, ReadOnlyError, SQLParseError
from queryref.sql.parse_errors import readable
from queryref.sql.portable_time import interval

# Nodes that write, change session state or reach outside the query: never in con.sql(...).
_WRITE_NODE_NAMES = (
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterColumn",
    "TruncateTable", "Command", "Copy", "Set", "SetItem", "Pragma", "Into", "Attach", "Detach",
    "Install", "Use", "Transaction", "Commit", "Rollback", "LoadData", "Grant", "Revoke",
    "Kill", "Analyze", "Describe", "Show", "Refresh", "Cache", "Uncache", "Export",
    "Comment", "Summarize", "Declare", "Execute",
)
_WRITE_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, n) for n in _WRITE_NODE_NAMES if isinstance(getattr(exp, n, None), type)
)
# Functions with side effects (sequence bumps, session settings, server control, file access).
_SIDE_EFFECT_FUNCTIONS = frozenset({
    "nextval", "setval", "set_config", "pg_terminate_backend", "pg_cancel_backend",
    "pg_reload_conf", "pg_rotate_logfile", "lo_import", "lo_export", "lo_unlink",
    "pg_advisory_lock", "pg_sleep", "dblink_exec", "pg_switch_wal", "pg_create_restore_point",
    "setseed", "query", "query_table", "system$cancel_query",
    # run SQL given as text, past this check (the server's read-only transaction still holds)
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
    "cursor_to_xmlschema", "dblink",
    # state outside any transaction or session: a read-only transaction does not undo it
    "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
    "pg_drop_replication_slot", "pg_replication_slot_advance", "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot", "pg_replication_origin_create",
    "pg_replication_origin_drop", "pg_stat_reset", "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters", "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru", "pg_stat_reset_replication_slot", "pg_stat_reset_subscription_stats",
    "pg_promote", "pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup",
    "pg_logical_emit_message",
})
class _quiet_sqlglot:
    """Silence sqlglot's 'falling back to Command' warnings: we raise our own error instead."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("sqlglot")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


def _parse_error(err: ParseError | TokenError, text: str) -> SQLParseError:
    if isinstance(err, ParseError) and err.errors:
        first = err.errors[0]
        line, col = first.get("line"), first.get("col")
        snippet = str(first.get("highlight") or "")
        lines = text.splitlines()
        rest = ("\n".join([lines[line - 1][col:], *lines[line:]])
                if isinstance(line, int) and isinstance(col, int) and 1 <= line <= len(lines)
                else "x")
        description = readable(str(first.get("description", err)), snippet,
                               at_end=not rest.strip(" \t\n;"))
        return SQLParseError(description, line=line, col=col, snippet=snippet)
    message = str(err)
    m = re.search(r"[Ll]ine (\d+), [Cc]ol(?:umn)?:? (\d+)", message)
    line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    first_line = message.splitlines()[0] if message else "unexpected end of input"
    return SQLParseError(first_line, line=line, col=col)


# sqlglot's parser and generator recurse about 16 frames per nesting level, so Python's default
# limit (1,000) stops at ~60 nested parentheses or ~150 nested subqueries (300 chained steps
# nest that deep). Python 3.11 runs Python-to-Python calls without the C stack, so a higher
# limit is safe; it is raised while sqlglot works on a query, and put back after.
_DEEP_LIMIT = 30_000
_deep_lock = threading.Lock()
_deep_users = 0
_saved_limit = 0


@contextmanager
def deep() -> Iterator[None]:
    """Room for sqlglot to recurse through deeply nested SQL (shared by threads)."""
    global _deep_users, _saved_limit
    with _deep_lock:
        if _deep_users == 0:
            _saved_limit = sys.getrecursionlimit()
            if _saved_limit < _DEEP_LIMIT:
                sys.setrecursionlimit(_DEEP_LIMIT)
        _deep_users += 1
    try:
        yield
    finally:
        with _deep_lock:
            _deep_users -= 1
            if _deep_users == 0 and sys.getrecursionlimit() == _DEEP_LIMIT:
                sys.setrecursionlimit(_saved_limit)


def parse_statements(text: str, dialect: str) -> list[exp.Expr]:
    """Parse SQL text into statements, raising :class:`SQLParseError` with line and column."""
    if not isinstance(text, str):
        raise ParameterError(f"SQL must be text, not {type(text).__name__}")
    try:
        with _quiet_sqlglot(), deep():
            statements = sqlglot.parse(text, dialect=dialect)
    except (ParseError, TokenError) as err:
        raise _parse_error(err, text) from None
    return [s for s in statements if s is not None]


def parse_query(text: str, dialect: str) -> exp.Query:
    """Parse exactly one read-only query; anything else raises before reaching the database.

    >>> parse_query("SELECT 1 AS x", "duckdb").sql()
    'SELECT 1 AS x'
    >>> parse_query("SELECT 1; DROP TABLE t", "duckdb")
    Traceback (most recent call last):
    ...
    queryref.errors.ReadOnlyError: expected one query but got 2 statements (SELECT, DROP); ...
    """
    statements = parse_statements(text, dialect)
    if not statements:
        raise SQLParseError("the SQL text is empty", line=1, col=1)
    if len(statements) > 1:
        kinds = ", ".join(_statement_kind(s) for s in statements)
        msg = (
            f"expected one query but got {len(statements)} statements ({kinds}); "
            "con.sql() takes a single read-only query: run statements with con.execute()"
        )
        raise ReadOnlyError(msg)
    root = statements[0]
    check_read_only(root)
    while isinstance(root, exp.Subquery) and isinstance(root.this, exp.Query):
        root = root.this
    if isinstance(root, exp.Values):
        values = root.copy()
        if not values.alias:
            values.set("alias", exp.TableAlias(this=ident("_values")))
        root = exp.select("*").from_(values)
    if not isinstance(root, exp.Query):
        kind = _statement_kind(root)
        msg = f"expected a query (SELECT ...) but got {kind}; run statements with con.execute()"
        raise ReadOnlyError(msg)
    return root


def _statement_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Query):
        return "SELECT"
    return node.key.upper()


def check_read_only(tree: exp.Expr) -> None:
    """Raise :class:`ReadOnlyError` if any node of ``tree`` writes or has side effects."""
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES):
            kind = _statement_kind(node)
            where = "" if node is tree else " inside the query"
            msg = (
                f"{kind}{where} is not allowed here: con.sql() takes read-only queries only; "
                "use con.execute() for statements that write or change settings"
            )
            raise ReadOnlyError(msg)
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _SIDE_EFFECT_FUNCTIONS:
                msg = f"the function {name}() has side effects and is not allowed in con.sql()"
                raise ReadOnlyError(msg)


def parse_expression(text: str, dialect: str | None) -> exp.Expr:
    """Parse a SQL expression such as ``"amount > 100"`` (one expression, read-only)."""
    try:
        with _quiet_sqlglot(), deep():
            node = sqlglot.parse_one(text, dialect=dialect, into=exp.Condition)
    except (ParseError, TokenError) as err:
        raise _parse_error(err, text) from None
    check_read_only(node)
    return node


_UPPER_SIMPLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


@functools.lru_cache(maxsize=64)
def _folds_to_upper(dialect: str) -> bool:
    strategy = sqlglot.Dialect.get_or_raise(dialect).normalization_strategy
    return str(getattr(strategy, "name", strategy)) == "UPPERCASE"


@functools.lru_cache(maxsize=4096)
def _plain_upper(name: str) -> bool:
    return bool(_UPPER_SIMPLE_NAME.match(name)) and not _is_keyword(name.lower())


_E = TypeVar("_E", bound=exp.Expr)


@functools.lru_cache(maxsize=64)
def _folds_names(dialect: str) -> bool:
    strategy = sqlglot.Dialect.get_or_raise(dialect).normalization_strategy
    return str(getattr(strategy, "name", strategy)) in ("UPPERCASE", "LOWERCASE")


def fold_names(tree: _E, dialect: str) -> _E:
    """Unquoted names in user SQL spelled as the engine stores them (a new tree).

    On engines that fold unquoted names (Snowflake to upper case, Postgres to lower case) an
    alias written ``AS one`` names the column ``ONE`` / ``one``; folding the tree's spelling
    once lets later steps match aliases with the result's column names. Elsewhere (DuckDB
    keeps the case it was given) the tree is returned as it is.

    >>> from sqlglot import parse_one
    >>> fold_names(parse_one('SELECT 1 AS one, 2 AS "Two"'), "snowflake").sql("snowflake")
    'SELECT 1 AS ONE, 2 AS "Two"'
    """
    if not _folds_names(dialect):
        return tree
    folded = normalize_identifiers(tree.copy(), dialect=dialect)
    assert isinstance(folded, type(tree))
    return folded


# Engines that silently shorten long names: (most, measured in "bytes" or "chars").
# PostgreSQL cuts every name at 63 bytes (NAMEDATALEN - 1) with only a NOTICE; MySQL/MariaDB
# cut column aliases at 256 characters without a word.
_NAME_LIMITS: dict[str, tuple[int, str]] = {"postgres": (63, "bytes"), "mysql": (256, "chars")}


def _check_name_lengths(tree: exp.Expr, dialect: str, most: int, unit: str) -> None:
    for node in tree.find_all(exp.Identifier):
        name = node.name
        size = len(name.encode()) if unit == "bytes" else len(name)
        if size > most:
            shown = name if len(name) <= 40 else name[:37] + "..."
            raise ParameterError(
                f"the name {shown!r} is {size} {unit} long; {dialect} would silently shorten "
                f"it (at most {most} {unit}), so the result would have another column name: "
                "choose a shorter name"
            )


def render(tree: exp.Expr, dialect: str, **options: Any) -> str:
    """SQL text for ``tree`` in ``dialect``, names built by :func:`ident` meaning exactly them.

    ``ident`` leaves plain lower-case names unquoted, which is exact wherever unquoted names
    fold to lower case or not at all. Engines that fold them to upper case (Snowflake) need
    the opposite: there a lower-case name is quoted and a plain upper-case one is not, so
    ``"amount"`` (a column created quoted) and ``AMOUNT`` both mean what they say. Names the
    user wrote in SQL text keep the quoting they were written with.

    >>> from sqlglot import exp
    >>> q = exp.select(column("amount"), column("NET")).from_(exp.Table(this=ident("t")))
    >>> render(q, "snowflake"), render(q, "duckdb")
    ('SELECT "amount", NET FROM "t"', 'SELECT amount, "NET" FROM t')
    """
    limit = _NAME_LIMITS.get(dialect)
    if limit is not None:
        _check_name_lengths(tree, dialect, *limit)
    with deep():
        tree = copy_tree(tree)  # the generator changes what it prints: its own copy, made fast
        if _folds_to_upper(dialect):
            for node in tree.find_all(exp.Identifier):
                if node.meta.get(_EXACT):
                    node.set("quoted", not _plain_upper(node.name))
        return str(tree.sql(dialect=dialect, copy=False, **options))


@functools.lru_cache(maxsize=4096)
def engine_name(name: str, dialect: str) -> str:
    """The name the engine gives ``ident(name)``: unquoted names fold as the dialect folds them.

    Only engines that upper-case unquoted names (Snowflake) change anything: ``amount`` is
    ``AMOUNT`` there, as it is in the user's own SQL.

    >>> engine_name("amount", "snowflake"), engine_name("Amount", "snowflake")
    ('AMOUNT', 'Amount')
    >>> engine_name("amount", "duckdb"), engine_name("amount", "postgres")
    ('amount', 'amount')
    """
    node = ident(name)
    if node.quoted:
        return name
    return str(sqlglot.Dialect.get_or_raise(dialect).normalize_identifier(node).this)


def copy_tree(node: _E) -> _E:
    """A deep copy of ``node``, as ``node.copy()`` makes it, in about half the time.

    sqlglot copies each node's ``meta`` and type annotation through :func:`copy.deepcopy`, and
    every name this package builds carries a meta (see :func:`ident`); its values are flags
    and positions, so a new dict holds them as well, and the annotation is shared. The SQL
    generator and rewrites that change a tree work on copies: this is their hot path.

    >>> from sqlglot import parse_one
    >>> tree = parse_one("SELECT a AS b FROM t WHERE c > 1")
    >>> twin = copy_tree(tree)
    >>> twin == tree, twin is tree, twin.sql()
    (True, False, 'SELECT a AS b FROM t WHERE c > 1')
    """
    root = node.__class__()
    stack: list[tuple[exp.Expr, exp.Expr]] = [(node, root)]
    while stack:
        src, dst = stack.pop()
        if src.comments is not None:
            dst.comments = list(src.comments)
        if src._type is not None:
            dst._type = src._type  # (a type annotation, never changed in place)
        if src._meta is not None:
            dst._meta = dict(src._meta)
        if src._hash is not None:
            dst._hash = src._hash
        args = dst.args
        for key, value in src.args.items():
            if isinstance(value, exp.Expr):
                child = value.__class__()
                child.parent, child.arg_key = dst, key
                args[key] = child
                stack.append((value, child))
            elif type(value) is list:
                items: list[Any] = []
                for i, v in enumerate(value):
                    if isinstance(v, exp.Expr):
                        child = v.__class__()
                        child.parent, child.arg_key, child.index = dst, key, i
                        stack.append((v, child))
                        items.append(child)
                    else:
                        items.append(v)
                args[key] = items
            else:
                args[key] = value
    return root


def column(name: str, table: str | None = None) -> exp.Column:
    """A column reference built from a name (never parsed)."""
    if table:
        return exp.Column(this=ident(name), table=ident(table))
    return exp.Column(this=ident(name))


def literal(value: Any) -> exp.Expr:
    """A Python value as a correctly quoted SQL literal; a ``datetime.timedelta`` is an
    ``INTERVAL`` in the largest unit that holds it exactly.

    >>> import datetime
    >>> literal("it's").sql(), literal(datetime.timedelta(days=1, hours=2)).sql("duckdb")
    ("'it''s'", "INTERVAL '26' HOUR")
    """
    if isinstance(value, dt.timedelta):
        return interval(value)
    return _quoted_literal(value)


def file_path(path: object, what: str) -> str:
    """``path`` (text or ``os.PathLike``) as text; anything else is a ParameterError.

    >>> file_path("out.parquet", "to_parquet()")
    'out.parquet'
    """
    if isinstance(path, str | os.PathLike):
        text = os.fspath(path)
        if isinstance(text, str) and text.strip():
            return text
    raise ParameterError(f"{what} needs a file path (text or pathlib.Path), not {path!r}")


def table_ref(name: str, dialect: str) -> exp.Table:
    """``"schema.table"`` or ``"table"`` as a table node (parsed as a name, not as SQL)."""
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"a table name must be non-empty text, not {name!r}")
    if "\x00" in name:
        raise ParameterError("a table name cannot contain a NUL character")
    try:
        with _quiet_sqlglot():
            node = exp.to_table(name, dialect=dialect)
    except (ParseError, TokenError) as err:
        raise _parse_error(err, name) from None
    if not isinstance(node, exp.Table) or list(node.find_all(exp.Subquery, exp.Query)):
        raise ParameterError(f"{name!r} is not a table name")
    # only [catalog.][schema.]name: no table function (read_csv(...)), alias or comment
    parts = {k: v for k, v in node.args.items() if v is not None and v != []}
    if set(parts) - {"this", "db", "catalog"} or node.comments \
            or not all(isinstance(v, exp.Identifier) for v in parts.values()):
        raise ParameterError(f"{name!r} is not a table name (write it as schema.table; "
                             "quote unusual names with double quotes)")
    return node


_PRECEDENCE: tuple[tuple[tuple[type[exp.Expr], ...], int], ...] = (
    ((exp.Or,), 1),
    ((exp.And,), 2),
    ((exp.Not,), 3),
    ((exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.Is, exp.Like, exp.ILike, exp.In,
      exp.Between, exp.NullSafeEQ, exp.NullSafeNEQ), 4),
    ((exp.Add, exp.Sub, exp.DPipe), 5),
    ((exp.Mul, exp.Div, exp.Mod, exp.IntDiv), 6),
    ((exp.Pow,), 7),
    ((exp.Neg,), 8),
)


def _rank(node: exp.Expr | type[exp.Expr]) -> int | None:
    cls = node if isinstance(node, type) else type(node)
    for kinds, rank in _PRECEDENCE:
        if issubclass(cls, kinds):
            return rank
    return None


def operand(child: exp.Expr, parent: type[exp.Expr], right: bool = False
            ) -> exp.Expr:
    """``child`` parenthesised when needed to keep its meaning as an operand of ``parent``.

    >>> a_plus_b = exp.Add(this=exp.column("a"), expression=exp.column("b"))
    >>> exp.Mul(this=operand(a_plus_b, exp.Mul), expression=exp.Literal.number(2)).sql()
    '(a + b) * 2'
    """
    parent_rank, child_rank = _rank(parent), _rank(child)
    if parent_rank is None or child_rank is None:
        return child
    if child_rank < parent_rank or (child_rank == parent_rank and
                                    (right or parent_rank in (4, 7, 8))):
        return exp.Paren(this=child)
    return child
