"""The width text takes on a terminal, and fitting a line to it.

Widths are display columns, not characters: East Asian wide and full-width characters (CJK,
most emoji) take two columns, combining marks and zero-width characters none (from the
standard library's ``unicodedata``). Used by the terminal table, the CLI's messages and every
progress line (the library's and the CLI's), so none of them wraps in a narrow terminal.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import IO

_ELLIPSIS = "…"


@lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal.

    >>> display_width("abc"), display_width("東京"), display_width("e\\u0301")
    (3, 4, 1)
    """
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` display columns, ending in ``…`` when cut.

    >>> truncate("東京都庁", 5), truncate("abc", 5)
    ('東京…', 'abc')
    """
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + _ELLIPSIS



def terminal_width(stream: IO[str] | None = None, fallback: int = 80) -> int:
    """The width of the terminal ``stream`` writes to: ``$COLUMNS`` if set, else the
    terminal's own size, else the standard output's (``shutil.get_terminal_size``)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stream is not None:
        try:
            return os.get_terminal_size(stream.fileno()).columns or fallback
        except (AttributeError, ValueError, OSError):
            pass
    return shutil.get_terminal_size((fallback, 24)).columns



def fit(variants: Sequence[str], width: int) -> str:
    """The first of ``variants`` (longest first) that fits in ``width`` display columns,
    else the last one cut to fit.

    >>> fit(["writing x.csv: 1,000 rows in 2.0s", "1,000 rows"], 20)
    '1,000 rows'
    >>> fit(["a long line", "still long"], 6)
    'still…'
    """
    for text in variants:
        if display_width(text) <= width:
            return text
    return truncate(variants[-1], max(width, 1))
