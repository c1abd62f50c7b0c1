"""CTE scoping: a query's ``WITH`` names stay its own when other SQL joins the same tree.

A ``QueryRef`` keeps the CTEs of its SQL at the top of its tree, so steps can extend the
query's SELECT in place. A CTE at the top is visible to everything below it, so SQL from
elsewhere put into the same tree (a scalar or ``IN`` subquery, the other side of a set
operation, a parameter's query) would read a same-named CTE where it meant a table. Before
such SQL joins, the host's colliding CTEs get fresh names (with every reference that binds
to them), and two queries' ``WITH`` lists merge into one under the same rule.

Every function is pure: tree in, new tree out.

>>> from sqlglot import parse_one
>>> host = parse_one("WITH c AS (SELECT 1 AS x) SELECT x FROM c")
>>> guest = parse_one("SELECT x FROM c")  # the real table c
>>> private(host, [guest], plain_key).sql()
'WITH c_1 AS (SELECT 1 AS x) SELECT x FROM c_1 AS c'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import sqlglot
from sqlglot import exp

from queryref.sql.text import copy_tree, ident

_Q = TypeVar("_Q", bound=exp.Expr)

NameKey = Callable[[exp.Identifier], str]
"""How an engine matches two table names (``key(a) == key(b)``: the same table)."""


def plain_key(identifier: exp.Identifier) -> str:
    """Names equal but for case are the same (the conservative key, and DuckDB's rule)."""
    return str(identifier.this).lower()


def engine_key(dialect: str, case_insensitive: bool) -> NameKey:
    """The engine's rule: DuckDB ignores case; others fold unquoted names as they store them."""
    if case_insensitive:
        return plain_key
    rules = sqlglot.Dialect.get_or_raise(dialect)

    def key(identifier: exp.Identifier) -> str:
        return str(rules.normalize_identifier(copy_tree(identifier)).this)

    return key


def _is_plain_table(node: exp.Expr) -> bool:
    return isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) \
        and not node.args.get("db") and not node.args.get("catalog")


def free_tables(tree: exp.Expr, key: NameKey) -> Iterator[exp.Table]:
    """Unqualified table names in ``tree`` that no CTE in scope defines, in SQL order.

    A CTE is visible in its query's body and in the CTEs after it (all of them, itself
    included, under ``WITH RECURSIVE``); a nested ``WITH`` shadows outer names only inside.
    ``key(identifier)`` says when two names are the same.

    >>> from sqlglot import parse_one
    >>> sql = ("WITH a AS (SELECT * FROM b) "
    ...        "SELECT * FROM a JOIN (WITH b AS (SELECT 1) SELECT * FROM b, c) s")
    >>> [t.name for t in free_tables(parse_one(sql), lambda i: i.name)]
    ['b', 'c']
    """
    stack: list[tuple[exp.Expr, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, visible = stack.pop()
        pushed: list[tuple[exp.Expr, frozenset[str]]] = []
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            names = [key(cte.args["alias"].this) for cte in with_.expressions]
            recursive = bool(with_.args.get("recursive"))
            for i, cte in enumerate(with_.expressions):
                seen = names if recursive else names[:i]
                pushed.append((cte.this, visible | frozenset(seen)))
            visible = visible | frozenset(names)
        elif _is_plain_table(node) and key(node.this) not in visible:
            yield node  # type: ignore[misc]
        for arg, value in node.args.items():
            if arg == "with_":
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, exp.Expr):
                    pushed.append((child, visible))
        stack.extend(reversed(pushed))


def point(table: exp.Table, target: str) -> None:
    """Make ``table`` read ``target``, keeping the name it was written with as its alias."""
    written = table.this
    table.set("this", ident(target))
    if not table.args.get("alias") and written.name != target:
        table.set("alias", exp.TableAlias(this=copy_tree(written)))


def names_in(nodes: Sequence[exp.Expr]) -> set[str]:
    """Every table, CTE and alias name anywhere in ``nodes``, as :func:`plain_key` keys."""
    out: set[str] = set()
    for node in nodes:
        for sub in node.walk():
            if _is_plain_table(sub) or (isinstance(sub, exp.TableAlias)
                                        and isinstance(sub.this, exp.Identifier)):
                out.add(plain_key(sub.this))
    return out


def has_tables(node: exp.Expr) -> bool:
    """Whether ``node`` reads any table (a subquery inside an expression, say)."""
    return node.find(exp.Table) is not None


def private(tree: _Q, guests: Sequence[exp.Expr], key: NameKey) -> _Q:
    """``tree`` with each top-level CTE that a name in ``guests`` would meet renamed.

    Renamed CTEs get ``name_N``, free in both; references that bind to them follow, keeping
    the written name as their alias (so ``c.x`` still means what it meant).
    """
    with_ = tree.args.get("with_")
    if not isinstance(with_, exp.With) or not guests:
        return tree
    avoid = names_in(guests)
    clashing = [cte for cte in with_.expressions if plain_key(cte.args["alias"].this) in avoid]
    if not clashing:
        return tree
    return rename_ctes(tree, {plain_key(c.args["alias"].this) for c in clashing},
                       avoid | names_in([tree]), key)


def rename_ctes(tree: _Q, which: set[str], taken: set[str], key: NameKey) -> _Q:
    """``tree`` with its top-level CTEs named in ``which`` (plain keys) given fresh names."""
    out = copy_tree(tree)
    with_ = out.args["with_"]
    out.set("with_", None)
    ctes = list(with_.expressions)
    names = [key(c.args["alias"].this) for c in ctes]
    recursive = bool(with_.args.get("recursive"))
    # the references each top-level CTE name has: from the body, and from the CTEs after it
    refs: list[tuple[exp.Table, str]] = [(t, key(t.this)) for t in free_tables(out, key)]
    for i, cte in enumerate(ctes):
        visible = set(names if recursive else names[:i])
        refs += [(t, key(t.this)) for t in free_tables(cte.this, key) if key(t.this) in visible]
    taken = set(taken)
    new_names: dict[str, str] = {}
    for cte, name in zip(ctes, names, strict=True):
        written = cte.args["alias"].this.name
        if plain_key(cte.args["alias"].this) not in which or name in new_names:
            continue
        n = 1
        while f"{written}_{n}".lower() in taken:
            n += 1
        fresh = f"{written}_{n}"
        taken.add(fresh.lower())
        new_names[name] = fresh
        alias = copy_tree(cte.args["alias"])
        alias.set("this", ident(fresh))
        cte.set("alias", alias)
    for table, name in refs:
        if name in new_names:
            point(table, new_names[name])
    out.set("with_", with_)
    return out


def split_with(tree: _Q) -> tuple[_Q, exp.With | None]:
    """``tree`` without its top-level ``WITH``, and that ``WITH`` (or None)."""
    with_ = tree.args.get("with_")
    if not isinstance(with_, exp.With):
        return tree, None
    out = copy_tree(tree)
    out.set("with_", None)
    return out, copy_tree(with_)


def merge(left: exp.Query, right: exp.Query, key: NameKey
          ) -> tuple[exp.Query, exp.Query, exp.With | None]:
    """Two queries' top-level CTEs as one ``WITH`` for a tree holding both.

    Each side's CTEs are renamed away from every name the other side uses, so no CTE of one
    side captures a table (or CTE) of the other, whichever order the engine reads them in.
    Returns both queries without their ``WITH`` and the merged ``WITH`` (None if neither had one).
    """
    left = private(left, [right], key)
    right = private(right, [left], key)
    left, lw = split_with(left)
    right, rw_ = split_with(right)
    items = [*(lw.expressions if lw else []), *(rw_.expressions if rw_ else [])]
    if not items:
        return left, right, None
    recursive = bool((lw and lw.args.get("recursive")) or (rw_ and rw_.args.get("recursive")))
    return left, right, exp.With(expressions=items, recursive=recursive)
