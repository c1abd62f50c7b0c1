"""Joins and set operations between two queries, on sqlglot trees.

Join sides are aliased ``l`` and ``r`` in the generated SQL; a join predicate may name them
(``"l.id = r.customer_id"``), and unqualified names that exist on one side only are
qualified automatically. Output columns that exist on both sides get ``suffixes``.

Each side is a :class:`~queryref.sql.compose.Frame` (tree, output columns, name rules); the
caller checks that both run on the same connection.

>>> from sqlglot import parse_one
>>> left = Frame(parse_one("SELECT * FROM orders"), ("id", "cid"))
>>> right = Frame(parse_one("SELECT * FROM customers"), ("cid", "name"))
>>> tree, names = join(left, right, on="cid", how="left")
>>> names
['id', 'cid', 'name']
>>> print(tree.sql(pretty=True))
SELECT
  l.id,
  l.cid,
  r.name
FROM orders AS l
LEFT JOIN customers AS r
  ON l.cid = r.cid
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeGuard

from sqlglot import exp

from queryref._typing import JoinHow
from queryref.errors import ParameterError, UnknownColumnError
from queryref.sql import ctes as _ctes
from queryref.sql import rewrite as rw
from queryref.sql.compose import Frame
from queryref.sql.text import column, copy_tree, ident, parse_expression

_HOWS = ("inner", "left", "right", "outer", "full", "semi", "anti", "cross")


def _source(side: Frame, alias: str) -> exp.Expr:
    """A FROM source for ``side``: its table directly when it is a plain table, else a
    subquery (a new node either way)."""
    tree = side.tree
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
        table = copy_tree(tree.args["from_"].this)
        table.set("alias", exp.TableAlias(this=ident(alias)))
        return table
    return exp.Subquery(this=copy_tree(tree), alias=exp.TableAlias(this=ident(alias)))


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParameterError(f"join keys are a column name or a list of names, not {value!r}")


def _qualify(node: exp.Expr, left: Frame, right: Frame) -> exp.Expr:
    """Give unqualified columns of a join predicate their side; ambiguous names are an error.

    Names are matched by each side's own rules (Snowflake: ``amount`` is ``AMOUNT``).
    """
    node = copy_tree(node)
    for c in rw.scope_columns(node):
        in_l, in_r = left.has(c.name), right.has(c.name)
        if in_l and in_r:
            msg = (
                f"column {c.name!r} exists on both sides of the join: write l.{c.name} or "
                f"r.{c.name} in the predicate, or pass on={c.name!r}"
            )
            raise ParameterError(msg)
        if not in_l and not in_r:
            raise UnknownColumnError([c.name], [*left.columns, *right.columns])
        side = left if in_l else right
        c.set("this", ident(side.resolve(c.name)))
        c.set("table", ident("l" if in_l else "r"))
    for c in node.find_all(exp.Column):
        name = c.table
        if name in ("l", "r"):
            side = left if name == "l" else right
            if not side.has(c.name):
                raise UnknownColumnError([f"{name}.{c.name}"],
                                         [f"{name}.{n}" for n in side.columns])
            c.set("this", ident(side.resolve(c.name)))
    return node


def _unique(name: str, taken: set[str], suffix: str, fold: Callable[[str], str]) -> str:
    """``name`` + ``suffix`` (repeated until free); ``taken`` holds names as ``fold`` keys."""
    candidate = name + suffix
    while fold(candidate) in taken:
        candidate += suffix or "_"
    return candidate


def _suffix_after(q: Frame, name: str, suffix: str) -> str:
    """``suffix`` spelled to follow ``name``: where the engine stores plain names upper-case
    (Snowflake keeps ``region`` as ``REGION``), ``_right`` becomes ``_RIGHT``, so the new
    column is the one the user writes as ``region_right``."""
    if suffix and name != name.lower() and q.engine_name(name.lower()) == name:
        return q.engine_name(suffix)
    return suffix


def _exact(name: str) -> str:
    return name


def join(
    left: Frame,
    right: Frame,
    *,
    on: str | Sequence[str] | exp.Expr | None = None,
    how: JoinHow = "inner",
    left_on: str | Sequence[str] | None = None,
    right_on: str | Sequence[str] | None = None,
    suffixes: tuple[str, str] = ("", "_right"),
) -> tuple[exp.Select, list[str]]:
    """The join of ``left`` and ``right``: its tree and output names (see ``QueryRef.join``).

    ``on`` is a column name, a list of names, SQL text or a predicate tree over ``l``/``r``.
    """
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
    refs = _Refs(left.tree, flat=how_l not in ("semi", "anti"))

    if how_l == "cross":
        if on is not None or left_on is not None or right_on is not None:
            raise ParameterError("a cross join takes no on/left_on/right_on")
    elif left_on is not None or right_on is not None:
        if on is not None:
            raise ParameterError("give either on= or left_on=/right_on=, not both")
        lk = [left.resolve(n) for n in _names(left_on)]
        rk = [right.resolve(n) for n in _names(right_on)]
        if not lk or len(lk) != len(rk):
            raise ParameterError("left_on and right_on need the same number of columns (>= 1)")
        cond = rw.and_all([exp.EQ(this=refs.left(a), expression=refs.right(b))
                           for a, b in zip(lk, rk, strict=True)], copy=False)
    elif isinstance(on, exp.Expr) or (isinstance(on, str) and on not in lcols
                                      and on not in rcols and not _both_have(left, right, on)):
        pred = on if isinstance(on, exp.Expr) else parse_expression(on, left.dialect)
        cond = refs.rebase(_qualify(pred, left, right))
    else:
        names = _names(on)
        if not names:
            raise ParameterError(f"{how_l} join needs on=, or left_on= and right_on=")
        using = [left.resolve(n) for n in names]
        for n in using:
            right.resolve(n)
        cond = rw.and_all([exp.EQ(this=refs.left(n), expression=refs.right(right.resolve(n)))
                           for n in using], copy=False)

    if how_l in ("semi", "anti"):
        rsrc = _source(right, "r")
        exists = exp.Exists(this=exp.select(exp.Literal.number(1)).from_(rsrc, copy=False)
                            .where(cond, copy=False))
        tree = exp.select(*[column(c, "l") for c in lcols]).from_(_source(left, "l"), copy=False)
        tree = tree.where(exp.Not(this=exists) if how_l == "anti" else exists, copy=False)
        return tree, list(lcols)

    items: list[exp.Expr] = []
    names_out: list[str] = []
    taken: set[str] = set()
    right_keys = {right.resolve(u) for u in using}
    right_rest = [c for c in rcols if c not in right_keys]
    left_rest = [c for c in lcols if c not in using]
    # where the engine matches names case-insensitively (DuckDB) "Status" and "status" are one
    # name: both kept, a subquery would rename one ("status_1") behind the user's back
    fold = str.lower if left.case_insensitive else _exact
    lkeys, rkeys = {fold(c) for c in left_rest}, {fold(c) for c in right_rest}
    collide = lkeys & rkeys | (rkeys & {fold(u) for u in using})
    for c in lcols:  # left columns in their order, join keys (kept once) where they stand
        if c in using:
            rn = right.resolve(c)
            if how_l == "right":
                node: exp.Expr = refs.right(rn)
            elif how_l == "outer":
                node = exp.Coalesce(this=refs.left(c), expressions=[refs.right(rn)])
            else:
                node = refs.left(c, shared=True)
            name = c
        else:
            node = refs.left(c, shared=True)
            name = _unique(c, taken | rkeys, _suffix_after(left, c, suffixes[0]), fold) \
                if fold(c) in collide and suffixes[0] else c
        items.append(_aliased(node, name))
        names_out.append(name)
        taken.add(fold(name))
    for c in right_rest:
        name = _unique(c, taken | lkeys, _suffix_after(right, c, suffixes[1]), fold) \
            if fold(c) in collide or fold(c) in taken else c
        items.append(_aliased(refs.right(c), name))
        names_out.append(name)
        taken.add(fold(name))
    if len({fold(n) for n in names_out}) != len(names_out):
        raise ParameterError(f"suffixes {suffixes!r} leave duplicate column names: {names_out}")
    kind = {"inner": None, "left": "LEFT", "right": "RIGHT", "outer": "FULL",
            "cross": "CROSS"}[how_l]
    joined = exp.Join(this=_source(right, refs.right_alias), on=cond,
                      side=kind if kind in ("LEFT", "RIGHT", "FULL") else None,
                      kind="CROSS" if kind == "CROSS" else None)
    if refs.select is not None:
        tree = rw.copy_without(refs.select, "expressions")
        tree.set("joins", [*tree.args["joins"], joined])
    else:
        tree = exp.select().from_(_source(left, "l"), copy=False)
        tree.set("joins", [joined])
    tree.set("expressions", items)
    return tree, names_out


_PLAIN_JOIN_CLAUSES = ("where", "group", "having", "order", "limit", "offset", "distinct",
                       "with_", "qualify", "windows", "laterals", "pivots", "sample")


class _Refs:
    """How the new join names a column of each side: ``l.x`` and ``r.x``, over the left query
    as a subquery ``l`` and the right one as ``r``.

    Joins associate to the left, so a chain of joins needs no nesting: when the left query is
    nothing but a join (a projection of its sources' columns: ``flat``), the new join extends
    it, reading its columns through their definitions and giving the right side a fresh
    alias. ``(A JOIN B) AS l JOIN C AS r`` is then the flat ``A JOIN B JOIN C AS r2``.
    """

    def __init__(self, left: exp.Query, *, flat: bool) -> None:
        self.select = left if flat and _is_plain_join(left) else None  # the join to extend
        self.flat = self.select is not None
        self.right_alias = "r"
        self._definitions: dict[str, exp.Expr] = {}
        if self.select is not None:
            self._definitions = {str(rw.output_name(i)): (i.this if isinstance(i, exp.Alias)
                                                          else i) for i in self.select.expressions}
            taken = {j.this.alias_or_name for j in self.select.args["joins"]}
            taken.add(self.select.args["from_"].this.alias_or_name)
            self.right_alias = next(f"r{i}" for i in itertools.count(2) if f"r{i}" not in taken)

    def left(self, name: str, *, shared: bool = False) -> exp.Expr:
        """The left side's column ``name``: a new node, or with ``shared`` (a projection
        item, never changed in place) the flat join's own definition of it."""
        if not self.flat:
            return column(name, "l")
        definition = self._definitions[name]
        return definition if shared else copy_tree(definition)

    def right(self, name: str) -> exp.Column:
        """The right side's column ``name`` (a new node)."""
        return column(name, self.right_alias)

    def rebase(self, node: exp.Expr) -> exp.Expr:
        """``node`` (its own, over ``l`` and ``r``) over the flat join's sources, in place."""
        if not self.flat:
            return node
        for c in list(node.find_all(exp.Column)):
            if c.table == "l":
                definition = self.left(c.name)
                if c is node:
                    return definition
                c.replace(definition)
            elif c.table == "r":
                c.set("table", ident(self.right_alias))
        return node


def _is_plain_join(node: exp.Expr) -> TypeGuard[exp.Select]:
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
    for i in node.expressions:
        value = i.this if isinstance(i, exp.Alias) else i
        if isinstance(value, exp.Column):  # (the usual item: nothing below it to walk)
            if not (isinstance(value.this, exp.Identifier) and value.table):
                return False
            continue
        if not all(isinstance(c.this, exp.Identifier) and c.table
                   for c in value.find_all(exp.Column)):
            return False
        if rw.contains_agg(value) or rw.contains_window(value):
            return False
    return True


def _both_have(left: Frame, right: Frame, name: str) -> bool:
    try:
        left.resolve(name)
        right.resolve(name)
    except UnknownColumnError:
        return False
    return True


def _aliased(node: exp.Expr, name: str) -> exp.Expr:
    if isinstance(node, exp.Column) and node.name == name:
        return node
    return exp.Alias(this=node, alias=ident(name))


def set_operation(left: Frame, right: Frame, kind: type[exp.SetOperation], *,
                  distinct: bool) -> exp.Query:
    """UNION / INTERSECT / EXCEPT of two queries with the same columns in the same order.

    >>> from sqlglot import parse_one
    >>> a = Frame(parse_one("SELECT x FROM a ORDER BY x"), ("x",))
    >>> set_operation(a, Frame(parse_one("SELECT x FROM b"), ("x",)), exp.Union,
    ...               distinct=False).sql()
    'SELECT x FROM a UNION ALL SELECT x FROM b'
    """
    lcols, rcols = left.columns, right.columns
    if len(lcols) != len(rcols):
        msg = (
            f"{kind.__name__.lower()}() needs the same number of columns on both sides: "
            f"{list(lcols)} vs {list(rcols)}"
        )
        raise ParameterError(msg)
    sides: list[exp.Query] = []
    for side in (left, right):
        tree, s = rw.prepare(side.tree, rw.Op.OPERAND, side.columns, side.dialect)
        if tree is not side.tree:  # wrapped: an operand's order means nothing to a set operation
            tree.set("order", None)
        elif s.ordered:
            tree = rw.copy_without(tree, "order")
        sides.append(tree)
    # both sides' CTEs go to the top, each renamed away from every name the other side reads
    this, other, with_ = _ctes.merge(sides[0], sides[1], left.key())
    node = kind(this=copy_tree(this), expression=copy_tree(other), distinct=distinct)
    if with_ is not None:
        node.set("with_", with_)
    return node
