"""The magics in a real Jupyter kernel: a notebook built here, run by nbclient, outputs checked.

``test_magic.py`` drives the magics in an in-process ``InteractiveShell``; this runs them where
a user does, in a fresh ``ipykernel`` (the venv's ``python3`` kernel) talking the Jupyter
protocol, and checks what comes back on the wire: the preview's HTML (dtypes, alignment), the
profile as an HTML table, the chart as a Vega-Lite output, a failing cell's error and that it
bound nothing, ``_`` after an unnamed cell. Every figure is compared with pandas/numpy computed
here on the same rows (the frame is made by the same code, run in the test and in the kernel).
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from queryref._display import MAYBE_FLOAT

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

# The rows: NULLs, empty strings, non-ASCII text, negative numbers, ties, a leap day and
# month ends. Run here for the reference and in the kernel for the notebook.
DATA = """\
import numpy as np
import pandas as pd

i = np.arange(997)
raw_sales = pd.DataFrame({
    "id": i,
    "region": pd.Series(np.array(["north", "south", "", "Zürich", "東京"], dtype=object)[i % 5],
                        dtype=object).where(i % 11 != 3, None),
    "amount": pd.Series(((i * 37) % 1000 - 300) / 4.0).where(i % 13 != 5),
    "qty": (i * 7) % 5 - 2,
    "day": pd.Timestamp("2024-01-31") + pd.to_timedelta(i % 60, unit="D"),
})
"""

TOP_SQL = "SELECT region, MAX(amount) AS top FROM sales GROUP BY region"
BINS = 7

#: the conformance suite's PostgreSQL (tests/conformance/qr_conformance.py)
PG_URL = os.environ.get("QUERYREF_POSTGRES_URL",
                        "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
#: the output JupyterLab, Notebook 7 and VS Code draw with the Vega they bundle (offline)
VEGALITE = "application/vnd.vegalite.v5+json"


def reference() -> pd.DataFrame:
    ns: dict[str, Any] = {}
    exec(DATA, ns)
    frame: pd.DataFrame = ns["raw_sales"]
    return frame


def sales() -> pd.DataFrame:
    """What the cell ``sales`` selects."""
    df = reference()
    return df[df.qty != 0].sort_values("id").reset_index(drop=True)


# -- the notebook ------------------------------------------------------------------------------
def cells(pg_url: str | None) -> list[tuple[str, str, bool]]:
    """(id, source, raises): the notebook's code cells in order."""
    out = [
        ("load", "%load_ext queryref", False),
        ("data", DATA + "import pickle\nimport queryref as qr\n\n"
                 "def keep(name, value):\n"
                 "    with open(f'{name}.pkl', 'wb') as f:\n"
                 "        pickle.dump(value, f)\n", False),
        ("connect", "con = qr.connect()\ncon.create_table('shop', raw_sales)\n"
                    "%qref_connect con", False),
        ("save", "%%qref sales <<\nSELECT * FROM shop WHERE qty <> 0 ORDER BY id", False),
        ("line", "x = %qref SELECT region, COUNT(*) AS n, SUM(amount) AS total FROM sales "
                 "GROUP BY region\n"
                 "print(type(x).__name__)\nkeep('line', x.to_pandas())", False),
        ("file", "%%qref tops -f top.sql\n-- the query is in the file", False),
        ("file-line", "y = %qref -f top.sql\nkeep('file', (tops.to_pandas(), y.to_pandas()))",
         False),
        ("unnamed", "%%qref\nSELECT qty, COUNT(*) AS n FROM sales GROUP BY qty ORDER BY qty",
         False),
        ("unnamed-check", "print(type(_).__name__)\nkeep('unnamed', _.to_pandas())", False),
        ("expression", "6 * 7", False),  # an output of its own: _ stays the cell's QueryRef
        ("unnamed-kept", "print(type(_).__name__)", False),
        ("frame-cell", "%%qref by_frame --no-preview\n"
                       "SELECT region, SUM(qty) AS qty FROM raw_sales GROUP BY region", False),
        ("frame-sql", "%qref_sql by_frame", False),
        ("frame-keep", "keep('by_frame', by_frame.to_pandas())", False),
        ("tables", "%qref_tables", False),
        ("columns", "%qref_columns shop", False),
        ("profile", "%qref_profile sales", False),
        ("profile-keep", "keep('profile', sales.describe())", False),
        ("plot", f"%qref_plot hist sales amount --bins {BINS}", False),
        ("repr", "sales", False),
        ("repr-keep", "keep('dtypes', [str(t) for t in sales.to_pandas().dtypes])", False),
        ("late-null", "%%qref late_null --preview 3\n"
                      "SELECT id, CASE WHEN id = 5 THEN NULL ELSE id END AS v FROM shop "
                      "ORDER BY id LIMIT 8", False),
        ("late-null-keep", "keep('late_null', [str(t) for t in late_null.to_pandas().dtypes])",
         False),
        ("broken", "%%qref broken\nSELECT CAST(region AS INTEGER) AS r FROM sales", True),
        ("broken-again", "%%qref sales\nSELECT CAST(region AS INTEGER) AS r FROM shop", True),
        ("broken-check", "print('broken' in globals(), sales.columns)", False),
    ]
    if pg_url is not None:
        out += [
            ("pg-connect", f"pg_url = {pg_url!r}\n%qref_connect pg_url", False),
            ("pg-cell", "%%qref pg_counts --preview 3\n"
                        "SELECT region, COUNT(*) AS n, SUM(amount) AS total FROM raw_sales "
                        "GROUP BY region ORDER BY region", False),
            ("pg-sql", "%qref_sql pg_counts", False),
            ("pg-keep", "keep('pg_counts', pg_counts.to_pandas())", False),
            ("pg-tables", "%qref_tables", False),
            ("pg-done", "%qref_connect", False),  # drops what was uploaded
        ]
    return out


def _pg_schema() -> Iterator[str | None]:
    """A schema of its own on the test PostgreSQL (None when it is not reachable)."""
    import queryref as qr

    try:
        admin = qr.connect(PG_URL)
        admin.sql("SELECT 1 AS x").to_arrow()
    except Exception:
        yield None
        return
    schema = f"qr_kernel_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str | None]:
    yield from _pg_schema()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, pg_schema: str | None
        ) -> dict[str, Any]:
    """The notebook, run in a fresh kernel: its cells by id, plus ``_dir`` (the kernel's cwd)."""
    workdir = tmp_path_factory.mktemp("kernel")
    (workdir / "top.sql").write_text(TOP_SQL + "\n")
    pg_url = None
    if pg_schema is not None:
        sep = "&" if "?" in PG_URL else "?"
        pg_url = f"{PG_URL}{sep}options=-csearch_path%3D{pg_schema}"
    nb = nbformat.v4.new_notebook()
    for cid, source, raises in cells(pg_url):
        cell = nbformat.v4.new_code_cell(source, id=cid)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return {"_dir": workdir, **{c.id: c for c in nb.cells}}


def by_key(frame: pd.DataFrame, key: str, value: str) -> dict[Any, Any]:
    """``value`` by ``key`` (a NULL key as None), for comparing groups in any order."""
    return {None if pd.isna(k) else k: v
            for k, v in zip(frame[key].tolist(), frame[value].tolist(), strict=True)}


def close(got: dict[Any, Any], want: dict[Any, Any]) -> bool:
    """The same keys, and values equal to float64 rounding (NaN equals NaN)."""
    assert got.keys() == want.keys(), (got, want)
    for k in want:
        np.testing.assert_allclose(float(got[k]), float(want[k]), rtol=1e-12, err_msg=str(k))
    return True


def kept(run: dict[str, Any], name: str) -> Any:
    with open(run["_dir"] / f"{name}.pkl", "rb") as f:
        return pickle.load(f)


def stream(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def rich(cell: Any) -> list[dict[str, Any]]:
    """The data of the cell's display_data and execute_result outputs, in order."""
    return [dict(o.data) for o in cell.outputs
            if o.output_type in ("display_data", "execute_result")]


def errors(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == "error"]


class Tables(HTMLParser):
    """The tables of an HTML text: rows of ``(tag, attrs, text)`` cells."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, dict[str, str | None], str]]]] = []
        self._cell: tuple[str, dict[str, str | None], list[str]] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = (tag, dict(attrs), [])
        elif tag == "br" and self._cell is not None:
            self._cell[2].append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            kind, attrs, text = self._cell
            self.tables[-1][-1].append((kind, attrs, "".join(text).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[2].append(data)


def only_table(text: str) -> list[list[tuple[str, dict[str, str | None], str]]]:
    [table] = Tables(text).tables
    return table


def texts(rows: list[list[tuple[str, dict[str, str | None], str]]]) -> list[list[str]]:
    return [[c[2] for c in row] for row in rows]


def frame_of_html(text: str) -> pd.DataFrame:
    """A DataFrame's HTML (``to_html``) back as strings, indexed by its row labels."""
    rows = texts(only_table(text))
    head, body = rows[0], [r for r in rows[1:] if r]
    return pd.DataFrame([r[1:] for r in body], index=[r[0] for r in body], columns=head[1:])


# -- the tests ---------------------------------------------------------------------------------
def test_no_cell_failed_but_those_meant_to(run):
    failed = {cid for cid, cell in run.items() if cid != "_dir" and errors(cell)}
    assert failed == {"broken", "broken-again"}, {c: errors(run[c]) for c in failed}


def test_saving_with_the_jupysql_arrows_previews_the_cell(run):
    [shown] = rich(run["save"])
    assert "first 10 rows; more not shown" in shown["text/plain"]
    table = only_table(shown["text/html"])
    assert "<b>sales</b>" in shown["text/html"]
    ids = [int(row[0][2]) for row in table[1:]]
    assert ids == sales().id.head(10).tolist()


def test_a_line_magic_gives_a_queryref_over_the_cells(run):
    assert stream(run["line"]).strip() == "QueryRef"
    got = kept(run, "line")
    ref = sales().groupby("region", dropna=False).agg(n=("id", "size"), total=("amount", "sum"))
    ref = ref.reset_index()
    assert by_key(got, "region", "n") == by_key(ref, "region", "n")  # NULL, "", non-ASCII
    assert close(by_key(got, "region", "total"), by_key(ref, "region", "total"))


def test_sql_from_a_file_in_a_cell_and_on_a_line(run):
    cell_q, line_q = kept(run, "file")
    ref = sales().groupby("region", dropna=False).amount.max().reset_index()
    for got in (cell_q, line_q):
        assert close(by_key(got, "region", "top"), by_key(ref, "region", "amount"))
    [shown] = rich(run["file"])  # the cell from a file previews too
    assert "<b>tops</b>" in shown["text/html"]


def test_an_unnamed_cell_is_bound_to_underscore(run):
    [shown] = rich(run["unnamed"])
    assert "<b>_</b>" in shown["text/html"]
    assert stream(run["unnamed-check"]).strip() == "QueryRef"
    got = kept(run, "unnamed")
    ref = sales().groupby("qty").size()
    assert got.qty.tolist() == ref.index.tolist() and got.n.tolist() == ref.tolist()
    # a later cell's own result does not take _ away from it (IPython leaves a _ it did not set)
    assert rich(run["expression"])[0]["text/plain"] == "42"
    assert stream(run["unnamed-kept"]).strip() == "QueryRef"


def test_a_dataframe_is_named_readably_in_the_sql(run):
    [shown] = rich(run["frame-sql"])
    sql = shown["text/plain"]
    assert "FROM _qr_frame_raw_sales_" in sql, sql
    assert "<span" in shown["text/html"]  # highlighted
    got = kept(run, "by_frame")
    ref = reference().groupby("region", dropna=False).qty.sum().reset_index()
    assert by_key(got, "region", "qty") == by_key(ref, "region", "qty")


def test_tables_and_columns(run):
    import duckdb

    [shown] = rich(run["tables"])
    listed = frame_of_html(shown["text/html"])
    assert listed.name.tolist() == ["shop"], listed  # not the frames read in place
    assert listed.kind.tolist() == ["table"]
    [shown] = rich(run["columns"])
    cols = frame_of_html(shown["text/html"])
    ref_frame = reference()  # the reference: DuckDB's own DESCRIBE of the same frame
    with duckdb.connect() as raw:
        raw.register("ref_frame", ref_frame)
        described = raw.sql("DESCRIBE SELECT * FROM ref_frame").fetchall()
    assert cols.name.tolist() == list(ref_frame.columns)
    assert cols.type.tolist() == [d[1] for d in described]
    assert set(cols.nullable) == {"True"}


def _number(text: str) -> float:
    return float("nan") if text in ("NaN", "", "None") else float(text)


def test_profile_is_describe_as_html_matching_pandas(run):
    [shown] = rich(run["profile"])
    assert set(shown) >= {"text/html", "text/plain"}
    shown_frame = frame_of_html(shown["text/html"])
    got = kept(run, "profile")
    assert list(shown_frame.columns) == list(got.columns) == ["id", "region", "amount", "qty",
                                                              "day"]
    assert list(shown_frame.index) == list(got.index)
    s = sales()
    numeric = s[["id", "amount", "qty"]].describe()
    for name in ("id", "amount", "qty"):
        for stat in ("count", "mean", "std", "min", "25%", "50%", "75%", "max"):
            want = numeric.loc[stat, name]
            assert got.loc[stat, name] == pytest.approx(want, rel=1e-9), (name, stat)
            # pandas shows 6 decimals
            assert _number(shown_frame.loc[stat, name]) == pytest.approx(want, rel=1e-6,
                                                                         abs=1e-6)
        assert got.loc["nulls", name] == s[name].isna().sum()
    region = s.region
    counts = region.value_counts()
    top = min(v for v, c in counts.items() if c == counts.max())  # ties: the smallest value
    assert got.loc["count", "region"] == region.count()
    assert got.loc["unique", "region"] == region.nunique()
    assert (got.loc["top", "region"], got.loc["freq", "region"]) == (top, counts.max())
    assert got.loc["nulls", "region"] == region.isna().sum()
    assert shown_frame.loc["top", "region"] == top
    assert pd.Timestamp(got.loc["min", "day"]) == s.day.min()
    assert pd.Timestamp(got.loc["max", "day"]) == s.day.max()
    assert got.loc["count", "day"] == s.day.count()


def test_plot_hist_is_a_vegalite_chart_of_numpys_bins(run):
    [shown] = rich(run["plot"])
    # not Altair 6's default HTML, which loads Vega from a CDN (blank without internet access)
    assert set(shown) == {VEGALITE, "text/plain"}, list(shown)
    spec = shown[VEGALITE]
    spec = json.loads(spec) if isinstance(spec, str) else spec
    feed = spec["usermeta"]["queryref"]
    assert feed["rows"] == BINS
    assert [s.split()[0] for s in feed["sql"]] == ["SELECT", "SELECT"]  # the range, the bins
    assert "GROUP BY" in feed["sql"][1]
    [values] = spec["datasets"].values()
    values = sorted(values, key=lambda r: r["bin_start"])
    amount = sales().amount.dropna().to_numpy()
    counts, edges = np.histogram(amount, bins=BINS, range=(amount.min(), amount.max()))
    assert [r["count"] for r in values] == counts.tolist()
    np.testing.assert_array_equal([r["bin_start"] for r in values], edges[:-1])
    np.testing.assert_array_equal([r["bin_end"] for r in values], edges[1:])


def test_the_repr_shows_to_pandas_dtypes_and_right_aligns_numbers(run):
    [shown] = rich(run["repr"])
    html = shown["text/html"]
    assert "QueryRef on duckdb" in html and "SELECT" in html
    table = only_table(html)
    head = table[0]
    names = [c[2].split("\n")[0] for c in head]
    dtypes = [c[2].split("\n")[1] for c in head]
    assert names == ["id", "region", "amount", "qty", "day"]
    # what to_pandas gives (amount: float64, NULL in view); an integer column that may hold
    # NULLs past the preview says so (to_pandas then gives float64)
    assert [d.removesuffix(MAYBE_FLOAT) for d in dtypes] == kept(run, "dtypes")
    assert dtypes[0] == f"{kept(run, 'dtypes')[0]}{MAYBE_FLOAT}"  # id: int64, nullable
    numeric = {"id", "amount", "qty"}
    for row in table:
        for name, (_, attrs, _text) in zip(names, row, strict=True):
            right = "text-align:right" in (attrs.get("style") or "")
            assert right == (name in numeric), (name, attrs)
    body = texts(table[1:])
    ref = sales().head(10)
    assert [int(r[0]) for r in body] == ref.id.tolist()
    shown_amounts = [_number(r[2]) if r[2] != "NULL" else float("nan") for r in body]
    np.testing.assert_array_equal(shown_amounts, ref.amount.to_numpy())


def test_a_cell_whose_preview_fails_is_not_bound(run):
    [err] = errors(run["broken"])
    assert "Conversion Error" in err.evalue or "Conversion Error" in "".join(err.traceback)
    assert all("site-packages" not in line for line in err.traceback)  # one line, no traceback
    assert errors(run["broken-again"])
    # broken is unbound; sales keeps its old definition and binding
    assert stream(run["broken-check"]).strip() == "False ['id', 'region', 'amount', 'qty', 'day']"


def test_frames_are_uploaded_to_postgres_under_readable_names(run, pg_schema):
    if pg_schema is None:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL.split('@')[-1]}")
    import queryref as qr

    assert "connected to postgres" in stream(run["pg-connect"]).lower()
    [shown] = rich(run["pg-cell"])
    assert "first 3 rows; more not shown" in shown["text/plain"]
    [sql] = rich(run["pg-sql"])
    assert "FROM _qr_frame_raw_sales_" in sql["text/plain"], sql["text/plain"]
    got = kept(run, "pg_counts")
    ref = reference().groupby("region", dropna=False).agg(n=("id", "size"),
                                                         total=("amount", "sum")).reset_index()
    assert by_key(got, "region", "n") == by_key(ref, "region", "n")
    assert close(by_key(got, "region", "total"), by_key(ref, "region", "total"))
    [listed] = rich(run["pg-tables"])  # the uploaded table is the notebook's, not listed
    assert "_qr_frame" not in listed["text/html"] and "Empty DataFrame" in listed["text/plain"]
    # %qref_connect to another engine dropped the uploaded table
    with qr.connect(PG_URL) as admin:
        left = admin.sql(f"SELECT table_name FROM information_schema.tables "
                         f"WHERE table_schema = '{pg_schema}'").to_pandas()
    assert left.empty, left


def test_the_preview_dtype_of_an_integer_column_with_later_nulls(run):
    """The preview shows 3 rows, the NULL comes at the 5th: ``v`` is int64 there, float64
    in ``to_pandas``; the header says both."""
    [shown] = rich(run["late-null"])
    head = only_table(shown["text/html"])[0]
    full = kept(run, "late_null")  # int64, float64
    assert full[1] == "float64"
    assert [c[2].split("\n")[1] for c in head][1] == f"int64{MAYBE_FLOAT}"
