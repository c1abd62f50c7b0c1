"""PostgreSQL connections per query: checked out of the pool into a read-only transaction,
checked in clean, and a query whose connection was lost run once more on a fresh one.

Mixed into ``PostgresBackend`` (which holds ``_pool``, ``_uri``, ``_connect_options`` and
``fail``); see its module docstring for why each query runs this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from queryref.backends._common import Deadline, interruptible, uninterrupted

if TYPE_CHECKING:
    from queryref.backends._pool import Pool

#: how a query's connection starts: a transaction in which the server refuses writes
BEGIN = "BEGIN TRANSACTION READ ONLY"
#: how it ends before going back to the pool: the transaction rolled back (with whatever a
#: function in the query changed: settings, large objects, notifications), then what a
#: rollback keeps: the advisory locks a query took at session level released, and the
#: session's random() seeded afresh (a ``setseed`` would make the next queries' draws known)
CHECKIN = ("ROLLBACK", "DO $$BEGIN PERFORM pg_advisory_unlock_all(); PERFORM setseed("
           "('x' || substr(md5(gen_random_uuid()::text), 1, 8))::bit(32)::int "
           "/ 2147483648.0); END$$")


class PgSessions:
    """Mixed into ``PostgresBackend``: a connection per query, from its pool."""

    _pool: Pool[Any]
    _uri: str | None
    _connect_options: dict[str, Any]

    if TYPE_CHECKING:  # (the backend's own: never defined here, so it is not overridden)
        def fail(self, err: BaseException, deadline: Deadline | None = None) -> NoReturn: ...

        def running(self, cancel: Callable[[], object]) -> Any: ...

    def _new_connection(self) -> Any:
        import adbc_driver_postgresql.dbapi as pg

        assert self._uri is not None
        try:
            return pg.connect(self._uri, autocommit=True, **self._connect_options)
        except Exception as err:
            self.fail(err)

    def _acquire(self) -> Any:
        return self._pool.acquire()

    def _release(self, con: Any, *, failed: bool = False) -> bool:
        """Back to the pool; after an error, only if the connection still answers."""
        try:
            healthy = not failed or _answers(con)
        except BaseException:  # Ctrl-C while asking: not known to be fine, so closed
            self._pool.release(con, healthy=False)
            raise
        self._pool.release(con, healthy=healthy)
        return healthy

    def _checkout(self) -> Any:
        """A connection in a read-only transaction (see :data:`BEGIN`).

        A connection the server ended while it sat in the pool fails here, before anything
        ran: it is dropped with the pool's other idle ones, and a fresh one takes its place.
        """
        for attempt in (1, 2):
            con = self._acquire()
            try:
                _statements(con, (BEGIN,) if _autocommit(con) else ())
                return con
            except Exception as err:
                self._pool.release(con, healthy=False)
                if attempt == 2 or self._uri is None:
                    self.fail(err)
                self._pool.discard_idle()
            except BaseException:  # Ctrl-C while it began: closed, not lost to the pool
                self._pool.release(con, healthy=False)
                raise
        raise AssertionError("unreachable")

    def _checkin(self, con: Any) -> bool:
        """End a query's transaction and give the connection back clean (see :data:`CHECKIN`);
        False when it no longer answers (it is closed)."""
        try:
            _statements(con, CHECKIN if _autocommit(con) else CHECKIN[1:])
        except Exception:
            self._pool.release(con, healthy=False)
            return False
        except BaseException:  # Ctrl-C half-way: not clean, so closed rather than lost
            self._pool.release(con, healthy=False)
            raise
        self._pool.release(con)
        return True

    def _run(self, fn: Callable[[Any], Any], *, query: bool = True, retry: bool = True) -> Any:
        """``fn(cursor)`` on a pooled connection: a query in a read-only transaction (run once
        more on a fresh connection if its connection was lost), else a statement in
        autocommit."""
        con = self._checkout() if query else self._acquire()
        failed = False
        try:
            cur = open_cursor(con)
            try:
                with self.running(cur.adbc_cancel):
                    return interruptible(lambda: fn(cur), cur.adbc_cancel)
            finally:
                close_cursor(cur)
        except Exception as err:
            failed = True
            lost = not (self._checkin(con) if query else self._release(con, failed=True))
            if query and lost and retry:
                self._pool.discard_idle()
                return self._run(fn, retry=False)
            self.fail(err)
        except BaseException:  # Ctrl-C: cancelled; the connection is checked before reuse
            failed = True
            if query:
                self._checkin(con)
            else:
                self._release(con, failed=True)
            raise
        finally:
            if not failed:
                if query:
                    self._checkin(con)
                else:
                    self._release(con)


def close_connection(con: Any) -> None:
    with uninterrupted():  # (half closed, its finalizer would release the handles again)
        con.close()


def open_cursor(con: Any) -> Any:
    """``con.cursor()`` whole: the cursor takes its statement's place in the connection
    before it holds the statement, so a Ctrl-C in between left a place nobody gives back
    (the connection's close then fails: "Cannot close AdbcConnection with open
    AdbcStatement")."""
    with uninterrupted():
        return con.cursor()


def close_cursor(cur: Any) -> None:
    """Close an ADBC cursor whole: its ``close()`` gives the statement's place in the
    connection back before it releases the statement and marks the cursor closed, so a
    Ctrl-C in between, or a release that fails, made the cursor's finalizer give the place
    back a second time ("Underflow in closing this AdbcStatement", raised at some later
    garbage collection)."""
    with uninterrupted():
        try:
            cur.close()
        except Exception:
            # The statement's release failed (a connection the cancel left in a bad state)
            # after its place was given back: marked closed, or the finalizer gives the place
            # back again, the "Underflow" above. (When the result's close failed first, the
            # place is still held, and a later close gives it back once.)
            if getattr(cur, "_results", None) is None:
                cur._closed = True
            raise


def _autocommit(con: Any) -> bool:
    """Whether a connection runs each statement on its own (queryref opens them so; one you
    pass in may hold a transaction of yours, which a query then joins as it always did)."""
    return getattr(con, "_autocommit", True) is not False


def _statements(con: Any, sql: tuple[str, ...]) -> None:
    """Run statements that return no rows, on a cursor of their own (as updates: the driver
    then sends each once, where ``execute`` would prepare it first, a second round trip)."""
    if not sql:
        return
    cur = open_cursor(con)
    try:
        statement = cur.adbc_statement
        for text in sql:
            statement.set_sql_query(text)
            statement.execute_update()
    finally:
        close_cursor(cur)


def _answers(con: Any) -> bool:
    """Whether a connection that just failed still runs a query (the server may have gone)."""
    try:
        cur = open_cursor(con)
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            close_cursor(cur)
    except Exception:
        return False
    return True
