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
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value: int | float | str | None) -> int | None:
    """Turn ``"200MB"``, ``"1.5GiB"`` or ``10_000`` into a number of bytes; ``None`` stays None.

    >>> parse_bytes("200MB"), parse_bytes("1GiB"), parse_bytes(512)
    (200000000, 1073741824, 512)
    """
    if value is None:
        return None
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
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    raise ParameterError(
        f"cannot read {value!r} as a size; write bytes (1_000_000) or text like '200MB' or '2GiB'"
    )


def format_bytes(n: int | float) -> str:
    """Print a byte count for people.

    >>> format_bytes(1536), format_bytes(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
