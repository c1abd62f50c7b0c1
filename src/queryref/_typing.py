"""Type aliases shared across modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from sqlglot import exp

    from queryref._expr import Expr

JoinHow: TypeAlias = Literal["inner", "left", "right", "outer", "semi", "anti", "cross"]
SizeLike: TypeAlias = "int | float | str | None"
IntoExpr: TypeAlias = "Expr | str | exp.Expr"
