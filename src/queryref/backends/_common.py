"""Pieces every server backend shares: deadlines, Ctrl-C, wrapping driver errors."""

from __future__ import annotations

import math
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from queryref._redact import chain_holds, raise_clean, redact
from queryref.errors import BackendError, QueryRefError, QueryTimeout

T = TypeVar("T")


def describe_url(url: str) -> str:
    """``scheme user@host:port/db`` without the password or query options.

    >>> describe_url("postgresql://bob:pw@db.example:5432/sales?sslmode=require")
    'postgresql bob@db.example:5432/sales'
    """
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme} {user}{host}{port}{parts.path}"


def check_timeout(seconds: object) -> float | None:
    """``seconds`` if it is a usable ``timeout=`` (None, or a positive finite number).

    >>> check_timeout(2.5), check_timeout(None)
    (2.5, None)
    """
    if seconds is None:
        return None
    from queryref.errors import ParameterError

    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ParameterError(f"timeout must be a number of seconds, not {seconds!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ParameterError(f"timeout must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


class Deadline:
    """Calls ``cancel`` once ``seconds`` have passed, unless stopped first.

    ``expired`` says whether it fired, so a backend can turn the cancellation it caused into
    :class:`~queryref.errors.QueryTimeout`. A cancel that reaches the engine before the query
    does (the deadline fell before or as it was sent) is lost, and the query would run to its
    end: so once fired, the cancel is sent again at growing intervals (``RETRY_S``) until
    :meth:`stop`. ``stop`` waits for a cancel being sent, so none lands on the connection's
    next query.

    >>> d = Deadline(None, lambda: None); d.stop(); d.expired
    False
    """

    #: pauses between the repeated cancels after the deadline (then it gives up)
    RETRY_S = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)

    def __init__(self, seconds: float | None, cancel: Callable[[], object]) -> None:
        self.seconds = seconds
        self.expired = False
        self._cancel = cancel
        self._timer: threading.Timer | None = None
        self._stopped = threading.Event()
        self._sending = threading.Lock()
        limit = check_timeout(seconds)
        if limit is not None and limit < threading.TIMEOUT_MAX:
            # (a longer one than the OS can wait for is no limit at all)
            self._timer = threading.Timer(limit, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.expired = True
        for pause in (0.0, *self.RETRY_S):
            if self._stopped.wait(pause):
                return
            with self._sending:
                if self._stopped.is_set():
                    return
                try:
                    self._cancel()
                except Exception:  # the query may have just finished; nothing to stop
                    pass

    def stop(self) -> None:
        """Disarm (idempotent); returns once no cancel is being sent."""
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
            with self._sending:
                pass

    def error(self) -> QueryTimeout:
        """The error to raise once the deadline cancelled the query."""
        msg = (
            f"the query ran longer than timeout={self.seconds:g}s and was cancelled in the "
            "database; filter or aggregate first, or give a larger timeout="
        )
        return QueryTimeout(msg)


def _python_ctrl_c() -> Callable[..., Any] | None:
    """The Python handler Ctrl-C reaches on this thread, or None: only the main thread gets
    it, and only when SIGINT has a Python handler (not ignored, not the OS default)."""
    handler = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(handler):
        return None
    return handler


def interruptible(fn: Callable[[], T], cancel: Callable[[], object]) -> T:
    """``fn()``, a driver call that may block for long, stopped by Ctrl-C within moments.

    While a driver blocks in C, Python's SIGINT handler waits for the call to return (DuckDB
    looks for Ctrl-C only between the tasks it runs, which can be minutes apart in a big join;
    libpq waits for the next row), and ADBC's own handler turns Ctrl-C into a driver error. So
    when Ctrl-C can reach Python (the main thread, with a Python SIGINT handler), the call
    runs on a helper thread while this one waits: Ctrl-C ends the wait, ``cancel()`` stops
    the query (sent again until the call returns: a cancel that comes before the engine
    started the query is lost), and KeyboardInterrupt goes on, the query stopped.

    >>> interruptible(lambda: 6 * 7, cancel=lambda: None)
    42
    """
    if _python_ctrl_c() is None:
        return fn()
    out: list[tuple[bool, Any]] = []
    done = threading.Event()
    queued = False
    try:
        with uninterrupted():  # (queued, or not at all: a wait for a call never queued hangs)
            _HELPERS.run(fn, out, done)
            queued = True
        # (in slices: the OS may hand SIGINT to any thread, and then only a wait that ends
        # lets this one run Python's handler)
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        while queued and not done.wait(0.05):
            try:
                cancel()
            except Exception:  # nothing to stop (yet, or any more)
                pass
        raise
    ok, value = out[0]
    if ok:
        return value
    raise value


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C back while a few steps that must run whole run, then deliver it.

    Giving a driver's resources back takes several steps (release a statement, then mark the
    cursor closed; take a connection off the busy list, then put it on the idle one), and a
    KeyboardInterrupt between two of them leaves them half done: ADBC's cursor then closes
    its statement a second time when it is garbage-collected ("Underflow in closing this
    AdbcStatement"), and a connection never given back is a pool slot lost for good. Keep
    what runs inside short and local (no waits on a server): Ctrl-C waits for it. Only the
    main thread gets Ctrl-C; elsewhere, or when SIGINT has no Python handler, this does
    nothing.

    >>> with uninterrupted():
    ...     print("given back")
    given back
    """
    previous = _python_ctrl_c()
    if previous is None:
        yield
        return
    held: list[tuple[int, Any]] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(*held[0])


class _Helpers:
    """Threads that run :func:`interruptible`'s calls: an idle one, else a new one (a call
    still stuck in a driver after Ctrl-C never blocks the next)."""

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[Any]] = []
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], Any], out: list[tuple[bool, Any]],
            done: threading.Event) -> None:
        with self._lock:
            calls = self._idle.pop() if self._idle else None
        if calls is None:
            calls = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(calls,), name="queryref-call",
                             daemon=True).start()
        calls.put((fn, out, done))

    def _serve(self, calls: queue.SimpleQueue[Any]) -> None:
        while True:
            fn, out, done = calls.get()
            try:
                out.append((True, fn()))
            except BaseException as err:
                out.append((False, err))
            del fn, out
            with self._lock:
                self._idle.append(calls)
            done.set()
            del done


_HELPERS = _Helpers()


@dataclass(frozen=True)
class ErrorRule:
    """One row of a backend's error table (``Backend.errors``): a driver error for which
    ``when(err, message)`` holds becomes ``make(message)``, the message already redacted."""

    when: Callable[[BaseException, str], bool]
    make: Callable[[str], QueryRefError]


def wrap_error(err: BaseException, engine: str, secrets: Iterable[str | None] = (), *,
               table: Iterable[ErrorRule] = (), deadline: Deadline | None = None
               ) -> QueryRefError:
    """A driver error as a queryref error, with any password removed from its message: the
    deadline's error if it fired, else the first matching rule's, else ``BackendError``."""
    if deadline is not None and deadline.expired:
        return deadline.error()
    if isinstance(err, QueryRefError):
        return err
    message = redact(str(err).strip(), secrets) or type(err).__name__
    for rule in table:
        if rule.when(err, message):
            return rule.make(message)
    return BackendError(f"{engine}: {message}")


def raise_wrapped(err: BaseException, engine: str, secrets: Iterable[str | None] = (), *,
                  table: Iterable[ErrorRule] = (), deadline: Deadline | None = None
                  ) -> NoReturn:
    """Raise :func:`wrap_error`'s error; the driver's error stays as ``__cause__`` unless its
    text held a secret (then the chain is cut, so no traceback can show it)."""
    secrets = list(secrets)
    if isinstance(err.__cause__, KeyboardInterrupt):
        # Ctrl-C: the driver cancelled the query itself (ADBC does) and raised its error from
        # the interrupt; the user asked to stop, so they get KeyboardInterrupt, not an error
        raise KeyboardInterrupt(f"the query was cancelled in {engine}") from None
    wrapped = wrap_error(err, engine, secrets, table=table, deadline=deadline)
    # (the error being handled, SQLAlchemy's wrapper say, becomes the new one's __context__)
    if chain_holds(err, secrets) or chain_holds(sys.exc_info()[1], secrets):
        raise_clean(wrapped, secrets, cut=True)
    raise wrapped from err
