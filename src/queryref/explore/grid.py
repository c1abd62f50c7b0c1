"""``q.grid()``: a paging table widget for notebooks (anywidget: JupyterLab, VS Code, marimo).

It shows one page of rows. Paging, sorting by a column (click its header) and filtering by a
column's value each run one pushed-down query, ``... ORDER BY ... LIMIT page_size OFFSET k``,
under a small budget; the total is a ``COUNT(*)`` in the warehouse, counted again only when the
filter changes. Rows are always ordered (the sort asked for, then every other sortable column
as a tie-breaker), so pages neither overlap nor skip rows.

>>> import queryref as qr
>>> g = Grid(qr.connect().sql("SELECT range AS id FROM range(95)"), page_size=10)
>>> g.total, [r[0] for r in g.rows][:3], g.page_info
(95, [0, 1, 2], 'rows 1-10 of 95')
>>> g.sort = [["id", "desc"]]
>>> [r[0] for r in g.rows][:3]
[94, 93, 92]
>>> g.page = 9
>>> g.page_info
'rows 91-95 of 95'
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import TYPE_CHECKING, Any

import anywidget
import pyarrow as pa
import traitlets

from queryref._expr import asc, col, desc
from queryref.errors import ParameterError, QueryRefError

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

#: what one page may take
PAGE_BUDGET = 32 * 2**20
#: the most rows a page may show
MAX_PAGE = 1_000

_ESM = r"""
function cellText(v) {
  if (v === null || v === undefined) return "∅";
  return String(v);
}
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "qr-grid";
  el.appendChild(root);
  function draw() {
    root.innerHTML = "";
    const bar = document.createElement("div");
    bar.className = "qr-bar";
    const prev = document.createElement("button");
    prev.textContent = "‹ prev"; prev.className = "qr-prev";
    prev.disabled = model.get("page") <= 0;
    prev.onclick = () => { model.set("page", model.get("page") - 1); model.save_changes(); };
    const next = document.createElement("button");
    next.textContent = "next ›"; next.className = "qr-next";
    const total = model.get("total"), size = model.get("page_size");
    next.disabled = total >= 0 && (model.get("page") + 1) * size >= total;
    next.onclick = () => { model.set("page", model.get("page") + 1); model.save_changes(); };
    const info = document.createElement("span");
    info.className = "qr-info"; info.textContent = model.get("page_info");
    const pick = document.createElement("select");
    pick.className = "qr-filter-column";
    const none = document.createElement("option"); none.value = ""; none.textContent = "filter…";
    pick.appendChild(none);
    for (const c of model.get("columns")) {
      const o = document.createElement("option"); o.value = c.name; o.textContent = c.name;
      if (c.name === model.get("filter_column")) o.selected = true;
      pick.appendChild(o);
    }
    const value = document.createElement("input");
    value.className = "qr-filter-value"; value.placeholder = "= value";
    value.value = model.get("filter_value");
    const apply = document.createElement("button");
    apply.textContent = "apply"; apply.className = "qr-filter-apply";
    apply.onclick = () => {
      model.set("filter_column", pick.value); model.set("filter_value", value.value);
      model.set("page", 0); model.save_changes();
    };
    bar.append(prev, next, info, pick, value, apply);
    root.appendChild(bar);
    if (model.get("error")) {
      const err = document.createElement("pre");
      err.className = "qr-error"; err.textContent = model.get("error");
      root.appendChild(err);
    }
    const table = document.createElement("table");
    const head = document.createElement("thead");
    const hr = document.createElement("tr");
    const sort = model.get("sort");
    for (const c of model.get("columns")) {
      const th = document.createElement("th");
      th.dataset.column = c.name;
      const dir = sort.length && sort[0][0] === c.name ? sort[0][1] : "";
      th.textContent = c.name + (dir === "asc" ? " ▲" : dir === "desc" ? " ▼" : "");
      th.title = c.type + " (click to sort)";
      if (c.numeric) th.className = "qr-num";
      th.onclick = () => {
        model.set("sort", [[c.name, dir === "asc" ? "desc" : "asc"]]);
        model.set("page", 0); model.save_changes();
      };
      hr.appendChild(th);
    }
    head.appendChild(hr); table.appendChild(head);
    const body = document.createElement("tbody");
    const cols = model.get("columns");
    for (const row of model.get("rows")) {
      const tr = document.createElement("tr");
      row.forEach((v, i) => {
        const td = document.createElement("td");
        td.textContent = cellText(v);
        if (cols[i] && cols[i].numeric) td.className = "qr-num";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    table.appendChild(body);
    root.appendChild(table);
    const sql = document.createElement("details");
    const summary = document.createElement("summary"); summary.textContent = "SQL";
    const code = document.createElement("pre"); code.textContent = model.get("sql");
    sql.append(summary, code);
    root.appendChild(sql);
    root.dataset.version = String(model.get("version"));
  }
  model.on("change:version", draw);
  model.on("change:error", draw);
  draw();
}
export default { render };
"""

_CSS = """
.qr-grid { font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; }
.qr-grid .qr-bar { display: flex; gap: 6px; align-items: center; margin-bottom: 4px; }
.qr-grid table { border-collapse: collapse; }
.qr-grid th { cursor: pointer; text-align: left; border-bottom: 1px solid #999;
              padding: 2px 8px; user-select: none; }
.qr-grid td { padding: 2px 8px; border-bottom: 1px solid #eee; }
.qr-grid .qr-num { text-align: right; font-variant-numeric: tabular-nums; }
.qr-grid .qr-error { color: #b00; white-space: pre-wrap; }
"""


class Grid(anywidget.AnyWidget):
    """A page of ``q``'s rows that pages, sorts and filters in the warehouse."""

    _esm = _ESM
    _css = _CSS
    columns: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    rows: traitlets.List[list[Any]] = traitlets.List().tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(50).tag(sync=True)
    sort: traitlets.List[list[str]] = traitlets.List().tag(sync=True)
    filter_column = traitlets.Unicode("").tag(sync=True)
    filter_value = traitlets.Unicode("").tag(sync=True)
    total = traitlets.Int(-1).tag(sync=True)
    page_info = traitlets.Unicode("").tag(sync=True)
    sql = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)  # bumped after each page: the view redraws

    def __init__(self, q: QueryRef, page_size: int = 50) -> None:
        if not isinstance(page_size, int) or isinstance(page_size, bool) or \
                not 1 <= page_size <= MAX_PAGE:
            raise ParameterError(f"page_size must be from 1 to {MAX_PAGE:,}, not {page_size!r}")
        schema = q.schema
        if len(set(schema.names)) != len(schema.names):
            raise ParameterError("grid() needs distinct column names: rename the duplicates")
        self._q = q
        self._sortable = [f.name for f in schema if _sortable(f.type)]
        self._counted: tuple[str, str] | None = None
        super().__init__(page_size=page_size, columns=[
            {"name": f.name, "type": str(f.type), "numeric": _numeric(f.type)}
            for f in schema])
        self.observe(self._changed, names=["page", "page_size", "sort", "filter_column",
                                           "filter_value"])
        self.refresh()

    def _changed(self, change: dict[str, Any]) -> None:
        self.refresh()

    def _filtered(self) -> QueryRef:
        name, text = self.filter_column, self.filter_value
        if not name:
            return self._q
        field = self._q.schema.field(name)
        return self._q.filter(col(name) == _typed(text, field.type))

    def _ordered(self, q: QueryRef) -> QueryRef:
        keys: list[Any] = []
        first = [k for k in self.sort if k and k[0] in self._q.columns]
        for name, direction in first[:1]:
            keys.append(desc(name) if direction == "desc" else asc(name))
        used = {k[0] for k in first[:1]}
        keys += [asc(n) for n in self._sortable if n not in used]  # tie-breakers
        return q.order_by(*keys) if keys else q

    def refresh(self) -> None:
        """Fetch the current page (and the total, when the filter changed)."""
        try:
            filtered = self._filtered()
            key = (self.filter_column, self.filter_value)
            if self._counted != key:
                self.total = filtered.count()
                self._counted = key
            page = self._ordered(filtered).limit(self.page_size,
                                                 offset=self.page * self.page_size)
            table = page.to_arrow(max_bytes=PAGE_BUDGET, preflight=None)
            self.sql = page.sql
            self.rows = _json_rows(table)
            self.error = ""
        except (QueryRefError, ValueError, KeyError) as err:
            self.rows = []
            self.error = f"{type(err).__name__}: {err}"
        first = self.page * self.page_size
        shown = len(self.rows)
        self.page_info = (f"rows {first + 1:,}-{first + shown:,} of {self.total:,}" if shown
                          else f"no rows (of {self.total:,})")
        self.version += 1


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _sortable(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)
                or pa.types.is_null(t))


def _typed(text: str, t: pa.DataType) -> Any:
    """The filter's text as a value of the column's type (a number for a numeric column)."""
    if pa.types.is_integer(t):
        return int(text)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return float(text)
    if pa.types.is_boolean(t):
        return text.strip().lower() in ("true", "1", "yes", "t")
    return text


def _json_rows(table: pa.Table) -> list[list[Any]]:
    """Rows as JSON values: numbers stay numbers (NaN as None), the rest as text."""
    columns = []
    for column in table.columns:
        values: list[Any] = []
        for v in column.to_pylist():
            if v is None or isinstance(v, bool | int | str):
                values.append(v)
            elif isinstance(v, float):
                values.append(None if math.isnan(v) or math.isinf(v) else v)
            elif isinstance(v, decimal.Decimal):
                values.append(str(v))
            elif isinstance(v, dt.date | dt.datetime | dt.time):
                values.append(v.isoformat())
            else:
                values.append(str(v))
        columns.append(values)
    return [list(r) for r in zip(*columns, strict=True)] if columns else []
