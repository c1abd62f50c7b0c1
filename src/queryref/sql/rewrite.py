"""The one place that decides whether a step extends the current SELECT or wraps it.

Operations rank as SQL evaluates them (SQLFrame's idea): FROM < WHERE < GROUP BY < HAVING <
SELECT (windows) < DISTINCT < ORDER BY < LIMIT. A step may extend the current SELECT in place
when the clauses already there evaluate before it; otherwise the query is wrapped as a
subquery and the step applies to its output. References to output names are substituted by
their definitions when the step lands in an earlier clause (a filter after a mutate becomes a
WHERE on the defining expression), so plain filter/select/mutate chains stay one flat SELECT.

Every function here is pure: tree in, new tree out, the input never mutated.
"""

from __future__ import annotations

import enum
import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlglot import exp

from queryref.sql.text import column, copy_tree, ident, operand

_E = TypeVar("_E", bound=exp.Expr)

_AGG_TYPES: tuple[type[exp.Expr], ...] = (exp.AggFunc,)


class Op(enum.Enum):
    """The kinds of step, each with the rules of :func:`needs_wrap`."""

    FILTER = "filter"
    PROJECT = "project"
    AGGREGATE = "aggregate"
    DISTINCT = "distinct"
    ORDER = "order"
    LIMIT = "limit"
    SOURCE = "source"  # the rows read as one FROM source that changes them (a sample)
    OPERAND = "operand"  # one side of a set operation (UNION, INTERSECT, EXCEPT)


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


def needs_wrap(s: Shape, op: Op, new: Sequence[exp.Expr] = (), *, dialect: str | None = None,
               items: Sequence[tuple[str, exp.Expr]] = ()) -> bool:
    """Whether ``op`` (with its new expressions) must apply to a wrapped copy of the query.

    The rule table, in SQL evaluation order: a step cannot land in a clause that evaluates
    before one already present (a WHERE cannot see a LIMIT, a window or a DISTINCT), and an
    aggregate or window cannot be nested into another by substitution. A set operation's
    operand wraps only what it cannot take as it is (another set operation, a LIMIT); a
    SOURCE (a sample of the rows) always wraps. ``items`` are a projection's ``(name,
    expression)`` pairs (PROJECT: an ORDER BY that a new projection cannot keep wraps);
    ``dialect`` tells the engine-specific rules (MySQL's HAVING).

    >>> from sqlglot import parse_one
    >>> needs_wrap(shape(parse_one("SELECT * FROM t LIMIT 5")), Op.FILTER, [parse_one("a > 1")])
    True
    >>> needs_wrap(shape(parse_one("SELECT a + 1 AS b FROM t")), Op.FILTER, [parse_one("b > 1")])
    False
    """
    if op is Op.OPERAND:
        return s.select is None or s.limited
    if s.select is None or not s.simple or op is Op.SOURCE:
        return True
    if op is Op.LIMIT:
        return not has_constant_limits(s.select)
    if op is Op.ORDER:
        return s.limited
    if op is Op.DISTINCT:
        return s.limited or s.ordered
    if op is Op.FILTER:
        if s.limited or s.windowed or s.distinct or any(any(_agg_and_window(e)) for e in new):
            return True
        # HAVING binds a bare name to an output alias on some engines (DuckDB), and MySQL's
        # HAVING reads only grouped columns, not a grouped expression's parts: such a filter
        # filters the wrapped result instead, where every name means exactly one column.
        return s.aggregated and (dialect in _HAVING_READS_GROUPED_ONLY or any(
            shadows_alias(substitute(e, s.aliases), s) for e in new))
    # the output columns the new expressions read that the SELECT computes (not a bare name)
    used = [s.aliases[n] for n in {name_of(c) for e in new for c in scope_columns(e)}
            if n in s.aliases and not _leaf(s.aliases[n])]
    if op is Op.AGGREGATE:
        return s.aggregated or s.windowed or s.distinct or s.limited \
            or any(any(_agg_and_window(d)) for d in used) or projection_bound(s)
    if op is Op.PROJECT:
        if s.distinct or projection_bound(s):
            return True
        if items and s.ordered and _source_name(s.select) is None \
                and with_projection(s.select, s, project_items(s, items)) is None:
            return True  # an ORDER BY key the new projection redefines, with no source to name
        flags = [_agg_and_window(e) for e in new]
        new_agg = any(a for a, _ in flags)
        new_win = any(w for _, w in flags)
        if s.aggregated and not s.select.args.get("group") and not new_agg \
                and not any(contains_agg(d) for d in used):
            return True  # a whole-table aggregate whose aggregates all go: keep its one row
        if (new_agg or new_win) and (s.aggregated or s.windowed
                                     or any(any(_agg_and_window(d)) for d in used)):
            return True
        return bool(new_win and s.limited)
    raise AssertionError(op)


def prepare(tree: exp.Query, op: Op, columns: Sequence[str] | Callable[[], Sequence[str]],
            dialect: str | None = None, new: Sequence[exp.Expr] = (), *,
            items: Sequence[tuple[str, exp.Expr]] = ()) -> tuple[exp.Select, Shape]:
    """The SELECT that takes step ``op``: ``tree`` itself, or ``tree`` wrapped as a subquery
    (:func:`wrap`, its order kept) when :func:`needs_wrap` says so. The one place every
    composition step asks. ``tree`` is not changed; the SELECT returned may be ``tree``.
    ``columns`` (the output names, which a wrap needs) may be a function that finds them:
    it is called only to wrap.

    >>> from sqlglot import parse_one
    >>> prepare(parse_one("SELECT * FROM t"), Op.SOURCE, ["a"])[0].sql()
    'SELECT * FROM (SELECT * FROM t) AS _q1'
    """
    s = shape(tree)
    if needs_wrap(s, op, new, dialect=dialect, items=items):
        wrapped = wrap(tree, columns() if callable(columns) else columns, dialect)
        return wrapped, shape(wrapped)
    assert s.select is not None
    return s.select, s


def shadows_alias(node: exp.Expr, s: Shape) -> bool:
    """Whether ``node`` names a source column that an output alias of ``s`` redefines."""
    return any(
        name_of(c) in s.aliases and s.aliases[name_of(c)] != c for c in scope_columns(node)
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


def projection_bound(s: Shape) -> bool:
    """Whether a clause of the SELECT reads its projection (so it cannot change in place).

    ``ORDER BY 2``, ``GROUP BY 1`` and ``ALL`` read positions; a name that only an output
    alias defines may be read by WHERE, GROUP BY, ORDER BY expressions and later projection
    items (DuckDB, Snowflake resolve such lateral aliases), by HAVING even where a source column
    has the same name (DuckDB). A projection changed under them would change what they read,
    so such a SELECT is wrapped first. A name inside its own definition (``x * 2 AS x``) is a
    source column: the engines prefer the source there.
    """
    select = s.select
    if select is None:
        return False
    group = select.args.get("group")
    if group is not None and (group.args.get("all") or any(
            _position(g) is not None or _is_all(g) for g in group.expressions)):
        return True
    order = select.args.get("order")
    keys = order.expressions if order is not None else []
    if any(_position(k.this) is not None or _is_all(k.this) for k in keys):
        return True
    computed = {n.lower(): d for n, d in s.aliases.items()
                if not (isinstance(d, exp.Column) and not d.table and d.name == n)}
    if not computed:
        return False
    reads = {id(d): {name_of(c).lower() for c in scope_columns(d)} for d in computed.values()}
    lateral = {n for n, d in computed.items() if n not in reads[id(d)]}
    having = select.args.get("having")
    if having is not None and any(name_of(c).lower() in computed for c in scope_columns(having)):
        return True
    if not lateral:
        return False
    parts: list[exp.Expr] = [k.this for k in keys if not isinstance(k.this, exp.Column)]
    parts += [select.args[k] for k in ("where", "group", "qualify") if select.args.get(k)]
    for item in select.expressions:  # (a computed item's names were read just above)
        if isinstance(item, exp.Alias) and id(item.this) in reads:
            if reads[id(item.this)] & lateral:
                return True
        elif not isinstance(item, exp.Column):
            parts.append(item)
    return any(name_of(c).lower() in lateral for p in parts for c in scope_columns(p))


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
