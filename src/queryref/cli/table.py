"""The terminal table and the width text takes on a terminal.

Widths are display columns, not characters: East Asian wide and full-width characters (CJK,
most emoji) take two columns, combining marks and zero-width characters none
(:func:`display_width`, from the standard library's ``unicodedata``), so columns of Chinese,
Japanese or Korean text line up with the rest.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import IO, Any

import pyarrow as pa

#: display columns one value takes at most in the table
MAX_CELL = 40
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


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` display columns (right-aligned if asked).

    >>> pad("東京", 6) + "|", pad("7", 3, right=True)
    ('東京  |', '  7')
    """
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


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


def cell(value: Any) -> str:
    """One value as table text: NULL for a null, line breaks shown as ``\\n``, cut to
    :data:`MAX_CELL` columns."""
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", " ")
    return truncate(text, MAX_CELL)


def _numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def render_table(table: pa.Table, footer: str | None = None) -> str:
    """All rows of ``table`` as aligned text (numbers right-aligned), then ``footer``.

    >>> t = pa.table({"n": [1, 20], "city": ["東京", None]})
    >>> print(render_table(t, "(2 rows)"))
     n  city
    --  ----
     1  東京
    20  NULL
    (2 rows)
    """
    right = [_numeric(f.type) for f in table.schema]
    columns = [[cell(v) for v in col.to_pylist()] for col in table.columns]
    names = [cell(n) for n in table.column_names]
    widths = [max([display_width(n), *(display_width(v) for v in col)])
              for n, col in zip(names, columns, strict=True)]

    def line(cells: Iterable[str]) -> str:
        parts = [pad(c, w, r) for c, w, r in zip(cells, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [line(names), line("-" * w for w in widths)]
    lines += [line(row) for row in zip(*columns, strict=True)] if columns else []
    if footer is not None:
        lines.append(footer)
    return "\n".join(lines)


def rows_footer(shown: int, total: int | None, *, more: bool, why: str = "") -> str:
    """The line under the table: how many rows there are and how many are shown.

    >>> rows_footer(3, 3, more=False), rows_footer(40, 600572, more=True)
    ('(3 rows)', '(showing 40 of 600,572 rows)')
    >>> rows_footer(40, None, more=True, why="--count counts them")
    '(showing the first 40 rows; more not counted: --count counts them)'
    """
    if not more:
        return f"({shown:,} row{'' if shown == 1 else 's'})"
    if total is not None:
        return f"(showing {shown:,} of {total:,} rows)"
    return f"(showing the first {shown:,} rows; more not counted{': ' + why if why else ''})"


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
