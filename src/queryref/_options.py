"""Global defaults (``qr.options``), overridable per call and with a context manager."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from queryref._sizes import parse_bytes
from queryref.errors import ParameterError

_UNSET: Any = object()


def _default_budget() -> int:
    """A quarter of the memory available now, at least 64 MiB."""
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil missing or unsupported platform
        available = 4 * 2**30
    return max(available // 4, 64 * 2**20)


@dataclass
class Options:
    """Defaults for every sink.

    Attributes
    ----------
    max_bytes:
        Budget of in-memory sinks; ``None`` turns the guard off. Default: a quarter of the
        memory available when queryref was imported.
    max_rows:
        Row limit of in-memory sinks (pushed down as ``LIMIT max_rows + 1``); ``None``: no limit.
    batch_rows:
        Rows per Arrow batch when streaming.
    preflight:
        The guard's pre-flight layer: before a query runs, an in-memory sink refuses what is
        estimated at more than 4x ``max_bytes``. ``"estimate"`` (default: the planner's
        estimate, never a scan), ``"count"`` (an exact pushed-down COUNT first) or ``None``.
    progress:
        Show progress on long sinks: ``True``, ``False`` or ``"auto"`` (when a terminal waits).
    max_batch_bytes:
        Bound on each streamed batch's Arrow bytes, on top of ``batch_rows`` (default
        16 MiB): the engine fetches in sizes that keep to it and its batches are split or
        combined to fit, so a streamed batch is bounded whatever the row width. ``None``:
        ``batch_rows`` rows a batch however many bytes they take.

    >>> import queryref as qr
    >>> with qr.options.context(max_rows=5):
    ...     qr.options.max_rows
    5
    """

    max_bytes: int | None = None
    max_rows: int | None = None
    batch_rows: int = 100_000
    preflight: str | None = "estimate"
    progress: bool | str = "auto"
    max_batch_bytes: int | None = 16 * 2**20

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        if self.max_bytes is None:
            self.max_bytes = _default_budget()

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            value = _validate(name, value)
        super().__setattr__(name, value)

    @contextlib.contextmanager
    def context(self, **overrides: Any) -> Iterator[Options]:
        """Override some defaults inside a ``with`` block, restoring them after."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            msg = f"unknown option(s) {sorted(unknown)}; options are {sorted(known)}"
            raise ParameterError(msg)
        with self._lock:
            saved = {k: getattr(self, k) for k in overrides}
            for k, v in overrides.items():
                setattr(self, k, v)
            try:
                yield self
            finally:
                for k, v in saved.items():
                    setattr(self, k, v)


def _validate(name: str, value: Any) -> Any:
    if name == "max_bytes":
        return parse_bytes(value)
    if name == "max_batch_bytes":
        size = parse_bytes(value)
        if size is not None and size <= 0:
            raise ParameterError(f"max_batch_bytes must be a positive size, not {value!r}")
        return size
    if name in ("max_rows", "batch_rows"):
        if value is None and name == "max_rows":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ParameterError(f"{name} must be a positive integer, not {value!r}")
        return value
    if name == "preflight" and value not in (None, "estimate", "count"):
        raise ParameterError(f"preflight must be 'estimate', 'count' or None, not {value!r}")
    if name == "progress" and value not in (True, False, "auto"):
        raise ParameterError(f"progress must be True, False or 'auto', not {value!r}")
    return value


options = Options()


def resolve(name: str, value: Any) -> Any:
    """The per-call value if given, else the global default."""
    return getattr(options, name) if value is _UNSET else _validate(name, value)
