"""What every expression method builds on: the node holder, operands and sort keys.

The ``Expr`` class is assembled in ``core`` from the mixins beside it (``numbers``,
``aggregates``, ``windows``) and the ``.str`` / ``.dt`` namespaces (``strings``, ``dates``);
each builds sqlglot nodes, and functions no sqlglot node spells right on every engine are
``queryref.sql.portable.Portable`` nodes, lowered per dialect when SQL is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref.errors import ParameterError
from queryref.sql.text import column, literal, operand

if TYPE_CHECKING:
    from queryref._expr.core import Expr


class ExprBase:
    """The node an expression holds and its output name; methods return new expressions."""

    __slots__ = ("_name", "node")

    def __init__(self, node: exp.Expr, name: str | None = None) -> None:
        self.node = node
        self._name = name

    def _new(self, node: exp.Expr, name: str | None = None) -> Expr:
        """A new expression of this class around ``node``."""
        return type(self)(node, name)  # type: ignore[return-value]

    def _copy(self) -> exp.Expr:
        """This expression's node, copied to go into a new tree."""
        return self.node.copy()


def _node(value: Any) -> exp.Expr:
    """A Python value or Expr as a tree: Exprs give their node, plain values become literals."""
    if isinstance(value, ExprBase):
        return value.node.copy()
    if isinstance(value, exp.Expr):
        return value.copy()
    from queryref._queryref import QueryRef

    if isinstance(value, QueryRef):
        return value.as_scalar().node
    return literal(value)


def _paren(node: exp.Expr, parent: type[exp.Expr] = exp.Pow,
           right: bool = False) -> exp.Expr:
    """Parenthesise an operand where precedence needs it (default: as tightly as possible)."""
    return operand(node, parent, right)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | ExprBase | exp.Expr | _Sort):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise ParameterError(f"expected a column name, an expression or a list of them, not {value!r}")


def _into_node(value: Any) -> exp.Expr:
    """A column name (str) or an Expr as a tree. Used for keys: text is a column name."""
    if isinstance(value, str):
        return column(value)
    if isinstance(value, ExprBase):
        return value.node.copy()
    if isinstance(value, exp.Expr):
        return value.copy()
    raise ParameterError(f"expected a column name or an expression, not {value!r}")


def _data_type(to: str | exp.DataType) -> exp.DataType:
    if isinstance(to, exp.DataType):
        return to
    try:
        return exp.DataType.build(to)
    except Exception as err:
        raise ParameterError(f"{to!r} is not a SQL type: {err}") from None


def ordering(key: Any) -> exp.Ordered:
    """A sort key: a name, an Expr, or ``qr.desc(...)``/``qr.asc(...)``. NULLs sort last."""
    if isinstance(key, _Sort):
        return key.ordered.copy()
    return exp.Ordered(this=_into_node(key), desc=False, nulls_first=False)


class _Sort:
    """A sort key with its direction, made by [`asc`][queryref.asc] and [`desc`][queryref.desc]."""

    __slots__ = ("ordered",)

    def __init__(self, ordered: exp.Ordered) -> None:
        self.ordered = ordered

    def __repr__(self) -> str:
        return f"<Sort {self.ordered.sql()}>"
