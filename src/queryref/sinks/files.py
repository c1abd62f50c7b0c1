"""File sinks: ``to_parquet`` and ``to_csv``, and the one writer of streamed files.

A file is written to a temporary file next to its target and renamed into place only when
complete, so an interrupted or refused run leaves nothing half-written (:func:`atomic_file`);
it gets the permissions ``open`` would give it (:func:`usual_permissions`). The engine writes
the file itself when it can (DuckDB ``COPY``, with the file's growth as progress); otherwise
Arrow batches stream through :func:`writer` under the budget. The command line writes its
files through the same two functions (:mod:`queryref.cli.output`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc

from queryref._options import _UNSET, resolve
from queryref.errors import ParameterError
from queryref.sinks import estimate as _estimate
from queryref.sinks.budget import Budget
from queryref.sinks.progress import Progress
from queryref.sinks.relation import Relation
from queryref.sinks.streams import open_stream
from queryref.sql.text import file_path


@dataclass(frozen=True)
class ParquetWritten:
    """What ``to_parquet`` wrote: the file, its rows and bytes, and how long it took."""

    path: str
    rows: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class CSVWritten(ParquetWritten):
    """What ``to_csv`` wrote: the file, its rows and bytes, and how long it took."""


def preflight_file(rel: Relation, *, max_bytes: Any, preflight: Any = _UNSET) -> None:
    """A file sink's pre-flight check, against its own ``max_bytes`` when it has one."""
    if max_bytes is not None:
        _estimate.preflight(rel, budget=Budget(resolve("max_bytes", max_bytes)),
                            mode=resolve("preflight", preflight))


def to_parquet(rel: Relation, path: str | os.PathLike[str], *, max_bytes: Any,
               batch_rows: Any, timeout: float | None = None) -> ParquetWritten:
    """Stream the result to ``path``; the file appears only when complete."""
    return _write_file(rel, path, "parquet", max_bytes=max_bytes, batch_rows=batch_rows,
                       timeout=timeout)


def to_csv(rel: Relation, path: str | os.PathLike[str], *, max_bytes: Any,
           batch_rows: Any, timeout: float | None = None) -> CSVWritten:
    """Stream the result to ``path`` as CSV with a header; the file appears only when complete."""
    written = _write_file(rel, path, "csv", max_bytes=max_bytes, batch_rows=batch_rows,
                          timeout=timeout)
    return CSVWritten(written.path, written.rows, written.bytes, written.seconds)


@contextlib.contextmanager
def atomic_file(target: str, suffix: str) -> Iterator[str]:
    """A temporary file next to ``target`` to write; renamed onto ``target`` (with
    :func:`usual_permissions`) when the block ends normally, removed when it raises."""
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".queryref-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        usual_permissions(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def usual_permissions(path: str) -> None:
    """mkstemp makes files only their owner can read; give the output what ``open`` would
    (the umask's), as DuckDB's ``COPY`` does."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def writer(path: str, fmt: str, schema: pa.Schema) -> Any:
    """A batch writer for the file format, ``"parquet"``, ``"csv"`` (header, values quoted
    where needed) or ``"arrow"`` (an IPC file): a context manager with ``write_batch``."""
    if fmt == "parquet":
        import pyarrow.parquet as pq  # (17 ms to import: only when a Parquet file is written)

        return pq.ParquetWriter(path, schema)
    if fmt == "csv":
        return pacsv.CSVWriter(path, schema,
                               write_options=pacsv.WriteOptions(quoting_style="needed"))
    if fmt == "arrow":
        return ipc.new_file(path, schema)
    raise ParameterError(f"no batch writer for {fmt!r} files")


def _write_file(rel: Relation, path: str | os.PathLike[str], fmt: str, *, max_bytes: Any,
                batch_rows: Any, timeout: float | None) -> ParquetWritten:
    """Write to a temporary file next to ``path``, renamed into place only when complete."""
    target = file_path(path, f"to_{fmt}()")
    if not target:
        raise ParameterError(f"to_{fmt}() needs a file path")
    budget = resolve("max_bytes", max_bytes) if max_bytes is not None else None
    start = time.perf_counter()
    label = f"writing {os.path.basename(target)}"
    with atomic_file(target, f".{fmt}") as tmp:
        rows = None
        if budget is None and timeout is None:
            copy = rel.backend.copy_to_parquet if fmt == "parquet" else rel.backend.copy_to_csv
            rows = _copy_watched(lambda: copy(rel.tree, tmp), tmp, label)
        if rows is None:
            rows = _write_stream(rel, tmp, fmt, label, budget, resolve("batch_rows", batch_rows),
                                 timeout)
    return ParquetWritten(target, rows, os.path.getsize(target), time.perf_counter() - start)


def _copy_watched(copy: Callable[[], int | None], tmp: str, label: str) -> int | None:
    """Run the engine's own copy; while it runs, report the file's growth when a person waits."""
    meter = Progress(label, resolve("progress", _UNSET), count_rows=False)
    if not meter.on:
        return copy()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            with contextlib.suppress(OSError):
                meter.add(0, os.path.getsize(tmp) - meter.bytes)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        rows = copy()
    finally:
        stop.set()
        watcher.join()
    if rows is not None:  # the last line has the rows the engine reports
        meter.count_rows = True
        meter.rows = rows
        with contextlib.suppress(OSError):
            meter.bytes = os.path.getsize(tmp)
        meter.add(0, 0)
    meter.done()
    return rows


def _write_stream(rel: Relation, path: str, fmt: str, label: str, budget: int | None,
                  batch_rows: int, timeout: float | None = None) -> int:
    stream = open_stream(rel, batch_rows, resolve("max_batch_bytes", _UNSET), timeout=timeout)
    meter = Progress(label, resolve("progress", _UNSET))
    limits = Budget(budget)
    with stream, writer(path, fmt, stream.schema) as out:
        for batch in stream:
            meter.add(batch.num_rows, batch.nbytes)
            limits.add(rows=batch.num_rows, nbytes=batch.nbytes, stop=stream.cancel)
            out.write_batch(batch)
    meter.done()
    return meter.rows
