"""Pieces every server backend shares: redacting secrets, deadlines, wrapping driver errors."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from queryref.errors import BackendError, QueryCancelled, QueryRefError, QueryTimeout

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)")
_KV_PASSWORD = re.compile(r"(?i)(?P<head>\b(?:password|pwd|passwd)\s*[=:]\s*)(?P<pw>'[^']*'|\S+)")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every password-looking part replaced by ``***``.

    >>> redact("postgresql://bob:hunter2@db:5432/x failed; password=hunter2")
    'postgresql://bob:***@db:5432/x failed; password=***'
    >>> redact("login failed for hunter2", ["hunter2"])
    'login failed for ***'
    """
    out = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", text)
    out = _KV_PASSWORD.sub(r"\g<head>***", out)
    for secret in secrets:
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    return out


def url_password(url: str) -> str | None:
    """The password part of a URL, if any (to be redacted wherever it could show)."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


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
    :class:`~queryref.errors.QueryTimeout`.

    >>> d = Deadline(None, lambda: None); d.stop(); d.expired
    False
    """

    def __init__(self, seconds: float | None, cancel: Callable[[], object]) -> None:
        self.seconds = seconds
        self.expired = False
        self._cancel = cancel
        self._timer: threading.Timer | None = None
        limit = check_timeout(seconds)
        if limit is not None and limit < threading.TIMEOUT_MAX:
            # (a longer one than the OS can wait for is no limit at all)
            self._timer = threading.Timer(limit, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.expired = True
        try:
            self._cancel()
        except Exception:  # the query may have just finished; nothing to stop
            pass

    def stop(self) -> None:
        """Disarm (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()

    def error(self) -> QueryTimeout:
        """The error to raise once the deadline cancelled the query."""
        msg = (
            f"the query ran longer than timeout={self.seconds:g}s and was cancelled in the "
            "database; filter or aggregate first, or give a larger timeout="
        )
        return QueryTimeout(msg)


def wrap_error(
    err: BaseException,
    engine: str,
    secrets: Iterable[str | None] = (),
    *,
    deadline: Deadline | None = None,
    cancelled: bool = False,
) -> QueryRefError:
    """A driver error as a queryref error, with any password removed from its message."""
    if deadline is not None and deadline.expired:
        return deadline.error()
    if isinstance(err, QueryRefError):
        return err
    message = redact(str(err).strip(), secrets) or type(err).__name__
    if cancelled:
        return QueryCancelled(f"the query was cancelled in {engine}")
    return BackendError(f"{engine}: {message}")


def raise_wrapped(err: BaseException, engine: str, secrets: Iterable[str | None] = (),
                  **kwargs: object) -> None:
    """Raise :func:`wrap_error`'s error; the driver's error stays as ``__cause__`` unless its
    text held a secret (then the chain is cut, so no traceback can show it)."""
    secrets = list(secrets)
    wrapped = wrap_error(err, engine, secrets, **kwargs)  # type: ignore[arg-type]
    leaked = redact(str(err), secrets) != str(err)
    if leaked:
        raise wrapped from None
    raise wrapped from err
