"""Snowflake for the tests: fakesnow's server on loopback, reached by the real connector.

``snowflake_connection()`` yields a ``qr.Connection`` on a database of its own (fakesnow makes
it on connect). The server starts once per process and stops when the process exits.

What fakesnow's server does not do (each pinned by a strict xfail in
``tests/backends/test_snowflake.py``): ``EXPLAIN``, ``SYSTEM$CANCEL_QUERY``, the per-query
abort request, and remote result chunks (it sends every result inline, so chunk sizes are
never reported; the guard falls back on row counts times the schema's widths).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import queryref as qr

_SERVER: dict[str, Any] = {}


def server_kwargs() -> dict[str, Any]:
    """``snowflake.connector.connect`` arguments for the (shared) fakesnow server."""
    if "kwargs" not in _SERVER:
        import fakesnow

        stack = contextlib.ExitStack()
        _SERVER["kwargs"] = stack.enter_context(fakesnow.server())
        _SERVER["stack"] = stack
        # uvicorn set its loggers up at start; quiet them (and fakesnow's per-query notes) so
        # nothing writes to streams pytest has closed when the server stops at exit
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fakesnow", "fakesnow.server"):
            logging.getLogger(name).setLevel(logging.ERROR)
        atexit.register(stack.close)
    return dict(_SERVER["kwargs"])


def raw_connection(database: str | None = None, schema: str = "TESTS") -> Any:
    """A ``snowflake.connector`` connection to a fresh (or the named) database."""
    import snowflake.connector

    db = database or f"QR_{uuid.uuid4().hex[:10].upper()}"
    return snowflake.connector.connect(**server_kwargs(), database=db, schema=schema)


def server_url(database: str, schema: str = "TESTS", password: str | None = None
               ) -> tuple[str, dict[str, Any]]:
    """A ``snowflake://`` URL for the fakesnow server, and the options the URL cannot hold.

    fakesnow accepts any password, so tests can use one that is easy to look for.
    """
    kw = server_kwargs()
    pw = password or kw["password"]
    url = (f"snowflake://{kw['user']}:{pw}@{kw['account']}/{database}/{schema}"
           f"?host={kw['host']}&port={kw['port']}&protocol={kw['protocol']}")
    return url, {"session_parameters": kw["session_parameters"],
                 "network_timeout": kw["network_timeout"]}


@contextlib.contextmanager
def snowflake_connection() -> Iterator[qr.Connection]:
    """A queryref connection to fakesnow through the real connector (closed afterwards)."""
    raw = raw_connection()
    con = qr.connect(raw)
    try:
        yield con
    finally:
        con.close()
        raw.close()
