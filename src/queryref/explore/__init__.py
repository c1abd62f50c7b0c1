"""Looking at a result without loading it: profiles, value counts and histograms computed in
the warehouse; only the figures cross (a row per statistic, per value shown or per bin).

These build on :class:`~queryref.QueryRef`'s own verbs (``agg``, ``group_by``, ``filter``,
``order_by``, ``limit``) with expressions written as sqlglot nodes, so each engine gets its
own spelling, and they run under a small budget of their own.
"""

from queryref.explore.charts import Plot
from queryref.explore.counts import histogram, value_counts
from queryref.explore.profile import describe

__all__ = ["Grid", "Plot", "describe", "histogram", "value_counts"]


def __getattr__(name: str) -> object:
    if name == "Grid":  # (anywidget, an optional dependency, loads only for the grid)
        from queryref.explore.grid import Grid

        return Grid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
