"""``{{ name }}`` parameters, rendered through sqlglot: never by string formatting.

Each placeholder is swapped for a generated identifier before parsing; after parsing, the
identifier's nodes are replaced by a literal (value positions), a list of literals (``IN``),
or the inlined query (``FROM {{ src }}``, a QueryRef parameter).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._sql import ident, literal, parse_query
from queryref.errors import ParameterError

if TYPE_CHECKING:
    from queryref._connection import Connection

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


def render(text: str, params: Mapping[str, Any], con: Connection) -> exp.Query:
    """Parse ``text`` as one read-only query with its ``{{ name }}`` parameters filled in.

    >>> import queryref as qr
    >>> con = qr.connect()
    >>> render("SELECT * FROM t WHERE s = {{ s }}", {"s": "it's"}, con).sql()
    "SELECT * FROM t WHERE s = 'it''s'"
    """
    if not isinstance(text, str):
        raise ParameterError(f"SQL must be text, not {type(text).__name__}")
    nonce = secrets.token_hex(4)
    sentinels: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        name_match = _NAME.match(m.group(1))
        if not name_match:
            msg = (
                f"cannot read the parameter {m.group(0)!r}: write {{{{ name }}}} with a plain "
                "name (letters, digits, underscore)"
            )
            raise ParameterError(msg)
        name = name_match.group(1)
        if name not in sentinels:
            sentinels[name] = f"qrp_{len(sentinels)}_{nonce}"
        return sentinels[name]

    swapped = _PLACEHOLDER.sub(swap, text)
    missing = sorted(set(sentinels) - set(params))
    if missing:
        raise ParameterError(f"missing value for parameter(s) {missing}: pass them as keywords")
    unused = sorted(set(params) - set(sentinels))
    if unused:
        msg = f"parameter(s) {unused} given but not used: the SQL has no {{{{ {unused[0]} }}}}"
        raise ParameterError(msg)
    tree = parse_query(swapped, con.dialect)
    if not sentinels:
        return tree
    by_sentinel = {s: n for n, s in sentinels.items()}
    tree = tree.copy()
    for node in list(tree.walk()):
        _replace(node, by_sentinel, params, con)
    leftover = [s for s in by_sentinel if s in tree.sql(dialect=con.dialect)]
    if leftover:
        names = sorted(by_sentinel[s] for s in leftover)
        msg = (
            f"parameter(s) {names} stand where only a value or a query can go (an identifier "
            "or inside a string literal); pass values, and write the quotes around nothing"
        )
        raise ParameterError(msg)
    return tree


def _replace(node: exp.Expr, sentinels: dict[str, str], params: Mapping[str, Any],
             con: Connection) -> None:
    from queryref._queryref import QueryRef

    if isinstance(node, exp.Column) and not node.table and node.name in sentinels:
        value = params[sentinels[node.name]]
        parent = node.parent
        if isinstance(parent, exp.In) and node in (parent.expressions or []) \
                and isinstance(value, list | tuple | set | frozenset):
            items = [literal(v) for v in _ordered(value)] or [exp.Null()]
            parent.set("expressions", [*[e for e in parent.expressions if e is not node], *items])
            return
        if isinstance(parent, exp.In) and parent.args.get("field") is node:
            if isinstance(value, QueryRef):
                _same(value, con)
                parent.set("field", None)
                parent.set("query", exp.Subquery(this=value.tree.copy()))
                return
            items = [literal(v) for v in _ordered(_as_list(value))] or [exp.Null()]
            parent.set("field", None)
            parent.set("expressions", items)
            return
        if isinstance(value, QueryRef):
            _same(value, con)
            node.replace(exp.Subquery(this=value.tree.copy()))
            return
        if isinstance(value, list | tuple | set | frozenset):
            msg = f"parameter {sentinels[node.name]!r} is a list: use it as IN {{{{ name }}}}"
            raise ParameterError(msg)
        node.replace(literal(value))
    elif isinstance(node, exp.Table) and not node.args.get("db") and node.name in sentinels:
        name = sentinels[node.name]
        value = params[name]
        if not isinstance(value, QueryRef):
            msg = (
                f"parameter {name!r} is used as a table, so it must be a QueryRef, not "
                f"{type(value).__name__}"
            )
            raise ParameterError(msg)
        _same(value, con)
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


def _same(value: Any, con: Connection) -> None:
    if value.connection is not con:
        raise ParameterError("a QueryRef parameter must come from the same connection")
