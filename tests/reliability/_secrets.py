"""Tools of the secrets campaign: canary passwords, everything that could show one, and small
servers that make a real driver fail in a way a shared test server cannot.

A :class:`Canary` is a password made of two unique tokens around characters that need
quoting in a URL, in SQL, in ``repr`` and in HTML (``@ : / % # ? & + space ' " \\``) and
non-ASCII ones. :meth:`Canary.find` looks for it in any spelling: as typed, percent-encoded
(``quote``/``quote_plus``), ``repr``/``ascii``/JSON/``unicode_escape``-escaped, SQL-escaped,
HTML-escaped, UTF-8 bytes repr, base64 and hex; and either token alone, so a password cut in
two by a parser (``bob:sec@ret@host``) still counts as shown.

:class:`Watch` collects every text a user could see while a scenario runs: the exception and
its whole chain (``__cause__``, ``__context__``, args, notes, attributes, the formatted
traceback), records of every logger at DEBUG (the drivers' too), warnings, whatever reached the
process's stdout/stderr, and the reprs of the objects the scenario shows.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import json
import logging
import socket
import struct
import threading
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

#: loggers set to DEBUG during each scenario, on top of every logger that exists by then
DRIVER_LOGGERS = ("queryref", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool",
                  "snowflake.connector", "snowflake.snowpark", "adbc_driver_manager",
                  "adbc_driver_postgresql", "urllib3", "pymysql", "psycopg", "duckdb",
                  "asyncio", "multiprocessing")
#: the in-process fakesnow *server*: what it logs is the server's side, never shown to a user
SERVER_LOGGERS = ("fakesnow", "uvicorn")


@dataclass(frozen=True)
class Canary:
    """A unique password; ``find(text)`` names the spellings of it that ``text`` holds."""

    head: str
    tail: str
    middle: str = "@:/%#?&+ '\"\\~é€😀"

    @property
    def password(self) -> str:
        return f"{self.head}{self.middle}{self.tail}"

    @property
    def enc(self) -> str:
        """Percent-encoded for the password part of a URL."""
        return quote(self.password, safe="")

    def spellings(self) -> dict[str, str]:
        pw = self.password
        raw = pw.encode()
        return {
            "as typed": pw, "quote": quote(pw, safe=""), "quote(safe=/)": quote(pw),
            "quote_plus": quote_plus(pw), "repr": repr(pw)[1:-1], "ascii": ascii(pw)[1:-1],
            "json": json.dumps(pw)[1:-1], "unicode_escape": pw.encode("unicode_escape").decode(),
            "sql-escaped": pw.replace("'", "''"),
            "mysql-escaped": pw.replace("\\", "\\\\").replace("'", "\\'"),
            "html": html.escape(pw), "bytes repr": repr(raw)[2:-1],
            "base64": base64.b64encode(raw).decode(),
            "urlsafe base64": base64.urlsafe_b64encode(raw).decode(), "hex": raw.hex(),
            "first token": self.head, "last token": self.tail,
        }

    def find(self, text: str) -> list[str]:
        low = text.lower()
        return [name for name, s in self.spellings().items()
                if s in text or (name == "hex" and s in low)]


def canary(tag: str, middle: str | None = None) -> Canary:
    """A fresh canary; ``tag`` (the scenario's name) only helps reading a failure."""
    token = uuid.uuid4().hex
    head, tail = f"Qh{token[:10]}", f"Qt{token[10:20]}"
    return Canary(head, tail) if middle is None else Canary(head, tail, middle)


# -- what a user could see --------------------------------------------------------------------
def chain_texts(err: BaseException, frames: bool = True) -> list[tuple[str, str]]:
    """Every text an exception and its chain hold, each with where it was found.

    ``frames=False`` leaves the traceback's frames out (an IPython cell's frame shows the
    cell's source, which is what the user typed), keeping every exception's own lines.
    """
    out: list[tuple[str, str]] = []
    if frames:
        out.append(("traceback", "".join(traceback.format_exception(err))))
        out.append(("traceback (chain ignored)",
                    "".join(traceback.format_exception(err, chain=False))))
    seen: set[int] = set()
    todo: list[tuple[str, BaseException]] = [("error", err)]
    while todo:
        where, exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        out.append((f"{where} as shown", "".join(traceback.format_exception_only(exc))))
        out.append((f"{where} str", _safe(str, exc)))
        out.append((f"{where} repr", _safe(repr, exc)))
        out.append((f"{where} args", _safe(repr, exc.args)))
        for note in getattr(exc, "__notes__", None) or []:
            out.append((f"{where} note", str(note)))
        for key, value in vars(exc).items():
            if key.startswith("__") or key == "_render_traceback_":
                continue
            out.append((f"{where}.{key}", _safe(repr, value)))
            if isinstance(value, BaseException):
                todo.append((f"{where}.{key}", value))
        render = getattr(exc, "_render_traceback_", None)
        if callable(render):
            out.append((f"{where} IPython rendering", "\n".join(render())))
        for link in ("__cause__", "__context__"):
            nxt = getattr(exc, link)
            if nxt is not None:
                todo.append((f"{where}.{link}", nxt))
    return out


def object_texts(name: str, obj: Any) -> list[tuple[str, str]]:
    """How an object shows itself: str, repr, IPython's pretty printer, every ``_repr_*_``."""
    out = [(f"{name} str", _safe(str, obj)), (f"{name} repr", _safe(repr, obj))]
    try:
        from IPython.lib.pretty import pretty

        out.append((f"{name} pretty", _safe(pretty, obj)))
    except ImportError:  # pragma: no cover - IPython is a dev dependency
        pass
    for attr in dir(type(obj)):
        if attr.startswith("_repr_") and attr.endswith("_") and attr != "_repr_pretty_":
            out.append((f"{name} {attr}", _safe(functools.partial(_call, attr), obj)))
    return out


def _call(attr: str, obj: Any) -> Any:
    return getattr(obj, attr)()


def _safe(fn: Callable[[Any], Any], obj: Any) -> str:
    try:
        return str(fn(obj))
    except Exception as err:  # a repr that fails still says something: keep what it says
        return f"<{getattr(fn, '__name__', 'repr')} failed: {type(err).__name__}: {err}>"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Watch:
    """The texts of one scenario, and the check that the canary is in none of them."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    records: _Records = field(default_factory=_Records)
    caught: list[warnings.WarningMessage] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def show(self, name: str, obj: Any) -> None:
        """Everything ``obj`` shows of itself."""
        self.texts.extend(object_texts(name, obj))

    def error(self, err: BaseException, frames: bool = True) -> BaseException:
        self.errors.append(err)
        self.texts.extend(chain_texts(err, frames))
        return err

    def expect(self, fn: Callable[[], Any], kind: type[BaseException] | tuple[
            type[BaseException], ...], match: str | None = None) -> Any:
        """Run ``fn``; it must raise ``kind`` (message containing ``match``); keep its texts."""
        try:
            fn()
        except kind as err:
            self.error(err)
            if match is not None:
                assert match in str(err), (match, str(err))
            return err
        except BaseException as err:
            self.error(err)
            raise AssertionError(f"expected {kind}, got {type(err).__name__}: {err}") from err
        raise AssertionError(f"expected {kind}: nothing was raised")

    def log_texts(self, exempt: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        # what a handler writes: the message with its arguments, exception and stack text
        # (not the raw ``record.args`` objects; see docs/reliability.md)
        fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
        out = []
        for r in self.records.records:
            if r.name.split(".")[0] in SERVER_LOGGERS or r.name in exempt:
                continue
            out.append((f"log {r.name}", fmt.format(r)))
        return out

    def leaks(self, c: Canary, exempt: tuple[str, ...] = ()) -> list[str]:
        """Where ``c`` shows; ``exempt``: loggers left out (each scenario says why)."""
        found = []
        everything = self.texts + self.log_texts(exempt) + [
            (f"warning {w.category.__name__}", f"{w.message} {w.filename}:{w.lineno}")
            for w in self.caught]
        for where, text in everything:
            spellings = c.find(text)
            if spellings:
                at = max((text.find(s) for s in (c.head, c.tail, *c.spellings().values())
                          if s in text), default=0)
                found.append(f"{where} ({', '.join(spellings)}): "
                             f"...{text[max(0, at - 100): at + 60]!r}...")
        return found

    def surfaces(self) -> int:
        return len(self.texts) + len(self.log_texts()) + len(self.caught)


@contextlib.contextmanager
def watching() -> Iterator[Watch]:
    """Capture every logger at DEBUG (through the root logger and on each logger directly,
    so a logger that does not propagate is seen too) and every warning, for one scenario."""
    w = Watch()
    root = logging.getLogger()
    names = set(DRIVER_LOGGERS) | {n for n in logging.root.manager.loggerDict
                                   if n.split(".")[0] not in SERVER_LOGGERS}
    loggers = [logging.getLogger(n) for n in sorted(names)]
    saved = [(lg, lg.level) for lg in [root, *loggers]]
    for lg, _ in saved:
        lg.setLevel(logging.DEBUG)
    root.addHandler(w.records)
    extra = [lg for lg in loggers if not lg.propagate]
    for lg in extra:
        lg.addHandler(w.records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield w
            w.caught.extend(caught)
    finally:
        root.removeHandler(w.records)
        for lg in extra:
            lg.removeHandler(w.records)
        for lg, level in saved:
            lg.setLevel(level)


# -- servers that fail on purpose -------------------------------------------------------------
class FakePostgres:
    """A TCP server speaking enough of the PostgreSQL protocol to ask for the password
    (cleartext, as a ``password`` line in pg_hba.conf does) and refuse it with the message and
    SQLSTATE (28P01) PostgreSQL sends. The local server trusts loopback, so a wrong password
    can only be refused here; the driver (libpq through ADBC) and what it sends are real.

    ``echo=True`` answers like a chatty proxy that repeats what it received: the password
    arrives back in the driver's error text, decoded. ``silent=True`` accepts connections and
    never answers (for connect timeouts). ``received`` holds the passwords that arrived.
    """

    def __init__(self, *, echo: bool = False, silent: bool = False) -> None:
        self.echo = echo
        self.silent = silent
        self.received: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(32)
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True, name="fake-postgres").start()

    def close(self) -> None:
        self._sock.close()
        for c in self._held:
            c.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self.silent:
                self._held.append(conn)
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(EOFError, OSError):
            while True:
                size, code = struct.unpack("!ii", self._read(conn, 8))
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                    conn.sendall(b"N")
                    continue
                body = self._read(conn, size - 8)
                break
            parts = body.split(b"\0")
            startup = dict(zip(parts[0::2], parts[1::2], strict=False))
            user = startup.get(b"user", b"").decode()
            conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            self._read(conn, 1)
            (size,) = struct.unpack("!i", self._read(conn, 4))
            password = self._read(conn, size - 4).rstrip(b"\0").decode("utf-8", "replace")
            self.received.append(password)
            message = f'password authentication failed for user "{user}"'
            if self.echo:
                message += f' (received "{password}")'
            fields = b"SFATAL\0VFATAL\0C28P01\0M" + message.encode() + b"\0\0"
            conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
