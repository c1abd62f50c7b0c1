"""Charts leave the process as files without a browser or a network (vl-convert)."""

from __future__ import annotations

import pytest

import queryref as qr
from queryref.errors import ParameterError
from queryref.explore import Plot


@pytest.fixture
def q() -> qr.QueryRef:
    return qr.connect().sql("SELECT range AS x, range % 4 AS g, random() AS y FROM range(20000)")


def test_charts_save_as_png_and_svg_offline(q, tmp_path):
    png, svg = tmp_path / "hist.png", tmp_path / "box.svg"
    Plot(q).hist("y", bins=20).save(str(png))
    Plot(q).box("y", by="g").save(str(svg))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()[:200]


def test_only_the_chart_rows_cross(q):
    chart = Plot(q).scatter("x", "y", max_points=300)
    assert len(chart.data) == 300 and chart.usermeta["queryref"]["rows"] == 300
    assert "20,000" in chart.title
    assert len(Plot(q).line("g", "y", agg="mean").data) == 4


def test_charts_refuse_what_they_cannot_draw(q):
    with pytest.raises(ParameterError, match="groups"):
        Plot(q).line("x", "y")  # 20,000 x values: more than a chart should draw
    with pytest.raises(ParameterError):
        Plot(q).bar("g", agg="sum")  # a sum of nothing
    with pytest.raises(ParameterError):
        Plot(q).scatter("x", "y", max_points=0)


def test_charts_combine_as_altair_charts_do(q):
    """``a | b``, ``a & b``, ``a + b`` and Altair's own ``alt.hconcat``/``alt.layer`` work
    (Vega-Lite takes ``usermeta`` at the top only): the operators keep what fed both parts,
    and show themselves offline as the parts do."""
    import altair as alt

    hist, bars = Plot(q).hist("y", bins=8), Plot(q).bar("g")
    h, b = hist.usermeta["queryref"], bars.usermeta["queryref"]
    for combined, parts in ((hist | bars, (h, b)), (hist & bars, (h, b)), (hist + hist, (h, h))):
        meta = combined.to_dict()["usermeta"]["queryref"]
        assert meta == {"sql": [s for m in parts for s in m["sql"]],
                        "rows": sum(m["rows"] for m in parts)}
        assert "application/vnd.vegalite.v5+json" in combined._repr_mimebundle_()
    for combined in (alt.hconcat(hist, bars), alt.layer(hist, hist)):
        assert "usermeta" not in combined.to_dict()  # (valid: the parts' metadata left out)
    assert hist.to_dict()["usermeta"]["queryref"]["rows"] == 8  # the parts are unchanged
