"""The connections a SQLAlchemy backend has out of its engine's pool, and what a result leaves.

:class:`Checkouts` knows which thread holds each checked-out connection, so a wait that could
never end (the pool full of this backend's connections, each held by a thread that waits for
one more) fails at once as :class:`~queryref.errors.PoolExhausted` instead of after the pool's
timeout; it also keeps the small pool of its own that ``KILL QUERY`` goes through, so stopping
a query never waits for a busy pool. The functions below read SQLAlchemy's result and pool
state (private attributes, each read defensively).
"""

from __future__ import annotations

import gc
import threading
from typing import Any

from queryref.backends._pool import exhausted
from queryref.errors import BackendError


class Checkouts:
    """Connections checked out of ``engine``'s pool, by the thread that holds each."""

    def __init__(self, engine: Any, name: str) -> None:
        self._engine = engine
        self._name = name
        self._open: dict[Any, int] = {}  # checked-out connection -> the thread that has it
        self._waiting: set[int] = set()  # threads waiting for the engine's pool
        self._lock = threading.Lock()
        self._kill_pool: Any = None
        self.closed = False

    def connect(self) -> Any:
        """A connection of the engine's pool; :class:`PoolExhausted` when none can come, at
        once when waiting would be a deadlock. Other errors are the driver's, raised as is."""
        if self.closed:
            raise BackendError("this connection is closed")
        me = threading.get_ident()
        if not self._enter_wait(me):
            gc.collect()  # an abandoned stream in a cycle gives its connection back
            if not self._enter_wait(me):
                with self._lock:
                    alone = set(self._open.values()) == {me}
                raise self._exhausted("self" if alone else "circle")
        import sqlalchemy as sa

        try:
            conn = self._engine.connect()
        except sa.exc.TimeoutError:
            raise self._exhausted("timeout") from None
        finally:
            with self._lock:
                self._waiting.discard(me)
        with self._lock:
            self._open[conn] = me
        return conn

    def disconnect(self, conn: Any) -> None:
        """Give ``conn`` back to the pool (closing a SQLAlchemy connection does)."""
        try:
            with self._lock:
                self._open.pop(conn, None)
        finally:  # (even after a Ctrl-C here: SQLAlchemy's own check-in copes with one)
            try:
                conn.close()
            except Exception:
                pass

    def kill_connection(self) -> Any:
        """A DBAPI connection from a pool of its own (no limit, one kept idle, closed with the
        backend): a stream stopped while every pooled connection is busy must not wait for
        one, and a connection per stop would cost a login each time."""
        with self._lock:
            if self._kill_pool is None:
                from sqlalchemy.pool import QueuePool

                pool = self._engine.pool
                self._kill_pool = QueuePool(pool._creator, pool_size=1, max_overflow=-1,
                                            dialect=pool._dialect)
            kill_pool = self._kill_pool
        return kill_pool.connect()

    def close(self) -> None:
        """Close every connection still out and the kill pool; later ``connect`` fails."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            still_open, self._open = list(self._open), {}
        for conn in still_open:
            try:
                conn.close()
            except Exception:
                pass
        if self._kill_pool is not None:
            self._kill_pool.dispose()

    def sizes(self) -> tuple[int, int, float] | None:
        """``pool_size``, ``max_overflow``, ``pool_timeout`` of a QueuePool; None otherwise."""
        pool = self._engine.pool
        try:
            return int(pool.size()), int(pool._max_overflow), float(pool._timeout)
        except (AttributeError, TypeError, ValueError):  # NullPool, StaticPool, ...
            return None

    def _enter_wait(self, me: int) -> bool:
        """Note that ``me`` waits for the pool, unless that would be a deadlock: the pool full
        of our connections, each held by a thread waiting for one more (so none could come
        back before the timeout). Checked and noted at once, so of two threads that close
        the circle together exactly one is told."""
        sizes = self.sizes()
        limit = None if sizes is None or sizes[1] < 0 else sizes[0] + sizes[1]
        with self._lock:
            waiting = self._waiting | {me}
            stuck = limit is not None and len(self._open) >= limit and all(
                owner in waiting for owner in self._open.values()) and \
                self._engine.pool.checkedout() >= limit
            if not stuck:
                self._waiting.add(me)
        return not stuck

    def _exhausted(self, why: str) -> BackendError:
        size, overflow, timeout = self.sizes() or (0, 0, 0.0)
        return exhausted(self._name, size + overflow, size, overflow, timeout, why=why)


def idle(pool: Any) -> bool:
    """Whether a SQLAlchemy pool holds an open connection nobody uses."""
    try:
        return int(pool.checkedin()) > 0
    except (AttributeError, TypeError, ValueError):  # NullPool, StaticPool ...
        return False


def buffered(result: Any) -> list[Any]:
    """The rows SQLAlchemy read ahead of us from a server-side cursor (its buffer starts with
    one), taken out of its buffer: the rest is read from the DB-API cursor directly."""
    buffer = getattr(getattr(result, "cursor_strategy", None), "_rowbuffer", None)
    if not buffer:
        return []
    rows = [tuple(r) for r in buffer]
    buffer.clear()
    return rows


def fully_read(result: Any) -> bool:
    """Whether a streamed result was read to its end already (SQLAlchemy let go of the
    cursor after the last fetch came back short, or PyMySQL's unbuffered result reached its
    end): the connection is then clean, and goes back to the pool instead of being stopped
    and dropped (a new login each time)."""
    cursor = getattr(result, "cursor", None)
    if cursor is None:
        return getattr(result, "_soft_closed", False) is True
    return getattr(getattr(cursor, "_result", None), "unbuffered_active", None) is False
