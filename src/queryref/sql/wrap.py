"""Wrapping a query as a subquery so the next step applies to its output, keeping the order
it promised (``wrap``) and the names it had (duplicates included). Pure: tree in, new tree out.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlglot import exp

from queryref.sql.clauses import copy_without, substitute
from queryref.sql.scope import Shape, shape
from queryref.sql.text import column, copy_tree, ident


def _fresh_alias(tree: exp.Expr, prefix: str = "_q") -> str:
    taken = {t.alias_or_name for t in tree.find_all(exp.Table, exp.Subquery)}
    for i in itertools.count(1):
        name = f"{prefix}{i}"
        if name not in taken:
            return name
    raise AssertionError("unreachable")


# Engines whose ORDER BY reads an output alias before a source column of the same name, even
# inside an expression, while their projection cannot read aliases at all (MySQL, MariaDB).
_ORDER_READS_ALIASES_FIRST = frozenset({"mysql"})
# Engines whose HAVING reads grouped columns only, not a grouped expression's parts (MySQL,
# MariaDB refuse ``HAVING n + n < 10`` over ``n + n``).
_HAVING_READS_GROUPED_ONLY = frozenset({"mysql"})


def wrap(tree: exp.Query, columns: Sequence[str], dialect: str | None = None) -> exp.Select:
    """``SELECT * FROM (tree) AS _qN``, keeping the query's ORDER BY in force.

    A subquery's ORDER BY promises nothing to the query around it, so the sort moves to the
    outer query, written over the inner query's output columns (positions, output names and
    expressions that equal an output); a key that is none of these travels as a hidden column
    (``_qr_oN``) that the outer query sorts by and does not select. The inner ORDER BY stays
    only where a LIMIT/OFFSET needs it. CTEs of the inner query move up (only this query is
    in the tree, so they capture nothing; see :mod:`queryref.sql.ctes` for when SQL joins).

    >>> from sqlglot import parse_one
    >>> q = parse_one("SELECT x AS a, y AS b FROM t ORDER BY 2 LIMIT 5")
    >>> wrap(q, ["a", "b"]).sql()
    'SELECT * FROM (SELECT x AS a, y AS b FROM t ORDER BY 2 LIMIT 5) AS _q1 ORDER BY b'
    """
    inner = copy_without(tree)
    ctes = inner.args.get("with_")
    if ctes is not None:
        inner.set("with_", None)
    outer_order: list[exp.Ordered] = []
    hidden: list[exp.Expr] = []
    order = inner.args.get("order")
    if isinstance(order, exp.Order) and order.expressions:
        carried = _carry_order(inner, order.expressions, columns,
                               dialect in _ORDER_READS_ALIASES_FIRST)
        if carried is not None:
            outer_order, hidden = carried
            if not (inner.args.get("limit") or inner.args.get("offset")):
                inner.set("order", None)
            if hidden:
                assert isinstance(inner, exp.Select)
                inner.set("expressions", [*inner.expressions, *hidden])
    alias = _fresh_alias(inner)
    projection: list[exp.Expr] = _keep_duplicates(inner, columns) or (
        [column(c) for c in columns] if hidden else [exp.Star()])
    outer = exp.select(*projection).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=ident(alias))))
    if outer_order:
        outer.set("order", exp.Order(expressions=outer_order))
    if ctes is not None:
        outer.set("with_", ctes)
    return outer


def subquery(tree: exp.Query, alias: str = "_q") -> exp.Subquery:
    """``(tree) AS alias`` for a query that reads the rows and not their order (a count, a
    sample of widths, statistics): an ORDER BY that no LIMIT/OFFSET needs is dropped.

    ``tree`` is not changed. A step that keeps the order wraps with :func:`wrap` instead.

    >>> from sqlglot import parse_one
    >>> exp.select("COUNT(*)").from_(subquery(parse_one("SELECT a FROM t ORDER BY a"))).sql()
    'SELECT COUNT(*) FROM (SELECT a FROM t) AS _q'
    >>> subquery(parse_one("SELECT a FROM t ORDER BY a LIMIT 3"), "_p").sql()
    '(SELECT a FROM t ORDER BY a LIMIT 3) AS _p'
    """
    if isinstance(tree, exp.Select) and tree.args.get("order") \
            and not (tree.args.get("limit") or tree.args.get("offset")):
        inner: exp.Query = copy_without(tree, "order")
    else:
        inner = copy_tree(tree)
    return exp.Subquery(this=inner, alias=exp.TableAlias(this=ident(alias)))


def _keep_duplicates(inner: exp.Query, columns: Sequence[str]) -> list[exp.Expr] | None:
    """The outer projection that gives duplicate output names back, or None (no duplicates).

    A subquery renames a second ``a`` (DuckDB: ``a_1``; PostgreSQL keeps it, but then no
    query can name it): the inner copy gets a fresh name and the outer query aliases it back,
    so a step that wraps keeps the names the rows had. Changes ``inner`` in place.
    """
    folded = [c.lower() for c in columns]
    if len(set(folded)) == len(folded) or not isinstance(inner, exp.Select) \
            or any(isinstance(i, exp.Star) for i in inner.expressions) \
            or len(inner.expressions) < len(columns):
        return None
    taken = set(folded)
    seen: set[str] = set()
    items = list(inner.expressions)
    out: list[exp.Expr] = []
    for i, name in enumerate(columns):
        if folded[i] not in seen:
            seen.add(folded[i])
            out.append(column(name))
            continue
        n = 1
        while f"_qr_d{n}" in taken:
            n += 1
        fresh = f"_qr_d{n}"
        taken.add(fresh)
        item = items[i]
        items[i] = exp.Alias(this=item.this if isinstance(item, exp.Alias) else item,
                             alias=ident(fresh))
        out.append(exp.Alias(this=column(fresh), alias=ident(name)))
    inner.set("expressions", items)
    return out


def _position(node: exp.Expr) -> int | None:
    """``ORDER BY 2``'s 2 (a 1-based output position), or None for any other key."""
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    return None


def _is_all(node: exp.Expr) -> bool:
    """DuckDB's ``ORDER BY ALL`` / ``GROUP BY ALL`` key."""
    return isinstance(node, exp.Var | exp.Column) and node.name.upper() == "ALL" \
        and not (isinstance(node, exp.Column) and (node.table or node.this.quoted))


def _output(name: str, columns: Sequence[str]) -> str | None:
    """The one output column ``name`` means (exactly, else ignoring case), or None."""
    if columns.count(name) == 1:
        return name
    folded = [c for c in columns if c.lower() == name.lower()]
    return folded[0] if len(folded) == 1 and columns.count(folded[0]) == 1 else None


def _carry_order(inner: exp.Query, keys: Sequence[exp.Ordered], columns: Sequence[str],
                 aliases_first: bool) -> tuple[list[exp.Ordered], list[exp.Expr]] | None:
    """The ORDER BY keys written over ``inner``'s outputs, plus the hidden columns they need.

    None when the order cannot be carried (duplicate output names, a key on a DISTINCT or
    set operation that is not an output): the inner ORDER BY then stays as it was.
    """
    select = inner if isinstance(inner, exp.Select) else None
    s = shape(select) if select is not None else None
    taken = {c.lower() for c in columns}
    out: list[exp.Ordered] = []
    hidden: list[exp.Expr] = []
    for key in keys:
        target = key.this
        names: list[str | None]
        position = _position(target)
        if position is not None:
            names = [columns[position - 1] if 1 <= position <= len(columns)
                     and columns.count(columns[position - 1]) == 1 else None]
        elif _is_all(target):
            names = [c if columns.count(c) == 1 else None for c in columns]
        elif isinstance(target, exp.Column) and not target.table \
                and not isinstance(target.this, exp.Star):
            names = [_output(target.name, columns)]
        else:
            names = [None]
        if None in names and s is not None and not isinstance(target, exp.Column):
            match = [n for n, e in s.aliases.items() if e == target and columns.count(n) == 1]
            names = [match[0]] if match else names
        if None not in names:
            for found in names:
                new = copy_tree(key)
                new.set("this", column(found))  # type: ignore[arg-type]
                out.append(new)
            continue
        if position is not None or _is_all(target):
            return None
        if s is None:  # a set operation's keys name its outputs: they read the same outside
            if any(c.table for c in target.find_all(exp.Column)):
                return None
            out.append(copy_tree(key))
            continue
        if _passes_through(target, s, columns):
            out.append(copy_tree(key))
            continue
        if s.distinct or len(set(columns)) != len(columns):
            return None
        i = 1
        while f"_qr_o{i}" in taken:
            i += 1
        name = f"_qr_o{i}"
        taken.add(name)
        # the key as the projection reads it: where ORDER BY read aliases first, their
        # definitions (a projection item cannot name another item there)
        value = substitute(target, s.aliases) if aliases_first else copy_tree(target)
        hidden.append(exp.Alias(this=value, alias=ident(name)))
        new = copy_tree(key)
        new.set("this", column(name))
        out.append(new)
    return out, hidden


def _passes_through(node: exp.Expr, s: Shape, columns: Sequence[str]) -> bool:
    """Whether ``node`` reads only columns its SELECT passes out unchanged (so the same
    expression means the same over the SELECT's output)."""
    if any(True for _ in node.find_all(exp.Query, exp.Subquery, exp.Window, exp.AggFunc)):
        return False
    refs = list(node.find_all(exp.Column))
    if not refs:
        return False
    for c in refs:
        if c.table or isinstance(c.this, exp.Star) or columns.count(c.name) != 1:
            return False
        definition = s.aliases.get(c.name)
        if definition is None and not s.has_star:
            return False
        if definition is not None and not (isinstance(definition, exp.Column)
                                           and not definition.table
                                           and definition.name == c.name):
            return False
    return True
