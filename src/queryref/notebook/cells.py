"""Notebook SQL cells: later cells reference earlier ones by name; a chain runs as one query.

Each cell keeps its SQL, parameters and dialect; asking for a cell builds its query fresh,
inlining every referenced cell as a CTE, so redefining a cell updates everything downstream
while handles taken earlier keep their SQL.

How a name in ``FROM`` is resolved (an unqualified table name, outside the scope of a CTE of
the same name: a user's own CTE always wins inside its scope):

1. a cell of the notebook (matched by the engine's identifier rules: on DuckDB, ignoring case);
2. a variable of the notebook's ``namespace`` (matched exactly, as Python does) holding a
   ``QueryRef`` (inlined as a CTE) or a pandas/Arrow/Polars DataFrame (DuckDB reads it in place
   through a registered view; other engines get it uploaded to a table, under the size budget);
3. anything else is left to the engine as a table name.

A DataFrame variable is read through one engine-side name per variable: when the variable is
rebound to another frame, that name reads the new frame (and the engine lets go of the old
one, so re-running a cell that builds a big frame does not pile up memory). A handle taken
earlier keeps its SQL, which reads the variable's current frame.

Generated CTEs are named after their cell (or variable) unless that name is taken anywhere in
the final query (a CTE, table or alias name), in which case they get a fresh ``name_N`` and
the references become ``name_N AS name``, so column qualifiers keep working.
"""

from __future__ import annotations

import re
import secrets
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlglot
from sqlglot import exp

from queryref._options import _UNSET, resolve
from queryref._queryref import QueryRef
from queryref.errors import CellReferenceError, ParameterError, QueryRefError
from queryref.sql.ctes import free_tables, point
from queryref.sql.params import render
from queryref.sql.text import fold_names, ident

if TYPE_CHECKING:
    from queryref._connection import Connection

_CELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")  # \Z: "$" would let "x\n" through

Kind = Literal["cell", "query", "frame"]
GraphFormat = Literal["text", "mermaid", "dot"]


@dataclass(frozen=True)
class _Cell:
    name: str
    sql: str
    params: dict[str, Any]
    dialect: str | None
    cells_used: frozenset[str]  # keys of the cells it referenced when it was defined


@dataclass(frozen=True)
class _Source:
    """What a table name resolved to: a cell (by key), or a namespace variable (by name)."""

    kind: Kind
    name: str


class Notebook:
    """Named SQL cells over one connection.

    Parameters
    ----------
    con:
        The connection every cell runs on.
    namespace:
        Optional mapping of variables (an IPython ``user_ns``, ``globals()`` ...): a
        ``{{ name }}`` not passed as a keyword is looked up there, and so is a table name that
        is no cell (QueryRefs and pandas/Arrow/Polars DataFrames).

    >>> import queryref as qr
    >>> nb = qr.Notebook(qr.connect())
    >>> _ = nb.cell("nums", "SELECT range AS n FROM range(10)")
    >>> nb.cell("evens", "SELECT COUNT(*) AS c FROM nums WHERE n % 2 = 0").to_pandas()["c"].tolist()
    [5]
    >>> print(nb.graph())
    nums
    evens <- nums
    """

    def __init__(self, con: Connection, namespace: Mapping[str, Any] | None = None) -> None:
        self.con = con
        self.namespace = namespace
        self._cells: dict[str, _Cell] = {}
        self._token = secrets.token_hex(3)
        self._frames: dict[str, tuple[Any, str]] = {}  # variable -> (weakref or None, table)
        self._read_in_place = callable(getattr(con.backend, "register_arrow", None))
        self._uploaded: list[str] = []  # tables made for DataFrames, dropped by close()
        # Uploaded tables are session-scoped in effect: dropped by close(), or when the
        # notebook is garbage-collected or the interpreter exits. They are real tables, not
        # TEMPORARY ones, because pooled engines (SQLAlchemy) and backends that open a second
        # connection while a stream is open (PostgreSQL) would not see a temporary table.
        weakref.finalize(self, _drop_uploaded, con, self._uploaded, quiet=True)

    def close(self) -> None:
        """Drop the tables uploaded for DataFrame variables (engines that cannot read them in
        place). Cells stay defined; a DataFrame used again is uploaded again."""
        _drop_uploaded(self.con, self._uploaded)
        if not self._read_in_place:
            self._frames.clear()  # uploaded again when next used

    def __enter__(self) -> Notebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(self.cells) or "no cells"
        return f"<queryref.Notebook on {self.con.describe()}: {names}>"

    # -- cells ------------------------------------------------------------------------------
    def cell(self, name: str, sql: str, /, *, dialect: str | None = None,
             **params: Any) -> QueryRef:
        """Define (or redefine) a cell and return its QueryRef.

        ``sql`` is one read-only query, written in ``dialect`` (default: the connection's; it is
        transpiled to the engine's). ``{{ name }}`` parameters come from ``params`` or the
        namespace; ``{{ name | identifier }}`` fills in a quoted name. A parameter called
        ``dialect`` has to come from the namespace. Nothing runs.
        """
        if not isinstance(name, str) or not _CELL_NAME.match(name):
            msg = f"a cell name must be a plain identifier (letters, digits, _), not {name!r}"
            raise ParameterError(msg)
        if dialect is not None:
            try:
                sqlglot.Dialect.get_or_raise(dialect)
            except ValueError as err:
                raise ParameterError(str(err)) from None
        key = self._name_key(name)
        previous = self._cells.get(key)
        if previous is not None and previous.name != name:
            msg = (
                f"cell {name!r} would replace the cell {previous.name!r}: "
                f"{self.con.dialect} matches those names as the same table; use the same "
                f"spelling to redefine it, or remove it first"
            )
            raise CellReferenceError(msg)
        draft = _Cell(name, sql, dict(params), dialect, frozenset())
        self._cells[key] = draft
        try:
            used = frozenset(s.name for s, _ in self._direct(key) if s.kind == "cell")
            self._cells[key] = _Cell(name, sql, dict(params), dialect, used)
            return self._build(key)
        except BaseException:
            if previous is None:
                del self._cells[key]
            else:
                self._cells[key] = previous
            raise

    def cell_checked(self, name: str, sql: str, check: Callable[[QueryRef], object], /, *,
                     dialect: str | None = None) -> QueryRef:
        """:meth:`cell`, then ``check(q)`` (a preview, say): when the check raises, the cell's
        previous definition (or none) is put back, so a cell that fails is not defined."""
        key = self._name_key(name)
        previous = self._cells.get(key)
        q = self.cell(name, sql, dialect=dialect)
        try:
            check(q)
        except BaseException:
            if previous is None:
                self._cells.pop(key, None)
            else:
                self._cells[key] = previous
            raise
        return q

    def query(self, sql: str, /, *, dialect: str | None = None, **params: Any) -> QueryRef:
        """A QueryRef over ``sql``, which may reference the cells and namespace variables like
        a cell, without defining a cell (``x = %qref SELECT ...``).

        >>> import queryref as qr
        >>> nb = Notebook(qr.connect())
        >>> _ = nb.cell("a", "SELECT 1 AS x")
        >>> nb.query("SELECT x + 1 AS y FROM a").to_pandas()["y"].tolist(), nb.cells
        ([2], ['a'])
        """
        name = "_qr_query"
        try:
            return self.cell(name, sql, dialect=dialect, **params)
        finally:
            self._cells.pop(self._name_key(name), None)

    def __getitem__(self, name: str) -> QueryRef:
        """The cell's current QueryRef, built from the current definitions upstream."""
        return self._build(self._lookup(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(_CELL_NAME.match(name)) \
            and self._name_key(name) in self._cells

    def __iter__(self) -> Iterator[str]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self._cells)

    @property
    def cells(self) -> list[str]:
        """Cell names in definition order."""
        return [c.name for c in self._cells.values()]

    def remove(self, name: str) -> None:
        """Forget a cell; cells that reference it raise CellReferenceError until it is back."""
        del self._cells[self._lookup(name)]

    # -- the dependency graph -----------------------------------------------------------------
    def dependencies(self, name: str) -> list[str]:
        """What ``name`` references directly: cells and namespace variables, in SQL order."""
        return [self._display_name(s) for s, _ in self._direct(self._lookup(name))]

    def dependents(self, name: str) -> list[str]:
        """The cells that reference ``name`` directly (in definition order)."""
        key = self._lookup(name)
        return [self._cells[k].name for k, uses in self._edges().items() if key in uses]

    def downstream(self, name: str) -> list[str]:
        """Every cell that depends on ``name``, directly or not (in definition order)."""
        edges = self._edges()  # each cell parsed once, however long the chain
        seen: set[str] = set()
        todo = [self._lookup(name)]
        while todo:
            key = todo.pop()
            for other, uses in edges.items():
                if key in uses and other not in seen:
                    seen.add(other)
                    todo.append(other)
        return [cell.name for k, cell in self._cells.items() if k in seen]

    def _edges(self) -> dict[str, set[str]]:
        """For each cell, the cells it references directly (none when it cannot be resolved)."""
        out: dict[str, set[str]] = {}
        for key in self._cells:
            try:
                direct = self._direct(key, strict=False)
                out[key] = {s.name for s, _ in direct if s.kind == "cell"}
            except QueryRefError:
                out[key] = set()
        return out

    def graph(self, format: GraphFormat = "text") -> str:
        """The cells and what each references, as text, Mermaid or Graphviz dot.

        Text has one line per cell: ``cell <- reference, ...``; a namespace variable is
        marked with its type, and a cell that cannot be resolved shows why.
        """
        if format not in ("text", "mermaid", "dot"):
            raise ParameterError(f"graph format must be 'text', 'mermaid' or 'dot', not {format!r}")
        edges: list[tuple[str, str]] = []
        extern: dict[str, str] = {}
        lines: list[str] = []
        for key, cell in self._cells.items():
            try:
                direct = self._direct(key)
            except Exception as err:
                lines.append(f"{cell.name} !! {type(err).__name__}: {err}")
                continue
            refs = []
            for source, _ in direct:
                label = self._display_name(source)
                if source.kind != "cell":
                    extern[label] = type(self._namespace_value(source.name)).__name__
                    refs.append(f"{label} ({extern[label]})")
                else:
                    refs.append(label)
                edges.append((label, cell.name))
            lines.append(f"{cell.name} <- {', '.join(refs)}" if refs else cell.name)
        if format == "text":
            return "\n".join(lines)
        ids = {c: f"c_{c}" for c in self.cells} | {n: f"v_{n}" for n in extern}
        if format == "mermaid":
            out = ["flowchart LR"]
            out += [f'  {ids[n]}[("{n}: {t}")]' for n, t in extern.items()]
            out += [f'  {ids[c]}["{c}"]' for c in self.cells]
            out += [f"  {ids[a]} --> {ids[b]}" for a, b in edges]
            return "\n".join(out)
        out = ["digraph cells {", "  rankdir=LR;"]
        out += [f'  "{n}" [shape=cylinder, label="{n}: {t}"];' for n, t in extern.items()]
        out += [f'  "{c}";' for c in self.cells]
        out += [f'  "{a}" -> "{b}";' for a, b in edges]
        out.append("}")
        return "\n".join(out)

    # -- names ------------------------------------------------------------------------------
    def _key(self, identifier: exp.Identifier) -> str:
        """How the engine matches a table name: DuckDB ignores case; others fold unquoted."""
        if self.con.backend.case_insensitive:
            return str(identifier.this).lower()
        dialect = sqlglot.Dialect.get_or_raise(self.con.dialect)
        return str(dialect.normalize_identifier(identifier.copy()).this)

    def _name_key(self, name: str) -> str:
        return self._key(exp.Identifier(this=name, quoted=False))

    def _lookup(self, name: str) -> str:
        key = self._name_key(name) if isinstance(name, str) else None
        if key is None or key not in self._cells:
            raise CellReferenceError(f"no cell named {name!r}; cells: {self.cells}")
        return key

    def _display_name(self, source: _Source) -> str:
        return self._cells[source.name].name if source.kind == "cell" else source.name

    def _namespace_value(self, name: str) -> Any:
        return self.namespace[name] if self.namespace is not None else None

    # -- resolution ---------------------------------------------------------------------------
    def _render(self, key: str, memo: dict[str, exp.Query] | None = None) -> exp.Query:
        """The cell's SQL parsed, parameters filled in; a fresh tree (the caller may edit it).

        ``memo`` keeps rendered trees across the builds of one batch (see ``_current``).
        """
        if memo is not None:
            if key not in memo:
                memo[key] = self._render(key)
            return memo[key].copy()
        cell = self._cells[key]
        return render(cell.sql, cell.params, self.con, dialect=cell.dialect,
                      namespace=self.namespace)

    def _direct(self, key: str, body: exp.Query | None = None, *, strict: bool = True
                ) -> list[tuple[_Source, list[exp.Table]]]:
        """What cell ``key`` references directly, each with the table nodes that name it.

        ``strict=False`` (for the graph) passes over references to removed cells and to the
        cell itself instead of raising.
        """
        cell = self._cells[key]
        tree = self._render(key) if body is None else body
        found: dict[_Source, list[exp.Table]] = {}
        for table in free_tables(tree, self._key):
            source = self._resolve(table)
            if source is None:
                k = self._key(table.this)
                if strict and k in cell.cells_used and k not in self._cells:
                    msg = (
                        f"cell {cell.name!r} references the cell {table.name!r}, which was "
                        f"removed; define {table.name!r} again or redefine {cell.name!r}"
                    )
                    raise CellReferenceError(msg)
                continue
            if source.kind == "cell" and source.name == key:
                if not strict:
                    continue
                raise CellReferenceError(f"cell {cell.name!r} references itself")
            found.setdefault(source, []).append(table)
        return list(found.items())

    def _resolve(self, table: exp.Table) -> _Source | None:
        key = self._key(table.this)
        if key in self._cells:
            return _Source("cell", key)
        if self.namespace is None or table.name not in self.namespace:
            return None
        value = self.namespace[table.name]
        if isinstance(value, QueryRef):
            if value.connection is not self.con:
                msg = (
                    f"{table.name!r} is a QueryRef on another connection "
                    f"({value.connection.describe()}); this notebook runs on "
                    f"{self.con.describe()}: bring it over with con.create_table(...), or "
                    "qualify the name (schema.table) to mean a table"
                )
                raise CellReferenceError(msg)
            return _Source("query", table.name)
        if _is_frame(value):
            return _Source("frame", table.name)
        return None

    def _current(self, names: list[str]) -> dict[str, QueryRef | QueryRefError]:
        """The current QueryRef of each cell (or why it has none), parsing each cell once."""
        memo: dict[str, exp.Query] = {}
        out: dict[str, QueryRef | QueryRefError] = {}
        for name in names:
            try:
                out[name] = self._build(self._lookup(name), memo)
            except QueryRefError as err:
                out[name] = err
        return out

    def _build(self, root: str, memo: dict[str, exp.Query] | None = None) -> QueryRef:
        """The cell's query: every referenced cell and QueryRef inlined as a CTE (one query)."""
        bodies: dict[_Source, exp.Query] = {}
        refs: dict[_Source, list[tuple[exp.Table, _Source]]] = {}
        order: list[_Source] = []  # CTEs, each after what it references
        frames: dict[str, str] = {}  # variable -> table the engine reads

        def visit(key: str, stack: tuple[str, ...]) -> None:
            me = _Source("cell", key)
            if key in stack:
                cycle = " -> ".join(self._cells[k].name for k in (*stack[stack.index(key):], key))
                raise CellReferenceError(f"cells reference each other in a cycle: {cycle}")
            body = self._render(key, memo)
            bodies[me] = body
            refs[me] = []
            for source, tables in self._direct(key, body):
                refs[me] += [(t, source) for t in tables]
                if source.kind == "cell" and source.name in (*stack, key):
                    visit(source.name, (*stack, key))  # raises, naming the cycle
                if source in bodies or (source.kind == "frame" and source.name in frames):
                    continue
                if source.kind == "cell":
                    visit(source.name, (*stack, key))
                elif source.kind == "query":
                    bodies[source] = self._namespace_value(source.name).tree.copy()
                    refs[source] = []
                    order.append(source)
                else:
                    frames[source.name] = self._frame_table(source.name)
            if key != root:
                order.append(me)

        visit(root, ())
        names = self._cte_names(order, bodies, refs)
        for tables in refs.values():
            for table, source in tables:
                target = frames[source.name] if source.kind == "frame" else names[source]
                point(table, target)
        tree = bodies[_Source("cell", root)]
        if order:
            own = tree.args.get("with_")
            items = [exp.CTE(this=bodies[s], alias=exp.TableAlias(this=ident(names[s])))
                     for s in order]
            if own is not None:
                items += list(own.expressions)
            recursive = bool(own is not None and own.args.get("recursive"))
            tree.set("with_", exp.With(expressions=items, recursive=recursive))
        return QueryRef(fold_names(tree, self.con.dialect), self.con)

    def _cte_names(self, order: list[_Source], bodies: dict[_Source, exp.Query],
                   refs: dict[_Source, list[tuple[exp.Table, _Source]]]) -> dict[_Source, str]:
        """A CTE name for each source: its own, or ``name_N`` if that is taken in the query."""
        pointing = {id(t) for tables in refs.values() for t, _ in tables}
        taken: set[str] = set()
        for body in bodies.values():
            for node in body.walk():
                if isinstance(node, exp.Table) and id(node) not in pointing \
                        and isinstance(node.this, exp.Identifier) \
                        and not node.args.get("db") and not node.args.get("catalog"):
                    taken.add(self._key(node.this))
                if isinstance(node, exp.TableAlias) and isinstance(node.this, exp.Identifier):
                    taken.add(self._key(node.this))
        names: dict[_Source, str] = {}
        for source in order:  # first, every source whose own name is free keeps it
            base = self._display_name(source)
            if self._name_key(base) not in taken:
                names[source] = base
        taken |= {self._name_key(n) for n in names.values()}
        for source in order:
            if source not in names:
                base, n = self._display_name(source), 1
                while self._name_key(f"{base}_{n}") in taken:
                    n += 1
                names[source] = f"{base}_{n}"
                taken.add(self._name_key(names[source]))
        return names

    def _frame_table(self, variable: str) -> str:
        """The table the engine reads a namespace DataFrame from (registered or uploaded)."""
        value = self._namespace_value(variable)
        known = self._frames.get(variable)
        if known is not None and known[0] is not None and known[0]() is value:
            return str(known[1])
        # named for the variable, so %qref_sql reads "FROM _qr_frame_raw_0_1a2b3c" (the number
        # and the notebook's token keep apart names that differ only in case, or notebooks;
        # the prefix marks a session's table: see offload.isolate)
        table = known[1] if known is not None else \
            f"_qr_frame_{variable[:40]}_{len(self._frames)}_{self._token}"
        if self._read_in_place:
            self.con.backend.register_arrow(table, value)  # type: ignore[attr-defined]
        else:
            self.con.create_table(table, value, replace=True,
                                  max_bytes=resolve("max_bytes", _UNSET))
            if table not in self._uploaded:
                self._uploaded.append(table)
        try:
            ref: Any = weakref.ref(value)
        except TypeError:  # pragma: no cover - every supported frame type takes weakrefs
            ref = None
        self._frames[variable] = (ref, table)
        return table


def _drop_uploaded(con: Connection, names: list[str], quiet: bool = False) -> None:
    """Drop the tables in ``names`` (emptying it); ``quiet``: ignore a closed connection."""
    while names:
        name = names.pop()
        drop = exp.Drop(kind="TABLE", tables=[exp.Table(this=ident(name))], exists=True)
        try:
            con.execute(drop.sql(dialect=con.dialect))
        except Exception:
            if not quiet:
                raise


def _is_frame(value: Any) -> bool:
    """A pandas, Polars or Arrow table (checked without importing a library not yet loaded)."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        return True
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(value, pl.DataFrame):
        return True
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(value, pa.Table | pa.RecordBatch)
