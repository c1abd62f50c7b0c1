"""``q.cache()``: the query's result kept in the warehouse, in a table with a generated name.

The table is created with ``CREATE ... TABLE <generated name> AS <query>``, built from sqlglot
nodes and rendered in the connection's dialect; nothing moves to Python. It lives as long as
the queryref connection (as a temporary table lives with its session): it is dropped with
``release()`` (or at the end of a ``with`` block), by ``con.close()``, when the connection is
garbage-collected, or at interpreter exit.

Which kind of table, per engine. A TEMPORARY table is seen only by the database session that
made it, and a queryref connection uses several sessions: a pool on PostgreSQL and SQLAlchemy
engines (a query from another thread, or one started while a stream is open, runs on another
pooled connection), cursors on DuckDB. So:

- PostgreSQL: ``CREATE UNLOGGED TABLE`` (no WAL, like a temporary table; visible to every
  pooled connection). Routing reads of a temporary table to the one connection that owns it
  was the alternative, and it deadlocks: a read of the cache inside a loop over a stream that
  holds that connection would wait for itself.
- Other SQLAlchemy engines (MySQL/MariaDB ...): a plain ``CREATE TABLE`` for the same reason.
- DuckDB: TEMPORARY tables are per cursor; the table goes in an in-memory database attached
  for the purpose (``ATTACH ':memory:'``), which every cursor sees and which goes away with
  the database.
- Snowflake: ``CREATE TEMPORARY TABLE``; the connector runs every cursor in one session.

The cost of real tables: creating one needs the right to create tables in the current schema
(not only TEMP), and a process killed before it could clean up leaves ``_qr_cache_*`` tables
behind (drop them by name; UNLOGGED tables are also emptied by a server crash).
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._queryref import QueryRef
from queryref._sql import ident
from queryref.errors import CacheReleased

if TYPE_CHECKING:
    import pyarrow as pa

    from queryref._connection import Connection

# Engines whose TEMPORARY tables only the creating connection sees, and where cursors run
# queries: the cache goes to an attached in-memory catalog instead.
_ATTACHED_CATALOG = {"duckdb": "_queryref_cache"}
#: engines that run every query in one session: a TEMPORARY table is seen by all of them
_ONE_SESSION = frozenset({"snowflake"})
#: engines with unlogged tables (what a temporary table saves: the write-ahead log)
_UNLOGGED = frozenset({"postgres"})


def _new_name() -> exp.Identifier:
    """A fresh table name, always quoted (so every engine keeps it exactly as written)."""
    return exp.Identifier(this=f"_qr_cache_{uuid.uuid4().hex}", quoted=True)


def statements(query: exp.Query, dialect: str) -> tuple[exp.Table, list[str]]:
    """The new table and the statements that fill it with ``query``'s result.

    >>> table, sql = statements(exp.select("x").from_("t"), "postgres")
    >>> sql[0].replace(table.name, "NAME")
    'CREATE UNLOGGED TABLE "NAME" AS SELECT x FROM t'
    """
    catalog = _ATTACHED_CATALOG.get(dialect)
    out = []
    if catalog is not None:
        attach = exp.Attach(
            this=exp.Alias(this=exp.Literal.string(":memory:"), alias=ident(catalog)),
            exists=True,
        )
        out.append(attach.sql(dialect=dialect))
        table = exp.Table(this=_new_name(), db=ident("main"), catalog=ident(catalog))
        properties = None
    else:
        table = exp.Table(this=_new_name())
        kind: list[exp.Expr] = [exp.TemporaryProperty()] if dialect in _ONE_SESSION else \
            [exp.UnloggedProperty()] if dialect in _UNLOGGED else []
        properties = exp.Properties(expressions=kind) if kind else None
    create_table = exp.Create(kind="TABLE", this=table, expression=query.copy(),
                              properties=properties)
    out.append(create_table.sql(dialect=dialect))
    return table, out


def outlives_session(dialect: str) -> bool:
    """Whether the cache table outlives the session, so queryref must drop it at close.

    >>> outlives_session("postgres"), outlives_session("snowflake")
    (True, False)
    """
    return dialect not in _ONE_SESSION and dialect not in _ATTACHED_CATALOG


def create(q: QueryRef) -> CachedQueryRef:
    """Run ``CREATE ... TABLE <new name> AS <q>`` and return a QueryRef over the table."""
    con = q.connection
    table, sql = statements(q.tree, q.dialect)
    if outlives_session(q.dialect):  # dropped by close()/GC/exit unless released first
        drop = exp.Drop(kind="TABLE", tables=[table.copy()], exists=True)
        con._session_tables[table.name] = drop.sql(dialect=q.dialect)
    try:
        for statement in sql:
            con.backend.execute(statement)
    except BaseException:
        con._session_tables.pop(table.name, None)
        raise
    names = q.columns if q._names is not None else None
    return CachedQueryRef(exp.select("*").from_(table.copy()), con, names=names,
                          handle=CacheHandle(con, table))


class CacheHandle:
    """The table behind a cached QueryRef, and whether it was released."""

    def __init__(self, con: Connection, table: exp.Table) -> None:
        self.connection = con
        self.table = table
        self._dropped = False
        self._lock = threading.Lock()

    @property
    def released(self) -> bool:
        """Whether the table is gone: released, or its connection closed."""
        return self._dropped or not self.connection._finalizer.alive

    @property
    def name(self) -> str:
        """The table's name, as the engine knows it."""
        return self.table.name

    def check(self) -> None:
        """Raise :class:`~queryref.errors.CacheReleased` once the table is gone."""
        if self.released:
            why = "was released" if self._dropped else "went with its closed connection"
            msg = (
                f"this cached result (table {self.name}) {why}; "
                "run .cache() again on the original query, or use the original query itself"
            )
            raise CacheReleased(msg)

    def release(self) -> None:
        """Drop the table now (idempotent; a closed connection has dropped it already)."""
        with self._lock:
            if self.released:  # a closed connection took its tables along
                return
            con = self.connection
            drop = exp.Drop(kind="TABLE", tables=[self.table.copy()], exists=True)
            con.backend.execute(drop.sql(dialect=con.dialect))
            self._dropped = True
            con._session_tables.pop(self.table.name, None)


class CachedQueryRef(QueryRef):
    """A QueryRef over a table that holds a query's result (see ``QueryRef.cache``).

    ``release()`` drops the table (again is fine); so does the end of a ``with`` block.
    Using it afterwards raises :class:`~queryref.errors.CacheReleased`. Queries composed
    from it read the same table: run them before releasing it.

    >>> import queryref as qr
    >>> con = qr.connect()
    >>> q = con.sql("SELECT range AS id FROM range(5)")
    >>> with q.filter(qr.col("id") > 2).cache() as cached:
    ...     cached.to_pandas()["id"].tolist()
    [3, 4]
    >>> cached.released
    True
    """

    __slots__ = ("_handle",)

    def __init__(self, tree: exp.Query, con: Connection, *, handle: CacheHandle,
                 names: Any = None, schema: pa.Schema | None = None) -> None:
        super().__init__(tree, con, names=names, schema=schema)
        self._handle = handle

    @property
    def table_name(self) -> str:
        """The generated name of the table."""
        return self._handle.name

    @property
    def released(self) -> bool:
        """Whether ``release()`` has dropped the table."""
        return self._handle.released

    def release(self) -> None:
        """Drop the table now. Releasing twice is fine."""
        self._handle.release()

    def __enter__(self) -> CachedQueryRef:
        self._handle.check()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # Everything that runs or composes goes through these: after release they refuse.
    @property
    def tree(self) -> exp.Query:
        """The sqlglot tree (raises once released)."""
        self._handle.check()
        return self._tree

    @property
    def schema(self) -> pa.Schema:
        """The result's Arrow schema (raises once released)."""
        self._handle.check()
        return super().schema

    @property
    def columns(self) -> list[str]:
        """The result's column names (raises once released)."""
        self._handle.check()
        return super().columns

    def _new(self, tree: exp.Query, names: Any = None) -> QueryRef:
        self._handle.check()
        return super()._new(tree, names)

    def explain(self) -> str:
        """The database's plan (raises once released)."""
        self._handle.check()
        return super().explain()

    def __repr__(self) -> str:
        state = "released" if self.released else "live"
        return f"<CachedQueryRef ({state}) on {self._con.describe()}>\n{self.sql}"
