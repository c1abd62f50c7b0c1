"""Functions whose spelling differs per engine beyond what sqlglot transpiles.

Most of the expression vocabulary is sqlglot's own nodes (``exp.Upper``, ``exp.DateTrunc``
...), which sqlglot already writes in each dialect. Where an engine needs a different
formula for the same result (a weekday counted from Monday, a 0-based slice, a sample
variance on an engine that names it otherwise), the function is a :class:`Portable` node:
it stays one node in the tree, so rewrites, column checks and qualification see its
arguments as they see any function's, and it is lowered to plain sqlglot nodes for the
dialect only when SQL is written. Lowering is registered with every sqlglot generator, so
``tree.sql(dialect=...)``, ``Expr.sql`` and ``sql.text.render`` all write the same.

>>> from sqlglot import exp
>>> class Twice(Portable):
...     arg_types = {"this": True}
...     def lower(self, dialect: str) -> exp.Expr:
...         name = "DOUBLE_IT" if dialect == "postgres" else "TWICE"
...         return exp.Anonymous(this=name, expressions=[self.this.copy()])
>>> tree = exp.select(Twice(this=exp.column("x"))).from_("t")
>>> tree.sql("duckdb"), tree.sql("postgres"), tree.sql("redshift")
('SELECT TWICE(x) FROM t', 'SELECT DOUBLE_IT(x) FROM t', 'SELECT DOUBLE_IT(x) FROM t')
"""

from __future__ import annotations

import functools
from typing import Any

from sqlglot import exp
from sqlglot import generator as _generator
from sqlglot.dialects.dialect import Dialect

__all__ = ["FAMILIES", "Portable", "family"]

#: the engines a lowering names; a dialect derived from one (Redshift from PostgreSQL,
#: Databricks from Spark) lowers as the first of these in its class's ancestry
FAMILIES = ("duckdb", "postgres", "mysql", "snowflake", "databricks", "spark", "sqlite",
            "bigquery", "tsql", "oracle", "trino", "presto", "clickhouse", "hive")


@functools.cache
def _family_of(dialect_class: type[Dialect]) -> str:
    names = {cls: name for name, cls in Dialect.classes.items()}
    for cls in dialect_class.__mro__:
        name = names.get(cls)
        if name in FAMILIES:
            return name
    return names.get(dialect_class, "")


def family(dialect: str | Dialect | None) -> str:
    """The engine family a dialect lowers as: its own name, or that of the engine it derives
    from (``""`` for sqlglot's generic dialect).

    >>> family("redshift"), family("databricks"), family("duckdb"), family(None)
    ('postgres', 'databricks', 'duckdb', '')
    """
    return _family_of(type(Dialect.get_or_raise(dialect)))


def _generate(gen: _generator.Generator, node: Portable) -> str:
    return gen.sql(node.lower(_family_of(type(gen.dialect))))


def _register(node_class: type[exp.Expr]) -> None:
    """Make every sqlglot generator, loaded now or later, lower ``node_class``."""
    stack: list[type[_generator.Generator]] = [_generator.Generator]
    while stack:
        gen = stack.pop()
        gen.TRANSFORMS[node_class] = _generate  # later generators copy their parent's table
        stack.extend(gen.__subclasses__())
    _generator._DISPATCH_CACHE.clear()  # dispatch tables are built once per generator class


class Portable(exp.Expression, exp.Func):
    """A function node lowered per engine family when SQL is written: subclasses declare
    ``arg_types`` and implement :meth:`lower`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    def lower(self, dialect: str) -> exp.Expr:
        """This function as plain sqlglot nodes for ``dialect`` (a name in :data:`FAMILIES`,
        or ``""`` for sqlglot's generic SQL); build from copies of the arguments."""
        raise NotImplementedError(f"{type(self).__name__}.lower")
