"""``q.map_partitions(fn, by=...)``: run ``fn`` on each partition, each in a child process.

A child is started with the ``spawn`` start method (a fresh interpreter: no copy of the
parent's memory, nothing shared) and gives all its memory back to the OS when it exits, so
leaky per-partition work (pandas, models, C extensions) cannot grow the parent.

How a child gets its partition, without the parent holding the rows:

- when the connection can be reopened elsewhere (PostgreSQL, a SQLAlchemy URL:
  ``Backend.reopen()``), the child connects itself and fetches its partition's query. The URL
  (which may hold a password) travels in the pickled spawn arguments through a pipe, never on
  a command line;
- otherwise (DuckDB, whose file another process cannot open while this one holds it, an
  in-memory database, a query over session temporary tables) the parent writes the partition
  to a temporary Parquet file with ``to_parquet`` (DuckDB: ``COPY`` in the engine, no rows
  through Python) and the child reads that file.

``fn`` gets the partition as a pandas DataFrame (``as_="arrow"``: a ``pyarrow.Table``) and
returns a DataFrame, an Arrow table (or anything with ``to_arrow()``, e.g. Polars) or None
(nothing). The child writes it as an Arrow IPC file; the parent reads the files in partition
order, counts their Arrow bytes against ``max_bytes`` and converts the concatenation to pandas
at the end. The index of a returned DataFrame is not kept (``reset_index()`` it into columns).

A child that raises or dies (MemoryError, ``os._exit``, a segfault, the OOM killer) raises
:class:`~queryref.errors.PartitionError` naming the partition; the other children are stopped
and every temporary file is removed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

import pyarrow as pa
from sqlglot import exp

from queryref._options import _UNSET, resolve
from queryref.backends.open import open_backend
from queryref.errors import ParameterError, PartitionError
from queryref.offload.cache import sweep_orphans
from queryref.sinks import files as _files
from queryref.sinks import run as _run
from queryref.sinks.budget import Budget
from queryref.sinks.convert import FrameBuilder
from queryref.sinks.progress import Progress
from queryref.sinks.relation import Relation
from queryref.sql.text import literal, parse_query

#: table-name prefixes of session-scoped tables (cache(), notebook uploads): another session
#: cannot see them, so a query over one is handed to the child as a file
_SESSION_TABLES = ("_qr_cache_", "_qr_frame")
_AS = ("pandas", "arrow")
_MAX_MESSAGE = 8_000


@dataclass(frozen=True)
class Part:
    """One partition to run ``fn`` on: its label (the filter, for messages) and its query."""

    label: str
    query: Relation


@dataclass
class _Task:
    """What a child needs: where its rows are, what to run, where to put the result."""

    index: int
    label: str
    out: str
    as_: str
    target: str | None = None  # a URL to reconnect with (may hold a password: pipe only)
    sql: str | None = None
    dialect: str | None = None
    file: str | None = None  # a Parquet file the parent wrote


@dataclass
class _Running:
    task: _Task
    process: Any
    reader: Any
    message: tuple[Any, ...] | None = None
    files: list[str] = field(default_factory=list)


def map_partitions(rel: Relation, fn: Callable[[Any], Any],
                   partitions: Callable[[], Sequence[Part]], *, isolate: bool = True,
                   workers: int = 1, max_bytes: Any = _UNSET, as_: str = "pandas",
                   progress: Any = _UNSET) -> Any:
    """Run ``fn`` on every partition of ``rel`` (``partitions()`` splits it, once the arguments
    are checked); the results concatenated (see the module)."""
    if as_ not in _AS:
        raise ParameterError(f"as_ must be one of {_AS}, not {as_!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, not {workers!r}")
    if not callable(fn):
        raise ParameterError(f"map_partitions() needs a function, not {type(fn).__name__}")
    if isolate:
        _check_picklable(fn)
    elif workers != 1:
        raise ParameterError("workers= runs child processes: it needs isolate=True")
    budget = resolve("max_bytes", max_bytes)
    parts = list(partitions())
    meter = Progress("map_partitions", resolve("progress", progress), total=len(parts))
    if isolate:
        tables = _run_children(rel, parts, fn, workers, as_, budget, meter)
    else:
        tables = _run_here(parts, fn, as_, budget, meter)
    meter.done()
    return _finish(tables, as_)


def _check_picklable(fn: Callable[[Any], Any]) -> None:
    """A child process can only get ``fn`` by reference: a module-level, importable function."""
    try:
        pickle.dumps(fn)
    except Exception as err:
        msg = (
            f"map_partitions(isolate=True) needs a function a child process can import: "
            f"{_name(fn)} cannot be pickled ({type(err).__name__}: {err}). Use a function "
            "defined at the top level of a module (not a lambda or a nested function), or "
            "isolate=False"
        )
        raise ParameterError(msg) from None
    main = sys.modules.get("__main__")
    if getattr(fn, "__module__", None) == "__main__" and not getattr(main, "__file__", None):
        msg = (
            f"map_partitions(isolate=True) cannot send {_name(fn)} to a child process: it is "
            "defined in an interactive session (a notebook or REPL), which a new process cannot "
            "import. Put it in a .py module and import it, or use isolate=False"
        )
        raise ParameterError(msg)


def _name(fn: Any) -> str:
    """The function's name; never the repr of its arguments (a partial's may hold a URL)."""
    target = getattr(fn, "func", fn)  # functools.partial
    return repr(getattr(target, "__qualname__", None) or type(target).__name__)


# -- in this process ------------------------------------------------------------------------
def _fetch(rel: Relation, as_: str) -> Any:
    """The partition's rows as ``fn`` takes them, under the default budget."""
    if as_ == "arrow":
        return _run.to_arrow(rel, max_bytes=_UNSET, max_rows=_UNSET, batch_rows=_UNSET)
    return _run.to_pandas(rel, max_bytes=_UNSET, max_rows=_UNSET, batch_rows=_UNSET,
                          decimals="float")


def _run_here(parts: list[Part], fn: Callable[[Any], Any], as_: str, budget: int | None,
              meter: Progress) -> list[pa.Table]:
    tables: list[pa.Table] = []
    total = 0
    for part in parts:
        data = _fetch(part.query, as_)
        try:
            table = _as_table(fn(data))
        except Exception as err:
            msg = f"map_partitions: fn failed on the partition {part.label}: " \
                  f"{type(err).__name__}: {err}"
            raise PartitionError(msg, partition=part.label, child_error=type(err).__name__,
                                 child_traceback=traceback.format_exc()) from err
        del data
        total = _keep(tables, table, total, budget, part.label)
        meter.step(table.num_rows if table is not None else 0, table.nbytes if table else 0)
    return tables


def _keep(tables: list[pa.Table], table: pa.Table | None, total: int, budget: int | None,
          label: str) -> int:
    """Add a partition's result under the budget; the running total of bytes."""
    if table is None:
        return total
    total += table.nbytes
    Budget(budget, what=f"map_partitions results, at the partition {label}").add(
        nbytes=total, drop=tables.clear)
    tables.append(table)
    return total


def _as_table(out: Any) -> pa.Table | None:
    """What ``fn`` returned, as an Arrow table (a DataFrame's index is not kept)."""
    if out is None:
        return None
    if isinstance(out, pa.Table):
        return out
    if isinstance(out, pa.RecordBatch):
        return pa.Table.from_batches([out])
    import pandas as pd  # (heavy: only when fn returned something else than Arrow)

    if isinstance(out, pd.DataFrame):
        return pa.Table.from_pandas(out, preserve_index=False)
    if hasattr(out, "to_arrow"):
        table = out.to_arrow()
        if isinstance(table, pa.Table):
            return table
    msg = f"fn must return a pandas DataFrame, an Arrow table or None, not {type(out).__name__}"
    raise ParameterError(msg)


def _finish(tables: list[pa.Table], as_: str) -> Any:
    if not tables:
        empty = pa.table({})
        return empty if as_ == "arrow" else empty.to_pandas()
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        msg = f"fn returned tables with different columns or types for different partitions: {err}"
        raise ParameterError(msg) from None
    tables.clear()
    table = table.unify_dictionaries()
    if as_ == "arrow":
        return table
    builder = FrameBuilder(table.schema)
    for batch in table.to_batches():
        builder.add(batch)
    del table
    return builder.finish()


# -- in child processes -----------------------------------------------------------------------
def _run_children(rel: Relation, parts: list[Part], fn: Callable[[Any], Any], workers: int,
                  as_: str, budget: int | None, meter: Progress) -> list[pa.Table]:
    ctx = mp.get_context("spawn")
    folder = tempfile.mkdtemp(prefix="queryref-partitions-")
    target = _reopen_target(rel)
    pending = deque(enumerate(parts))
    running: dict[int, _Running] = {}
    done: dict[int, pa.Table | None] = {}
    total = 0
    try:
        while pending or running:
            while pending and len(running) < workers:
                index, part = pending.popleft()
                running[index] = _start(ctx, index, part, fn, as_, target, folder)
            handles = [r.reader for r in running.values() if r.message is None]
            wait(handles + [r.process.sentinel for r in running.values()])
            for index, run in list(running.items()):
                _read_message(run)
                if run.process.is_alive():
                    continue
                run.process.join()
                del running[index]
                table = _collect(run, parts[index].label)
                _remove(run.files)
                if table is not None:
                    total += table.nbytes
                    Budget(budget, what=f"map_partitions results, at the partition "
                                        f"{parts[index].label}").add(nbytes=total,
                                                                     drop=done.clear)
                done[index] = table
                meter.step(table.num_rows if table is not None else 0,
                           table.nbytes if table is not None else 0)
    finally:
        for run in running.values():
            _stop(run)
        shutil.rmtree(folder, ignore_errors=True)
    return [t for _, t in sorted(done.items()) if t is not None]


def _reopen_target(rel: Relation) -> str | None:
    """A URL a child can connect with, or None when the partition must go through a file."""
    target = rel.backend.reopen()
    if target is None:
        return None
    for table in rel.tree.find_all(exp.Table):
        if table.name.startswith(_SESSION_TABLES):
            return None
    return target


def _start(ctx: Any, index: int, part: Part, fn: Callable[[Any], Any], as_: str,
           target: str | None, folder: str) -> _Running:
    task = _Task(index, part.label, os.path.join(folder, f"result-{index}.arrow"), as_)
    files = [task.out]
    if target is not None:
        task.target, task.dialect = target, part.query.dialect
        task.sql = part.query.sql()
    else:
        task.file = os.path.join(folder, f"partition-{index}.parquet")
        files.append(task.file)
        _files.to_parquet(part.query, task.file, max_bytes=None, batch_rows=_UNSET)
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, args=(task, fn, writer), daemon=True,
                          name=f"queryref-partition-{index}")
    with _startable_main():
        process.start()
    writer.close()
    return _Running(task, process, reader, files=files)


@contextlib.contextmanager
def _startable_main() -> Iterator[None]:
    """Let ``spawn`` start a child from an embedded interpreter (an IPython shell).

    ``multiprocessing`` reads ``__main__.__spec__``, which the stand-in ``__main__`` of an
    interactive shell lacks; ``None`` means "nothing to re-import", which is right there.
    """
    main = sys.modules.get("__main__")
    patched = main is not None and not hasattr(main, "__spec__")
    if patched:
        main.__spec__ = None  # type: ignore[union-attr]
    try:
        yield
    finally:
        if patched:
            with contextlib.suppress(AttributeError):
                del main.__spec__  # type: ignore[union-attr]


def _read_message(run: _Running) -> None:
    if run.message is not None:
        return
    try:
        if run.reader.poll():
            run.message = run.reader.recv()
    except (EOFError, OSError):
        run.message = ("gone",)


def _collect(run: _Running, label: str) -> pa.Table | None:
    """The partition's result, or PartitionError saying how its child failed."""
    code = run.process.exitcode
    message = run.message or ("gone",)
    run.reader.close()
    if message[0] == "ok" and code == 0:
        if not message[1]:
            return None
        with pa.OSFile(run.task.out) as source:
            return pa.ipc.open_file(source).read_all()
    if message[0] == "error":
        _, error, text, trace = message
        hint = " (the partition did not fit in the child's memory: split finer, e.g. n=...)" \
            if error in ("MemoryError", "queryref.errors.ResultTooLarge") else ""
        msg = f"map_partitions: the partition {label} failed in its child process: " \
              f"{error}: {text}{hint}"
        raise PartitionError(msg, partition=label, exitcode=code, child_error=error,
                             child_traceback=trace)
    how = _exit_reason(code)
    msg = (f"map_partitions: the child process for the partition {label} died {how} before "
           "returning its result (out of memory? a crash in native code?)")
    raise PartitionError(msg, partition=label, exitcode=code)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"from signal {signal.Signals(-code).name}"
        except ValueError:
            return f"from signal {-code}"
    return f"with exit code {code}"


def _stop(run: _Running) -> None:
    """Stop a child that is still running and remove its files."""
    with contextlib.suppress(Exception):
        run.process.terminate()
        run.process.join(2)
        if run.process.is_alive():
            run.process.kill()
            run.process.join(2)
    with contextlib.suppress(Exception):
        run.reader.close()
    _remove(run.files)


def _remove(files: list[str]) -> None:
    for path in files:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _child_main(task: _Task, fn: Callable[[Any], Any], writer: Any) -> None:
    """In the child: fetch the partition, run ``fn``, write the result as an Arrow IPC file."""
    try:
        wrote = _child_run(task, fn)
        writer.send(("ok", wrote))
    except BaseException as err:
        kind = type(err)
        name = kind.__qualname__ if kind.__module__ == "builtins" else \
            f"{kind.__module__}.{kind.__qualname__}"
        trace = traceback.format_exc()[-_MAX_MESSAGE:]
        with contextlib.suppress(Exception):
            writer.send(("error", name, str(err)[:_MAX_MESSAGE], trace))
        raise SystemExit(1) from None
    finally:
        writer.close()


def _child_run(task: _Task, fn: Callable[[Any], Any]) -> bool:
    if task.file is not None:
        backend = open_backend(None, {})
        read = exp.Anonymous(this="read_parquet", expressions=[literal(task.file)])
        tree: exp.Query = exp.select("*").from_(exp.Table(this=read))
    else:
        backend = open_backend(task.target, {}, sweep=sweep_orphans)
        assert task.sql is not None and task.dialect is not None
        tree = parse_query(task.sql, task.dialect)
    try:
        data = _fetch(Relation(tree, backend), task.as_)
    finally:
        backend.close()
    table = _as_table(fn(data))
    del data
    if table is None:
        return False
    with pa.OSFile(task.out, "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
        out.write_table(table)
    return True
