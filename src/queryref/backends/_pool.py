"""A small pool of driver connections, checked out per query or per open stream.

The rules are SQLAlchemy's ``QueuePool`` (the names users know): up to ``pool_size``
connections are kept open while idle, up to ``max_overflow`` more are opened when every kept
one is busy (and closed again when returned), and a query that finds all of them busy waits
``pool_timeout`` seconds for one to come back before raising
:class:`~queryref.errors.PoolExhausted`. Connections are opened only when needed.

One case never waits: when every busy connection is held by a thread that is itself waiting
in this pool (the thread asking holds every connection in streams it has not finished, or
several threads each hold one and wait for another, as a read of a cache inside a loop over a
stream does), no connection can ever come back, so waiting would only end at the timeout. The
pool first collects garbage (an abandoned stream in a reference cycle gives its connection
back that way), then raises at once in the thread that closed the circle; its connections
come back as its error unwinds, and the others go on.

>>> opened = []
>>> pool = Pool("demo", connect=lambda: opened.append(1) or len(opened), close=lambda c: None,
...             pool_size=1, max_overflow=0, pool_timeout=0)
>>> a = pool.acquire()
>>> pool.acquire()
Traceback (most recent call last):
  ...
queryref.errors.PoolExhausted: this thread holds every connection of the demo pool ...
>>> pool.release(a); pool.acquire() == a
True
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import unquote

from queryref.backends._common import uninterrupted
from queryref.errors import BackendError, ParameterError, PoolExhausted

C = TypeVar("C")

#: SQLAlchemy's defaults: 5 kept, 10 more when busy, 30 s to wait for one
DEFAULTS: dict[str, Any] = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30.0}
OPTIONS = tuple(DEFAULTS)


def pool_options(options: dict[str, Any], url_query: Mapping[str, str] | None = None, *,
                 defaults: bool = True) -> dict[str, Any]:
    """Take the pool options out of ``options`` (keywords win over the URL's query string),
    checked, with the defaults filled in (unless ``defaults=False``: only those given).

    >>> pool_options({"pool_size": 2, "other": 1}, {"pool_timeout": "1.5"})
    {'pool_size': 2, 'max_overflow': 10, 'pool_timeout': 1.5}
    """
    out = dict(DEFAULTS) if defaults else {}
    for source in (url_query or {}, options):
        for key in OPTIONS:
            if key in source:
                out[key] = _number(key, source[key])
    for key in OPTIONS:
        options.pop(key, None)
    return out


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL without the pool options in its query string, and those options (the rest of
    the URL kept verbatim, so a driver never sees them).

    >>> split_url("postgresql://h/db?pool_size=2&sslmode=require")
    ('postgresql://h/db?sslmode=require', {'pool_size': '2'})
    """
    head, sep, query = url.partition("?")
    if not sep:
        return url, {}
    kept, pool = [], {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key in OPTIONS:
            pool[key] = unquote(value)
        elif part:
            kept.append(part)
    return head + ("?" + "&".join(kept) if kept else ""), pool


def _number(key: str, value: Any) -> int | float:
    if isinstance(value, str):
        try:
            value = float(value) if key == "pool_timeout" else int(value)
        except ValueError:
            raise ParameterError(f"{key} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{key} must be a number, not {value!r}")
    if key == "pool_timeout":
        if not math.isfinite(value) or value < 0 or value >= threading.TIMEOUT_MAX:
            raise ParameterError(f"pool_timeout must be a number of seconds >= 0, not {value!r}")
        return float(value)
    lowest = 1 if key == "pool_size" else -1
    if not isinstance(value, int) or value < lowest:
        what = "a positive integer" if key == "pool_size" else "an integer >= 0 (-1: no limit)"
        raise ParameterError(f"{key} must be {what}, not {value!r}")
    return value


class Pool(Generic[C]):
    """Connections to one database for one queryref ``Connection`` (thread-safe).

    ``connect`` opens a new connection (None: the pool cannot grow past ``first``);
    ``close`` closes one; ``first`` is an already open connection to start with, and
    ``owned(con)`` says whether the pool may close it (a connection the user passed in stays
    open, and is kept even past ``pool_size``).
    """

    def __init__(self, engine: str, *, connect: Callable[[], C] | None,
                 close: Callable[[C], None], first: C | None = None,
                 owned: Callable[[C], bool] = lambda con: True,
                 pool_size: int = 5, max_overflow: int = 10, pool_timeout: float = 30.0,
                 hint: str = "") -> None:
        self.engine = engine
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.pool_timeout = pool_timeout
        self._connect = connect
        self._close = close
        self._owned = owned
        self._hint = hint
        # an RLock: a stream collected while this thread holds the lock gives its connection
        # back from inside the collection, on the same thread
        self._cond = threading.Condition(threading.RLock())
        self._idle: list[C] = [] if first is None else [first]
        self._busy: dict[int, tuple[C, int]] = {}  # id(con) -> (con, thread that has it)
        self._opened = 0 if first is None else 1  # open or being opened
        self._opening = 0  # being opened by some thread (not busy yet)
        self._waiting: set[int] = set()  # threads waiting for a connection
        self._closed = False

    @property
    def limit(self) -> int | None:
        """The most connections open at once (None: no limit)."""
        if self._connect is None:
            return max(self._opened, 1)
        return None if self.max_overflow < 0 else self.pool_size + self.max_overflow

    def status(self) -> dict[str, int]:
        """Counts of open, busy and idle connections (for tests and debugging).

        >>> Pool("x", connect=None, close=print).status()
        {'open': 0, 'busy': 0, 'idle': 0}
        """
        with self._cond:
            return {"open": self._opened, "busy": len(self._busy), "idle": len(self._idle)}

    def acquire(self) -> C:
        """A connection for this thread's query: an idle one, a new one, or one given back in
        time; :class:`~queryref.errors.PoolExhausted` when none comes within ``pool_timeout``."""
        me = threading.get_ident()
        deadline = time.monotonic() + self.pool_timeout
        collected = False
        while True:
            with self._cond:
                if self._closed:
                    raise BackendError("this connection is closed")
                if self._idle:
                    con = self._idle.pop()
                    self._busy[id(con)] = (con, me)
                    return con
                limit = self.limit
                grow = self._connect is not None and (limit is None or self._opened < limit)
                if grow:
                    self._opened += 1
                    self._opening += 1
                else:
                    stuck = self._deadlocked(me)
                    if stuck and collected:
                        owners = {owner for _, owner in self._busy.values()}
                        raise self._exhausted("self" if owners == {me} else "circle")
                    if not stuck:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise self._exhausted("timeout")
                        self._waiting.add(me)
                        try:
                            self._cond.wait(left)
                        finally:
                            self._waiting.discard(me)
                        continue
            if grow:
                return self._open(me)
            gc.collect()  # an abandoned stream in a cycle gives its connection back
            collected = True

    def _deadlocked(self, me: int) -> bool:
        """Whether no connection can come back: every busy one is held by a thread waiting in
        this pool (``me`` about to), and none is being opened."""
        waiting = self._waiting | {me}
        return not self._opening and all(owner in waiting for _, owner in self._busy.values())

    def _open(self, me: int) -> C:
        assert self._connect is not None
        try:
            con = self._connect()
        except BaseException:
            with self._cond:
                self._opened -= 1
                self._opening -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opening -= 1
            if not self._closed:
                self._busy[id(con)] = (con, me)
                return con
            self._opened -= 1
        self._close(con)
        raise BackendError("this connection is closed")

    def release(self, con: C, *, healthy: bool = True) -> None:
        """Give a connection back; an unhealthy one (or one past ``pool_size``) is closed."""
        with uninterrupted(), self._cond:  # (a Ctrl-C between pop and append lost a slot)
            if self._busy.pop(id(con), None) is None:
                return  # given back twice, or the pool was closed and forgot it
            owned = self._owned(con)
            keep = not self._closed and (not owned or (healthy and len(self._idle)
                                                       < self.pool_size))
            if keep:
                self._idle.append(con)
            else:
                self._opened -= 1
            self._cond.notify()
        if not keep and owned:
            self._quietly_close(con)

    def discard_idle(self) -> None:
        """Close the idle connections (one of them was found ended by the server, which
        likely ended the others too: a restart, an idle timeout, an administrator)."""
        with self._cond:
            idle = [con for con in self._idle if self._owned(con)]
            self._idle = [con for con in self._idle if not self._owned(con)]
            self._opened -= len(idle)
            self._cond.notify_all()
        for con in idle:
            self._quietly_close(con)

    def close(self) -> None:
        """Close the idle connections now, and each busy one when it is given back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
            self._cond.notify_all()
        for con in idle:
            if self._owned(con):
                self._quietly_close(con)

    def _quietly_close(self, con: C) -> None:
        try:
            self._close(con)
        except Exception:  # a connection the server already dropped
            pass

    def _exhausted(self, why: str) -> PoolExhausted:
        return exhausted(self.engine, self.limit or len(self._busy), self.pool_size,
                         self.max_overflow, self.pool_timeout, why=why, hint=self._hint)


def exhausted(engine: str, limit: int, pool_size: int, max_overflow: int, pool_timeout: float,
              *, why: str, hint: str = "") -> PoolExhausted:
    """The error for a pool that has no connection to give (saying what to do about it).

    ``why``: ``"timeout"`` (none came back in time), ``"self"`` (this thread holds them all)
    or ``"circle"`` (every holder waits for another one).
    """
    sizes = f"pool_size={pool_size}, max_overflow={max_overflow}, pool_timeout={pool_timeout:g}"
    if why == "self":
        msg = (
            f"this thread holds every connection of the {engine} pool ({limit}, in streams "
            "it has not finished) and needs one more: waiting could never end. Read those "
            "streams to the end or drop them first (leave their with block), or connect "
            f"with a larger max_overflow ({sizes}){hint}"
        )
    elif why == "circle":
        msg = (
            f"every connection of the {engine} pool ({limit}) is held by a thread that waits "
            "for one more (each holds a stream it has not finished while it runs another "
            "query): waiting could never end, so this query gives up. Run fewer such threads "
            "at once, read the outer stream to the end first (or cache() it), or connect with "
            f"a larger pool_size/max_overflow ({sizes}){hint}"
        )
    else:
        msg = (
            f"all {limit} connections of the {engine} pool stayed busy for {pool_timeout:g} s: "
            "end streams you no longer read (read them to the end, leave their with block, "
            "drop the reader), or connect with a larger pool_size/max_overflow or "
            f"pool_timeout ({sizes}){hint}"
        )
    return PoolExhausted(msg, limit=limit, timeout=pool_timeout)
