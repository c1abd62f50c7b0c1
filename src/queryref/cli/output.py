"""What the command line prints and writes: CSV, JSON, streamed files, and the terminal's
progress line and messages (the table itself is :mod:`queryref.cli.table`).

Files are written batch by batch to a temporary file next to the target and renamed into
place only when complete, so an interrupted or refused run leaves nothing half-written: the
sinks' own writer (:mod:`queryref.sinks.files`) for Parquet, CSV and Arrow, a JSON array here.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.csv as pcsv

from queryref._sizes import format_bytes
from queryref.sinks import files as _files
from queryref.sinks.budget import Budget
from queryref.sinks.progress import Progress

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

FileFormat = Literal["parquet", "csv", "arrow", "json"]

#: file extensions and the format they mean
EXTENSIONS: dict[str, FileFormat] = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
    ".json": "json",
}


@dataclass(frozen=True)
class Written:
    """A file the CLI wrote: where, how many rows, how big on disk, how long it took."""

    path: str
    rows: int
    bytes: int
    seconds: float

    def summary(self) -> str:
        return (f"wrote {self.rows:,} rows ({format_bytes(self.bytes)}) to {self.path} "
                f"in {self.seconds:.2f}s")


class Meter(Progress):
    """The progress line while a file is written: the sinks' :class:`Progress` (fit to the
    terminal's width), cleared, not left behind, when the run ends or is interrupted
    (:meth:`clear`), and safe to clear from the Ctrl-C handler's thread."""

    def __init__(self, what: str, stream: IO[str], enabled: bool) -> None:
        super().__init__(what, enabled, stream=stream)
        self._lock = threading.Lock()
        self._stopped = False

    def _print(self, now: float, end: str = "") -> None:
        line = self.line(now - self._start)
        with self._lock:
            if self._stopped:
                return
            self.stream.write(f"{_CLEAR}{line}")
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        """Remove the line (if shown) and print no more."""
        with self._lock:
            self._stopped = True
            if self._shown:
                self.stream.write(_CLEAR)
                self.stream.flush()
                self._shown = False

    def done(self) -> None:
        """The run is over: the summary that follows replaces the line."""
        self.clear()


class Terminal:
    """Where a command reads and writes: stdin, stdout, and stderr for notes and errors,
    which first clear the progress line if one is shown (else a message printed over it
    would keep its tail: "...cancelledin 1.5s")."""

    def __init__(self, stdin: IO[str] | None = None, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.stdout_tty = _isatty(self.stdout)
        self.stderr_tty = _isatty(self.stderr)
        self._meter: Meter | None = None

    def meter(self, what: str, enabled: bool | None = None) -> Meter:
        """A progress line on stderr (shown by default when stderr is a terminal)."""
        self._meter = Meter(what, self.stderr, self.stderr_tty if enabled is None else enabled)
        return self._meter

    def note(self, text: str) -> None:
        """A line on stderr, after clearing the progress line (ours, or the engine's own:
        DuckDB draws one for long queries on a terminal)."""
        if self._meter is not None:
            self._meter.clear()
        self.stderr.write(_CLEAR * self.stderr_tty + text.rstrip("\n") + "\n")
        self.stderr.flush()

    def show(self, text: str) -> None:
        """Text for a person on stdout (a table), on a line of its own."""
        self.stdout.write(_CLEAR * self.stdout_tty + text.rstrip("\n") + "\n")


#: back to the start of the line, and clear it
_CLEAR = "\r\x1b[2K"


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def format_for(path: str) -> FileFormat | None:
    """The file format an output path's extension asks for (None when it says nothing)."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


# -- CSV and JSON text ----------------------------------------------------------------------
def csv_text(batch: pa.RecordBatch | pa.Table, header: bool) -> str:
    """A batch as CSV (with or without the header line), in pyarrow's CSV dialect."""
    buf = io.BytesIO()
    pcsv.write_csv(batch, buf, pcsv.WriteOptions(include_header=header))
    return buf.getvalue().decode("utf-8")


def json_value(value: Any) -> Any:
    """A Python value from Arrow as something ``json`` can write, keeping numbers numbers.

    >>> json_value(decimal.Decimal("1.50")), json_value(datetime.date(2024, 1, 2))
    (1.5, '2024-01-02')
    >>> json_value(float("nan")) is None
    True
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, datetime.date | datetime.time | datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(p, tuple) and len(p) == 2 for p in value):  # a MAP
            return {str(k): json_value(v) for k, v in value}
        return [json_value(v) for v in value]
    return value


def json_rows(batch: pa.RecordBatch | pa.Table) -> Iterator[str]:
    """Each row of a batch as one JSON object (duplicate column names: the last wins)."""
    names = batch.schema.names
    for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
        yield json.dumps({n: json_value(v) for n, v in zip(names, row, strict=True)},
                         ensure_ascii=False)


class JSONArrayWriter:
    """Writes rows as one JSON array, a row per line, batch by batch."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.first = True

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        for row in json_rows(batch):
            self.out.write(("[\n" if self.first else ",\n") + row)
            self.first = False

    def close(self) -> None:
        self.out.write("[]\n" if self.first else "\n]\n")


def write_text(batches: Iterable[pa.RecordBatch | pa.Table], out: IO[str], fmt: str) -> None:
    """Batches as CSV or a JSON array on a text stream."""
    if fmt == "json":
        writer = JSONArrayWriter(out)
        for batch in batches:
            writer.write(batch)
        writer.close()
        return
    header = True
    for batch in batches:
        out.write(csv_text(batch, header))
        header = False


# -- streamed output ------------------------------------------------------------------------
class _Budget:
    """The CLI's limits on a streamed result (counted by :class:`queryref.sinks.budget.Budget`),
    and its progress meter."""

    def __init__(self, max_bytes: int | None, max_rows: int | None, meter: Progress) -> None:
        self.limits = Budget(max_bytes, max_rows)
        self.meter = meter

    def check(self, batch: pa.RecordBatch) -> None:
        self.meter.add(batch.num_rows, batch.nbytes)
        self.limits.add(rows=batch.num_rows, nbytes=batch.nbytes)


@contextlib.contextmanager
def _batches(q: QueryRef, max_rows: int | None, timeout: float | None
             ) -> Iterator[pa.RecordBatchReader]:
    """The query's result as a batch reader (``LIMIT max_rows + 1`` pushed down), closed after:
    closing a reader early stops the query in the database."""
    run = q.limit(max_rows + 1) if max_rows is not None else q
    reader = run.to_arrow_batches(timeout=timeout)
    try:
        yield reader
    finally:
        reader.close()


def stream_text(q: QueryRef, out: IO[str], fmt: str, *, max_bytes: int | None,
                max_rows: int | None, timeout: float | None) -> int:
    """Stream the result to a text stream (``--out -``) as CSV or JSON; the number of rows."""
    budget = _Budget(max_bytes, max_rows, Progress("streaming", enabled=False))

    def checked(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        for batch in reader:
            budget.check(batch)
            yield batch

    with _batches(q, max_rows, timeout) as reader:
        write_text(checked(reader), out, fmt)
    return budget.meter.rows


def write_file(q: QueryRef, path: str, fmt: FileFormat, *, max_bytes: int | None,
               max_rows: int | None, timeout: float | None, meter: Progress) -> Written:
    """Stream the result to ``path`` in ``fmt``, counted on ``meter``; the file appears only
    when complete."""
    start = time.perf_counter()
    if fmt == "parquet" and not meter.on and max_rows is None:
        # No line to draw and no row limit: DuckDB writes it with COPY, no Python in the path.
        done = q.to_parquet(path, max_bytes=max_bytes, timeout=timeout)
        return Written(path, done.rows, done.bytes, time.perf_counter() - start)
    budget = _Budget(max_bytes, max_rows, meter)
    with _files.atomic_file(path, os.path.splitext(path)[1]) as tmp:
        with _batches(q, max_rows, timeout) as reader:
            _write_batches(reader, tmp, fmt, budget)
        meter.done()
    return Written(path, meter.rows, os.path.getsize(path), time.perf_counter() - start)


def _write_batches(reader: pa.RecordBatchReader, tmp: str, fmt: FileFormat,
                   budget: _Budget) -> None:
    schema = reader.schema
    if fmt == "json":
        with open(tmp, "w", encoding="utf-8") as out:
            writer = JSONArrayWriter(out)
            for batch in reader:
                budget.check(batch)
                writer.write(batch)
            writer.close()
        return
    with _files.writer(tmp, fmt, schema) as sink:
        for batch in reader:
            budget.check(batch)
            sink.write_batch(batch)
