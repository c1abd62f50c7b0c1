"""``Expr.str``: text functions, spelled for each engine by sqlglot or ``sql.portable``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from queryref._expr.base import ExprBase

if TYPE_CHECKING:
    from queryref._expr.core import Expr


class StringMethods:
    """Text functions of an expression: ``qr.col("name").str.upper()``."""

    __slots__ = ("_expr",)

    def __init__(self, expr: ExprBase) -> None:
        self._expr = expr

    def __repr__(self) -> str:
        return f"<StringMethods of {self._expr!r}>"

    def _new(self, node: object) -> Expr:
        return self._expr._new(node)  # type: ignore[arg-type]
