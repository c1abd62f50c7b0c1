"""Joins and set operations between two queries on the same connection.

Join sides are aliased ``l`` and ``r`` in the generated SQL; a join predicate may name them
(``"l.id = r.customer_id"``), and unqualified names that exist on one side only are
qualified automatically. Output columns that exist on both sides get ``suffixes``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from queryref._expr import Expr
from queryref.errors import ParameterError, UnknownColumnError
from queryref.sql import ctes as _ctes
from queryref.sql import rewrite as rw
from queryref.sql.text import column, ident, parse_expression

if TYPE_CHECKING:
    from queryref._queryref import QueryRef
    from queryref._typing import JoinHow

_HOWS = ("inner", "left", "right", "outer", "full", "semi", "anti", "cross")


def _same_connection(left: QueryRef, right: QueryRef, what: str) -> None:
    if left.connection is not right.connection:
        msg = (
            f"{what} needs both queries on the same connection; move one side first "
            "(e.g. con.create_table(name, other.to_arrow()))"
        )
        raise ParameterError(msg)


def _source(q: QueryRef, alias: str) -> exp.Expr:
    """A FROM source for ``q``: its table directly when it is a plain table, else a subquery."""
    tree = q.tree
    if (
        isinstance(tree, exp.Select)
        and len(tree.expressions) == 1
        and isinstance(tree.expressions[0], exp.Star)
        and not tree.expressions[0].args.get("except")
        and not any(tree.args.get(k) for k in ("where", "group", "having", "order", "limit",
                                                   "offset", "distinct", "joins", "with_",
                                                   "qualify", "windows"))
        and isinstance(tree.args.get("from_"), exp.From)
        and isinstance(tree.args["from_"].this, exp.Table)
        and not tree.args["from_"].this.args.get("sample")
        and not tree.args["from_"].this.alias  # its columns may be renamed by the alias
    ):
        table = tree.args["from_"].this.copy()
        table.set("alias", exp.TableAlias(this=ident(alias)))
        return table
    return exp.Subquery(this=tree.copy(), alias=exp.TableAlias(this=ident(alias)))


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParameterError(f"join keys are a column name or a list of names, not {value!r}")


def _qualify(node: exp.Expr, left: QueryRef, right: QueryRef) -> exp.Expr:
    """Give unqualified columns of a join predicate their side; ambiguous names are an error.

    Names are matched by each side's own rules (Snowflake: ``amount`` is ``AMOUNT``).
    """
    node = node.copy()
    for c in rw.scope_columns(node):
        in_l, in_r = left._has(c.name), right._has(c.name)
        if in_l and in_r:
            msg = (
                f"column {c.name!r} exists on both sides of the join: write l.{c.name} or "
                f"r.{c.name} in the predicate, or pass on={c.name!r}"
            )
            raise ParameterError(msg)
        if not in_l and not in_r:
            raise UnknownColumnError([c.name], [*left.columns, *right.columns])
        side = left if in_l else right
        c.set("this", ident(side._resolve(c.name)))
        c.set("table", ident("l" if in_l else "r"))
    for c in node.find_all(exp.Column):
        name = c.table
        if name in ("l", "r"):
            side = left if name == "l" else right
            if not side._has(c.name):
                raise UnknownColumnError([f"{name}.{c.name}"],
                                         [f"{name}.{n}" for n in side.columns])
            c.set("this", ident(side._resolve(c.name)))
    return node


def _unique(name: str, taken: set[str], suffix: str, fold: Callable[[str], str]) -> str:
    """``name`` + ``suffix`` (repeated until free); ``taken`` holds names as ``fold`` keys."""
    candidate = name + suffix
    while fold(candidate) in taken:
        candidate += suffix or "_"
    return candidate


def _suffix_after(q: QueryRef, name: str, suffix: str) -> str:
    """``suffix`` spelled to follow ``name``: where the engine stores plain names upper-case
    (Snowflake keeps ``region`` as ``REGION``), ``_right`` becomes ``_RIGHT``, so the new
    column is the one the user writes as ``region_right``."""
    if suffix and name != name.lower() and q._engine_name(name.lower()) == name:
        return q._engine_name(suffix)
    return suffix


def _exact(name: str) -> str:
    return name


def join(
    left: QueryRef,
    right: QueryRef,
    *,
    on: str | Sequence[str] | Expr | None,
    how: JoinHow,
    left_on: str | Sequence[str] | None,
    right_on: str | Sequence[str] | None,
    suffixes: tuple[str, str],
) -> QueryRef:
    """The join of ``left`` and ``right`` as a new QueryRef (see ``QueryRef.join``)."""
    from queryref._queryref import QueryRef

    if not isinstance(right, QueryRef):
        raise ParameterError(f"join() takes a QueryRef, not {type(right).__name__}")
    _same_connection(left, right, "join()")
    if not (isinstance(suffixes, list | tuple) and len(suffixes) == 2
            and all(isinstance(x, str) for x in suffixes)):
        raise ParameterError(f"suffixes must be two strings like ('', '_right'), not {suffixes!r}")
    how_l = str(how).lower()
    if how_l not in _HOWS:
        raise ParameterError(f"join how must be one of {', '.join(_HOWS)}; got {how!r}")
    how_l = "outer" if how_l == "full" else how_l
    lcols, rcols = left.columns, right.columns
    using: list[str] = []
    cond: exp.Expr | None = None

    if how_l == "cross":
        if on is not None or left_on is not None or right_on is not None:
            raise ParameterError("a cross join takes no on/left_on/right_on")
    elif left_on is not None or right_on is not None:
        if on is not None:
            raise ParameterError("give either on= or left_on=/right_on=, not both")
        lk = [left._resolve(n) for n in _names(left_on)]
        rk = [right._resolve(n) for n in _names(right_on)]
        if not lk or len(lk) != len(rk):
            raise ParameterError("left_on and right_on need the same number of columns (>= 1)")
        cond = rw.and_all([exp.EQ(this=column(a, "l"), expression=column(b, "r"))
                           for a, b in zip(lk, rk, strict=True)])
    elif isinstance(on, Expr) or (isinstance(on, str) and on not in lcols and on not in rcols
                                  and not _both_have(left, right, on)):
        pred = on.node if isinstance(on, Expr) else parse_expression(on, left.dialect)
        cond = _qualify(pred, left, right)
    else:
        names = _names(on)
        if not names:
            raise ParameterError(f"{how_l} join needs on=, or left_on= and right_on=")
        using = [left._resolve(n) for n in names]
        for n in using:
            right._resolve(n)
        cond = rw.and_all([exp.EQ(this=column(n, "l"), expression=column(right._resolve(n), "r"))
                           for n in using])

    lsrc, rsrc = _source(left, "l"), _source(right, "r")
    if how_l in ("semi", "anti"):
        exists = exp.Exists(this=exp.select(exp.Literal.number(1)).from_(rsrc).where(cond))
        tree = exp.select(*[column(c, "l") for c in lcols]).from_(lsrc)
        tree = tree.where(exp.Not(this=exists) if how_l == "anti" else exists)
        return left._new(tree, lcols)

    items: list[exp.Expr] = []
    names_out: list[str] = []
    taken: set[str] = set()
    right_keys = {right._resolve(u) for u in using}
    right_rest = [c for c in rcols if c not in right_keys]
    left_rest = [c for c in lcols if c not in using]
    # where the engine matches names case-insensitively (DuckDB) "Status" and "status" are one
    # name: both kept, a subquery would rename one ("status_1") behind the user's back
    fold = str.lower if left.connection.backend.case_insensitive else _exact
    lkeys, rkeys = {fold(c) for c in left_rest}, {fold(c) for c in right_rest}
    collide = lkeys & rkeys | (rkeys & {fold(u) for u in using})
    for c in lcols:  # left columns in their order, join keys (kept once) where they stand
        if c in using:
            rn = right._resolve(c)
            if how_l == "right":
                node: exp.Expr = column(rn, "r")
            elif how_l == "outer":
                node = exp.Coalesce(this=column(c, "l"), expressions=[column(rn, "r")])
            else:
                node = column(c, "l")
            name = c
        else:
            node = column(c, "l")
            name = _unique(c, taken | rkeys, _suffix_after(left, c, suffixes[0]), fold) \
                if fold(c) in collide and suffixes[0] else c
        items.append(_aliased(node, name))
        names_out.append(name)
        taken.add(fold(name))
    for c in right_rest:
        name = _unique(c, taken | lkeys, _suffix_after(right, c, suffixes[1]), fold) \
            if fold(c) in collide or fold(c) in taken else c
        items.append(_aliased(column(c, "r"), name))
        names_out.append(name)
        taken.add(fold(name))
    if len({fold(n) for n in names_out}) != len(names_out):
        raise ParameterError(f"suffixes {suffixes!r} leave duplicate column names: {names_out}")
    kind = {"inner": None, "left": "LEFT", "right": "RIGHT", "outer": "FULL",
            "cross": "CROSS"}[how_l]
    joined = exp.Join(this=rsrc, on=cond, side=kind if kind in ("LEFT", "RIGHT", "FULL") else None,
                      kind="CROSS" if kind == "CROSS" else None)
    tree = exp.select(*items).from_(lsrc)
    tree.set("joins", [joined])
    return left._new(_flatten(tree), names_out)


_PLAIN_JOIN_CLAUSES = ("where", "group", "having", "order", "limit", "offset", "distinct",
                       "with_", "qualify", "windows", "laterals", "pivots", "sample")


def _flatten(tree: exp.Select) -> exp.Select:
    """``(A JOIN B) AS l JOIN C AS r`` as the flat ``A JOIN B JOIN C``, when that means the same.

    Joins associate to the left, so a chain of joins needs no nesting as long as the left
    side is nothing but a join (a projection of its sides' columns): the new join's columns
    over ``l`` are replaced by their definitions and its right side gets a fresh alias.
    """
    source = tree.args["from_"].this
    if not isinstance(source, exp.Subquery) or source.alias != "l":
        return tree
    inner = source.this
    if not _is_plain_join(inner):
        return tree
    definitions = {rw.output_name(i): (i.this if isinstance(i, exp.Alias) else i)
                   for i in inner.expressions}
    taken = {j.this.alias_or_name for j in inner.args["joins"]}
    taken.add(inner.args["from_"].this.alias_or_name)
    fresh = next(f"r{i}" for i in itertools.count(2) if f"r{i}" not in taken)

    def rewrite(node: exp.Expr) -> exp.Expr:
        def visit(c: exp.Expr) -> exp.Expr:
            if isinstance(c, exp.Column) and c.table == "l":
                return definitions[c.name].copy()
            if isinstance(c, exp.Column) and c.table == "r":
                return column(c.name, fresh)
            return c
        return node.transform(visit)  # a new tree: the input is not changed

    out = inner  # ``tree`` was built fresh from copies: its parts can be reused
    items = []
    for item in tree.expressions:
        new = rewrite(item)
        if isinstance(item, exp.Column):  # kept under its own name
            new = _aliased(new, item.name)
        items.append(new)
    out.set("expressions", items)
    joined = tree.args["joins"][0]
    right = joined.this
    right.set("alias", exp.TableAlias(this=ident(fresh)))
    if joined.args.get("on") is not None:
        joined.set("on", rewrite(joined.args["on"]))
    out.set("joins", [*out.args["joins"], joined])
    return out


def _is_plain_join(node: exp.Expr) -> bool:
    """A SELECT that only joins its sources and projects their (qualified) columns."""
    if not isinstance(node, exp.Select) or not node.args.get("joins"):
        return False
    if any(node.args.get(k) for k in _PLAIN_JOIN_CLAUSES):
        return False
    if any(j.args.get("using") or j.args.get("method") for j in node.args["joins"]):
        return False
    names = [rw.output_name(i) for i in node.expressions]
    if None in names or len(set(names)) != len(names):
        return False
    return all(
        isinstance(c.this, exp.Identifier) and c.table
        for i in node.expressions for c in i.find_all(exp.Column)
    ) and not any(rw.contains_agg(i) or rw.contains_window(i) for i in node.expressions)


def _both_have(left: QueryRef, right: QueryRef, name: str) -> bool:
    try:
        left._resolve(name)
        right._resolve(name)
    except UnknownColumnError:
        return False
    return True


def _aliased(node: exp.Expr, name: str) -> exp.Expr:
    if isinstance(node, exp.Column) and node.name == name:
        return node
    return exp.Alias(this=node, alias=ident(name))


def set_operation(
    left: QueryRef, right: QueryRef, kind: type[exp.SetOperation], *, distinct: bool
) -> QueryRef:
    """UNION / INTERSECT / EXCEPT, columns matched by name when both have the same names."""
    from queryref._queryref import QueryRef

    if not isinstance(right, QueryRef):
        raise ParameterError(f"expected a QueryRef, not {type(right).__name__}")
    _same_connection(left, right, kind.__name__.lower() + "()")
    lcols, rcols = left.columns, right.columns
    if len(lcols) != len(rcols):
        msg = (
            f"{kind.__name__.lower()}() needs the same number of columns on both sides: "
            f"{lcols} vs {rcols}"
        )
        raise ParameterError(msg)
    if rcols != lcols and sorted(rcols) == sorted(lcols):
        right = right.select(*lcols)
    sides: list[exp.Query] = []
    for q in (left, right):
        tree = q.tree
        s = rw.shape(tree)
        if s.select is None or s.limited:
            tree = rw.wrap(tree, q.columns, q.dialect)
            tree.set("order", None)  # an operand's order means nothing to a set operation
        elif s.ordered:
            tree = rw.copy_without(tree, "order")
        sides.append(tree)
    # both sides' CTEs go to the top, each renamed away from every name the other side reads
    key = _ctes.engine_key(left.dialect, left.connection.backend.case_insensitive)
    this, other, with_ = _ctes.merge(sides[0], sides[1], key)
    node = kind(this=this.copy(), expression=other.copy(), distinct=distinct)
    if with_ is not None:
        node.set("with_", with_)
    return left._new(node, lcols)
