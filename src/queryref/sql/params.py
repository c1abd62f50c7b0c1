"""``{{ name }}`` parameters, rendered through sqlglot: never by string formatting.

Each placeholder is swapped for a generated identifier before parsing; after parsing, the
identifier's nodes are replaced by a literal (value positions), a list of literals (``IN``),
or the inlined query (``FROM {{ src }}``, a QueryRef parameter).

Identifiers (a column, table or alias name) are never filled from a plain ``{{ name }}``: they
take the explicit form ``{{ name | identifier }}``, which renders the text as one quoted
identifier (``"my col"``), so a value can name something but never add SQL.

A query parameter is a sqlglot tree, or a value that carries one (:class:`QueryValue`: a
``QueryRef`` is one) on the same engine (:class:`Engine`: a ``Connection`` is one); this module
reads only those attributes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from sqlglot import exp

from queryref.errors import ParameterError
from queryref.sql.ctes import engine_key, private
from queryref.sql.text import ident, literal, parse_query


class _NameRules(Protocol):
    @property
    def case_insensitive(self) -> bool: ...


class Engine(Protocol):
    """What rendering reads of the connection: its dialect and its backend's name rules."""

    @property
    def dialect(self) -> str: ...

    @property
    def backend(self) -> _NameRules: ...


@runtime_checkable
class QueryValue(Protocol):
    """A parameter value that is a query: its tree and the engine it runs on."""

    @property
    def tree(self) -> exp.Query: ...

    @property
    def connection(self) -> Any: ...


def _query_tree(value: Any, con: Engine) -> exp.Query | None:
    """The tree of a query parameter (checked to run on ``con``), or None for a plain value."""
    if isinstance(value, exp.Query):
        return value
    if isinstance(value, QueryValue) and isinstance(value.tree, exp.Query):
        if value.connection is not con:
            raise ParameterError("a QueryRef parameter must come from the same connection")
        return value.tree
    return None

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?$")
_FILTERS = ("identifier",)


def render(text: str, params: Mapping[str, Any], con: Engine, *,
           dialect: str | None = None, namespace: Mapping[str, Any] | None = None) -> exp.Query:
    """Parse ``text`` as one read-only query with its ``{{ name }}`` parameters filled in.

    ``dialect`` is the dialect ``text`` is written in (default: the connection's); a name
    missing from ``params`` is looked up in ``namespace`` (a notebook's variables) when given.

    >>> from types import SimpleNamespace
    >>> con = SimpleNamespace(dialect="duckdb", backend=SimpleNamespace(case_insensitive=True))
    >>> render("SELECT * FROM t WHERE s = {{ s }}", {"s": "it's"}, con).sql()
    "SELECT * FROM t WHERE s = 'it''s'"
    >>> render("SELECT {{ c | identifier }} FROM t", {"c": "Net Sales"}, con).sql()
    'SELECT "Net Sales" FROM t'
    """
    if not isinstance(text, str):
        raise ParameterError(f"SQL must be text, not {type(text).__name__}")
    nonce = secrets.token_hex(4)
    sentinels: dict[tuple[str, bool], str] = {}  # (name, as identifier) -> sentinel

    def swap(m: re.Match[str]) -> str:
        name_match = _NAME.match(m.group(1))
        if not name_match:
            msg = (
                f"cannot read the parameter {m.group(0)!r}: write {{{{ name }}}} with a plain "
                "name (letters, digits, underscore), or {{ name | identifier }} for a name"
            )
            raise ParameterError(msg)
        name, flt = name_match.group(1), name_match.group(2)
        if flt is not None and flt not in _FILTERS:
            msg = (
                f"unknown filter {flt!r} in {m.group(0)!r}: the only one is "
                "{{ name | identifier }} (the value becomes one quoted identifier)"
            )
            raise ParameterError(msg)
        key = (name, flt is not None)
        if key not in sentinels:
            sentinels[key] = f"qr{'i' if flt else 'p'}_{len(sentinels)}_{nonce}"
        return sentinels[key]

    swapped = _PLACEHOLDER.sub(swap, text)
    names = {n for n, _ in sentinels}
    scope = namespace if namespace is not None else {}
    missing = sorted(n for n in names if n not in params and n not in scope)
    if missing:
        where = " or define them as variables" if namespace is not None else ""
        raise ParameterError(f"missing value for parameter(s) {missing}: pass them as keywords"
                             f"{where}")
    unused = sorted(set(params) - names)
    if unused:
        msg = f"parameter(s) {unused} given but not used: the SQL has no {{{{ {unused[0]} }}}}"
        raise ParameterError(msg)
    tree = parse_query(swapped, dialect or con.dialect)
    if not sentinels:
        return tree
    given = {n: params[n] if n in params else scope[n] for n in names}
    values: dict[str, Any] = {}
    for n, value in given.items():
        query = _query_tree(value, con)
        values[n] = value if query is None else _Query(query)

    by_sentinel = {s: n for (n, as_ident), s in sentinels.items() if not as_ident}
    identifiers = {s: n for (n, as_ident), s in sentinels.items() if as_ident}
    tree = tree.copy()
    # the SQL's own CTEs stay its own: a query parameter's tables must not meet them
    guests = [v.tree for v in values.values() if isinstance(v, _Query)]
    tree = private(tree, guests, engine_key(con.dialect, con.backend.case_insensitive))
    for node in list(tree.walk()):
        if isinstance(node, exp.Identifier) and node.this in identifiers:
            name = identifiers[node.this]
            node.replace(_identifier(name, given[name]))
        else:
            _replace(node, by_sentinel, values)
    generated = tree.sql(dialect=dialect or con.dialect)
    leftover = sorted(n for (n, as_ident), s in sentinels.items() if s in generated)
    if leftover:
        msg = (
            f"parameter(s) {leftover} stand where only a value or a query can go (an identifier "
            "or inside a string literal); pass values, write the quotes around nothing, and "
            "name a column or table with {{ name | identifier }}"
        )
        raise ParameterError(msg)
    return tree


class _Query:
    """A query parameter's tree, told apart from plain values while rendering."""

    __slots__ = ("tree",)

    def __init__(self, tree: exp.Query) -> None:
        self.tree = tree


def _identifier(name: str, value: Any) -> exp.Identifier:
    """A parameter's text as one quoted identifier (``{{ name | identifier }}``)."""
    if not isinstance(value, str):
        msg = (
            f"parameter {name!r} is used as {{{{ {name} | identifier }}}}, so it must be text "
            f"(the name), not {type(value).__name__}"
        )
        raise ParameterError(msg)
    ident(value)  # the same checks as any name: non-empty, no NUL
    return exp.Identifier(this=value, quoted=True)


def _replace(node: exp.Expr, sentinels: dict[str, str], params: Mapping[str, Any]) -> None:
    if isinstance(node, exp.Column) and not node.table and node.name in sentinels:
        value = params[sentinels[node.name]]
        parent = node.parent
        if isinstance(parent, exp.In) and node in (parent.expressions or []) \
                and isinstance(value, list | tuple | set | frozenset):
            items = [literal(v) for v in _ordered(value)] or [exp.Null()]
            parent.set("expressions", [*[e for e in parent.expressions if e is not node], *items])
            return
        if isinstance(parent, exp.In) and parent.args.get("field") is node:
            if isinstance(value, _Query):
                parent.set("field", None)
                parent.set("query", exp.Subquery(this=value.tree.copy()))
                return
            items = [literal(v) for v in _ordered(_as_list(value))] or [exp.Null()]
            parent.set("field", None)
            parent.set("expressions", items)
            return
        if isinstance(value, _Query):
            node.replace(exp.Subquery(this=value.tree.copy()))
            return
        if isinstance(value, list | tuple | set | frozenset):
            msg = f"parameter {sentinels[node.name]!r} is a list: use it as IN {{{{ name }}}}"
            raise ParameterError(msg)
        node.replace(literal(value))
    elif isinstance(node, exp.Table) and not node.args.get("db") and node.name in sentinels:
        name = sentinels[node.name]
        value = params[name]
        if not isinstance(value, _Query):
            msg = (
                f"parameter {name!r} is used as a table, so it must be a QueryRef, not "
                f"{type(value).__name__}; to name a table write {{{{ {name} | identifier }}}}"
            )
            raise ParameterError(msg)
        alias = node.args.get("alias") or exp.TableAlias(this=ident(name))
        node.replace(exp.Subquery(this=value.tree.copy(), alias=alias))


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(_ordered(value))
    msg = f"IN {{{{ param }}}} needs a list, tuple or set, not {type(value).__name__}"
    raise ParameterError(msg)


def _ordered(values: Any) -> list[Any]:
    if isinstance(values, set | frozenset):
        try:
            return sorted(values)
        except TypeError:
            return list(values)
    return list(values)
