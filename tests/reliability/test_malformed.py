"""Malformed input: broken SQL texts, bad parameters and bad API arguments each raise a
queryref error (a ``QueryRefError``), never a raw driver/sqlglot/Python exception, never a hang.

SQL texts are truncations and single-character mutations of valid queries (seeded, repeatable);
each case runs under a per-case time limit.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import queryref as qr
from queryref.errors import QueryRefError

from .conftest import SCALE

VALID = [
    "SELECT id, amount FROM t WHERE amount > 10 AND region = 'north' ORDER BY id LIMIT 5",
    "WITH a AS (SELECT region, SUM(amount) AS s FROM t GROUP BY region) SELECT * FROM a",
    "SELECT region, COUNT(*) AS n FROM t GROUP BY region HAVING COUNT(*) > 1",
    "SELECT id, ROW_NUMBER() OVER (PARTITION BY region ORDER BY amount DESC) AS rn FROM t",
    "SELECT CASE WHEN amount IS NULL THEN 0 ELSE amount END AS a FROM t",
    "SELECT a.id FROM t a JOIN t b ON a.id = b.id WHERE a.region IN ('x', 'y')",
    "SELECT id FROM t UNION ALL SELECT id FROM t EXCEPT SELECT 1",
    "SELECT CAST(amount AS DECIMAL(10, 2)) AS d, 'it''s' AS q FROM t",
]
_NOISE = [*"()'\";,.*+-/%=<>!|&$@#[]{}\\`\n\x00", "SELECT", "FROM", "WHERE", "--", "/*",
          "JOIN", "ON", "(((", "NULL", "''"]


def malformed(scale: int = 1) -> list[str]:
    rng = random.Random(11)
    out: set[str] = set()
    for q in VALID:  # every truncation on a token boundary, and some inside tokens
        for cut in range(1, len(q)):
            if q[cut - 1] in " ,(" or rng.random() < 0.1:
                out.add(q[:cut])
    while len(out) < 500 * scale + 100:
        q = list(rng.choice(VALID))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(q))
            op = rng.random()
            if op < 0.4:
                q.insert(i, rng.choice(_NOISE))
            elif op < 0.7:
                del q[i]
            else:
                q[i] = rng.choice(_NOISE)
        out.add("".join(q))
    return sorted(out)


class _Hang(Exception):
    pass


def _limited(fn: Callable[[], Any], seconds: int = 5) -> Any:
    """Run ``fn`` under an alarm: a hang is a failure of its own, not a stuck suite."""
    def alarm(*_: Any) -> None:
        raise _Hang(f"no answer within {seconds}s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def t() -> Iterator[qr.QueryRef]:
    con = qr.connect()
    con.execute("CREATE TABLE t AS SELECT range AS id, range * 1.5 AS amount, "
                "CASE WHEN range % 2 = 0 THEN 'north' ELSE 'south' END AS region FROM range(20)")
    yield con.table("t")
    con.close()


def _outcome(fn: Callable[[], Any]) -> str:
    """"ok", or the queryref error's class name; anything else fails the test."""
    try:
        _limited(fn)
    except QueryRefError as err:
        return type(err).__name__
    return "ok"


def test_malformed_sql_texts_raise_queryref_errors(t: qr.QueryRef) -> None:
    con = t.connection
    texts = malformed(SCALE)
    assert len(texts) >= 500 * SCALE
    outcomes = [_outcome(lambda q=q: con.sql(q).to_arrow()) for q in texts]
    assert outcomes.count("ok") < len(texts) // 2  # most mutations are really broken
    # the same texts where a predicate or a projection goes
    for q in texts[:: max(1, 4 // SCALE)]:
        _outcome(lambda q=q: t.filter(q).to_arrow())
        _outcome(lambda q=q: t.select(x=q).to_arrow())


BAD_PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("SELECT {{ x }} AS x", {}),                                   # missing
    ("SELECT 1 AS x", {"x": 1}),                                   # unused
    ("SELECT {{ x }} AS x", {"x": object()}),                      # unsupported type
    ("SELECT {{ x }} AS x", {"x": [1, 2]}),                        # list outside IN
    ("SELECT {{ x }} AS x", {"x": {"a": 1}}),
    ("SELECT {{ x }} AS x", {"x": b"bytes"}),
    ("SELECT {{ x }} AS x", {"x": float("nan") * 0j}),
    ("SELECT * FROM {{ x }}", {"x": 1}),                           # scalar as a table
    ("SELECT * FROM {{ x }}", {"x": "t"}),
    ("SELECT {{ x | identifier }} FROM t", {"x": 1}),
    ("SELECT {{ x | identifier }} FROM t", {"x": ""}),
    ("SELECT {{ x | upper }} AS x", {"x": "a"}),                   # unknown filter
    ("SELECT {{ x y }} AS x", {"x": 1}),
    ("SELECT {{ 1x }} AS x", {}),
    ("SELECT {{ }} AS x", {}),
    ("SELECT '{{ x }}' AS x", {"x": 1}),                           # inside a string literal
    ("SELECT 1 AS {{ x }}", {"x": "a"}),                           # a value where a name goes
    ("SELECT id FROM t WHERE id IN {{ x }}", {"x": 3}),
    ("SELECT id FROM t WHERE id IN {{ x }}", {"x": [object()]}),
    ("SELECT {{ x }} AS x", {"x": __import__("decimal").Decimal("NaN")}),
]


@pytest.mark.parametrize(("text", "params"), BAD_PARAMS)
def test_bad_parameters_raise_queryref_errors(t: qr.QueryRef, text: str,
                                              params: dict[str, Any]) -> None:
    with pytest.raises(QueryRefError):
        _limited(lambda: t.connection.sql(text, **params).to_arrow())


_JUNK: list[Any] = [None, -1, 0, 1.5, "x", "", b"x", object(), [], {}, ("a",), 10**12, True,
                    float("nan"), qr.col]


def _calls(t: qr.QueryRef) -> dict[str, Callable[[Any], Any]]:
    """Every public method with one argument replaced by junk."""
    con = t.connection
    return {
        "limit": lambda v: t.limit(v).to_arrow(), "limit_offset": lambda v: t.limit(2, v),
        "head": lambda v: t.head(v).to_arrow(), "order_by": lambda v: t.order_by(v),
        "select": lambda v: t.select(v), "select_named": lambda v: t.select(x=v),
        "mutate": lambda v: t.mutate(v), "filter": lambda v: t.filter(v),
        "rename": lambda v: t.rename(v), "rename_to": lambda v: t.rename({"id": v}),
        "drop": lambda v: t.drop(v), "distinct": lambda v: t.distinct(v),
        "cast": lambda v: t.cast(id=v), "group_by": lambda v: t.group_by(v).agg(n=qr.count()),
        "agg": lambda v: t.agg(v), "agg_named": lambda v: t.agg(n=v),
        "join_how": lambda v: t.join(t, on="id", how=v),
        "join_on": lambda v: t.join(t, on=v), "join_other": lambda v: t.join(v, on="id"),
        "join_suffixes": lambda v: t.join(t, on="id", suffixes=v),
        "union": lambda v: t.union(v), "intersect": lambda v: t.intersect(v),
        "except_": lambda v: t.except_(v), "sample": lambda v: t.sample(v),
        "sample_seed": lambda v: t.sample(0.5, seed=v), "t_col": lambda v: t.col(v),
        "compile": lambda v: t.compile(v), "preview": lambda v: t.preview(v),
        "to_pandas_max_bytes": lambda v: t.to_pandas(max_bytes=v),
        "to_pandas_max_rows": lambda v: t.to_pandas(max_rows=v),
        "to_arrow_batch_rows": lambda v: t.to_arrow(batch_rows=v),
        "to_arrow_timeout": lambda v: t.to_arrow(timeout=v),
        "to_arrow_batches": lambda v: list(t.to_arrow_batches(v)),
        "to_pandas_batches": lambda v: list(t.to_pandas_batches(v)),
        "to_parquet": lambda v: t.to_parquet(v),
        "partitions": lambda v: t.partitions(v),
        "con_sql": lambda v: con.sql(v), "con_table": lambda v: con.table(v),
        "con_execute": lambda v: con.execute(v),
        "con_create_table_name": lambda v: con.create_table(v, t),
        "con_create_table_data": lambda v: con.create_table("qr_junk", v),
        "read_parquet": lambda v: con.read_parquet(v).to_arrow(),
        "connect": lambda v: qr.connect(v),
        "col": lambda v: qr.col(v), "lit": lambda v: qr.lit(v).sql(),
        "isin": lambda v: t.filter(qr.col("id").isin(v)).to_arrow(),
        "between": lambda v: t.filter(qr.col("id").between(v, v)).to_arrow(),
        "like": lambda v: t.filter(qr.col("region").like(v)).to_arrow(),
        "expr_cast": lambda v: t.mutate(x=qr.col("id").cast(v)),
        "over": lambda v: t.mutate(x=qr.row_number().over(order_by=v)),
        "round": lambda v: t.mutate(x=qr.col("amount").round(v)).to_arrow(),
        "when": lambda v: t.mutate(x=qr.when(v, 1).otherwise(0)),
        "notebook_cell_sql": lambda v: qr.Notebook(con).cell("c", v),
        "notebook_getitem": lambda v: qr.Notebook(con)[v],
        "options_max_bytes": lambda v: qr.options.context(max_bytes=v).__enter__(),
        "options_preflight": lambda v: qr.options.context(preflight=v).__enter__(),
        "options_batch_rows": lambda v: qr.options.context(batch_rows=v).__enter__(),
    }


FIXED = {  # the named cases from issue 7, each a clear typed error
    "limit(-1)": lambda t: t.limit(-1), "limit('x')": lambda t: t.limit("x"),
    "join(how='sideways')": lambda t: t.join(t, on="id", how="sideways"),
    "order_by(42)": lambda t: t.order_by(42), "to_pandas(max_bytes='lots')":
        lambda t: t.to_pandas(max_bytes="lots"),
}


@pytest.mark.parametrize("case", sorted(FIXED))
def test_issue_examples_raise_queryref_errors(t: qr.QueryRef, case: str) -> None:
    with pytest.raises(QueryRefError):
        _limited(lambda: FIXED[case](t))


# Methods that let a raw TypeError/AttributeError/ValueError out for some junk argument; all
# 16 this campaign found are fixed (argument checks in _resolve, rename, limit, join, over,
# partitions, file paths, sizes and timeouts), so the strict xfail below is empty.
KNOWN_RAW: frozenset[str] = frozenset()


def _raw_escapes(t: qr.QueryRef, known: bool) -> tuple[int, list[str]]:
    raw: list[str] = []
    tried = 0
    with qr.options.context():
        for name, call in _calls(t).items():
            if (name in KNOWN_RAW) != known:
                continue
            for value in _JUNK:
                tried += 1
                try:
                    _limited(lambda c=call, v=value: c(v))
                except QueryRefError:
                    pass
                except _Hang:
                    raw.append(f"{name}({value!r}): hang")
                except Exception as err:
                    raw.append(f"{name}({value!r}): {type(err).__name__}: {err}"[:160])
    return tried, raw


def test_junk_arguments_to_every_public_method_raise_only_queryref_errors(
        t: qr.QueryRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # junk like "x" is a valid path: to_parquet("x") writes there
    tried, raw = _raw_escapes(t, known=False)
    assert tried >= 500
    assert raw == []
