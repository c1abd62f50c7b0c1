"""Reading a query's tree: what a SELECT holds (``Shape``), which nodes belong to its own
scope, aggregates and windows inside an expression, output names. Pure: nothing is changed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlglot import exp

_E = TypeVar("_E", bound=exp.Expr)

_AGG_TYPES: tuple[type[exp.Expr], ...] = (exp.AggFunc,)


@dataclass(frozen=True)
class Shape:
    """What a SELECT already holds, read once from its tree (``aggregated`` and ``windowed``,
    which walk the projection, when first asked)."""

    select: exp.Select | None
    aliases: dict[str, exp.Expr] = field(default_factory=dict)
    has_star: bool = False
    simple: bool = False
    distinct: bool = False
    ordered: bool = False
    limited: bool = False

    @functools.cached_property
    def _computes(self) -> tuple[bool, bool]:
        tree = self.select
        if tree is None:
            return False, False
        aggregated = bool(tree.args.get("group") or tree.args.get("having"))
        windowed = bool(tree.args.get("qualify"))
        for e in tree.expressions:
            if aggregated and windowed:
                break
            agg, win = _agg_and_window(e)
            aggregated, windowed = aggregated or agg, windowed or win
        return aggregated, windowed

    @property
    def aggregated(self) -> bool:
        """It groups rows (GROUP BY, HAVING, or an aggregate in the projection)."""
        return self._computes[0]

    @property
    def windowed(self) -> bool:
        """It computes a window function (or filters on one: QUALIFY)."""
        return self._computes[1]


def _plain_column(node: exp.Expr) -> bool:
    """A bare, unqualified column reference (nothing below it to walk)."""
    if type(node) is not exp.Column:
        return False
    args = node.args
    return type(args.get("this")) is exp.Identifier and not args.get("table") \
        and not args.get("db") and not args.get("catalog")


def name_of(node: exp.Expr) -> str:
    """``node.name`` for a column (or an identifier), read without sqlglot's generic ``text``
    (composition asks for column names thousands of times a step)."""
    this = node.args.get("this")
    if type(this) is exp.Identifier:
        return str(this.args["this"])
    if type(node) is exp.Identifier:
        return str(this)
    return node.name


def _leaf(node: exp.Expr) -> bool:
    """A column reference, qualified or not, maybe aliased: nothing below it to walk."""
    if type(node) is exp.Alias:
        node = node.args["this"]
    return type(node) is exp.Column and type(node.args.get("this")) is exp.Identifier


def contains_agg(node: exp.Expr) -> bool:
    """True if ``node`` holds an aggregate that is not inside a window or a subquery."""
    if _leaf(node):
        return False
    for sub in scope_nodes(node):
        if isinstance(sub, _AGG_TYPES) and not isinstance(sub.parent, exp.Window):
            return True
    return False


def inner_aggregates(node: exp.Expr) -> list[exp.Expr]:
    """Aggregates nested inside another aggregate of ``node`` (outermost ones first)."""
    found: list[exp.Expr] = []
    for sub in scope_nodes(node):
        if not isinstance(sub, _AGG_TYPES) or isinstance(sub.parent, exp.Window):
            continue
        parent = sub.parent
        while parent is not None and parent is not node.parent:
            if isinstance(parent, exp.Window):
                break
            if isinstance(parent, _AGG_TYPES):
                if not any(f is parent or _is_inside(parent, f) for f in found):
                    found.append(sub)
                break
            parent = parent.parent
    return [f for f in found if not any(g is not f and _is_inside(f, g) for g in found)]


def _is_inside(node: exp.Expr, outer: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if parent is outer:
            return True
        parent = parent.parent
    return False


def contains_window(node: exp.Expr) -> bool:
    """True if ``node`` holds a window function outside nested queries."""
    if _leaf(node):
        return False
    return any(isinstance(sub, exp.Window) for sub in scope_nodes(node))


#: functions whose every call gives another value (a draw, an id, the clock as it ticks, a
#: sequence's next number): substituted into two places, a column would be two draws
_VOLATILE_TYPES = tuple(getattr(exp, n) for n in (
    "Rand", "Randn", "Randstr", "Uniform", "Uuid", "Shuffle", "NextValueFor", "Seq1", "Seq2",
    "Seq4", "Seq8") if hasattr(exp, n))
_VOLATILE_NAMES = frozenset({
    "random", "rand", "randn", "uuid", "gen_random_uuid", "uuid_generate_v4", "uuid_string",
    "random_uuid", "newid", "nextval", "setseed", "clock_timestamp", "timeofday", "sysdate",
    "monotonically_increasing_id", "random_string", "normal", "zipf", "random_normal"})


def is_volatile(node: exp.Expr) -> bool:
    """Whether ``node`` calls a function that gives another value at each call (``random()``,
    ``uuid()``, ``nextval``, ``clock_timestamp()``): a column computed so must be computed
    once and read by name, never copied into another clause.

    >>> from sqlglot import parse_one
    >>> is_volatile(parse_one("random() * 10")), is_volatile(parse_one("a * 10"))
    (True, False)
    """
    if _leaf(node):
        return False
    for sub in node.walk():
        if isinstance(sub, _VOLATILE_TYPES):
            return True
        if isinstance(sub, exp.Anonymous) and str(sub.name).lower() in _VOLATILE_NAMES:
            return True
    return False


def _agg_and_window(node: exp.Expr) -> tuple[bool, bool]:
    """``(contains_agg(node), contains_window(node))`` in one walk."""
    if _leaf(node):
        return False, False
    agg = win = False
    for sub in scope_nodes(node):
        if isinstance(sub, exp.Window):
            win = True
        elif not agg and isinstance(sub, _AGG_TYPES) and not isinstance(sub.parent, exp.Window):
            agg = True
        if agg and win:
            break
    return agg, win


_NESTED = (exp.Query, exp.Subquery)


def scope_nodes(node: exp.Expr) -> Iterable[exp.Expr]:
    """Walk ``node`` without entering nested queries (they have their own scope).

    (The children are read from ``args`` as ``iter_expressions`` reads them, in the same
    order, without its per-child calls: composition walks every new expression several times.)
    """
    stack = [node]
    push, pop = stack.append, stack.pop
    expr, nested = exp.Expr, _NESTED
    while stack:
        cur = pop()
        yield cur
        for value in cur.args.values():
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, expr) and not isinstance(child, nested):
                        push(child)
            elif isinstance(value, expr) and not isinstance(value, nested):
                push(value)


def scope_columns(node: exp.Expr) -> list[exp.Column]:
    """Unqualified column references of ``node`` in its own scope (not in nested queries)."""
    if _leaf(node):
        ref = node.args["this"] if type(node) is exp.Alias else node
        return [ref] if _plain_column(ref) else []  # type: ignore[list-item]
    lambda_args: set[str] = set()
    found: list[exp.Column] = []
    for sub in scope_nodes(node):
        if type(sub) is exp.Column:
            if not sub.args.get("table") and not isinstance(sub.this, exp.Star):
                found.append(sub)
        elif isinstance(sub, exp.Lambda):
            lambda_args.update(e.name for e in sub.expressions)
        elif isinstance(sub, exp.Column):  # (a subclass, as the walk found it before)
            if not sub.table and not isinstance(sub.this, exp.Star):
                found.append(sub)
    if not lambda_args:
        return found
    return [c for c in found if c.name not in lambda_args]


def output_name(item: exp.Expr) -> str | None:
    """The output column name of a projection item, when it has a clear one."""
    kind = type(item)
    if kind is exp.Alias or kind is exp.Column:  # (the usual items, read without text())
        name = item.args.get("alias" if kind is exp.Alias else "this")
        if type(name) is exp.Identifier:
            return str(name.args["this"])
    if isinstance(item, exp.Alias):
        return item.alias
    if isinstance(item, exp.Column) and not isinstance(item.this, exp.Star):
        return item.name
    return None


def shape(tree: exp.Query) -> Shape:
    """Read what ``tree`` holds (flags and the alias map of its projection)."""
    if not isinstance(tree, exp.Select):
        return Shape(select=None)
    aliases: dict[str, exp.Expr] = {}
    has_star = False
    simple = not any(tree.args.get(k) for k in ("windows", "qualify", "into", "locks", "kind"))
    for item in tree.expressions:
        if isinstance(item, exp.Star) and not any(item.args.get(k) for k in
                                                    ("except_", "except", "replace", "rename")):
            if has_star:
                simple = False
            has_star = True
            continue
        name = output_name(item)
        if name is None or name in aliases:
            simple = False
            continue
        aliases[name] = item.this if isinstance(item, exp.Alias) else item
    return Shape(
        select=tree,
        aliases=aliases,
        has_star=has_star,
        simple=simple,
        distinct=bool(tree.args.get("distinct")),
        ordered=bool(tree.args.get("order")),
        limited=bool(tree.args.get("limit") or tree.args.get("offset")),
    )


_CONSTANT_PARTS: tuple[type[exp.Expr], ...] = (
    exp.Literal, exp.Boolean, exp.Null, exp.Neg, exp.Paren, exp.Cast, exp.TryCast, exp.DataType,
    exp.DataTypeParam, exp.Binary, exp.Not, exp.Interval, exp.Var,
)


def is_constant(node: exp.Expr) -> bool:
    """True for an expression made only of literals and operators (no column, no function)."""
    return all(isinstance(sub, _CONSTANT_PARTS) for sub in node.walk())


def copy_without(node: _E, *keys: str) -> _E:
    """A new ``node`` without the arguments ``keys`` (about to be replaced anyway), over the
    same other children: not copied, shared with ``node``.

    Trees here are values, never changed once built (a change is made on a copy, as
    :func:`substitute` does), so two queries can share the parts they have in common: a step
    makes new nodes only where it changes something, not a copy of the whole query. A shared
    child's ``parent`` is the newest node that took it; nothing here reads the parent of a
    node it did not make (the SQL generator works on its own copy: see
    :func:`queryref.sql.text.render`).

    >>> from sqlglot import parse_one
    >>> tree = parse_one("SELECT a FROM t ORDER BY a")
    >>> out = copy_without(tree, "order")
    >>> out.sql(), out.args["from_"] is tree.args["from_"]
    ('SELECT a FROM t', True)
    """
    out = node.__class__()
    if node.comments is not None:
        out.comments = list(node.comments)
    if node._meta:
        out._meta = dict(node._meta)
    for k, v in node.args.items():
        if k in keys or v is None:
            continue
        if isinstance(v, exp.Expr):
            out.set(k, v)
        elif type(v) is list:
            out.set(k, list(v))
        else:
            out.args[k] = v
    return out


