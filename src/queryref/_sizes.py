"""Byte sizes: parse ``"200MB"`` and print ``1.5 GiB``."""

from __future__ import annotations

import re

from queryref.errors import ParameterError

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
#: how a unit is printed back (the user's unit, in its usual case)
_SPELLING = {"b": "B", "": "B", "kb": "kB", "mb": "MB", "gb": "GB", "tb": "TB", "k": "KiB",
             "m": "MiB", "g": "GiB", "t": "TiB", "kib": "KiB", "mib": "MiB", "gib": "GiB",
             "tib": "TiB"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class Size(int):
    """A number of bytes that remembers how the user wrote it (``"20MB"``), so messages echo
    the budget in the user's unit: ``format_budget(parse_bytes("20MB"))`` is ``"20 MB"``."""

    written: str

    def __new__(cls, value: int, written: str) -> Size:
        size = super().__new__(cls, value)
        size.written = written
        return size

    def __reduce__(self) -> tuple[type[Size], tuple[int, str]]:
        return Size, (int(self), self.written)


def format_budget(n: int) -> str:
    """A budget for people: as the user wrote it when known, else like :func:`format_bytes`.

    >>> format_budget(parse_bytes("20MB")), format_budget(parse_bytes("1.5gib"))
    ('20 MB', '1.5 GiB')
    >>> format_budget(2**20)
    '1.0 MiB'
    """
    if isinstance(n, Size):
        return n.written
    return format_bytes(n)


def format_like(n: int | float, budget: int | None) -> str:
    """``n`` bytes in the unit family of ``budget`` as the user wrote it (decimal ``MB`` for
    a budget written in MB, so the two figures of a message compare at a glance).

    >>> format_like(20_300_000, parse_bytes("20MB")), format_like(20_300_000, 2**20)
    ('20.3 MB', '19.4 MiB')
    """
    written = getattr(budget, "written", "")
    if not written.endswith(("kB", "MB", "GB", "TB")):
        return format_bytes(n)
    return _in_units(n, 1000, ("B", "kB", "MB", "GB", "TB"))


def parse_bytes(value: int | float | str | None) -> int | None:
    """Turn ``"200MB"``, ``"1.5GiB"`` or ``10_000`` into a number of bytes; ``None`` stays None.

    >>> parse_bytes("200MB"), parse_bytes("1GiB"), parse_bytes(512)
    (200000000, 1073741824, 512)
    """
    if value is None or isinstance(value, Size):
        return value
    if isinstance(value, bool):
        raise ParameterError(f"a size must be bytes or text like '200MB', not {value!r}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ParameterError(f"a size must be a finite number of bytes, not {value!r}")
        if value < 0:
            raise ParameterError(f"a size cannot be negative: {value!r}")
        return int(value)
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m and m.group(2).lower() in _UNITS:
            number, unit = m.group(1), m.group(2)
            nbytes = int(float(number) * _UNITS[unit.lower()])
            return Size(nbytes, f"{number} {_SPELLING.get(unit.lower(), unit)}".strip())
    raise ParameterError(
        f"cannot read {value!r} as a size; write bytes (1_000_000) or text like '200MB' or '2GiB'"
    )


def format_bytes(n: int | float) -> str:
    """Print a byte count for people.

    >>> format_bytes(1536), format_bytes(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    return _in_units(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB"))


def _in_units(n: int | float, step: int, units: tuple[str, ...]) -> str:
    value = float(n)
    for unit in units[:-1]:
        if abs(value) < step:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{value:.1f} {units[-1]}"
