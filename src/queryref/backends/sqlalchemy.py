"""Any SQLAlchemy engine whose dialect sqlglot knows (MySQL/MariaDB, SQL Server, SQLite, ...).

Rows come through a server-side cursor (``stream_results``, ``yield_per``), so memory holds one
batch; each batch becomes Arrow with the types the cursor description states (exact for
MySQL), and the first rows' Python types where it is vague. A query is stopped with the
engine's own way when there is one (MySQL ``KILL QUERY`` from another connection, the driver's
``cancel()``/``interrupt()``), else by closing its connection.

Connections come from the engine's pool, one per query or per open stream, so one queryref
connection serves many threads. Its options are SQLAlchemy's own (``pool_size``,
``max_overflow``, ``pool_timeout``: keywords of ``qr.connect`` or in the URL's query string);
a pool that stays exhausted raises :class:`~queryref.errors.PoolExhausted` (at once when no
connection could come back: every one held by a thread that waits for another; see
``_sa_pool.Checkouts``). ``KILL QUERY`` goes through a small pool of its own, so stopping a
query never waits for a busy pool.

MySQL/MariaDB: every query runs in ``START TRANSACTION READ ONLY`` (the server refuses writes
whatever a function in the query tries; ``execute`` and ``create_table`` stay the doors for
writes), and before its connection goes back to the pool the session is cleaned
(``_mysql.CHECKIN``: user-level locks released, user variables and ``LAST_INSERT_ID``
cleared). That first statement also finds a connection the server ended while it sat in the
pool: SQLAlchemy then drops the pool's older connections and the query goes to a fresh one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NoReturn

import pyarrow as pa
import sqlglot
from sqlglot import exp

from queryref._redact import url_password
from queryref.backends import _mysql, _rows
from queryref.backends._base import Backend, PlanEstimate, Stream, Sweep
from queryref.backends._common import Deadline, raise_wrapped
from queryref.backends._pool import pool_options, split_url
from queryref.backends._sa_pool import Checkouts, buffered, fully_read, idle
from queryref.errors import BackendError, ParameterError

#: SQLAlchemy dialect name -> sqlglot dialect name
DIALECTS: dict[str, str] = {
    "mysql": "mysql", "mariadb": "mysql", "mssql": "tsql", "sqlite": "sqlite",
    "oracle": "oracle", "trino": "trino", "presto": "presto", "bigquery": "bigquery",
    "redshift": "redshift", "databricks": "databricks", "hive": "hive", "spark": "spark",
    "clickhouse": "clickhouse", "clickhousedb": "clickhouse", "teradata": "teradata",
    "awsathena": "athena", "exasol": "exasol", "doris": "doris", "starrocks": "starrocks",
    "duckdb": "duckdb", "drill": "drill", "druid": "druid", "singlestoredb": "singlestore",
    "materialize": "materialize", "risingwave": "risingwave", "snowflake": "snowflake",
    "postgresql": "postgres",
}
#: sqlglot dialects whose engines match column names case-insensitively
CASE_INSENSITIVE = frozenset({"mysql", "tsql", "sqlite", "singlestore", "doris", "starrocks"})
#: sqlglot dialects with CREATE OR REPLACE TABLE
CREATE_OR_REPLACE = frozenset({"duckdb", "snowflake", "bigquery", "databricks"})


class SQLAlchemyBackend(Backend):
    """An engine reached through SQLAlchemy (the generic path)."""

    name = "sqlalchemy"
    label = "SQLAlchemy"  # (each backend then names its dialect: "mysql", "mssql" ...)
    dialect: ClassVar[str] = ""

    def __init__(self, engine: Any, *, owned: bool, sweep: Sweep | None = None) -> None:
        self._engine = self.sqlalchemy_engine = engine
        self._owned = owned
        self._sweep = sweep
        self._sa_name = self.label = engine.dialect.name
        self.secrets = (engine.url.password,) if engine.url.password else ()
        self._checkouts = Checkouts(engine, self._sa_name)
        self._user_variables = True  # (information_schema.USER_VARIABLES: not on MySQL)
        if self._sa_name in ("mysql", "mariadb"):
            import sqlalchemy as sa

            if not sa.event.contains(engine, "invalidate", _mysql.forget_unread):
                sa.event.listen(engine, "invalidate", _mysql.forget_unread)

    @classmethod
    def for_engine(cls, engine: Any, *, owned: bool, sweep: Sweep | None = None
                   ) -> SQLAlchemyBackend:
        """The backend for ``engine``: one class per dialect, so ``dialect`` is a declaration."""
        sa_name = engine.dialect.name
        if sa_name not in DIALECTS:
            msg = (
                f"no SQL dialect known for SQLAlchemy's {sa_name!r}; supported: "
                f"{', '.join(sorted(DIALECTS))}"
            )
            raise ParameterError(msg)
        return _class_for(DIALECTS[sa_name])(engine, owned=owned, sweep=sweep)

    @classmethod
    def open(cls, url: str, *, sweep: Sweep | None = None, **options: Any) -> SQLAlchemyBackend:
        """``create_engine(url, **options)`` (the engine is disposed when closed)."""
        try:
            import sqlalchemy as sa
        except ImportError:
            msg = "this URL needs SQLAlchemy: pip install 'queryref[sqlalchemy]'"
            raise ImportError(msg) from None
        try:
            url, from_url = split_url(url)
            options.update(pool_options(options, from_url, defaults=False))
            engine = sa.create_engine(url, **options)
        except (ImportError, sa.exc.NoSuchModuleError) as err:
            scheme = url.split("://", 1)[0]
            msg = (
                f"no backend for {scheme!r} URLs here: SQLAlchemy could not load its dialect or "
                f"driver ({type(err).__name__}); install it, e.g. 'mysql+pymysql://' needs "
                "pymysql (pip install 'queryref[sqlalchemy]')"
            )
            raise ParameterError(msg) from None
        except Exception as err:
            raise_wrapped(err, cls.label, [url_password(url)])
        backend = cls.for_engine(engine, owned=True, sweep=sweep)
        if backend._mysql and sweep is not None:  # cache tables left by processes now gone
            sweep(backend)
        return backend

    def __repr__(self) -> str:
        return f"<SQLAlchemyBackend {self.describe()}>"

    def _connect(self) -> Any:
        """A connection of the engine's pool (see :class:`._sa_pool.Checkouts`)."""
        try:
            return self._checkouts.connect()
        except BackendError:
            raise
        except Exception as err:
            self.fail(err)

    @property
    def _mysql(self) -> bool:
        return self._sa_name in ("mysql", "mariadb")

    def _checkout(self, *, retry: bool = True) -> Any:
        """A connection for a query: on MySQL/MariaDB in a read-only transaction. A connection
        the server ended while it sat in the pool fails on that first statement, before
        anything ran: SQLAlchemy invalidates it (and the pool's older ones), and a fresh one
        is taken once."""
        conn = self._connect()
        if not self._mysql:
            return conn
        try:
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute(_mysql.BEGIN)  # (on the driver's cursor: half the cost)
            finally:
                cursor.close()
            return conn
        except Exception:  # again through SQLAlchemy, which knows a lost connection when it
            pass           # sees one and then drops the pool's older ones too
        except BaseException:  # Ctrl-C while it began: closed, not lost to the pool
            self._abandon(conn, None)
            raise
        try:
            conn.exec_driver_sql(_mysql.BEGIN)
        except Exception as err:
            self._disconnect(conn)
            if retry and getattr(err, "connection_invalidated", False):
                return self._checkout(retry=False)
            self.fail(err)
        except BaseException:
            self._abandon(conn, None)
            raise
        return conn

    def _checkin(self, conn: Any) -> None:
        """Give a query's connection back clean (see ``_mysql.CHECKIN``; the pool's rollback
        ends the read-only transaction); one that no longer answers is dropped."""
        try:
            if self._mysql and not conn.invalidated:
                self._user_variables = _mysql.reset(conn.connection.dbapi_connection,
                                                    self._user_variables)
        except Exception:
            _invalidate(conn)
        except BaseException:  # Ctrl-C half-way: not known clean, so not reused
            _invalidate(conn)
            self._disconnect(conn)
            raise
        self._disconnect(conn)

    def _disconnect(self, conn: Any) -> None:
        self._checkouts.disconnect(conn)

    def _driver_sql(self, sql: str) -> str:
        """SQL as the driver reads it: ``format``/``pyformat`` drivers treat ``%`` as markers."""
        if self._engine.dialect.paramstyle in ("format", "pyformat"):
            return sql.replace("%", "%%")
        return sql

    def _canceller(self, conn: Any) -> Callable[[], None]:
        """How to stop the query running on ``conn`` from another thread."""
        dbapi_con = conn.connection.dbapi_connection
        if self._sa_name in ("mysql", "mariadb") and hasattr(dbapi_con, "thread_id"):
            statement = _mysql.kill_query(dbapi_con.thread_id())

            def kill_query() -> None:
                other = self._checkouts.kill_connection()
                try:
                    cursor = other.cursor()
                    cursor.execute(statement)
                    cursor.close()
                finally:
                    other.close()

            return kill_query
        for method in ("cancel", "interrupt"):
            if callable(getattr(dbapi_con, method, None)):
                return getattr(dbapi_con, method)
        return conn.invalidate

    def _finish(self, conn: Any, result: Any) -> None:
        try:
            result.close()
        except Exception:
            _invalidate(conn)
        except BaseException:  # Ctrl-C while closing: given back all the same, not reused
            self._abandon(conn, None)
            raise
        self._checkin(conn)

    def _abandon(self, conn: Any, cancel: Callable[[], None] | None,
                 result: Any = None) -> None:
        try:
            if cancel is not None and self._sa_name in ("mysql", "mariadb"):
                try:
                    cancel()
                except Exception:
                    pass
            cursor: Any = getattr(result, "cursor", None)
            if cursor is not None and hasattr(cursor, "_result"):
                cursor.connection = None  # (pymysql; forgotten by _mysql.forget_unread)
        finally:  # (a Ctrl-C above must not keep the connection from the pool)
            _invalidate(conn)
            self._disconnect(conn)

    def fail(self, err: BaseException, deadline: Deadline | None = None) -> NoReturn:
        """Raise a driver error as a queryref error (SQLAlchemy's wrapper left out)."""
        super().fail(getattr(err, "orig", None) or err, deadline)

    @contextlib.contextmanager
    def _connection(self, *, query: bool = True) -> Iterator[Any]:
        """A pooled connection for one call, given back after it, driver errors raised as
        queryref errors: a query's (see :meth:`_checkout`, :meth:`_checkin`), or a statement's
        in a transaction of its own, stopped in the server on Ctrl-C."""
        conn = self._checkout() if query else self._connect()
        cancel = None if query else self._canceller(conn)
        try:
            if query:
                yield conn
            else:
                with conn.begin():
                    yield conn
        except Exception as err:
            self.fail(err)
        except BaseException:  # Ctrl-C: the statement still runs in the server, stop it there
            if cancel is not None:
                self._abandon(conn, cancel)
            raise
        finally:
            if query:
                self._checkin(conn)
            else:
                self._disconnect(conn)

    # -- the interface ----------------------------------------------------------------------
    def stream(self, sql: str, batch_rows: int, *, timeout: float | None = None,
               batch_bytes: int | None = None, retry: bool = True) -> Stream:
        """Rows through a server-side cursor, read straight from the DB-API cursor (SQLAlchemy's
        own buffer would read ``yield_per`` rows at once, whatever their width): with
        ``batch_bytes``, in small fetches sized from the bytes of the rows that came before.

        A connection lost before the first rows came (the server ended it) is replaced and
        the query run once more; once rows have moved, the error is the caller's."""
        conn = self._checkout()
        cancel = self._canceller(conn)
        deadline = Deadline(timeout, cancel)
        state = {"done": False}
        try:
            with self.running(cancel):
                streaming = conn.execution_options(stream_results=True)
                result = streaming.exec_driver_sql(self._driver_sql(sql))
                cursor = result.cursor
                description = cursor.description if cursor is not None else None
                unsigned = _rows.mysql_unsigned(cursor) if self._mysql else None
                reader = _rows.Fetcher(cursor, description, self.dialect, batch_rows,
                                       batch_bytes, buffered(result)) if description else None
                first = reader.next() if reader is not None else []
        except Exception as err:
            deadline.stop()
            self._abandon(conn, None)
            if retry and not deadline.expired and getattr(err, "connection_invalidated", False):
                return self.stream(sql, batch_rows, timeout=timeout, batch_bytes=batch_bytes,
                                   retry=False)
            self.fail(err, deadline)
        except BaseException:  # Ctrl-C: the query still runs in the server, stop it there
            deadline.stop()
            self._abandon(conn, cancel)
            raise
        if not description or reader is None:
            deadline.stop()
            self._disconnect(conn)
            raise BackendError("the statement returned no result set: use con.execute()")

        held = [first]  # (taken, not kept: the first rows must not live as long as the stream)

        def batches() -> Iterator[pa.RecordBatch]:
            rows = held.pop()
            while rows:
                batch = _rows.to_batch(rows, schema)
                del rows
                reader.saw(batch)
                yield batch
                del batch
                if deadline.expired:  # past the deadline: stop reading what is buffered
                    raise deadline.error()
                try:
                    rows = reader.next()
                except Exception as err:
                    self.fail(err, deadline)
            state["done"] = True
            if deadline.expired:
                raise deadline.error()

        def close() -> None:
            deadline.stop()
            if state["done"] or fully_read(result):  # (count() stops after its one row)
                self._finish(conn, result)
            else:  # never read the rest of an abandoned result: stop it, drop the connection
                self._abandon(conn, cancel, result)

        try:  # (until the stream exists, an interrupt would leave the query running)
            dbapi = getattr(self._engine.dialect, "dbapi", None)
            schema = _rows.schema_for(description, self.dialect, dbapi, first,
                                      unsigned=unsigned)
            del first
            return Stream(schema, batches(), cancel=cancel, close=close)
        except BaseException:
            close()
            raise

    def schema(self, sql: str) -> pa.Schema:
        query = sqlglot.parse_one(sql, read=self.dialect)
        probe = exp.select("*").from_(exp.Subquery(this=query, alias=exp.TableAlias(
            this=exp.to_identifier("_q")))).limit(0).sql(dialect=self.dialect)
        with self._connection() as conn:
            result = conn.exec_driver_sql(self._driver_sql(probe))
            description = result.cursor.description
            unsigned = _rows.mysql_unsigned(result.cursor) if self._mysql else None
            result.close()
        return _rows.schema_for(description, self.dialect, getattr(self._engine.dialect,
                                                                   "dbapi", None),
                                unsigned=unsigned)

    def execute(self, sql: str) -> int | None:
        with self._connection(query=False) as conn:
            count = conn.exec_driver_sql(self._driver_sql(sql)).rowcount
        return count if isinstance(count, int) and count >= 0 else None

    def explain(self, sql: str) -> str:
        with self._connection() as conn:
            rows = conn.exec_driver_sql(self._driver_sql(f"EXPLAIN {sql}")).fetchall()
        return "\n".join("\t".join("" if v is None else str(v) for v in r) for r in rows)

    def estimate(self, sql: str) -> PlanEstimate:
        """MySQL/MariaDB: the rows of ``EXPLAIN FORMAT=JSON`` for a one-table query.

        Their plans count rows examined per table (a join's product, the input of a GROUP BY),
        and a condition without statistics keeps ``filtered: 100``: those are upper bounds,
        so they count as unknown. Other engines reached through SQLAlchemy: unknown.
        """
        if self._sa_name not in ("mysql", "mariadb"):
            return super().estimate(sql)
        top = sqlglot.parse_one(sql, read=self.dialect)
        if not isinstance(top, exp.Select) or top.args.get("group") or top.args.get(
                "distinct") or any(e.find(exp.AggFunc) for e in top.expressions):
            return PlanEstimate(None, None, f"{self._sa_name}'s plan has no estimate of "
                                            "grouped, distinct or combined rows")
        with self._connection() as conn:
            text = conn.exec_driver_sql(self._driver_sql(f"EXPLAIN FORMAT=JSON {sql}")).scalar()
        plan = _mysql.plan_json(text)
        if plan is None:
            return PlanEstimate(None, None, f"{self._sa_name}'s plan is not valid JSON here")
        return _mysql.plan_rows(plan.get("query_block", {}), self._sa_name)

    def create_table(self, name: exp.Table, data: pa.RecordBatchReader, replace: bool) -> None:
        import sqlalchemy as sa

        columns = [sa.Column(f.name, _rows.sqlalchemy_type(f.type)) for f in data.schema]
        table = sa.Table(name.name, sa.MetaData(), *columns, schema=name.db or None)
        with self._connection(query=False) as conn:
            if replace:
                table.drop(conn, checkfirst=True)
            table.create(conn)
            for batch in data:
                for start in range(0, batch.num_rows, 5000):
                    rows = batch.slice(start, 5000).to_pylist()
                    if rows:
                        conn.execute(table.insert(), rows)

    def close(self) -> None:
        if self._sweep is not None and self._mysql and not self._checkouts.closed and idle(
                self._engine.pool):
            self._sweep(self)  # on a connection still open: never a new login
        if self._checkouts.closed:
            return
        self._checkouts.close()
        if self._owned:
            self._engine.dispose()

    def describe(self) -> str:
        url = self._engine.url
        user = f"{url.username}@" if url.username else ""
        port = f":{url.port}" if url.port else ""
        return f"{url.drivername} {user}{url.host or ''}{port}/{url.database or ''}"

    def reopen(self) -> str | None:
        # embedded engines: a memory database is private, a DuckDB file locked by this process
        if self._sa_name in ("sqlite", "duckdb"):
            return None
        return str(self._engine.url.render_as_string(hide_password=False))


_classes: dict[str, type[SQLAlchemyBackend]] = {}


def _invalidate(conn: Any) -> None:
    try:
        conn.invalidate()
    except Exception:
        pass


def _class_for(dialect: str) -> type[SQLAlchemyBackend]:
    if dialect not in _classes:
        _classes[dialect] = type(
            f"SQLAlchemyBackend[{dialect}]", (SQLAlchemyBackend,),
            {"dialect": dialect, "case_insensitive": dialect in CASE_INSENSITIVE,
             "create_or_replace": dialect in CREATE_OR_REPLACE, "__module__": __name__},
        )
    return _classes[dialect]

