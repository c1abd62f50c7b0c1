"""The IPython extension: SQL cells that name their result and reference earlier ones.

::

    %load_ext queryref
    %qref_connect duckdb:///shop.duckdb       # or no argument: embedded DuckDB in memory;
                                              # or the name of a variable holding a URL/connection
    %%qref open_orders --preview 5
    SELECT * FROM orders WHERE status = {{ status }}

    %%qref by_region
    SELECT region, SUM(amount) AS total FROM open_orders GROUP BY region

    %%qref                                    # unnamed: the cell is "_", bound to _
    SELECT * FROM by_region ORDER BY total DESC

    %%qref top <<                             # JupySQL's "name <<" works the same
    %%qref top -f top.sql                     # the SQL from a file
    x = %qref SELECT * FROM by_region         # a QueryRef over the cells; no cell, no preview

    %qref_tables                              # the tables of the current schema
    %qref_columns orders                      # a table's columns and types
    %qref_profile by_region                   # describe(), computed in the warehouse
    %qref_plot hist open_orders amount --bins 20    # hist|bar|line|scatter|box: a chart
    %qref_sql by_region                       # the one query the chain compiles to
    %qref_cells                               # the cells and what each references
    %qref_rm open_orders                      # forget a cell
    by_region.to_pandas()                     # an explicit, guarded sink in a Python cell

``%%qref name`` defines the notebook cell ``name``, binds its ``QueryRef`` to ``name`` in the
user namespace and shows a preview fetched with ``LIMIT`` (nothing else runs); a cell whose
preview fails is neither defined nor bound (``--no-preview`` defines it without running it).
Table names resolve to earlier cells, then to QueryRef and DataFrame variables; ``{{ x }}``
parameters come from the namespace. Redefining a cell rebinds the variables of the cells
downstream of it that still hold the handle the magic gave them.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from queryref._connection import Connection, connect
from queryref._display import PREVIEW_ROWS, Preview, SQLText, error_text, redact
from queryref._options import _UNSET, options
from queryref._queryref import QueryRef
from queryref._sizes import parse_bytes
from queryref.errors import ParameterError, QueryRefError
from queryref.notebook.cells import _CELL_NAME, Notebook

T = TypeVar("T")

_LINE_MAGICS = ("qref", "qref_connect", "qref_sql", "qref_cells", "qref_rm", "qref_profile",
                "qref_plot", "qref_tables", "qref_columns")
_CELL_MAGICS = ("qref",)
#: prefixes of the tables queryref makes for a session (DataFrames read or uploaded for cells,
#: cache()): not the user's, so %qref_tables leaves them out
_OWN_TABLES = ("_qr_frame_", "_qr_cache_")


def _concisely(fn: Callable[[], T]) -> T:
    """``fn()``, its queryref errors shown as ``Type: message`` (see :func:`_concise`)."""
    try:
        return fn()
    except QueryRefError as err:
        raise _concise(err) from None


def _concise(err: BaseException) -> BaseException:
    """Have IPython show ``Type: message`` for ``err`` instead of a traceback through the magic."""
    text = error_text(err)
    err._render_traceback_ = lambda: text.splitlines()  # type: ignore[attr-defined]
    return err


@magics_class
class QueryRefMagics(Magics):
    """``%%qref``, ``%qref_connect``, ``%qref_sql``, ``%qref_cells``, ``%qref_rm``: one notebook
    per shell."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._notebook: Notebook | None = None
        self._bound: dict[str, QueryRef] = {}

    @property
    def notebook(self) -> Notebook:
        """The notebook of this shell's cells (on embedded DuckDB until ``%qref_connect``)."""
        if self._notebook is None:
            self._use(connect())
        assert self._notebook is not None
        return self._notebook

    @property
    def _ns(self) -> dict[str, Any]:
        """The user namespace of the shell the magics were registered on."""
        assert self.shell is not None, "the magics are registered on a shell"
        return self.shell.user_ns

    def _use(self, con: Connection) -> None:
        if self._notebook is not None:
            try:
                self._notebook.close()  # drop the tables uploaded for DataFrames
            except QueryRefError as err:
                print(f"queryref: could not clean up the previous connection: {error_text(err)}")
        self._notebook = Notebook(con, namespace=self._ns)
        self._bound = {}

    @line_magic
    @magic_arguments()
    @argument("target", nargs="?", default=None,
              help="a URL such as duckdb:///file.duckdb, or the name of a variable holding a "
                   "URL or a connection; nothing: a new embedded DuckDB in memory")
    def qref_connect(self, line: str) -> None:
        """Connect the SQL cells to an engine; cells defined before are forgotten."""
        args = parse_argstring(self.qref_connect, line)
        target: Any = args.target
        if target is not None and target.isidentifier() and target in self._ns:
            target = self._ns[target]
        try:
            con = connect(target)
        except Exception as err:
            raise UsageError(f"could not connect: {error_text(err)}") from None
        dropped = len(self._notebook) if self._notebook is not None else 0
        self._use(con)
        note = f" ({dropped} cells of the previous connection are forgotten)" if dropped else ""
        print(f"queryref: connected to {redact(con.describe())}{note}")

    @line_cell_magic
    @magic_arguments()
    @argument("name", nargs="?", default=None,
              help="the cell's name: later cells reference it, and the QueryRef is bound to "
                   "this variable; none: the cell is '_' (bound to _)")
    @argument("save", nargs="?", default=None, metavar="<<",
              help="JupySQL's 'name <<': accepted, the same as 'name'")
    @argument("-f", "--file", dest="file", default=None, metavar="FILE",
              help="read the SQL from FILE instead of the cell")
    @argument("--max-bytes", dest="max_bytes", default=None, metavar="SIZE",
              help="budget of the preview (and of DataFrame uploads), e.g. 200MB; 'none' for "
                   "no budget. Default: qr.options.max_bytes")
    @argument("--preview", dest="preview", type=int, default=None, metavar="N",
              help=f"rows to preview (default {PREVIEW_ROWS}), fetched with LIMIT")
    @argument("--no-preview", dest="no_preview", action="store_true",
              help="run nothing: only define the cell and bind the variable")
    @argument("--dialect", dest="dialect", default=None,
              help="the dialect the SQL is written in (default: the engine's)")
    def qref(self, line: str, cell: str | None = None) -> QueryRef | None:
        """``%%qref [name]``: define a SQL cell, bind its QueryRef to NAME (``_`` when unnamed)
        and show a LIMIT-bounded preview; a cell whose preview fails is not defined nor bound.
        ``x = %qref SELECT ...`` (or ``%qref -f query.sql``): a QueryRef over one query that
        may reference the cells, with nothing run and no cell defined."""
        if cell is None:
            return self._line_query(line)
        args = parse_argstring(self.qref, line)
        name: str = args.name or "_"
        if args.save not in (None, "<<") or name == "<<":
            raise UsageError(f"%%qref takes a name, optionally followed by <<, not {line!r}")
        if not _CELL_NAME.match(name) or keyword.iskeyword(name):
            raise UsageError(f"%%qref needs a plain Python name for the cell, not {name!r}")
        if args.no_preview and args.preview is not None:
            raise UsageError("give either --preview N or --no-preview, not both")
        rows = 0 if args.no_preview else PREVIEW_ROWS if args.preview is None else args.preview
        if rows < 0:
            raise UsageError(f"--preview takes a number of rows >= 0, not {rows}")
        sql = self._sql_of(cell, args.file)
        if not sql.strip():
            raise UsageError(f"%%qref {args.name or ''} needs a SQL query in the cell".replace(
                "  ", " "))
        overrides = {}
        if args.max_bytes is not None:
            try:
                overrides["max_bytes"] = None if args.max_bytes.lower() == "none" \
                    else parse_bytes(args.max_bytes)
            except ParameterError as err:
                raise UsageError(str(err)) from None
        nb = self.notebook
        shown: list[Preview] = []

        def preview(q: QueryRef) -> None:  # (fails: the cell is put back as it was)
            if rows:
                p = Preview.fetch(q, rows, max_bytes=_UNSET, title=name)
                if p.error is not None:
                    raise p.error
                shown.append(p)

        with options.context(**overrides):
            try:
                q = nb.cell_checked(name, sql, preview, dialect=args.dialect)
            except QueryRefError as err:
                raise _concise(err) from None
            self._ns[name] = self._bound[name] = q
            rebound = self._rebind_downstream(name)
            if rebound:
                verb = "uses" if len(rebound) == 1 else "use"
                listed = ", ".join(rebound[:8]) + (
                    f" and {len(rebound) - 8} more" if len(rebound) > 8 else "")
                print(f"queryref: {listed} now {verb} the new {name}")
            for p in shown:
                display(p)
        return None

    def _sql_of(self, cell: str, file: str | None) -> str:
        if file is None:
            return cell
        if any(ln.strip() and not ln.strip().startswith("--") for ln in cell.splitlines()):
            raise UsageError("give the SQL in the cell or with -f FILE, not both (the cell "
                             "may hold -- comments)")
        try:
            with open(file, encoding="utf-8") as f:
                return f.read()
        except OSError as err:
            raise UsageError(f"could not read {file}: {err.strerror or err}") from None

    def _line_query(self, line: str) -> QueryRef:
        text = line.strip()
        if text.startswith(("-f ", "--file ", "--file=")):
            text = self._sql_of("", text.split(None, 1)[1].strip() if " " in text
                                else text.split("=", 1)[1])
        if not text:
            raise UsageError("%qref needs a query: x = %qref SELECT ... (or %qref -f FILE)")
        try:
            return self.notebook.query(text)
        except QueryRefError as err:
            raise _concise(err) from None

    def _resolve(self, name: str) -> QueryRef:
        """A cell, or a variable holding a QueryRef."""
        nb = self.notebook
        if name in nb:
            try:
                return nb[name]
            except QueryRefError as err:
                raise _concise(err) from None
        value = self._ns.get(name)
        if not isinstance(value, QueryRef):
            raise UsageError(f"{name!r} is neither a cell ({nb.cells}) nor a QueryRef")
        return value

    @line_magic
    @magic_arguments()
    @argument("schema", nargs="?", default=None, help="a schema (default: the current one)")
    def qref_tables(self, line: str) -> Any:
        """The tables and views of a schema (a catalog query: nothing is scanned), without the
        ones queryref made for this session (the DataFrames cells read, cache() tables)."""
        args = parse_argstring(self.qref_tables, line)
        listed = _concisely(lambda: self.notebook.con.tables(args.schema))
        own = listed["name"].str.lower().str.startswith(_OWN_TABLES)
        return listed[~own].reset_index(drop=True)

    @line_magic
    @magic_arguments()
    @argument("table", help="a table, or schema.table")
    def qref_columns(self, line: str) -> Any:
        """The columns of a table, their engine types and whether they take NULLs."""
        args = parse_argstring(self.qref_columns, line)
        return _concisely(lambda: self.notebook.con.columns(args.table))

    @line_magic
    @magic_arguments()
    @argument("name", help="a cell, or a variable holding a QueryRef")
    def qref_profile(self, line: str) -> Any:
        """Statistics of every column (``describe()``), computed in the warehouse."""
        args = parse_argstring(self.qref_profile, line)
        return _concisely(lambda: self._resolve(args.name).describe())

    @line_magic
    @magic_arguments()
    @argument("kind", choices=["hist", "bar", "line", "scatter", "box"], help="the chart")
    @argument("name", help="a cell, or a variable holding a QueryRef")
    @argument("columns", nargs="+", help="hist/box: COLUMN; bar: X [Y]; line/scatter: X Y")
    @argument("--bins", type=int, default=30, help="hist: the number of bins")
    @argument("--agg", default=None, help="bar/line: count, sum, mean, min or max")
    @argument("--by", default=None, help="line/box: one line or box per value of this column")
    def qref_plot(self, line: str) -> Any:
        """A chart whose data the warehouse computes (``q.plot``): only its rows cross."""
        args = parse_argstring(self.qref_plot, line)
        plot, cols = self._resolve(args.name).plot, list(args.columns)
        wanted = {"hist": (1, 1), "box": (1, 1), "bar": (1, 2), "line": (2, 2),
                  "scatter": (2, 2)}[args.kind]
        if not wanted[0] <= len(cols) <= wanted[1]:
            raise UsageError(f"%qref_plot {args.kind} takes {wanted[0]}"
                             f"{'' if wanted[0] == wanted[1] else '-' + str(wanted[1])} "
                             f"column(s), not {len(cols)}")
        extra: dict[str, Any] = {}
        if args.agg is not None:
            extra["agg"] = args.agg
        try:
            if args.kind == "hist":
                return plot.hist(cols[0], bins=args.bins)
            if args.kind == "box":
                return plot.box(cols[0], by=args.by)
            if args.kind == "bar":
                return plot.bar(cols[0], cols[1] if len(cols) > 1 else None, **extra)
            if args.kind == "line":
                return plot.line(cols[0], cols[1], by=args.by, **extra)
            return plot.scatter(cols[0], cols[1])
        except QueryRefError as err:
            raise _concise(err) from None

    def _rebind_downstream(self, name: str) -> list[str]:
        """Rebind the variables of cells downstream of ``name`` that still hold our handle."""
        nb, ns = self.notebook, self._ns
        held = [c for c in nb.downstream(name) if c in self._bound and ns.get(c) is self._bound[c]]
        out = []
        for cell, q in nb._current(held).items():
            if isinstance(q, QueryRef):
                ns[cell] = self._bound[cell] = q
                out.append(cell)
        return out

    @line_magic
    @magic_arguments()
    @argument("name", help="a cell, or a variable holding a QueryRef")
    @argument("--dialect", dest="dialect", default=None,
              help="compile for this dialect instead of the engine's")
    def qref_sql(self, line: str) -> SQLText:
        """The SQL a cell (or QueryRef variable) compiles to: one query, cells inlined."""
        args = parse_argstring(self.qref_sql, line)
        q = self._resolve(args.name)
        try:
            return SQLText(q.compile(args.dialect))
        except QueryRefError as err:
            raise _concise(err) from None

    @line_magic
    @magic_arguments()
    @argument("--format", dest="format", default="text", choices=["text", "mermaid", "dot"],
              help="text (one line per cell), mermaid or dot")
    def qref_cells(self, line: str) -> None:
        """The cells and what each references (cells, QueryRef and DataFrame variables)."""
        args = parse_argstring(self.qref_cells, line)
        print(self.notebook.graph(args.format) or "(no cells yet)")

    @line_magic
    @magic_arguments()
    @argument("names", nargs="+", help="the cells to remove")
    def qref_rm(self, line: str) -> None:
        """Remove cells; their variables go too while they still hold the magic's handle."""
        args = parse_argstring(self.qref_rm, line)
        nb, ns = self.notebook, self._ns
        unknown = [n for n in args.names if n not in nb]
        if unknown:
            raise UsageError(f"no cell named {', '.join(map(repr, unknown))}; cells: {nb.cells}")
        for name in args.names:
            users = [c for c in nb.dependents(name) if c not in args.names]
            nb.remove(name)
            bound = self._bound.pop(name, None)
            if bound is not None and ns.get(name) is bound:
                del ns[name]
            note = (f"; {', '.join(users)} still reference{'s' if len(users) == 1 else ''} it: "
                    f"define {name} again or redefine them") if users else ""
            print(f"queryref: removed {name}{note}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext queryref``: register the magics."""
    ipython.register_magics(QueryRefMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext queryref``: remove the magics (bound variables stay as they are)."""
    manager = ipython.magics_manager
    for kind, names in (("line", _LINE_MAGICS), ("cell", _CELL_MAGICS)):
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(QueryRefMagics.__name__, None)
