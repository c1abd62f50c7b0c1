"""Real SQL no one here wrote, composed on with every verb (issue 13).

The corpus is TPC-H (22 queries) and TPC-DS (99) as sqlglot keeps them in its test fixtures
(``tests/corpus/``), over data generated at scale factor 0.01 (``_corpus.py``), on embedded
DuckDB (the text as written) and PostgreSQL (the text transpiled by sqlglot). Each query runs
through ``con.sql(text)`` as written and composed on with count, limit, filter, agg,
group_by + agg, select, drop, rename, mutate, windows (and a filter after one), distinct,
union/intersect/except with itself and with another query of the corpus, and a self-join.
Each result must hold the rows of hand-written reference SQL that wraps the query as a
subquery on the same engine, run by the plain driver (rows as multisets, numbers to a
relative 1e-8); where the query has a top-level ORDER BY, the verbs that promise to keep an
order (filter, mutate, select, rename, drop, windows) must return rows in it, and limit(n)
its first n rows (``_corpus.out_of_order``). Aggregates, distinct and set operations may
drop the order.

CI runs a sample that changes every run: ``QUERYREF_CORPUS_QUERIES`` queries of each corpus
on each engine (default ``_CI_SAMPLE``: 5 TPC-H on both, 10 TPC-DS on DuckDB, 3 on
PostgreSQL), drawn with ``QUERYREF_CORPUS_SEED`` (default:
the clock), which the run prints first so that a failure can be repeated;
``QUERYREF_CORPUS_QUERIES=all`` (``make fuzz``) runs every query. Queries an engine cannot
run are listed in ``GAPS`` with the error they raise; ``test_engine_gap`` fails when one of
them runs, so the list stays true. (The issue's six cases, each on every engine, are in
``conformance/test_conf_exact.py``.)
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import queryref as qr
from _corpus import ENGINES, Base, CorpusEngine, Query, base, checks, partner, queries, run_check

SEED = int(os.environ.get("QUERYREF_CORPUS_SEED") or time.time())
_SAMPLE = os.environ.get("QUERYREF_CORPUS_QUERIES", "").strip().lower()
# queries per engine and corpus in a CI run (a TPC-DS query's checks: ~1.5 s on DuckDB, ~8 s on
# PostgreSQL)
_CI_SAMPLE = {("duckdb", "tpch"): 5, ("duckdb", "tpcds"): 10, ("postgres", "tpch"): 5,
              ("postgres", "tpcds"): 3}
SAMPLE = _CI_SAMPLE if not _SAMPLE else (
    None if _SAMPLE == "all" else dict.fromkeys(_CI_SAMPLE, int(_SAMPLE)))
REPORT = os.environ.get("QUERYREF_CORPUS_REPORT")  # a JSON file: every check's outcome
REPEAT = f"QUERYREF_CORPUS_SEED={SEED} QUERYREF_CORPUS_QUERIES={_SAMPLE or 'default'}"

# Queries an engine cannot run as written, with (part of) the error it raises.
GAPS: dict[tuple[str, str], str] = {
    # the query reads customer.c_last_review_date; TPC-DS's current schema, which the data
    # generator writes, has c_last_review_date_sk
    ("duckdb", "TPC-DS 30"): "c_last_review_date",
    ("postgres", "TPC-DS 30"): "c_last_review_date",
    # a subquery in FROM without an alias: PostgreSQL accepts it from version 16 on
    ("postgres", "TPC-DS 2"): "subquery in FROM must have an alias",
    ("postgres", "TPC-DS 14"): "subquery in FROM must have an alias",
    ("postgres", "TPC-DS 23"): "subquery in FROM must have an alias",
    # an output alias inside an ORDER BY expression (CASE WHEN lochierarchy = 0 ...):
    # PostgreSQL resolves only bare output names there
    ("postgres", "TPC-DS 36"): 'column "lochierarchy" does not exist',
    ("postgres", "TPC-DS 70"): 'column "lochierarchy" does not exist',
    ("postgres", "TPC-DS 86"): 'column "lochierarchy" does not exist',
    # ROUND(double, digits): PostgreSQL has it for NUMERIC only (sqlglot keeps the call)
    ("postgres", "TPC-DS 78"): "function round(double precision, integer) does not exist",
    # morning over evening web sales on pages of 5,000-5,200 characters: at SF 0.01 there are
    # no evening ones, and PostgreSQL's division by zero is an error (DuckDB's gives NULL)
    ("postgres", "TPC-DS 90"): "division by zero",
}


# Queries whose checks took PostgreSQL more than 35 s on a loaded two-core machine (59: 211 s;
# 4, 10, 11, 35: 75-115 s; the median TPC-DS query: 8 s): TPC-DS has no indexes here and some
# wrapped forms plan badly. The full run has them; CI's sample leaves them out to keep its time.
SLOW = {("postgres", f"TPC-DS {n}") for n in (4, 6, 10, 11, 35, 41, 59, 74, 85)}


def _sample(engine: str, corpus: str) -> list[Query]:
    runnable = [q for q in queries(corpus) if (engine, q.title) not in GAPS]
    if SAMPLE is None:
        return runnable
    runnable = [q for q in runnable if (engine, q.title) not in SLOW]
    if SAMPLE[engine, corpus] >= len(runnable):
        return runnable
    chosen = random.Random(f"{SEED}-{engine}-{corpus}").sample(runnable, SAMPLE[engine, corpus])
    return sorted(chosen, key=runnable.index)


CASES = [(e, q) for e in ENGINES for corpus in ("tpch", "tpcds") for q in _sample(e, corpus)]
_STATS: Counter[tuple[str, str, str]] = Counter()  # (engine, corpus, run|matched) -> checks
_OUTCOMES: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def _opened(request: pytest.FixtureRequest) -> Iterator[dict[Any, Any]]:
    """Engines with a corpus loaded, opened on first use; the seed first, the counts last."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def say(line: str) -> None:  # on the terminal, past pytest's capture
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)

    say(f"\ncorpus sample: {REPEAT} (QUERYREF_CORPUS_QUERIES=all: every query)")
    with contextlib.ExitStack() as stack:
        yield {"stack": stack}
    for engine in ENGINES:
        for corpus in ("tpch", "tpcds"):
            run = _STATS[engine, corpus, "run"]
            if run:
                say(f"corpus checks {engine} {corpus}: {_STATS[engine, corpus, 'matched']} of "
                    f"{run} matched")
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump(_OUTCOMES, f, indent=1)


def _engine(opened: dict[Any, Any], name: str, corpus: str) -> CorpusEngine:
    """The engine with the corpus loaded (PostgreSQL: skipped locally, failed under CI=true
    when the server is not there)."""
    if (name, corpus) not in opened:
        try:
            opened[name, corpus] = opened["stack"].enter_context(ENGINES[name](corpus))
        except (pytest.skip.Exception, pytest.fail.Exception) as err:
            opened[name, corpus] = err
    got = opened[name, corpus]
    if isinstance(got, BaseException):
        raise got
    return got


def _catalog(opened: dict[Any, Any], corpus: str) -> list[Base]:
    """Every query of the corpus run once on DuckDB: what partner() chooses from."""
    if ("catalog", corpus) not in opened:
        duck = _engine(opened, "duckdb", corpus)
        opened["catalog", corpus] = [base(duck, q) for q in queries(corpus)
                                     if ("duckdb", q.title) not in GAPS]
    return opened["catalog", corpus]


def _partner(opened: dict[Any, Any], engine: CorpusEngine, b: Base) -> Base | None:
    found = partner(b, _catalog(opened, b.query.corpus))
    if found is None or engine.name == "duckdb":
        return found
    if (engine.name, found.query.title) in GAPS:
        return None
    return base(engine, found.query)


@pytest.mark.parametrize(("engine_name", "query"), CASES,
                         ids=[f"{e}-{q.id}" for e, q in CASES])
def test_query_composes(_opened: dict[Any, Any], engine_name: str, query: Query) -> None:
    """The query as written and composed on with every verb: the reference's rows, and the
    query's order where the verb keeps it."""
    engine = _engine(_opened, engine_name, query.corpus)
    b = base(engine, query)
    failures = []
    for check in checks(b, _partner(_opened, engine, b)):
        wrong = run_check(engine, b, check)
        _STATS[engine_name, query.corpus, "run"] += 1
        _STATS[engine_name, query.corpus, "matched"] += wrong is None
        _OUTCOMES.append({"engine": engine_name, "query": query.title, "verb": check.verb,
                          "failure": wrong, "reference": check.reference})
        if wrong is not None:
            failures.append(f"  {check.verb}: {wrong}")
    assert not failures, (f"{query.title} on {engine_name} ({REPEAT}; sorted on "
                          f"{[b.names[i] for i in b.keys]}):\n" + "\n".join(failures))


@pytest.mark.parametrize(("engine_name", "title"), list(GAPS),
                         ids=[f"{e}-{t.replace('TPC-', '').replace(' ', '').lower()}"
                              for e, t in GAPS])
def test_engine_gap(_opened: dict[Any, Any], engine_name: str, title: str) -> None:
    """A query listed in GAPS still fails on that engine, with the error named there, both
    through the plain driver and through queryref (a BackendError carrying the engine's
    message): once it runs, take it off the list so the corpus test runs it."""
    query = next(q for q in queries(title.split()[0].replace("-", "").lower()) if q.title == title)
    engine = _engine(_opened, engine_name, query.corpus)
    text = engine.text(query)
    with pytest.raises(Exception, match=re.escape(GAPS[engine_name, title])):
        engine.run(text)
    with pytest.raises(qr.errors.BackendError, match=re.escape(GAPS[engine_name, title])):
        engine.con.sql(text).to_arrow(max_bytes=None, preflight=None)


def test_corpus_is_complete() -> None:
    """Every query of both fixture files is there, titled, and parses in both dialects."""
    tpch, tpcds = queries("tpch"), queries("tpcds")
    assert [q.title for q in tpch] == [f"TPC-H {i}" for i in range(1, 23)]
    assert [q.title for q in tpcds] == [f"TPC-DS {i}" for i in range(1, 100)]
    for q in (*tpch, *tpcds):
        assert CorpusEngine("postgres", None, None).text(q)  # type: ignore[arg-type]
