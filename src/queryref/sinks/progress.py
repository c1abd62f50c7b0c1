"""A one-line progress report (rows, bytes, rate) on stderr while a person waits."""

from __future__ import annotations

import os
import sys
import time
from typing import IO

from queryref._sizes import format_bytes
from queryref._width import fit, terminal_width

#: the environment variable that sets how many seconds pass before a progress line appears
AFTER_ENV = "QUERYREF_PROGRESS_AFTER"
#: seconds between two redraws of the line
EVERY = 0.5


def _after_default() -> float:
    """Seconds before the line appears: ``$QUERYREF_PROGRESS_AFTER``, else 1 (a run that
    ends sooner prints nothing)."""
    try:
        return max(float(os.environ.get(AFTER_ENV, "1")), 0.0)
    except ValueError:
        return 1.0


class Progress:
    """Counts rows and bytes; prints at most twice a second, only after the first second.

    ``enabled="auto"`` shows it when stderr is a terminal. With ``total`` it also counts parts
    done (``step()``); ``count_rows=False`` shows bytes only (rows not known until the end).
    The line fits the terminal: it drops the rate, then the time, then the label rather than
    wrap onto a second line.

    >>> p = Progress("fetching", enabled=False)
    >>> p.add(1000, 2_000_000); p.rows, p.bytes
    (1000, 2000000)
    >>> p.line(2.0, width=80)
    'fetching: 1,000 rows, 1.9 MiB in 2.0s (976.6 KiB/s)'
    >>> p.line(2.0, width=30)
    'fetching: 1,000 rows, 1.9 MiB'
    """

    def __init__(self, what: str, enabled: bool | str = "auto", *, total: int | None = None,
                 count_rows: bool = True, stream: IO[str] | None = None) -> None:
        self.what = what
        self.rows = 0
        self.bytes = 0
        self.total = total
        self.parts = 0
        self.count_rows = count_rows
        self._stream = stream
        self._after = _after_default()
        self._start = time.monotonic()
        self._last: float | None = None
        self._shown = False
        self._on = self.stream.isatty() if enabled == "auto" else bool(enabled)

    @property
    def stream(self) -> IO[str]:
        """Where the line goes (stderr unless given; looked up when used, so a redirected
        ``sys.stderr`` is followed)."""
        return self._stream if self._stream is not None else sys.stderr

    def add(self, rows: int, nbytes: int) -> None:
        """Count a batch; maybe print."""
        self.rows += rows
        self.bytes += nbytes
        if not self._on:
            return
        now = time.monotonic()
        if now - self._start >= self._after and (self._last is None
                                                   or now - self._last >= EVERY):
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

    def line(self, elapsed: float, width: int | None = None) -> str:
        """The line after ``elapsed`` seconds, the longest form that fits in ``width``
        display columns (default: one short of the terminal's, since a line that fills the
        width wraps on some terminals)."""
        elapsed = max(elapsed, 1e-9)
        counts = ", ".join(
            ([f"{self.parts}/{self.total} partitions"] if self.total is not None else [])
            + ([f"{self.rows:,} rows"] if self.count_rows else [])
            + [format_bytes(self.bytes)])
        timed = f"{counts} in {elapsed:.1f}s"
        rate = f"{timed} ({format_bytes(self.bytes / elapsed)}/s)"
        variants = [f"{self.what}: {rate}", f"{self.what}: {timed}", f"{self.what}: {counts}",
                    counts]
        if width is None:
            width = terminal_width(self.stream) - 1
        return fit(variants, width)

    def _print(self, now: float, end: str = "\r") -> None:
        stream = self.stream
        stream.write(f"\x1b[2K{self.line(now - self._start)}{end}")
        stream.flush()
        self._shown = True

    def done(self) -> None:
        """Finish the line if one was shown."""
        if self._on and self._shown:
            self._print(time.monotonic(), end="\n")
