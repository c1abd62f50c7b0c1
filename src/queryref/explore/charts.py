"""Charts whose data the warehouse computes: ``q.plot.hist(...)``, ``.bar``, ``.line``,
``.scatter``, ``.box``.

The warehouse computes the bins, groups, quartiles or sample; only those rows cross (a few
dozen to ``max_points``), and the result is an Altair (Vega-Lite) chart, which renders in
JupyterLab, VS Code, marimo and Hex and saves offline (``chart.save("x.png")``, through
vl-convert). What fed it is attached to the chart's ``usermeta["queryref"]``: the SQL of each
query and the number of rows that crossed.

In a notebook a chart shows itself as the Vega-Lite mimetype (``application/vnd.vegalite.v5+json``),
which JupyterLab, Notebook 7 and VS Code draw with the Vega they bundle: no network needed.
Altair 6's own default is an HTML page that loads Vega from a CDN, blank (an error) without
internet access; a renderer the user picks (``alt.renderers.enable("html")``) is used as is.

>>> import queryref as qr
>>> con = qr.connect()
>>> q = con.sql("SELECT range AS x, range % 3 AS g FROM range(1000)")
>>> chart = Plot(q).hist("x", bins=10)
>>> chart.usermeta["queryref"]["rows"]
10
>>> Plot(q).bar("g").data["count"].tolist()
[334, 333, 333]
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

from queryref._expr import Expr, asc, col, count, desc
from queryref.errors import ParameterError
from queryref.explore.counts import COUNTS_BUDGET, _column, _histogram
from queryref.explore.profile import QUARTILES, _quantile

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

    from queryref._queryref import QueryRef

Agg = Literal["count", "sum", "mean", "min", "max"]
#: the most bars or line points drawn before a chart asks for fewer groups
MAX_GROUPS = 5_000
#: the output notebook front ends draw with their own Vega (JupyterLab's renderer knows v3-v5)
VEGALITE_MIMETYPE = "application/vnd.vegalite.v5+json"


def _altair() -> Any:
    try:
        import altair as alt
    except ImportError:  # pragma: no cover - the extra is not installed
        msg = "charts need Altair: pip install 'queryref[charts]'"
        raise ParameterError(msg) from None
    return alt


class _ShownOffline:
    """A chart that shows itself as the Vega-Lite mimetype while Altair's renderer is its
    default (see the module's docstring)."""

    def to_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Altair's, but as a part of a composed chart (``a | b``, ``alt.layer(a, b)``)
        without the ``usermeta`` Vega-Lite takes at the top level only."""
        context = kwargs.get("context") or {}
        meta = self._kwds.get("usermeta")  # type: ignore[attr-defined]
        if not context.get("top_level", True) and isinstance(meta, dict) and "queryref" in meta:
            part = self.copy(deep=False)  # type: ignore[attr-defined]
            rest = {k: v for k, v in meta.items() if k != "queryref"}
            part._kwds["usermeta"] = rest or _altair().Undefined
            return super(_ShownOffline, part).to_dict(*args, **kwargs)  # type: ignore[misc]
        return super().to_dict(*args, **kwargs)  # type: ignore[misc]

    def __or__(self, other: Any) -> Any:
        return _compose(self, other, "hconcat")

    def __and__(self, other: Any) -> Any:
        return _compose(self, other, "vconcat")

    def __add__(self, other: Any) -> Any:
        return _compose(self, other, "layer")

    def _repr_mimebundle_(self, *args: Any, **kwargs: Any) -> Any:
        alt = _altair()
        if alt.renderers.active == "default":
            try:
                spec = self.to_dict()
            except Exception:  # (Altair's own repr shows what is wrong with the spec)
                pass
            else:
                return {VEGALITE_MIMETYPE: spec,
                        "text/plain": f"<{type(self).__name__} (Vega-Lite)>"}
        return super()._repr_mimebundle_(*args, **kwargs)  # type: ignore[misc]


@functools.cache
def _kinds() -> tuple[Any, Any, Any, Any]:
    """``Chart``, ``LayerChart``, ``HConcatChart`` and ``VConcatChart`` that show themselves
    offline (made once Altair is loaded)."""
    alt = _altair()
    chart, layer, hconcat, vconcat = (
        type(base.__name__, (_ShownOffline, base), {"__module__": __name__})
        for base in (alt.Chart, alt.LayerChart, alt.HConcatChart, alt.VConcatChart))
    return chart, layer, hconcat, vconcat


def _compose(left: Any, right: Any, how: str) -> Any:
    """``left | right``, ``&`` or ``+`` as Altair makes it, shown offline like its parts; the
    parts' ``usermeta["queryref"]`` together at the top (``sql`` and ``rows`` of each)."""
    alt = _altair()
    made = {"hconcat": alt.hconcat, "vconcat": alt.vconcat, "layer": alt.layer}[how](left, right)
    kind = {"layer": _kinds()[1], "hconcat": _kinds()[2], "vconcat": _kinds()[3]}[how]
    parts = [getattr(c, "_kwds", {}).get("usermeta") for c in (left, right)]
    metas = [m["queryref"] for m in parts if isinstance(m, dict) and "queryref" in m]
    out = kind(**made._kwds)
    if metas:
        out = out.properties(usermeta={"queryref": {
            "sql": [q for m in metas for q in m["sql"]], "rows": sum(m["rows"] for m in metas)}})
    return out


def _chart(data: pd.DataFrame, **kwargs: Any) -> Any:
    """``alt.Chart(data)``, shown offline."""
    return _kinds()[0](data, **kwargs)


def _layer(*charts: Any) -> Any:
    """``alt.layer(*charts)``, shown offline."""
    return _kinds()[1](layer=list(charts))


class Plot:
    """``q.plot``: charts of ``q`` whose data is computed in the warehouse."""

    def __init__(self, q: QueryRef) -> None:
        self._q = q
        self._sql: list[str] = []

    def _fetch(self, q: QueryRef, names: list[str], *, limit: int | None = None
               ) -> pd.DataFrame:
        """Run one chart query (its SQL kept for the chart), its columns named ``names``
        (engines that fold names upper-case them); more than ``limit`` rows is refused."""
        if limit is not None:
            q = q.limit(limit + 1)
        self._sql.append(q.sql)
        frame = q.to_pandas(max_bytes=COUNTS_BUDGET, preflight=None)
        frame.columns = names
        if limit is not None and len(frame) > limit:
            msg = (f"the chart would draw more than {limit:,} groups: group fewer values "
                   "(filter first, or bucket the x column)")
            raise ParameterError(msg)
        return frame

    def _finish(self, chart: alt.Chart | alt.LayerChart, rows: int) -> Any:
        chart = chart.properties(usermeta={"queryref": {"sql": list(self._sql), "rows": rows}})
        self._sql = []
        return chart

    # -- the charts ---------------------------------------------------------------------
    def hist(self, column: str, bins: int = 30) -> Any:
        """A histogram: ``bins`` equal-width bins between the column's minimum and maximum
        (the counts of :func:`~queryref.explore.histogram`, numpy's edges)."""
        alt = _altair()
        self._sql = []
        data = _histogram(self._q, column, bins, self._sql)  # the range, the grouped count
        chart = _chart(data).mark_bar().encode(
            x=alt.X("bin_start:Q", bin="binned", title=column), x2="bin_end:Q",
            y=alt.Y("count:Q", title="rows"),
            tooltip=["bin_start", "bin_end", "count"])
        return self._finish(chart, len(data))

    def bar(self, x: str, y: str | None = None, agg: Agg = "count",
            max_bars: int = 50) -> Any:
        """Bars of ``agg(y)`` (or the row count) for each value of ``x``, the ``max_bars``
        largest."""
        alt = _altair()
        name = _column(self._q, x)
        measure, label = self._measure(y, agg)
        grouped = (self._q.group_by(name).agg(**{label: measure})
                   .order_by(desc(label), name))
        self._sql = []
        data = self._fetch(grouped.limit(max_bars), [name, label])
        chart = _chart(data).mark_bar().encode(
            x=alt.X(f"{_field(name)}:N", sort="-y", title=name),
            y=alt.Y(f"{_field(label)}:Q", title=label), tooltip=list(data.columns))
        return self._finish(chart, len(data))

    def line(self, x: str, y: str, agg: Agg = "sum", by: str | None = None) -> Any:
        """A line of ``agg(y)`` over the values of ``x`` (one line per value of ``by``)."""
        alt = _altair()
        name = _column(self._q, x)
        keys = [name] if by is None else [name, _column(self._q, by)]
        measure, label = self._measure(y, agg)
        grouped = self._q.group_by(*keys).agg(**{label: measure}).order_by(*[asc(k)
                                                                             for k in keys])
        self._sql = []
        data = self._fetch(grouped, [*keys, label], limit=MAX_GROUPS)
        enc: dict[str, Any] = {"x": alt.X(_field(name), title=name),
                               "y": alt.Y(f"{_field(label)}:Q", title=label),
                               "tooltip": list(data.columns)}
        if by is not None:
            enc["color"] = alt.Color(f"{_field(by)}:N", title=by)
        return self._finish(_chart(data).mark_line(point=True).encode(**enc), len(data))

    def scatter(self, x: str, y: str, max_points: int = 5_000) -> Any:
        """Points of ``x`` against ``y``: at most ``max_points`` rows drawn at random in the
        warehouse (``ORDER BY random() LIMIT n``: the engine keeps a top-n, not a sort)."""
        alt = _altair()
        xs, ys = _column(self._q, x), _column(self._q, y)
        if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 1:
            raise ParameterError(f"max_points must be a positive integer, not {max_points!r}")
        pairs = self._q.select(xs, ys).filter(col(xs).not_null() & col(ys).not_null())
        self._sql = []
        total = pairs.count()
        sampled = pairs if total <= max_points else pairs.order_by(Expr(exp.Rand()))
        data = self._fetch(sampled.limit(max_points), [xs, ys])
        title = f"{len(data):,} of {total:,} rows, drawn at random" if total > len(data) else ""
        chart = _chart(data, title=title).mark_circle(size=12, opacity=0.6).encode(
            x=alt.X(f"{_field(xs)}:Q", title=xs), y=alt.Y(f"{_field(ys)}:Q", title=ys))
        return self._finish(chart, len(data))

    def box(self, column: str, by: str | None = None) -> Any:
        """Box plots of ``column`` (quartiles by linear interpolation, as pandas; whiskers at
        the minimum and maximum), one per value of ``by``, computed in the warehouse."""
        alt = _altair()
        name = _column(self._q, column)
        group = None if by is None else _column(self._q, by)
        self._sql = []
        data = self._box_stats(name, group)
        base = _chart(data)
        x = alt.X(f"{_field(group)}:N", title=group) if group else alt.X("_all:N", title="")
        if group is None:
            data["_all"] = name
            base = _chart(data)
        whiskers = base.mark_rule().encode(x=x, y=alt.Y("min:Q", title=name), y2="max:Q")
        boxes = base.mark_bar(size=28).encode(x=x, y="q1:Q", y2="q3:Q",
                                              tooltip=list(data.columns))
        medians = base.mark_tick(color="white", size=28).encode(x=x, y="median:Q")
        layered = _layer(whiskers, boxes, medians).properties(width=alt.Step(60))
        return self._finish(layered, len(data))

    # -- helpers ------------------------------------------------------------------------
    def _measure(self, y: str | None, agg: str) -> tuple[Expr, str]:
        if y is None:
            if agg != "count":
                raise ParameterError(f"agg={agg!r} needs a y column")
            return count(), "count"
        name = _column(self._q, y)
        if agg not in ("count", "sum", "mean", "min", "max"):
            raise ParameterError(f"agg must be count, sum, mean, min or max, not {agg!r}")
        value = col(name)
        measure = value.count() if agg == "count" else getattr(value, agg)()
        return measure, f"{agg}_{name}"

    def _box_stats(self, name: str, group: str | None) -> pd.DataFrame:
        values = self._q.filter(col(name).not_null())
        stats = {"min": col(name).min(), "max": col(name).max()}
        labels = {"25%": "q1", "50%": "median", "75%": "q3"}
        keys = [] if group is None else [group]
        if self._q.dialect != "mysql":
            quartiles = {labels[k]: Expr(_quantile(name, p, dialect=self._q.dialect))
                         for k, p in QUARTILES.items()}
            agg = (values.group_by(*keys).agg(**stats, **quartiles) if keys
                   else values.agg(**stats, **quartiles))
            return self._fetch(agg, [*keys, *stats, *quartiles], limit=MAX_GROUPS)
        # MySQL/MariaDB: PERCENTILE_CONT is a window function there
        part = [col(k).node for k in keys]
        windows = {labels[k]: Expr(exp.Window(this=_quantile(name, p, True),
                                              partition_by=part or None))
                   for k, p in QUARTILES.items()}
        windows |= {k: Expr(exp.Window(this=v.node, partition_by=part or None))
                    for k, v in stats.items()}
        per_row = values.select(*keys, **windows).distinct()
        return self._fetch(per_row, [*keys, *windows], limit=MAX_GROUPS)


def _field(name: str | None) -> str:
    """A column name as an Altair field (dots and brackets escaped)."""
    assert name is not None
    return name.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace(
        "]", "\\]").replace(":", "\\:")
