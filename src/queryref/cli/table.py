"""The terminal table.

Widths are display columns, not characters (:func:`queryref._width.display_width`), so
columns of Chinese, Japanese or Korean text line up with the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from queryref._width import display_width, fit, terminal_width, truncate

__all__ = ["MAX_CELL", "cell", "display_width", "fit", "pad", "render_table", "rows_footer",
           "terminal_width", "truncate"]

#: display columns one value takes at most in the table
MAX_CELL = 40


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` display columns (right-aligned if asked).

    >>> pad("東京", 6) + "|", pad("7", 3, right=True)
    ('東京  |', '  7')
    """
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


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
