"""The SQL corpus of ``test_corpus.py``: queries no one here wrote, their data, their engines.

- :func:`queries` reads ``tests/corpus/*.sql`` (TPC-H and TPC-DS as kept in sqlglot's test
  fixtures; see ``tests/corpus/README.md``): one :class:`Query` per ``-- TITLE`` block.
- :func:`generate` writes the tables at scale factor 0.01 as Parquet, once per machine, into
  ``data/corpus/`` (gitignored): TPC-H with ``tpchgen-cli``, TPC-DS with ``tpcgen-cli``.
- :func:`duckdb_engine` and :func:`postgres_engine` load them (DuckDB: tables in an embedded
  database; PostgreSQL: a schema of its own with the tables' own types, NUMERIC and DATE,
  dropped at the end) and give a :class:`CorpusEngine`: a queryref connection and, beside it,
  a plain driver connection on the same data that runs the hand-written reference SQL.
- :func:`base` runs a query alone through that driver and reads its ORDER BY;
  :func:`checks` builds each verb's composition with its reference SQL (the query as a
  subquery whose columns are named by position); :func:`run_check` runs both and compares
  (:func:`differ`: rows as multisets; :func:`out_of_order`, :func:`limit_differs`: order).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

import queryref as qr

HERE = Path(__file__).parent
CORPUS_DIR = HERE / "corpus"
DATA_DIR = HERE.parent / "data" / "corpus"
SCALE = "0.01"
CORPORA = {"tpch": "tpch.sql", "tpcds": "tpcds.sql"}
# the programs that write each corpus's tables (both from PyPI, in the dev extra)
GENERATORS = {"tpch": ["tpchgen-cli", "parquet"], "tpcds": ["tpcgen-cli", "tpcds", "parquet"]}
PG_TIMEOUT_MS = 30_000  # a PostgreSQL statement that takes longer fails its check


@dataclass(frozen=True)
class Query:
    corpus: str  # tpch | tpcds
    title: str  # "TPC-H 3", as in the source
    text: str  # as written (sqlglot's default dialect, which DuckDB reads as it is)

    @property
    def id(self) -> str:
        return self.title.replace("TPC-", "").replace(" ", "").lower()  # "h3", "ds47"

    def __repr__(self) -> str:
        return self.title


def queries(corpus: str) -> list[Query]:
    """The queries of one corpus file, in file order."""
    text = (CORPUS_DIR / CORPORA[corpus]).read_text()
    parts = re.split(r"^-- (TPC-[A-Z]+ \d+)\n", text, flags=re.M)
    out = []
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip()
        assert sql.endswith(";"), title
        out.append(Query(corpus, title, sql[:-1].rstrip()))
    return out


# -- data -----------------------------------------------------------------------------------------
def _tool(name: str) -> str:
    """A console script of this interpreter's environment (or on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def generate(corpus: str) -> Path:
    """The corpus's Parquet files (one per table), generated on first use into a scratch
    directory renamed at the end, so an interrupted run leaves nothing half-written."""
    out = DATA_DIR / f"{corpus}-sf{SCALE}"
    if out.is_dir():
        return out
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{corpus}.", dir=DATA_DIR))
    try:
        cmd = [_tool(GENERATORS[corpus][0]), *GENERATORS[corpus][1:], "-s", SCALE,
               f"--output-dir={scratch}"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        with contextlib.suppress(OSError):  # another session made it meanwhile: theirs is fine
            scratch.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def tables(corpus: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted(generate(corpus).glob("*.parquet"))}


@dataclass(frozen=True)
class Result:
    names: list[str]
    rows: list[tuple[Any, ...]]
    types: list[str]  # the driver's type names, upper case (DuckDB's, or PostgreSQL's typname)


_KINDS = (("num", ("INT", "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL")),
          ("text", ("VARCHAR", "TEXT", "CHAR", "STRING")), ("date", ("DATE", "TIMESTAMP")))


def kind_of(type_name: str) -> str:
    """num | text | date | other: what kind of values a column type holds."""
    return next((k for k, marks in _KINDS if any(m in type_name for m in marks)), "other")


# -- engines --------------------------------------------------------------------------------------
@dataclass
class CorpusEngine:
    """One engine with a corpus loaded: queryref's connection, and a plain driver connection
    on the same data for the reference SQL (``rows``: a list of tuples, in the engine's
    order)."""

    name: str  # duckdb | postgres
    con: qr.Connection
    run: Callable[[str], Result]  # the plain driver: the reference's rows, in the engine's order

    def text(self, q: Query) -> str:
        """The query as a user of this engine writes it: DuckDB reads the corpus as it is;
        PostgreSQL gets sqlglot's transpilation (the PostgreSQL dialect of the same query)."""
        if self.name == "duckdb":
            return q.text
        return sqlglot.transpile(q.text, write="postgres")[0]

    def __repr__(self) -> str:
        return f"<{self.name}>"


@contextlib.contextmanager
def duckdb_engine(corpus: str) -> Iterator[CorpusEngine]:
    import duckdb

    raw = duckdb.connect()
    for name, path in tables(corpus).items():
        raw.execute(f"CREATE TABLE {name} AS FROM read_parquet('{path}')")

    def run(sql: str) -> Result:
        cur = raw.execute(sql)
        desc = cur.description
        return Result([d[0] for d in desc], cur.fetchall(), [str(d[1]).upper() for d in desc])

    with qr.connect(raw.cursor()) as con:  # (a cursor: a second connection to the same data)
        yield CorpusEngine("duckdb", con, run)
    raw.close()


_PG_TYPES = {"VARCHAR": "TEXT", "INTEGER": "INTEGER", "BIGINT": "BIGINT", "DATE": "DATE",
             "DOUBLE": "DOUBLE PRECISION", "BOOLEAN": "BOOLEAN"}


def _pg_type(duck_type: str) -> str:
    """The PostgreSQL column type for a Parquet column as DuckDB reads it: DECIMAL(p,s) ->
    NUMERIC(p,s), DATE -> DATE, text -> TEXT, ..."""
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "NUMERIC")
    return _PG_TYPES[duck_type]


# The keys TPC-H declares, and the index on lineitem's foreign key to partsupp that a TPC-H load
# on PostgreSQL has: without it Q20's correlated subquery scans lineitem once per partsupp row
# (over 30 s at SF 0.01; 0.04 s with it).
PG_KEYS = {"tpch": (
    "ALTER TABLE region ADD PRIMARY KEY (r_regionkey)",
    "ALTER TABLE nation ADD PRIMARY KEY (n_nationkey)",
    "ALTER TABLE part ADD PRIMARY KEY (p_partkey)",
    "ALTER TABLE supplier ADD PRIMARY KEY (s_suppkey)",
    "ALTER TABLE partsupp ADD PRIMARY KEY (ps_partkey, ps_suppkey)",
    "ALTER TABLE customer ADD PRIMARY KEY (c_custkey)",
    "ALTER TABLE orders ADD PRIMARY KEY (o_orderkey)",
    "ALTER TABLE lineitem ADD PRIMARY KEY (l_orderkey, l_linenumber)",
    "CREATE INDEX ON lineitem (l_partkey, l_suppkey)",
)}


def _load_postgres(pg: Any, corpus: str) -> None:
    """Each table: CREATE TABLE with its own types, COPY from a CSV file DuckDB writes."""
    import duckdb

    duck = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in tables(corpus).items():
            rel = duck.sql(f"FROM read_parquet('{path}')")
            cols = ", ".join(f'"{c}" {_pg_type(str(t))}'
                             for c, t in zip(rel.columns, rel.types, strict=True))
            pg.execute(f"CREATE UNLOGGED TABLE {name} ({cols})")
            csv = os.path.join(tmp, f"{name}.csv")
            duck.execute(f"COPY (FROM read_parquet('{path}')) TO '{csv}' (HEADER false)")
            with pg.cursor() as cur, cur.copy(f"COPY {name} FROM STDIN (FORMAT csv)") as copy, \
                    open(csv, "rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            os.remove(csv)
        for ddl in PG_KEYS.get(corpus, ()):
            pg.execute(ddl)
        pg.execute("ANALYZE")
    duck.close()


@contextlib.contextmanager
def postgres_engine(corpus: str) -> Iterator[CorpusEngine]:
    """The corpus in a PostgreSQL schema of its own (dropped at the end); skipped locally when
    the server is not there, a failure under CI=true (the conformance suite's rule)."""
    from conformance.qr_conformance import PG_URL, unavailable

    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[dev]')")
    url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        unavailable(f"PostgreSQL is not reachable at {PG_URL.split('@')[-1]}: {err}")
    schema = f"qr_corpus_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        options = f"-csearch_path={schema} -cstatement_timeout={PG_TIMEOUT_MS}"
        raw = psycopg.connect(url, autocommit=True, options=options)
        _load_postgres(raw, corpus)

        def run(sql: str) -> Result:
            cur = raw.execute(sql)
            desc = cur.description or []
            types = [getattr(raw.adapters.types.get(d.type_code), "name", "") for d in desc]
            return Result([d.name for d in desc], cur.fetchall(), [t.upper() for t in types])

        sep = "&" if "?" in PG_URL else "?"
        quoted = options.replace("=", "%3D").replace(" ", "%20")
        with qr.connect(f"{PG_URL}{sep}options={quoted}") as con:
            yield CorpusEngine("postgres", con, run)
        raw.close()
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


ENGINES = {"duckdb": duckdb_engine, "postgres": postgres_engine}


# -- what the checks need to know about a query's own result --------------------------------------
@dataclass
class Base:
    """A query as the engine runs it alone (``result``, from the plain driver), with what the
    checks derive from it: the output columns its ORDER BY sorts on, and the run of equal sort
    keys each row belongs to."""

    query: Query
    text: str  # in the engine's dialect
    result: Result
    keys: list[int]  # output columns of the ORDER BY's leading terms ([]: no known order)
    limit: int | None  # the top-level LIMIT
    runs: list[int]  # per row of ``result``: index of its run of equal ``keys``
    ctes: frozenset[str]  # names of the top-level WITH clause

    @property
    def names(self) -> list[str]:
        return self.result.names

    @property
    def ordered(self) -> bool:
        return bool(self.keys)

    def usable(self) -> list[str]:
        """Output names a verb can name: the ones that occur once (the engines differ on
        what a duplicate name means; see ``test_duplicate_output_names``)."""
        folded = [n.lower() for n in self.names]
        return [n for n in self.names if folded.count(n.lower()) == 1]

    def kind(self, name: str) -> str:
        """num | text | date | other: the column's type, as the driver reports it."""
        return kind_of(self.result.types[self.names.index(name)])

    def values(self, name: str) -> list[Any]:
        i = self.names.index(name)
        return [r[i] for r in self.result.rows if norm(r[i]) is not None]


def _order_and_limit(tree: exp.Expression) -> tuple[list[exp.Ordered], int | None]:
    order = tree.args.get("order")
    limit = tree.args.get("limit")
    n = None
    if isinstance(limit, exp.Limit) and isinstance(limit.expression, exp.Literal):
        n = int(limit.expression.name)
    return (list(order.expressions) if order else []), n


def sort_columns(tree: exp.Expression, names: list[str]) -> list[int]:
    """The output columns the leading ORDER BY terms sort on: a position (``ORDER BY 2``), an
    output name, or an expression equal to an output's. The first term that is none of these
    (an expression over inputs or over aliases) ends the list: rows are in order of the terms
    before it."""
    terms, _ = _order_and_limit(tree)
    projections = tree.expressions if isinstance(tree, exp.Select) else []
    folded = [n.lower() for n in names]
    out: list[int] = []
    for term in terms:
        key = term.this
        idx = None
        if isinstance(key, exp.Literal) and key.is_int:
            idx = int(key.name) - 1
        elif isinstance(key, exp.Column) and not key.table and folded.count(key.name.lower()) == 1:
            idx = folded.index(key.name.lower())
        else:
            for i, p in enumerate(projections):
                if not isinstance(p, exp.Star) and p.unalias() == key and i < len(names):
                    idx = i
                    break
        if idx is None or not 0 <= idx < len(names):
            break
        out.append(idx)
    return out


def base(engine: CorpusEngine, q: Query) -> Base:
    text = engine.text(q)
    result = engine.run(text)
    tree = sqlglot.parse_one(text, read=engine.name)
    keys = sort_columns(tree, result.names)
    _, limit = _order_and_limit(tree)
    runs, run, prev = [], -1, None
    for r in result.rows:
        k = tuple(norm(r[i]) for i in keys)
        if k != prev:
            run, prev = run + 1, k
        runs.append(run)
    with_ = tree.args.get("with")
    ctes = frozenset(c.alias_or_name.lower() for c in with_.expressions) if with_ else frozenset()
    return Base(q, text, result, keys, limit, runs, ctes)


# -- comparing rows -------------------------------------------------------------------------------
def norm(v: Any) -> Any:
    """A value as compared: numbers of every type as floats to 9 significant digits (a SUM of
    DECIMALs and the same SUM in double precision agree there), NaN as NULL."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float | Decimal):
        f = float(f"{float(v):.9g}")
        return f + 0.0  # (no -0.0)
    return v


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-9)
    return bool(a == b)


def differ(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> str | None:
    """None when ``got`` and ``want`` hold the same rows (as multisets, numbers to a relative
    1e-8), else what differs."""
    g = Counter(tuple(norm(v) for v in r) for r in got)
    w = Counter(tuple(norm(v) for v in r) for r in want)
    if g == w:
        return None
    extra, missing = list((g - w).elements()), list((w - g).elements())
    if len(extra) == len(missing) and len(extra) <= 2000:  # rounding at the 9th digit: pair up
        left = list(missing)
        for r in extra:
            hit = next((i for i, m in enumerate(left) if len(m) == len(r)
                        and all(_close(a, b) for a, b in zip(r, m, strict=True))), None)
            if hit is None:
                break
            left.pop(hit)
        else:
            return None
    return (f"{sum(g.values())} rows, {sum(w.values())} expected; unexpected {extra[:2]}; "
            f"missing {missing[:2]}")


def out_of_order(b: Base, rows: list[tuple[Any, ...]], kept: list[int | None]) -> str | None:
    """None when ``rows`` (a result derived from ``b``'s rows, each row's column ``j`` equal
    to ``b``'s column ``kept[j]``, None for new or changed columns) can be in ``b``'s order:
    each row is matched to the runs of equal sort keys in ``b`` whose rows agree on the kept
    columns, and some choice of run per row must not decrease.

    This holds whatever the verb kept, so order is also checked where a verb drops or changes
    the sort key columns (the promise: an ordered QueryRef stays ordered through filter,
    mutate, select, rename, drop and windows); rows with equal keys may come in any order,
    and nothing needs to know the engine's collation or where it puts NULLs."""
    pairs = [(j, i) for j, i in enumerate(kept) if i is not None]
    candidates: dict[tuple[Any, ...], set[int]] = {}
    for r, run in zip(b.result.rows, b.runs, strict=True):
        candidates.setdefault(tuple(norm(r[i]) for _, i in pairs), set()).add(run)
    at = 0
    for n, r in enumerate(rows):
        runs = candidates.get(tuple(norm(r[j]) for j, _ in pairs))
        if not runs:
            if b.limit is not None:  # rows tied at the query's LIMIT: this run kept another
                return None
            return f"row {n} {r} is not a row of the query"
        later = [x for x in runs if x >= at]
        if not later:
            return (f"row {n} {r} comes after a row that sorts later (sort keys: "
                    f"{[b.names[i] for i in b.keys]})")
        at = min(later)
    return None


def limit_differs(b: Base, rows: list[tuple[Any, ...]], n: int) -> str | None:
    """``q.limit(n)`` of an ordered query: its first ``n`` rows (rows with equal sort keys at
    the cut may be any of them)."""
    if len(rows) != min(n, len(b.result.rows)):
        return f"{len(rows)} rows, {min(n, len(b.result.rows))} expected"
    where: dict[tuple[Any, ...], set[int]] = {}
    for r, run in zip(b.result.rows, b.runs, strict=True):
        where.setdefault(tuple(norm(v) for v in r), set()).add(run)
    for i, r in enumerate(rows):
        found = where.get(tuple(norm(v) for v in r))
        if found is None and b.limit is not None:  # tied at the query's own LIMIT (see above)
            continue
        if b.runs[i] not in (found or set()):
            return f"row {i} {r} is not among the query's first {n} rows in its order"
    return None


# -- the verbs ------------------------------------------------------------------------------------
def qi(name: str) -> str:
    """A quoted identifier (both engines)."""
    return '"' + name.replace('"', '""') + '"'


def sub(b: Base, alias: str = "qr_t") -> str:
    """The query as a derived table whose columns are named by position, ``qr_c0, qr_c1,
    ...``: the references name columns that way, so duplicate output names (TPC-DS 64, 39)
    mean nothing to them."""
    cols = ", ".join(f"qr_c{i}" for i in range(len(b.names)))
    return f"({b.text}) AS {alias}({cols})"


def out(b: Base, i: int, alias: str = "qr_t", name: str | None = None) -> str:
    """Column ``i`` of the derived table, named as the query names it (or ``name``)."""
    return f"{alias}.qr_c{i} AS {qi(b.names[i] if name is None else name)}"


def star(b: Base, alias: str = "qr_t") -> str:
    return ", ".join(out(b, i, alias) for i in range(len(b.names)))


@dataclass
class Check:
    """One verb on one query: queryref's composition and the reference SQL it must match.
    ``kept``: for each output column, the query's column it equals (None: new or changed),
    when the verb keeps the query's order (else None); ``scalar``: compare one value."""

    verb: str
    build: Callable[[qr.QueryRef], Any]
    reference: str
    kept: list[int | None] | None = None
    scalar: bool = False
    limit: int | None = None


def _literal(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, dt.date):
        return f"DATE '{v.isoformat()}'"
    return str(v)


def _threshold(b: Base, name: str) -> Any:
    """A value of the column near its median, as a Python value queryref renders."""
    vals = sorted(b.values(name))
    v = vals[len(vals) // 2]
    if isinstance(v, int | float | Decimal):
        return math.floor(v)
    if isinstance(v, dt.datetime):
        return v.date()
    return v


def _first(b: Base, names: list[str], kinds: tuple[str, ...]) -> str | None:
    return next((n for n in names if b.kind(n) in kinds), None)


_REPLACE = {"num": "0 - {c}", "text": "REVERSE({c})", "date": "CAST({c} AS VARCHAR)"}


def checks(b: Base, partner: Base | None) -> list[Check]:
    """Every verb on the query, each with its hand-written reference SQL over the query as a
    subquery (``partner``: another query of the corpus with the same column kinds, for set
    operations with a different query). Where the query is ordered, the verbs that keep its
    order say which of its columns each output column is (``kept``)."""
    names, usable = b.names, b.usable()
    n_cols = len(names)
    ident: list[int | None] = list(range(n_cols))
    key_names = [names[i] for i in b.keys if names[i] in usable]
    non_keys = [n for n in usable if n not in key_names]
    ix = {n: names.index(n) for n in usable}

    def c(name: str, alias: str = "qr_t") -> str:  # a column in the reference's FROM
        return f"{alias}.qr_c{ix[name]}"

    frm = f"FROM {sub(b)}"
    out_ = [
        Check("as written", lambda q: q, f"SELECT {star(b)} {frm}", kept=ident),
        Check("count", lambda q: q.count(), f"SELECT COUNT(*) {frm}", scalar=True),
    ]
    n = max(1, len(b.result.rows) // 2)
    out_.append(Check(f"limit({n})", lambda q: q.limit(n), f"SELECT {star(b)} {frm} LIMIT {n}",
                      limit=n))
    if not usable:
        return out_
    # filter on a column of the result (a sort key where there is one)
    col = (key_names or [None])[0] or _first(b, usable, ("num", "text", "date")) or usable[0]
    if b.kind(col) in ("num", "text", "date") and b.values(col):
        v = _threshold(b, col)
        out_.append(Check(f"filter({col} >= {v!r})", lambda q: q.filter(qr.col(col) >= v),
                          f"SELECT {star(b)} {frm} WHERE {c(col)} >= {_literal(v)}",
                          kept=ident))
    else:
        out_.append(Check(f"filter({col} is not null)",
                          lambda q: q.filter(qr.col(col).not_null()),
                          f"SELECT {star(b)} {frm} WHERE {c(col)} IS NOT NULL", kept=ident))
    # agg: count and min/max of a column; group_by + agg
    out_.append(Check(f"agg(count, min/max {col})",
                      lambda q: q.agg(qr_n=qr.count(), qr_lo=qr.col(col).min(),
                                      qr_hi=qr.col(col).max()),
                      f"SELECT COUNT(*) AS qr_n, MIN({c(col)}) AS qr_lo, MAX({c(col)}) AS qr_hi "
                      f"{frm}"))
    g = _first(b, usable, ("text",)) or col
    out_.append(Check(f"group_by({g}).agg(count)",
                      lambda q: q.group_by(g).agg(qr_n=qr.count()),
                      f"SELECT {c(g)} AS {qi(g)}, COUNT(*) AS qr_n {frm} GROUP BY {c(g)}"))
    # select: a reordered subset (without the first column that is not a sort key)
    chosen = [x for x in usable if not (len(usable) > 1 and non_keys and x == non_keys[0])][::-1]
    out_.append(Check(f"select{tuple(chosen)}",
                      lambda q: q.select(*[qr.col(x) for x in chosen]),
                      f"SELECT {', '.join(out(b, ix[x]) for x in chosen)} {frm}",
                      kept=[ix[x] for x in chosen]))
    if n_cols > 1:
        gone = non_keys[0] if non_keys else usable[0]
        rest: list[int | None] = [i for i in range(n_cols) if i != ix[gone]]
        out_.append(Check(f"drop({gone!r})", lambda q: q.drop(gone),
                          f"SELECT {', '.join(out(b, i) for i in rest if i is not None)} {frm}",
                          kept=rest))
    renamed = usable[0]
    out_.append(Check(f"rename({renamed!r})", lambda q: q.rename({renamed: "qr_renamed"}),
                      "SELECT " + ", ".join(out(b, i, name="qr_renamed" if i == ix[renamed]
                                                else None) for i in range(n_cols)) + f" {frm}",
                      kept=ident))
    # mutate: a new column, and a replaced one (a sort key where there is one)
    num = _first(b, usable, ("num",))
    new_sql, new_ref = (f"{qi(num)} + 1", f"{c(num)} + 1") if num else ("1", "1")
    target = key_names[0] if key_names else usable[0]
    repl = _REPLACE.get(b.kind(target), "{c} IS NULL")
    out_.append(Check(
        f"mutate(qr_new={new_sql}, {target}={repl.format(c=qi(target))})",
        lambda q: q.mutate(qr_new=new_sql, **{target: repl.format(c=qi(target))}),
        "SELECT " + ", ".join(f"{repl.format(c=c(target))} AS {qi(target)}" if i == ix[target]
                              else out(b, i) for i in range(n_cols))
        + f", {new_ref} AS qr_new {frm}",
        kept=[None if i == ix[target] else i for i in range(n_cols)] + [None]))
    # window: row_number over every column (ties are equal rows), a running sum over the first
    over_all = ", ".join(f"{c(x)} NULLS LAST" for x in usable)
    run_arg = num or usable[0]
    run_fn = "SUM" if num else "COUNT"

    def window(q: qr.QueryRef) -> qr.QueryRef:
        agg = qr.col(run_arg).sum() if num else qr.col(run_arg).count()
        return q.mutate(qr_rn=qr.row_number().over(order_by=list(usable)),
                        qr_run=agg.over(order_by=usable[0]))

    out_.append(Check(
        f"window(row_number, running {run_fn.lower()}({run_arg}))", window,
        f"SELECT {star(b)}, ROW_NUMBER() OVER (ORDER BY {over_all}) AS qr_rn, "
        f"{run_fn}({c(run_arg)}) OVER (ORDER BY {c(usable[0])} NULLS LAST) AS qr_run {frm}",
        kept=[*ident, None, None]))
    half = len(b.result.rows) // 2
    out_.append(Check(
        f"window(row_number).filter(qr_rn > {half})",
        lambda q: q.mutate(qr_rn=qr.row_number().over(order_by=list(usable)))
        .filter(qr.col("qr_rn") > half),
        f"SELECT * FROM (SELECT {star(b)}, ROW_NUMBER() OVER (ORDER BY {over_all}) AS qr_rn "
        f"{frm}) AS qr_w WHERE qr_rn > {half}",
        kept=[*ident, None]))
    out_.append(Check("distinct", lambda q: q.distinct(), f"SELECT DISTINCT {star(b)} {frm}"))
    # set operations with itself and with another query
    ops = [("union", "union", "UNION ALL", {"distinct": False}),
           ("union distinct", "union", "UNION", {"distinct": True}),
           ("intersect", "intersect", "INTERSECT", {}), ("except_", "except_", "EXCEPT", {})]
    left = f"SELECT {star(b, 'qr_a')} FROM {sub(b, 'qr_a')}"
    for label, method, sql_op, kw in ops:
        out_.append(Check(f"{label}(itself)",
                          lambda q, m=method, kw=kw: getattr(q, m)(q, **kw),
                          f"{left} {sql_op} SELECT {star(b, 'qr_b')} FROM {sub(b, 'qr_b')}"))
    if partner is not None:
        p = partner
        for label, method, sql_op, kw in (ops[0], ops[2], ops[3]):
            out_.append(Check(
                f"{label}({p.query.title})",
                lambda q, m=method, kw=kw: getattr(q, m)(q.connection.sql(p.text), **kw),
                f"{left} {sql_op} SELECT {star(p, 'qr_b')} FROM {sub(p, 'qr_b')}"))
    # self-join on the column with the most distinct values (when the result stays small)
    key = max(usable, key=lambda x: (b.kind(x) in ("num", "text", "date"), len(set(b.values(x)))))
    sizes = Counter(norm(v) for v in b.values(key))
    if n_cols == len(usable) and sum(k * k for k in sizes.values()) <= 50_000:
        right = [out(b, i, "qr_b", names[i] + "_right") for i in range(n_cols) if i != ix[key]]
        out_.append(Check(f"join(itself, on={key!r})", lambda q: q.join(q, on=key),
                          f"SELECT {', '.join([star(b, 'qr_a'), *right])} FROM {sub(b, 'qr_a')} "
                          f"JOIN {sub(b, 'qr_b')} ON {c(key, 'qr_a')} = {c(key, 'qr_b')}"))
    return out_


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def run_check(engine: CorpusEngine, b: Base, check: Check) -> str | None:
    """None when queryref's result matches the reference, else what went wrong."""
    try:
        built = check.build(engine.con.sql(b.text))
        got = built if check.scalar else built.to_arrow(max_bytes=None, preflight=None)
    except qr.errors.ParameterError as err:
        # a projecting step over a query that names two columns alike is refused by design
        # (as Polars and Ibis refuse duplicate names): only then is this error right
        folded = [n.lower() for n in b.result.names]
        if len(set(folded)) < len(folded) and "duplicate output column names" in str(err):
            return None
        return _first_line(err)
    except Exception as err:  # a queryref failure (invalid SQL, a binder error, ...)
        return _first_line(err)
    try:
        want = engine.run(check.reference)
    except Exception as err:
        return f"the reference SQL failed (a test bug): {_first_line(err)}"
    if check.scalar:
        return None if norm(got) == norm(want.rows[0][0]) else f"{got}, {want.rows[0][0]} expected"
    if got.column_names != want.names:
        return f"columns {got.column_names}, {want.names} expected"
    rows = list(zip(*(c.to_pylist() for c in got.columns), strict=True))
    if check.limit is not None:
        if b.ordered:
            return limit_differs(b, rows, check.limit)
        if len(rows) != min(check.limit, len(b.result.rows)):
            return f"{len(rows)} rows, {min(check.limit, len(b.result.rows))} expected"
        extra = Counter(tuple(norm(v) for v in r) for r in rows) - Counter(
            tuple(norm(v) for v in r) for r in b.result.rows)
        return f"rows not in the query: {list(extra)[:2]}" if extra else None
    wrong = differ(rows, want.rows)
    if wrong is None and check.kept is not None and b.ordered:
        wrong = out_of_order(b, rows, check.kept)
        if wrong is not None:
            wrong = "order lost: " + wrong
    return wrong


def partner(b: Base, others: list[Base]) -> Base | None:
    """Another query whose columns have the same kinds, for set operations with a different
    query: one with a CTE of the same name first (the other side must keep its own), else the
    nearest in the corpus."""
    kinds = [kind_of(t) for t in b.result.types]

    def fits(o: Base) -> bool:
        return o.query != b.query and [kind_of(t) for t in o.result.types] == kinds

    fitting = [o for o in others if fits(o)]
    return next((o for o in fitting if o.ctes & b.ctes), fitting[0] if fitting else None)
