"""A one-line progress report (rows, bytes, rate) on stderr while a person waits."""

from __future__ import annotations

import sys
import time

from queryref._sizes import format_bytes


class Progress:
    """Counts rows and bytes; prints at most twice a second, only after the first second.

    ``enabled="auto"`` shows it when stderr is a terminal. With ``total`` it also counts parts
    done (``step()``); ``count_rows=False`` shows bytes only (rows not known until the end).
    """

    def __init__(self, what: str, enabled: bool | str = "auto", *, total: int | None = None,
                 count_rows: bool = True) -> None:
        self.what = what
        self.rows = 0
        self.bytes = 0
        self.total = total
        self.parts = 0
        self.count_rows = count_rows
        self._start = time.monotonic()
        self._last = self._start
        self._shown = False
        self._on = sys.stderr.isatty() if enabled == "auto" else bool(enabled)

    def add(self, rows: int, nbytes: int) -> None:
        """Count a batch; maybe print."""
        self.rows += rows
        self.bytes += nbytes
        if not self._on:
            return
        now = time.monotonic()
        if now - self._start >= 1.0 and now - self._last >= 0.5:
            self._last = now
            self._print(now)

    @property
    def on(self) -> bool:
        """Whether this report is shown."""
        return self._on

    def step(self, rows: int = 0, nbytes: int = 0) -> None:
        """One of ``total`` parts is done (with its rows and bytes); maybe print."""
        self.parts += 1
        self.add(rows, nbytes)

    def _print(self, now: float, end: str = "\r") -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = format_bytes(self.bytes / elapsed)
        parts = f"{self.parts}/{self.total} partitions, " if self.total is not None else ""
        rows = f"{self.rows:,} rows, " if self.count_rows else ""
        line = (f"{self.what}: {parts}{rows}{format_bytes(self.bytes)} "
                f"in {elapsed:.1f}s ({rate}/s)")
        sys.stderr.write(f"\x1b[2K{line}{end}")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        """Finish the line if one was shown."""
        if self._on and self._shown:
            self._print(time.monotonic(), end="\n")
