"""Notebook SQL cells: later cells reference earlier ones by name; a chain runs as one query.

Each cell keeps its SQL and parameters; asking for a cell builds its query fresh, inlining
every referenced cell as a CTE named after it, so redefining a cell updates everything
downstream while handles taken earlier keep their SQL.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._params import render
from queryref._queryref import QueryRef
from queryref._sql import ident
from queryref.errors import CellReferenceError, ParameterError

if TYPE_CHECKING:
    from queryref._connection import Connection

_CELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Notebook:
    """Named SQL cells over one connection.

    >>> import queryref as qr
    >>> nb = qr.Notebook(qr.connect())
    >>> _ = nb.cell("nums", "SELECT range AS n FROM range(10)")
    >>> nb.cell("evens", "SELECT COUNT(*) AS c FROM nums WHERE n % 2 = 0").to_pandas()["c"].tolist()
    [5]
    """

    def __init__(self, con: Connection) -> None:
        self.con = con
        self._cells: dict[str, tuple[str, dict[str, Any]]] = {}

    def cell(self, name: str, sql: str, **params: Any) -> QueryRef:
        """Define (or redefine) a cell and return its QueryRef."""
        if not isinstance(name, str) or not _CELL_NAME.match(name):
            msg = f"a cell name must be a plain identifier (letters, digits, _), not {name!r}"
            raise ParameterError(msg)
        previous = self._cells.get(name)
        self._cells[name] = (sql, dict(params))
        try:
            return self[name]
        except BaseException:
            if previous is None:
                del self._cells[name]
            else:
                self._cells[name] = previous
            raise

    def __getitem__(self, name: str) -> QueryRef:
        if name not in self._cells:
            raise CellReferenceError(f"no cell named {name!r}; cells: {list(self._cells)}")
        ctes, body = self._build(name, ())
        tree = body.copy()
        if ctes:
            own = tree.args.get("with_")
            items = [exp.CTE(this=q.copy(), alias=exp.TableAlias(this=ident(n)))
                     for n, q in ctes.items()]
            if own is not None:
                items += list(own.expressions)
            tree.set("with_", exp.With(expressions=items, recursive=bool(
                own is not None and own.args.get("recursive"))))
        return QueryRef(tree, self.con)

    def __contains__(self, name: object) -> bool:
        return name in self._cells

    def __iter__(self) -> Any:
        return iter(list(self._cells))

    @property
    def cells(self) -> list[str]:
        """Cell names in definition order."""
        return list(self._cells)

    def remove(self, name: str) -> None:
        """Forget a cell (cells that reference it fail until it is defined again)."""
        if name not in self._cells:
            raise CellReferenceError(f"no cell named {name!r}")
        del self._cells[name]

    def dependencies(self, name: str) -> list[str]:
        """The cells ``name`` references directly."""
        sql, params = self._cells[name]
        return _references(render(sql, params, self.con), set(self._cells))

    def _build(self, name: str, stack: tuple[str, ...]) -> tuple[dict[str, exp.Query], exp.Query]:
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name):], name))
            raise CellReferenceError(f"cells reference each other in a cycle: {cycle}")
        sql, params = self._cells[name]
        body = render(sql, params, self.con)
        ctes: dict[str, exp.Query] = {}
        for ref in _references(body, set(self._cells)):
            if ref == name:
                raise CellReferenceError(f"cell {name!r} references itself")
            dep_ctes, dep_body = self._build(ref, (*stack, name))
            for n, q in dep_ctes.items():
                ctes.setdefault(n, q)
            ctes[ref] = dep_body
        own = {c.alias for c in body.find_all(exp.CTE)}
        clash = sorted(own & set(ctes))
        if clash:
            msg = f"cell {name!r} defines CTE(s) {clash} that clash with cells it depends on"
            raise CellReferenceError(msg)
        return ctes, body


def _references(tree: exp.Expr, cells: set[str]) -> list[str]:
    """Unqualified table names in ``tree`` that name a cell and no CTE of the query."""
    shadowed = {c.alias for c in tree.find_all(exp.CTE)}
    found: list[str] = []
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog"):
            continue
        name = table.name
        if name in cells and name not in shadowed and name not in found:
            found.append(name)
    return found
