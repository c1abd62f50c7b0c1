"""Window functions: ``over`` on every expression, ranking and offset functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from queryref._expr.base import ExprBase, _as_list, _into_node, ordering

if TYPE_CHECKING:
    from queryref._expr.core import Expr

class WindowMethods(ExprBase):
    """Mixed into ``Expr``: ``over`` and the cumulative window functions."""

    __slots__ = ()

    def over(
        self,
        partition_by: str | Expr | Sequence[str | Expr] | None = None,
        order_by: str | Expr | Sequence[str | Expr] | None = None,
    ) -> Expr:
        """Turn an aggregate or ranking function into a window function.

        >>> import queryref as qr
        >>> qr.row_number().over(partition_by="g", order_by=qr.desc("v")).sql("postgres")
        'ROW_NUMBER() OVER (PARTITION BY g ORDER BY v DESC NULLS LAST)'
        """
        parts = [_into_node(p) for p in _as_list(partition_by)]
        orders = [ordering(o) for o in _as_list(order_by)]
        window = exp.Window(
            this=self._copy(),
            partition_by=parts or None,
            order=exp.Order(expressions=orders) if orders else None,
        )
        return self._new(window)
