"""A one-line progress report (rows, bytes, rate) on stderr while a person waits."""

from __future__ import annotations

import sys
import time

from queryref._sizes import format_bytes


class Progress:
    """Counts rows and bytes; prints at most twice a second, only after the first second.

    ``enabled="auto"`` shows it when stderr is a terminal.
    """

    def __init__(self, what: str, enabled: bool | str = "auto") -> None:
        self.what = what
        self.rows = 0
        self.bytes = 0
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

    def _print(self, now: float, end: str = "\r") -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = format_bytes(self.bytes / elapsed)
        line = (f"{self.what}: {self.rows:,} rows, {format_bytes(self.bytes)} "
                f"in {elapsed:.1f}s ({rate}/s)")
        sys.stderr.write(f"\x1b[2K{line}{end}")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        """Finish the line if one was shown."""
        if self._on and self._shown:
            self._print(time.monotonic(), end="\n")
