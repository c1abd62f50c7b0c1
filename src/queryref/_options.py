"""Global defaults (``qr.options``), overridable per call and with a context manager.

A sink's parameter that defaults to a setting shows that setting as its default:
``help(QueryRef.to_pandas)`` reads ``max_bytes: SizeLike = qr.options.max_bytes``. That
default is a sentinel (``DEFAULT.max_bytes`` in the source) which ``resolve`` replaces with the
setting's value when the call is made, so a change to ``qr.options`` (or a
``with qr.options.context(...)`` block) applies to every later call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from queryref._sizes import parse_bytes
from queryref.errors import ParameterError

if TYPE_CHECKING:
    from queryref._typing import Preflight, Progress, SizeLike

GetT = TypeVar("GetT")
SetT = TypeVar("SetT")


class _Default:
    """A parameter default meaning "the value of ``qr.options.<name>`` at call time"."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"qr.options.{self.name}" if self.name else "<qr.options default>"


class _Defaults:
    """``DEFAULT.max_bytes``: the default of a parameter named for a setting (names checked)."""

    def __init__(self) -> None:
        self._made: dict[str, _Default] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in _NAMES:
            raise AttributeError(f"qr.options has no setting {name!r}")
        return self._made.setdefault(name, _Default(name))


DEFAULT = _Defaults()
"""Parameter defaults taken from ``qr.options`` when the call is made:
``def to_arrow(self, *, max_bytes: SizeLike = DEFAULT.max_bytes)``."""

_UNSET: Any = _Default("")
"""The default for code that passes "whatever qr.options says" on (``resolve(name, _UNSET)``)."""


def _default_budget() -> int:
    """A quarter of the memory available now, at least 64 MiB."""
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil missing or unsupported platform
        available = 4 * 2**30
    return max(available // 4, 64 * 2**20)


class _Setting(Generic[GetT, SetT]):
    """One setting of ``Options``: reading gives the checked value (``GetT``), writing takes
    whatever the check accepts (``SetT``), so ``qr.options.max_bytes = "2GB"`` type-checks
    and ``qr.options.max_bytes`` reads as ``int | None``."""

    def __init__(self, check: Callable[[SetT], GetT]) -> None:
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: Options, owner: type) -> GetT: ...
    def __get__(self, obj: Options | None, owner: type) -> Self | GetT:
        if obj is None:
            return self
        value: GetT = obj._values[self.name]
        return value

    def __set__(self, obj: Options, value: SetT) -> None:
        obj._values[self.name] = self.check(value)


def _size(value: SizeLike) -> int | None:
    return parse_bytes(value)


def _batch_size(value: SizeLike) -> int | None:
    size = parse_bytes(value)
    if size is not None and size <= 0:
        raise ParameterError(f"max_batch_bytes must be a positive size, not {value!r}")
    return size


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParameterError(f"{name} must be a positive integer, not {value!r}")
    return value


def _max_rows(value: int | None) -> int | None:
    return None if value is None else _positive("max_rows", value)


def _batch_rows(value: int) -> int:
    return _positive("batch_rows", value)


def _preflight(value: Preflight | None) -> Preflight | None:
    if value not in (None, "estimate", "count"):
        raise ParameterError(f"preflight must be 'estimate', 'count' or None, not {value!r}")
    return value


def _progress(value: Progress) -> Progress:
    if value not in (True, False, "auto"):
        raise ParameterError(f"progress must be True, False or 'auto', not {value!r}")
    return value


class Options:
    """Defaults for every sink: set one (``qr.options.max_bytes = "2GB"``), or override some
    for a block with [`context`][queryref.Options.context]; a sink's own argument wins.

    Attributes
    ----------
    max_bytes : int | None
        Budget of in-memory sinks, in bytes; set it as a number or text (``"2GB"``,
        ``"512MiB"``); ``None`` turns the guard off. Default: a quarter of the memory
        available when queryref was imported.
    max_rows : int | None
        Row limit of in-memory sinks (pushed down as ``LIMIT max_rows + 1``); ``None``: no limit.
    batch_rows : int
        Rows per Arrow batch when streaming (default 100,000).
    preflight : "estimate" | "count" | None
        The guard's pre-flight layer: before a query runs, an in-memory sink refuses what is
        estimated at more than 4x ``max_bytes``. ``"estimate"`` (default: the planner's
        estimate, never a scan), ``"count"`` (an exact pushed-down COUNT first) or ``None``.
    progress : bool | "auto"
        Show progress on long sinks: ``True``, ``False`` or ``"auto"`` (default: when a
        terminal waits). The line (rows, bytes, time, rate, fit to the terminal's width)
        appears after a second (``$QUERYREF_PROGRESS_AFTER`` seconds when set) and is
        redrawn twice a second.
    max_batch_bytes : int | None
        Bound on each streamed batch's Arrow bytes, on top of ``batch_rows`` (default
        16 MiB; set it as a number or text): the engine fetches in sizes that keep to it and
        its batches are split or combined to fit, so a streamed batch is bounded whatever the
        row width. ``None``: ``batch_rows`` rows a batch however many bytes they take.

    Examples
    --------
    >>> import queryref as qr
    >>> with qr.options.context(max_bytes="2GB", max_rows=5):
    ...     qr.options.max_bytes, qr.options.max_rows
    (2000000000, 5)
    >>> qr.options.max_rows is None
    True
    """

    __slots__ = ("_lock", "_values")  # a misspelt setting is an AttributeError, not a no-op

    max_bytes = _Setting(_size)
    max_rows = _Setting(_max_rows)
    batch_rows = _Setting(_batch_rows)
    preflight = _Setting(_preflight)
    progress = _Setting(_progress)
    max_batch_bytes = _Setting(_batch_size)

    def __init__(self, *, max_bytes: SizeLike = None, max_rows: int | None = None,
                 batch_rows: int = 100_000, preflight: Preflight | None = "estimate",
                 progress: Progress = "auto", max_batch_bytes: SizeLike = 16 * 2**20) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, Any] = {}
        self.max_bytes = _default_budget() if max_bytes is None else max_bytes
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.preflight = preflight
        self.progress = progress
        self.max_batch_bytes = max_batch_bytes

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Options({values})"

    @contextlib.contextmanager
    def context(self, **overrides: Any) -> Iterator[Options]:
        """Override some defaults inside a ``with`` block, restoring them after.

        >>> import queryref as qr
        >>> with qr.options.context(batch_rows=10):
        ...     qr.options.batch_rows
        10
        >>> qr.options.batch_rows
        100000
        """
        unknown = set(overrides) - set(_NAMES)
        if unknown:
            msg = f"unknown option(s) {sorted(unknown)}; options are {sorted(_NAMES)}"
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


_NAMES = tuple(n for n, v in vars(Options).items() if isinstance(v, _Setting))

options = Options()


def resolve(name: str, value: Any) -> Any:
    """The per-call value if given (checked), else the setting ``qr.options.<name>``.

    >>> resolve("batch_rows", DEFAULT.batch_rows) == options.batch_rows
    True
    >>> resolve("max_bytes", "1KB")
    1000
    """
    setting: _Setting[Any, Any] = getattr(Options, name)
    return getattr(options, name) if isinstance(value, _Default) else setting.check(value)
