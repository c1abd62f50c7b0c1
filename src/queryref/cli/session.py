"""One command's connection, opened on first use, and what its error messages need to know.

The connection is the library's own: nothing is wrapped or swapped. Ctrl-C reaches the
command on the main thread, where the backends' calls are interruptible (the query is
cancelled in the database while it starts or streams); closing the session closes the
connection, which first cancels the streams it still has open (its stream registry).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queryref._connection import Connection
    from queryref._queryref import QueryRef


class ConnectError(Exception):
    """The database named by ``--db`` could not be opened; ``__cause__`` says why."""


class Session:
    """One command's connection (opened on first use), and the SQL text it last handed to
    the library (``sql``, ``cell``), so an error can point into it."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.sql: str | None = None
        self.cell: str | None = None
        self._con: Connection | None = None

    @property
    def con(self) -> Connection:
        """The connection (``--db``, ``$QUERYREF_URL``, else DuckDB in memory)."""
        if self._con is None:
            import queryref as qr

            try:
                con = qr.connect(self.url) if self.url else qr.connect()
            except Exception as err:
                raise ConnectError(str(err)) from err
            if con.dialect == "duckdb":
                # DuckDB draws its own progress bar on stdout when that is a terminal: over
                # the table, and across the command line's own line on stderr
                with contextlib.suppress(Exception):
                    con.execute("SET enable_progress_bar = false")
            self._con = con
        return self._con

    def query(self, text: str, params: dict[str, Any]) -> QueryRef:
        """``con.sql(text, **params)``, remembering the text for a parse error's pointer."""
        con = self.con
        self.sql = text
        return con.sql(text, **params)

    def close(self) -> None:
        """Close the connection: open streams are cancelled in the database first."""
        if self._con is not None:
            with contextlib.suppress(Exception):  # closing is best effort after an error
                self._con.close()
