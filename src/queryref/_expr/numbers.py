"""Number and NULL functions on every expression: ``abs``, ``round``, ``floor`` ..."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from queryref._expr.base import ExprBase

if TYPE_CHECKING:
    from queryref._expr.core import Expr


class NumberMethods(ExprBase):
    """Mixed into ``Expr``: numeric functions and NULL handling."""

    __slots__ = ()

    def abs(self) -> Expr:
        """Absolute value.

        >>> import queryref as qr
        >>> qr.col("x").abs().sql()
        'ABS(x)'
        """
        return self._new(exp.Abs(this=self._copy()))
    def round(self, digits: int = 0) -> Expr:
        """Round to ``digits`` decimals.

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 2.345 AS x").select(qr.col("x").round(1)).to_pandas()
           ROUND(x, 1)
        0          2.3
        """
        return self._new(exp.Round(this=self._copy(), decimals=exp.Literal.number(digits)))
