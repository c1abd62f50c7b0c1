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
behind. So each name says which process made it (a hash of the host, the process id and its
start time: :func:`owner_tag`), a SIGTERM ends the process like a normal exit (the tables are
dropped on the way out; installed with the first cache table, when nothing else handles
SIGTERM), and :func:`sweep_orphans` (run by the PostgreSQL and MySQL/MariaDB backends when
they connect and when they close) drops the tables in the current schema whose process on this
host is gone (``kill -9``, a crash). Tables made from another host are left alone: their
process cannot be seen from here (drop them by name; UNLOGGED tables are also emptied by a
server crash).

A ``close()`` while another thread's ``cache()`` still runs its ``CREATE ... AS`` drops the
table before it exists; the creating thread then sees its connection closed and drops it on a
connection of its own.

This module does the warehouse's part (the statements, the table's release, the sweep) for
an :class:`Owner`, what the cache needs of a connection; ``QueryRef.cache()`` wraps the table in
a ``CachedQueryRef``.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from queryref.backends import Backend
from queryref.backends.open import open_backend
from queryref.errors import CacheReleased
from queryref.sql.text import ident

# Engines whose TEMPORARY tables only the creating connection sees, and where cursors run
# queries: the cache goes to an attached in-memory catalog instead.
_ATTACHED_CATALOG = {"duckdb": "_queryref_cache"}
#: engines that run every query in one session: a TEMPORARY table is seen by all of them
_ONE_SESSION = frozenset({"snowflake"})
#: engines with unlogged tables (what a temporary table saves: the write-ahead log)
_UNLOGGED = frozenset({"postgres"})


#: a cache table's name: ``_qr_cache_<host>_<pid>_<start>_<random>`` (hex, <= 50 characters)
_OWNED_NAME = re.compile(r"_qr_cache_([0-9a-f]{6})_([0-9a-f]+)_([0-9a-f]+)_[0-9a-f]{12}\Z")


def _host() -> str:
    """This machine, as 6 hex digits (its host name and boot: process ids restart at boot)."""
    boot = ""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        pass
    return hashlib.sha1(f"{socket.gethostname()}/{boot}".encode()).hexdigest()[:6]


def _started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux); 0 where unknown; None if
    there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # someone else's process: alive
        pass
    return 0


def owner_tag() -> str:
    """``<host>_<pid>_<start>`` of this process, as it appears in its cache tables' names.

    >>> bool(re.fullmatch(r"[0-9a-f]{6}_[0-9a-f]+_[0-9a-f]+", owner_tag()))
    True
    """
    pid = os.getpid()
    return f"{_host()}_{pid:x}_{_started(pid) or 0:x}"


def _new_name() -> exp.Identifier:
    """A fresh table name, always quoted (so every engine keeps it exactly as written)."""
    return exp.Identifier(this=f"_qr_cache_{owner_tag()}_{uuid.uuid4().hex[:12]}", quoted=True)


def orphaned(name: str, host: str | None = None) -> bool:
    """Whether a cache table was made by a process of this host that is gone.

    >>> orphaned("_qr_cache_" + owner_tag() + "_0123456789ab")
    False
    >>> orphaned("orders"), orphaned("_qr_cache_ffffff_1_0_0123456789ab", host="000000")
    (False, False)
    """
    m = _OWNED_NAME.match(name)
    if m is None or m.group(1) != (host or _host()):
        return False
    pid, start = int(m.group(2), 16), int(m.group(3), 16)
    now = _started(pid)
    return now is None or (start != 0 and now != 0 and now != start)


def sweep_orphans(backend: Any) -> int:
    """Drop the cache tables in the current schema whose process (on this host) is gone;
    the number dropped. Quiet: a failure leaves them for the next sweep."""
    dialect = backend.dialect
    if dialect not in ("postgres", "mysql"):
        return 0
    listing = (
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename LIKE '\\_qr\\_cache\\_%'" if dialect == "postgres" else
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME LIKE '\\_qr\\_cache\\_%'")
    dropped = 0
    try:
        with backend.stream(listing, 10_000) as result:
            names = [str(n) for batch in result for n in batch.column(0).to_pylist()]
        host = _host()
        for name in names:
            if orphaned(name, host):
                table = exp.Table(this=exp.Identifier(this=name, quoted=True))
                backend.execute(exp.Drop(kind="TABLE", tables=[table], exists=True)
                                .sql(dialect=dialect))
                dropped += 1
    except Exception:
        pass
    return dropped


_SIGTERM_LOCK = threading.Lock()
_sigterm_installed = False


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM as a normal exit: ``SystemExit`` unwinds, finalizers and atexit drop tables."""
    raise SystemExit(128 + signum)


def _handle_sigterm() -> None:
    """Install :func:`_exit_on_sigterm` once, from the main thread, if SIGTERM has Python's
    default handling (an application's own handler is left alone)."""
    global _sigterm_installed
    with _SIGTERM_LOCK:
        if _sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        _sigterm_installed = True
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _exit_on_sigterm)
        except (ValueError, OSError):  # no signals here (an embedded interpreter)
            pass


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


@dataclass(frozen=True)
class Owner:
    """The connection a cache table belongs to, as the cache sees it: its ``backend``, the
    ``tables`` it drops when it closes (name -> DROP statement), and whether it ``is_open``."""

    backend: Backend
    tables: dict[str, str]
    is_open: Callable[[], bool]


def create(query: exp.Query, owner: Owner) -> CacheHandle:
    """Run ``CREATE ... TABLE <new name> AS <query>``; the handle on the new table."""
    dialect = owner.backend.dialect
    table, sql = statements(query, dialect)
    outlives = outlives_session(dialect)
    drop = exp.Drop(kind="TABLE", tables=[table.copy()], exists=True).sql(dialect=dialect)
    if outlives:  # dropped by close()/GC/exit unless released first
        _handle_sigterm()
        owner.tables[table.name] = drop
    try:
        for statement in sql:
            owner.backend.execute(statement)
    except BaseException:
        owner.tables.pop(table.name, None)
        raise
    finally:
        if outlives and not owner.is_open():  # closed meanwhile: its DROP came first
            _drop_late(owner.backend, drop)
    return CacheHandle(owner, table)


def _drop_late(backend: Backend, drop: str) -> None:
    """Drop a table whose connection closed while it was being made, on a connection of its
    own (the closed one's pool is gone). Quiet: what is left, the next sweep finds."""
    url = backend.reopen()
    if url is None:
        return
    try:
        other = open_backend(url, {}, sweep=sweep_orphans)
    except Exception:
        return
    try:
        other.execute(drop)
    except Exception:
        pass
    finally:
        other.close()


class CacheHandle:
    """The table behind a cached QueryRef, and whether it was released."""

    def __init__(self, owner: Owner, table: exp.Table) -> None:
        self.owner = owner
        self.table = table
        self._dropped = False
        self._lock = threading.Lock()

    @property
    def released(self) -> bool:
        """Whether the table is gone: released, or its connection closed."""
        return self._dropped or not self.owner.is_open()

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
            backend = self.owner.backend
            drop = exp.Drop(kind="TABLE", tables=[self.table.copy()], exists=True)
            backend.execute(drop.sql(dialect=backend.dialect))
            self._dropped = True
            self.owner.tables.pop(self.table.name, None)
