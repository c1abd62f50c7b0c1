"""queryref: keep data in the warehouse until you explicitly ask for it.

A [`QueryRef`][queryref.QueryRef] is SQL (a sqlglot tree) plus its connection; every step
rewrites the SQL, and rows reach Python only at guarded sinks. Start with
[`connect`][queryref.connect]; build expressions with [`col`][queryref.col] and
[`lit`][queryref.lit]; defaults live in [`options`][queryref.Options].

>>> import queryref as qr
>>> con = qr.connect()
>>> t = con.sql("SELECT range AS id, range % 7 AS g FROM range(1000)")
>>> t.filter(qr.col("g") == 0).count()
143
"""

from __future__ import annotations

from queryref import errors
from queryref._connection import Connection, connect
from queryref._expr import (
    Expr,
    asc,
    col,
    concat_str,
    count,
    date_diff,
    dense_rank,
    desc,
    lag,
    lead,
    lit,
    ntile,
    percent_rank,
    rank,
    row_number,
    when,
)
from queryref._options import Options, options
from queryref._queryref import QueryRef
from queryref._verbs import GroupBy
from queryref.notebook.cells import Notebook
from queryref.sinks.estimate import Estimate
from queryref.sinks.run import CSVWritten, ParquetWritten

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext queryref``: the ``%%qref`` SQL cell magic (see the notebook guide)."""
    from queryref.notebook.magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext queryref``: remove the magics."""
    from queryref.notebook.magic import unload_ipython_extension as unload

    unload(ipython)


__all__ = [
    "CSVWritten",
    "Connection",
    "Estimate",
    "Expr",
    "GroupBy",
    "Notebook",
    "Options",
    "ParquetWritten",
    "QueryRef",
    "__version__",
    "asc",
    "col",
    "concat_str",
    "connect",
    "count",
    "date_diff",
    "dense_rank",
    "desc",
    "errors",
    "lag",
    "lead",
    "lit",
    "load_ipython_extension",
    "ntile",
    "options",
    "percent_rank",
    "rank",
    "row_number",
    "unload_ipython_extension",
    "when",
]
