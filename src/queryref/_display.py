"""How a QueryRef shows itself in a notebook: SQL, columns and types, and a bounded preview.

The preview is the only thing that runs: ``LIMIT rows + 1`` pushed into the query (the extra
row says whether more exist), fetched as Arrow under the size budget. Never a COUNT, never a
full fetch. A preview that fails shows the error's message, not a traceback.

Jupyter asks an object for its HTML and its plain text one right after the other; the last
preview is kept for a moment so the two share one query.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from queryref._options import _UNSET, resolve
from queryref._redact import redact

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

#: rows a QueryRef's repr previews
PREVIEW_ROWS = 10
_MAX_COLUMNS = 50  # columns shown in a preview table
_MAX_CELL = 80  # characters of one value
_MAX_ERROR_LINES = 12
_REUSE_SECONDS = 2.0

def error_text(err: BaseException) -> str:
    """``Type: message``, with secrets redacted and long messages cut."""
    name, message = type(err).__name__, str(err)
    text = message if message.startswith(f"{name}:") else f"{name}: {message}"
    lines = redact(text).splitlines()
    if len(lines) > _MAX_ERROR_LINES:
        lines = [*lines[:_MAX_ERROR_LINES], "..."]
    return "\n".join(lines)


@dataclass(frozen=True)
class Preview:
    """The first rows of a query, fetched once (LIMIT only), shown as HTML or plain text.

    >>> import queryref as qr
    >>> p = Preview.fetch(qr.connect().sql("SELECT range AS n FROM range(5)"), rows=2)
    >>> print(p)
    n
    int64
    0
    1
    (first 2 rows; more not shown)
    """

    title: str
    table: pa.Table | None
    more: bool
    error: BaseException | None

    @classmethod
    def fetch(cls, q: QueryRef, rows: int = PREVIEW_ROWS, *, max_bytes: Any = _UNSET,
              title: str = "") -> Preview:
        """Run ``q`` with ``LIMIT rows + 1`` under the budget; keep the rows or the error."""
        try:
            table = q.limit(rows + 1).to_arrow(max_bytes=max_bytes)
        except Exception as err:
            return cls(title, None, False, err)
        return cls(title, table.slice(0, rows), table.num_rows > rows, None)

    def footer(self) -> str:
        if self.table is None:
            return ""
        n = self.table.num_rows
        if self.more:
            return f"first {n} row{'s' if n != 1 else ''}; more not shown"
        return f"{n} row{'s' if n != 1 else ''}"

    def _repr_html_(self) -> str:
        title = f"<div><b>{html.escape(self.title)}</b></div>" if self.title else ""
        return f"<div class='queryref-preview'>{title}{self.html_body()}</div>"

    def html_body(self) -> str:
        if self.error is not None:
            return _error_html(self.error)
        assert self.table is not None
        return _table_html(self.table) + (
            f"<div style='font-size:smaller;color:#666'>{html.escape(self.footer())}</div>")

    def __str__(self) -> str:
        head = [self.title] if self.title else []
        if self.error is not None:
            return "\n".join([*head, error_text(self.error)])
        assert self.table is not None
        return "\n".join([*head, _table_text(self.table), f"({self.footer()})"])

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True)
class SQLText:
    """SQL to show: highlighted in HTML (pygments when installed), as is in plain text."""

    sql: str

    def _repr_html_(self) -> str:
        return sql_html(self.sql)

    def __str__(self) -> str:
        return self.sql

    def __repr__(self) -> str:
        return self.sql

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.sql)


# -- a QueryRef's reprs -------------------------------------------------------------------------
_recent: list[tuple[float, Any, tuple[int, Any], Preview]] = []


def _preview_of(q: QueryRef, rows: int = PREVIEW_ROWS) -> Preview:
    """The query's preview; the second of two calls in quick succession reuses the first's."""
    setting = (rows, resolve("max_bytes", _UNSET))
    if _recent:
        when, query, key, preview = _recent.pop()
        if query is q and key == setting and time.monotonic() - when < _REUSE_SECONDS:
            return preview
    preview = Preview.fetch(q, rows, max_bytes=setting[1])
    _recent.append((time.monotonic(), q, setting, preview))
    return preview


def query_html(q: QueryRef) -> str:
    """HTML for a QueryRef: where it runs, its SQL, then the preview (columns, types, rows)."""
    preview = _preview_of(q)
    where = html.escape(f"QueryRef on {q.connection.describe()}")
    return (
        "<div class='queryref'>"
        f"<div style='font-size:smaller;color:#666'>{where}</div>"
        f"<details open><summary>SQL</summary>{sql_html(q.sql)}</details>"
        f"{preview.html_body()}</div>"
    )


def query_text(q: QueryRef) -> str:
    """Plain text for a QueryRef: the same parts as the HTML."""
    return f"<QueryRef on {q.connection.describe()}>\n{q.sql}\n\n{_preview_of(q)}"


# -- pieces -------------------------------------------------------------------------------------
def sql_html(sql: str) -> str:
    """SQL as HTML: pygments-highlighted with inline styles when available, escaped otherwise."""
    style = "max-height:24em;overflow:auto;margin:0.3em 0;padding:0.4em;"
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import SqlLexer
    except ImportError:
        return f"<pre style='{style}'>{html.escape(sql)}</pre>"
    body = highlight(sql, SqlLexer(), HtmlFormatter(noclasses=True, nowrap=True))
    return f"<pre style='{style}'>{body}</pre>"


def _error_html(err: BaseException) -> str:
    style = "color:#a00;white-space:pre-wrap;margin:0.3em 0"
    return f"<pre class='queryref-error' style='{style}'>{html.escape(error_text(err))}</pre>"


def _value(v: Any) -> str:
    text = "NULL" if v is None else str(v)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _shown(table: pa.Table) -> tuple[pa.Table, int]:
    hidden = max(0, table.num_columns - _MAX_COLUMNS)
    return (table.select(range(_MAX_COLUMNS)) if hidden else table), hidden


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows as tuples (column by column, so duplicate column names all show)."""
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


#: said of an integer column that may hold NULLs the preview does not show: ``to_pandas``
#: then gives float64 (NumPy integers have no NULL)
MAYBE_FLOAT = " (float64 with NULLs)"


def pandas_dtypes(table: pa.Table, *, caveat: str = MAYBE_FLOAT) -> list[str]:
    """The dtypes ``to_pandas()`` gives these rows (its own converter, on the few rows of a
    preview); the Arrow types where a column cannot be converted. An integer column that
    may hold NULLs past the preview says it becomes float64 then (``caveat``, by default
    :data:`MAYBE_FLOAT`; the plain-text preview, in columns, leaves it out)."""
    from queryref.sinks.convert import FrameBuilder

    try:
        builder = FrameBuilder(table.schema)
        for batch in table.to_batches():
            builder.add(batch)
        frame = builder.finish()
    except Exception:  # (a type the converter refuses: the preview still shows)
        return [str(f.type) for f in table.schema]
    return [str(t) + (caveat if t.kind in "iu" and f.nullable else "")
            for f, t in zip(table.schema, frame.dtypes, strict=True)]


def _table_html(table: pa.Table) -> str:
    table, hidden = _shown(table)
    dtypes = pandas_dtypes(table)
    right = [_numeric(f.type) for f in table.schema]
    align = [" style='text-align:right'" if r else "" for r in right]
    head = "".join(
        f"<th{a} title='{html.escape(str(f.type))} in Arrow'>{html.escape(f.name)}"
        f"<br><span style='font-weight:normal;color:#666'>{html.escape(d)}</span></th>"
        for f, d, a in zip(table.schema, dtypes, align, strict=True))
    if hidden:
        head += f"<th>… {hidden} more columns</th>"
    rows = []
    for row in _rows(table):
        cells = "".join(
            f"<td{a}><i style='color:#999'>NULL</i></td>" if v is None
            else f"<td{a}>{html.escape(_value(v))}</td>"
            for v, a in zip(row, align, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return (f"<table class='queryref-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _table_text(table: pa.Table) -> str:
    table, hidden = _shown(table)
    grid = [[f.name for f in table.schema], pandas_dtypes(table, caveat="")]
    grid += [[_value(v) for v in row] for row in _rows(table)]
    if hidden:
        for line in grid:
            line.append("…" if line is not grid[0] else f"… {hidden} more columns")
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in grid)
