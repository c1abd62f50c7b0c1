"""``QueryRef`` speaking other libraries' protocols: Arrow's C stream interface (so
``pa.table(q)``, ``pl.DataFrame(q)`` and ``duckdb.sql("FROM q")`` read it, streaming, under
the budget). Mixed into ``QueryRef``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


class ArrowInterop:
    """Mixed into ``QueryRef``: the Arrow PyCapsule stream protocol."""

    __slots__ = ()
