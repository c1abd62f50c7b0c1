"""``qr.connect(...)`` and the ``Connection`` it returns: the doors into the warehouse."""

from __future__ import annotations

import os
import sys
import weakref
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from queryref._options import resolve
from queryref._queryref import QueryRef
from queryref._redact import raise_clean, statement_secrets
from queryref._sizes import format_bytes
from queryref.backends import Backend, Stream
from queryref.backends.open import open_backend
from queryref.errors import ParameterError, QueryRefError
from queryref.explore import catalog as _catalog
from queryref.offload.cache import sweep_orphans
from queryref.sinks.budget import Budget
from queryref.sql import foreign as _foreign
from queryref.sql.params import render
from queryref.sql.text import file_path, fold_names, literal, parse_query, table_ref

if TYPE_CHECKING:
    import pandas as pd

    from queryref._typing import SizeLike


class Connection:
    """A connection to one engine. Queries made here are lazy ``QueryRef`` handles.

    >>> import queryref as qr
    >>> con = qr.connect()
    >>> con.execute("CREATE TABLE t AS SELECT 1 AS x")
    >>> con.table("t").to_pandas()["x"].tolist()
    [1]
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        #: tables made for this connection's lifetime (``cache()``): name -> DROP statement
        self._session_tables: dict[str, str] = {}
        self._finalizer = weakref.finalize(self, _shut, backend, self._session_tables)
        #: streams still open (readers, batch iterators): stopped when the connection closes
        self._streams: weakref.WeakSet[Stream] = weakref.WeakSet()

    @property
    def dialect(self) -> str:
        """The engine's SQL dialect (sqlglot's name).

        >>> import queryref as qr
        >>> qr.connect().dialect
        'duckdb'
        """
        return self.backend.dialect

    def describe(self) -> str:
        """What this connection points at (never with a password).

        >>> import queryref as qr
        >>> qr.connect().describe()
        'duckdb :memory:'
        """
        return self.backend.describe()

    def __repr__(self) -> str:
        return f"<queryref.Connection {self.describe()}>"

    # -- queries ----------------------------------------------------------------------
    def sql(self, query: str | exp.Expr | Any, **params: Any) -> QueryRef:
        """A QueryRef over one read-only query; ``{{ name }}`` parameters are filled safely.

        Nothing runs. A QueryRef parameter is inlined as a subquery; a scalar, a list, a
        date ... becomes a correctly quoted literal (never string formatting). DDL, DML or
        several statements raise [`ReadOnlyError`][queryref.errors.ReadOnlyError]: use
        [`execute`][queryref.Connection.execute] for those.

        ``query`` is SQL text, a sqlglot expression (``sqlglot.select(...)``,
        ``sqlglot.parse_one(...)``; its named placeholders ``:name`` take the parameters) or
        a SQLAlchemy Core selectable (``sa.select(...)``, ``sa.text(...)``; its bound values
        become quoted literals). Both are written in this connection's dialect, then read as
        text would be. See [Interoperability](../interop.md).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT {{ x }} AS x", x="a'b")
        >>> print(q.sql)
        SELECT
          'a''b' AS x
        >>> import sqlglot
        >>> tree = sqlglot.select("range AS n").from_("range(5)").where("range > :lo")
        >>> qr.connect().sql(tree, lo=2).to_pandas()["n"].tolist()
        [3, 4]
        >>> import sqlalchemy as sa
        >>> t = sa.table("people", sa.column("name"))
        >>> print(qr.connect().sql(sa.select(t.c.name).where(t.c.name == "O'Brien")).sql)
        SELECT
          people.name
        FROM people
        WHERE
          people.name = 'O''Brien'
        """
        text, dialect = self._sql_text(query)
        return QueryRef(fold_names(render(text, params, self, dialect=dialect), self.dialect),
                        self)

    def _sql_text(self, query: Any) -> tuple[str, str | None]:
        """``query`` as SQL text, and the dialect it is written in (None: this connection's)."""
        if isinstance(query, str):
            return query, None
        if isinstance(query, exp.Expr):
            return _foreign.sqlglot_text(query, self.dialect), None
        sa = sys.modules.get("sqlalchemy")  # (not imported: the value cannot be one of its)
        if sa is not None and isinstance(query, sa.sql.ClauseElement):
            return _foreign.sqlalchemy_text(query, *_foreign.sqlalchemy_dialect(self.backend))
        msg = (
            f"con.sql() takes SQL text, a sqlglot expression (sqlglot.select(...), "
            f"sqlglot.parse_one(...)) or a SQLAlchemy Core selectable (sa.select(...), "
            f"sa.text(...)), not {type(query).__name__}"
        )
        raise ParameterError(msg)

    def tables(self, schema: str | None = None) -> pd.DataFrame:
        """The tables and views of ``schema`` (default: the current one), from the catalog
        (``schema``, ``name``, ``kind``): for autocomplete and side panels, nothing scanned.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> _ = con.execute("CREATE TABLE sales (id INTEGER)")
        >>> con.tables()["name"].tolist()
        ['sales']
        """
        return _catalog.tables(self, schema)

    def columns(self, table: str) -> pd.DataFrame:
        """A table's columns from the catalog: ``name``, ``type`` (the engine's), ``nullable``.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> _ = con.execute("CREATE TABLE sales (id INTEGER NOT NULL, note VARCHAR)")
        >>> con.columns("sales")
           name     type  nullable
        0    id  INTEGER     False
        1  note  VARCHAR      True
        """
        return _catalog.columns(self, table)

    def table(self, name: str) -> QueryRef:
        """A QueryRef over a table or view (``"schema.table"`` works too).

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> con.execute("CREATE TABLE orders AS SELECT 1 AS id, 9.5 AS amount")
        >>> con.table("orders").columns
        ['id', 'amount']
        """
        table = table_ref(name, self.dialect)
        return QueryRef(exp.select("*").from_(table), self)

    def from_snowpark(self, df: Any) -> QueryRef:
        """A QueryRef over a Snowpark DataFrame's SQL (on this Snowflake connection).

        Elsewhere it raises [`ParameterError`][queryref.errors.ParameterError]:

        >>> import queryref as qr
        >>> qr.connect().from_snowpark(object())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        queryref.errors.ParameterError: ...
        """
        from queryref.backends.snowflake import snowpark_sql

        sql = snowpark_sql(self.backend, df)
        return QueryRef(fold_names(parse_query(sql, self.dialect), self.dialect), self)

    def read_parquet(self, path: str | os.PathLike[str]) -> QueryRef:
        """A QueryRef over a Parquet file (or glob): spill, then keep composing.

        >>> import os, tempfile
        >>> import queryref as qr
        >>> con = qr.connect()
        >>> path = os.path.join(tempfile.mkdtemp(), "ids.parquet")
        >>> _ = con.sql("SELECT range AS id FROM range(10)").to_parquet(path)
        >>> con.read_parquet(path).filter("id >= 7").count()
        3
        """
        func = exp.Anonymous(this="read_parquet",
                             expressions=[literal(file_path(path, "read_parquet()"))])
        return QueryRef(exp.select("*").from_(exp.Table(this=func)), self)

    # -- statements -------------------------------------------------------------------
    def execute(self, statement: str) -> int | None:
        """Run a statement now: the one explicit door for DDL/DML. Rows changed, if known.

        >>> import queryref as qr
        >>> con = qr.connect()
        >>> con.execute("CREATE TABLE t (id INTEGER)")
        >>> con.execute("INSERT INTO t VALUES (1), (2)")
        2
        """
        if not isinstance(statement, str) or not statement.strip():
            raise ParameterError("execute() takes the SQL statement as non-empty text")
        try:
            rows = self.backend.execute(statement)
        except QueryRefError as err:
            # drivers quote the statement in their errors: never a password it carries
            # (CREATE ROLE .. PASSWORD '..', IDENTIFIED BY '..', CREATE SECRET ..)
            raise_clean(err, statement_secrets(statement))
            raise  # (not reached)
        return rows if rows is not None and _is_dml(statement) else None

    def create_table(self, name: str, data: Any, *, replace: bool = False,
                     max_bytes: SizeLike = None) -> QueryRef:
        """Create a table from a DataFrame (pandas/Polars), Arrow data, or a QueryRef.

        A QueryRef becomes ``CREATE TABLE ... AS`` in the database (nothing moves); in-memory
        data is uploaded under ``max_bytes`` when given. ``replace=True`` replaces a table of
        that name. Returns a QueryRef over the new table.

        >>> import pandas as pd
        >>> import queryref as qr
        >>> con = qr.connect()
        >>> con.create_table("people", pd.DataFrame({"id": [1, 2], "name": ["a", "b"]})).count()
        2
        >>> con.create_table("ones", con.table("people").filter("id = 1")).columns
        ['id', 'name']
        """
        table = table_ref(name, self.dialect)
        if isinstance(data, QueryRef):
            if data.connection is not self:
                data = data.to_arrow(max_bytes=max_bytes if max_bytes is not None
                                     else resolve("max_bytes", max_bytes))
            else:
                in_place = replace and self.backend.create_or_replace
                if replace and not in_place:
                    drop = exp.Drop(kind="TABLE", tables=[table.copy()], exists=True)
                    self.backend.execute(drop.sql(dialect=self.dialect))
                create = exp.Create(kind="TABLE", this=table, replace=in_place,
                                    expression=data.tree.copy())
                self.backend.execute(create.sql(dialect=self.dialect))
                return self.table(name)
        columns = getattr(data, "columns", None)
        names = [str(c) for c in columns] if columns is not None and not isinstance(
            data, pa.Table | pa.RecordBatch) else None
        if names is not None:
            _unique_columns(names, self.backend.case_insensitive)
        reader = _as_reader(data)
        _unique_columns(reader.schema.names, self.backend.case_insensitive)
        budget = None if max_bytes is None else resolve("max_bytes", max_bytes)
        size = _nbytes(data)
        if size is not None:
            Budget(budget, what=f"upload of {format_bytes(size)}").check_up_front(
                rows=None, nbytes=size, detail="")
        self.backend.create_table(table, reader, replace)
        return self.table(name)

    def close(self) -> None:
        """Close the connection; its QueryRefs can no longer run.

        Tables made by ``cache()`` are dropped first; on a pooled engine the connections
        still held by open streams close as those streams end. A ``with`` block closes it too.

        >>> import queryref as qr
        >>> with qr.connect() as con:
        ...     con.sql("SELECT 1 AS x").count()
        1
        """
        # Streams still open (a reader left half-read) are cancelled first: their queries stop
        # in the database, so no session stays busy and no result is drained on closing; so
        # are queries still starting on other threads (a count yet to give its one row).
        self.backend.interrupt_running()
        for stream in list(self._streams):
            try:
                stream.cancel()
            except Exception:  # it ended meanwhile, or the server is gone
                pass
        self._finalizer()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- con.sql() inputs that are not text --------------------------------------------------------
def _shut(backend: Backend, tables: dict[str, str]) -> None:
    """Drop the connection's session tables (quietly: the server may be gone), then close.

    Runs from ``close()``, when the Connection is garbage-collected, or at interpreter exit.
    """
    while tables:
        _, drop = tables.popitem()
        try:
            backend.execute(drop)
        except Exception:  # a closed or unreachable server took it along
            pass
    backend.close()


def _is_dml(statement: str) -> bool:
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return head in {"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "WITH"}


def _unique_columns(names: list[str], case_insensitive: bool) -> None:
    """A table cannot hold two columns of one name (or, where the engine ignores case, two
    names equal but for case): refuse before anything is sent."""
    keys = [n.lower() for n in names] if case_insensitive else list(names)
    dupes = sorted({n for n, k in zip(names, keys, strict=True) if keys.count(k) > 1})
    if dupes:
        msg = (f"create_table() got duplicate column names {dupes}"
               f"{' (this engine ignores case)' if case_insensitive else ''}: rename them first")
        raise ParameterError(msg)


def _as_reader(data: Any) -> pa.RecordBatchReader:
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, pa.Table):
        return pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatchReader.from_batches(data.schema, [data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            table = pa.Table.from_pandas(data, preserve_index=False)
            return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, dict):
        table = pa.table(data)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    msg = (
        f"create_table() takes a pandas/Polars DataFrame, Arrow data, a dict of columns or a "
        f"QueryRef, not {type(data).__name__}"
    )
    raise ParameterError(msg)


def _nbytes(data: Any) -> int | None:
    if isinstance(data, pa.Table | pa.RecordBatch):
        return int(data.nbytes)
    for attr in ("estimated_size",):
        if hasattr(data, attr):
            return int(getattr(data, attr)())
    if hasattr(data, "memory_usage"):
        return int(data.memory_usage(deep=True).sum())
    return None


def connect(target: Any = None, **options: Any) -> Connection:
    """Connect to an engine. No argument: embedded DuckDB in memory.

    Also: ``"duckdb:///path/file.duckdb"``, ``"postgresql://user:pw@host/db"``,
    ``"snowflake://user:pw@account/db/schema"``, any other SQLAlchemy URL whose dialect sqlglot
    knows (``"mysql+pymysql://..."``), or an open connection: duckdb, psycopg, ADBC
    (PostgreSQL), a SQLAlchemy Engine, a ``snowflake.connector`` connection, a Snowpark Session.

    >>> import queryref as qr
    >>> qr.connect()
    <queryref.Connection duckdb :memory:>
    """
    if isinstance(target, Connection):
        return target
    return Connection(open_backend(target, options, sweep=sweep_orphans))
