"""The one place that decides whether a step extends the current SELECT or wraps it.

Operations rank as SQL evaluates them (SQLFrame's idea): FROM < WHERE < GROUP BY < HAVING <
SELECT (windows) < DISTINCT < ORDER BY < LIMIT. A step may extend the current SELECT in place
when the clauses already there evaluate before it; otherwise the query is wrapped as a
subquery and the step applies to its output. References to output names are substituted by
their definitions when the step lands in an earlier clause (a filter after a mutate becomes a
WHERE on the defining expression), so plain filter/select/mutate chains stay one flat SELECT.

Every function here is pure: tree in, new tree out, the input never mutated. The helpers
this decision and its callers use live beside it and are re-exported here as ``rw.<name>``:
``scope`` (reading a tree: ``Shape``, aggregates, scope columns, output names), ``clauses``
(editing one clause: projection, conditions, order, limit) and ``wrap`` (the subquery wrap
that keeps order and names).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from sqlglot import exp

from queryref.sql.clauses import (
    _source_name,
    add_condition,
    add_order,
    and_all,
    combine_limit,
    has_constant_limits,
    project_items,
    star_columns,
    substitute,
    with_projection,
)
from queryref.sql.scope import (
    Shape,
    _agg_and_window,
    _leaf,
    contains_agg,
    contains_window,
    copy_without,
    inner_aggregates,
    is_constant,
    is_volatile,
    name_of,
    output_name,
    scope_columns,
    scope_nodes,
    shape,
)
from queryref.sql.wrap import (
    _HAVING_READS_GROUPED_ONLY,
    _is_all,
    _position,
    subquery,
    wrap,
)

__all__ = [
    "Op",
    "Shape",
    "add_condition",
    "add_order",
    "and_all",
    "combine_limit",
    "contains_agg",
    "contains_window",
    "copy_without",
    "has_constant_limits",
    "inner_aggregates",
    "is_constant",
    "name_of",
    "needs_wrap",
    "output_name",
    "prepare",
    "project_items",
    "projection_bound",
    "scope_columns",
    "scope_nodes",
    "shadows_alias",
    "shape",
    "star_columns",
    "subquery",
    "substitute",
    "with_projection",
    "wrap",
]



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
    if op is not Op.LIMIT and op is not Op.DISTINCT and any(
            is_volatile(s.aliases[n]) for n in {name_of(c) for e in new for c in scope_columns(e)}
            if n in s.aliases):
        return True  # (a random() column read by the step: copied in, it would be a new draw)
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


