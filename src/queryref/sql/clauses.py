"""Editing one clause of a SELECT in place of a wrap: the projection, WHERE/HAVING/QUALIFY
conditions, ORDER BY, LIMIT/OFFSET, and substituting output names by their definitions.
Pure: each returns a new tree (or ``None`` where the clause cannot take the step).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from queryref.sql.scope import (
    Shape,
    _plain_column,
    copy_without,
    is_constant,
    name_of,
    output_name,
    scope_columns,
)
from queryref.sql.text import copy_tree, ident, operand


def substitute(node: exp.Expr, aliases: dict[str, exp.Expr], *, copy: bool = True) -> exp.Expr:
    """Replace references to output names by their definitions (for a clause below SELECT).

    ``copy=False`` when the caller owns ``node`` (it may then be changed and returned).
    """
    if _plain_column(node) and name_of(node) not in aliases:
        return copy_tree(node) if copy else node
    if not aliases:
        return copy_tree(node) if copy else node
    if copy:
        node = copy_tree(node)
    targets = [c for c in scope_columns(node) if name_of(c) in aliases]
    for c in targets:
        definition = copy_tree(aliases[name_of(c)])
        if c is node:
            return definition
        parent = c.parent
        if parent is not None:
            right = parent.args.get("expression") is c
            definition = operand(definition, type(parent), right)
        c.replace(definition)
    return node


def project_items(s: Shape, items: Sequence[tuple[str, exp.Expr]], *, copy: bool = True
                  ) -> list[exp.Expr]:
    """Projection items ``name -> expression`` written over the current FROM.

    Plain references to a column the star already passes through stay bare; everything else
    is substituted and aliased.
    """
    out: list[exp.Expr] = []
    for name, node in items:
        new = substitute(node, s.aliases, copy=copy)
        if isinstance(new, exp.Column) and new.name == name and not isinstance(new.this, exp.Star):
            out.append(new)
        else:
            out.append(exp.Alias(this=new, alias=ident(name)))
    return out


def star_columns(s: Shape, columns: Sequence[str]) -> list[str]:
    """The output columns that come from ``*`` (not from named projection items)."""
    return [c for c in columns if c not in s.aliases] if s.has_star else []


def with_projection(select: exp.Select, s: Shape, items: list[exp.Expr]) -> exp.Select | None:
    """Replace the projection, keeping the ORDER BY meaning what it meant before.

    A bare name in ORDER BY means the output column of that name, so a key whose name the
    new projection redefines is rewritten to its old definition, or qualified with its source
    (``t.v``). Returns None when neither is possible: the caller wraps the query first.
    """
    out = copy_without(select, "expressions")
    out.set("expressions", items)
    if not s.ordered:
        return out
    kept = {output_name(i): (i.this if isinstance(i, exp.Alias) else i) for i in items}
    keys = []
    for key in out.args["order"].expressions:
        target = key.this
        if isinstance(target, exp.Column) and not target.table and target.name in s.aliases:
            same = kept.get(target.name)
            if same is not None and same == s.aliases[target.name]:
                keys.append(key)  # still the same output column under the same name
                continue
            key = copy_tree(key)
            key.set("this", copy_tree(s.aliases[target.name]))
            target = key.this
            if is_constant(target):
                continue  # sorting by a constant orders nothing (and `ORDER BY 10` is a position)
        if isinstance(target, exp.Column) and not target.table and target.name in kept \
                and kept[target.name] != target:
            source = _source_name(select)
            if source is None:
                return None
            key = copy_tree(key)
            key.set("this", exp.Column(this=ident(target.name), table=source))
        keys.append(key)
    out.set("order", exp.Order(expressions=keys) if keys else None)
    return out


def _source_name(select: exp.Select) -> exp.Identifier | None:
    """The name that qualifies columns of the single FROM source, if there is one.

    Spelled as the FROM clause spells it (a new identifier): ``FROM Orders`` is ``orders`` on
    PostgreSQL and ``ORDERS`` on Snowflake, so a quoted ``"Orders".v`` would name nothing.
    """
    source = select.args.get("from_")
    if source is None or select.args.get("joins"):
        return None
    node = source.this
    if not isinstance(node, exp.Table | exp.Subquery) or not node.alias_or_name:
        return None
    alias = node.args.get("alias")
    name = alias.this if alias is not None and alias.this else node.this
    return copy_tree(name) if isinstance(name, exp.Identifier) else None


def add_order(select: exp.Select, s: Shape, keys: list[exp.Ordered], columns: Sequence[str]
              ) -> exp.Select:
    """New sort keys first, earlier keys after them as tie-breakers (a stable re-sort)."""
    out = copy_without(select, "order")
    resolved: list[exp.Ordered] = []
    for key in keys:
        target = key.this
        if not (isinstance(target, exp.Column) and not target.table and target.name in columns):
            key = copy_tree(key)
            key.set("this", substitute(target, s.aliases))
        if is_constant(key.this):
            continue  # a constant key orders nothing (and `ORDER BY 10` is a position)
        resolved.append(key)
    previous = list(select.args["order"].expressions) if s.ordered else []
    seen = {k.this for k in resolved}
    resolved += [k for k in previous if k.this not in seen]
    out.set("order", exp.Order(expressions=resolved) if resolved else None)
    return out


def combine_limit(select: exp.Select, n: int | None, offset: int) -> exp.Select:
    """LIMIT n OFFSET offset applied after any LIMIT/OFFSET already there."""
    old_limit = _int_arg(select, "limit")
    old_offset = _int_arg(select, "offset") or 0
    out = copy_without(select, "limit", "offset")
    new_offset = old_offset + offset
    candidates = [x for x in (n, None if old_limit is None else max(old_limit - offset, 0))
                  if x is not None]
    new_limit = min(candidates) if candidates else None
    out.set("limit", exp.Limit(expression=exp.Literal.number(new_limit))
            if new_limit is not None else None)
    out.set("offset", exp.Offset(expression=exp.Literal.number(new_offset)) if new_offset else None)
    return out


def _int_arg(select: exp.Select, key: str) -> int | None:
    node = select.args.get(key)
    if node is None:
        return None
    value = node.expression if isinstance(node, exp.Limit | exp.Offset) else node
    if isinstance(value, exp.Literal) and not value.is_string:
        return int(value.this)
    raise ValueError(f"non-constant {key}")


def has_constant_limits(select: exp.Select) -> bool:
    """Whether LIMIT/OFFSET are plain numbers (so they can be combined)."""
    try:
        _int_arg(select, "limit")
        _int_arg(select, "offset")
    except ValueError:
        return False
    return True


def and_all(conditions: Sequence[exp.Expr], *, copy: bool = True) -> exp.Expr:
    """``c1 AND c2 AND ...`` with each operand parenthesised where needed.

    ``copy=False`` when the caller owns ``conditions`` (their nodes are then reused).

    Conjunctions nested in the inputs are flattened and the result is a balanced tree, so a
    chain of many filters stays shallow (sqlglot recurses per level, DuckDB refuses 1,000).

    >>> from sqlglot import parse_one
    >>> and_all([parse_one("a = 1 AND b = 2"), parse_one("c = 3 OR d = 4")]).sql()
    'a = 1 AND b = 2 AND (c = 3 OR d = 4)'
    """
    leaves: list[exp.Expr] = []
    stack = list(reversed(conditions))
    while stack:
        node = stack.pop()
        inner = node.this if isinstance(node, exp.Paren) else node
        if isinstance(inner, exp.And):
            stack += [inner.expression, inner.this]
        else:
            leaves.append(operand(copy_tree(node) if copy else node, exp.And, True))
    while len(leaves) > 1:
        leaves = [exp.And(this=leaves[i], expression=leaves[i + 1]) if i + 1 < len(leaves)
                  else leaves[i] for i in range(0, len(leaves), 2)]
    return leaves[0]


def add_condition(select: exp.Select, clause: str, conditions: Sequence[exp.Expr], *,
                  copy: bool = True) -> exp.Select:
    """``select`` with ``conditions`` ANDed into its WHERE or HAVING (``clause``).

    ``copy=False`` when the caller owns ``conditions`` (they become part of the result).
    """
    out = copy_without(select, clause)
    old = select.args.get(clause)
    kept = [old.this] if old is not None else []  # (shared, not changed: see copy_without)
    cond = and_all([*kept, *(copy_tree(c) if copy else c for c in conditions)], copy=False)
    out.set(clause, exp.Having(this=cond) if clause == "having" else exp.Where(this=cond))
    return out
