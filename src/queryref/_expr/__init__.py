"""Column expressions: ``qr.col("a") + 1 > qr.lit(3)`` builds a sqlglot tree, nothing runs.

``core`` assembles ``Expr`` from the method groups beside it; ``functions`` holds the free
functions (ranks, offsets); ``base`` what they all build on.
"""

from queryref._expr.base import _data_type, _into_node, _node, _Sort, ordering
from queryref._expr.core import Expr, asc, col, count, desc, lit, when
from queryref._expr.dates import DateTimeMethods, date_diff
from queryref._expr.functions import (
    dense_rank,
    lag,
    lead,
    ntile,
    percent_rank,
    rank,
    row_number,
)
from queryref._expr.strings import StringMethods, concat_str

__all__ = [
    "DateTimeMethods", "Expr", "StringMethods", "_Sort", "_data_type", "_into_node", "_node",
    "asc", "col", "concat_str", "count", "date_diff", "dense_rank", "desc", "lag", "lead", "lit",
    "ntile", "ordering", "percent_rank", "rank", "row_number", "when",
]
