"""The composition steps on sqlglot trees: what ``QueryRef``'s verbs do, below ``QueryRef``.

A step takes a :class:`Frame` (a query's tree, its output column names and the engine's naming
rules) and expressions already written over those columns, and returns the new tree; the input
is never changed. Whether a step extends the SELECT or wraps it is decided in one place,
:func:`queryref.sql.rewrite.prepare`. No database is needed: the column names are all a step
reads of the data.

>>> from sqlglot import parse_one
>>> f = Frame(parse_one("SELECT * FROM t ORDER BY a LIMIT 3"), ("a", "b"))
>>> filter_rows(f, [parse_one("b > 0")]).sql()
'SELECT * FROM (SELECT * FROM t ORDER BY a LIMIT 3) AS _q1 WHERE b > 0 ORDER BY a'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sqlglot import exp

from queryref.errors import ParameterError, UnknownColumnError, UnsupportedError
from queryref.sql import ctes as _ctes
from queryref.sql import portable
from queryref.sql import rewrite as rw
from queryref.sql.text import copy_tree, engine_name, ident


class Frame:
    """A query as the steps see it: its tree, its output columns, its engine's name rules.

    ``columns`` may be a function that finds them (a zero-row query, for a ``QueryRef``
    whose schema is not known yet): it is called the first time a step needs them, so a
    step that does not (a LIMIT on a SELECT) runs nothing. ``case_insensitive``: the engine
    matches names ignoring case (DuckDB), so ``Status`` and ``status`` are one column there.
    """

    __slots__ = ("_columns", "_find", "case_insensitive", "dialect", "tree")

    def __init__(self, tree: exp.Query, columns: Sequence[str] | Callable[[], Sequence[str]],
                 dialect: str = "duckdb", case_insensitive: bool = False) -> None:
        self.tree = tree
        self.dialect = dialect
        self.case_insensitive = case_insensitive
        self._columns: tuple[str, ...] | None = None
        self._find: Callable[[], Sequence[str]] | None = None
        if callable(columns):
            self._find = columns
        else:
            self._columns = tuple(columns)

    @property
    def columns(self) -> tuple[str, ...]:
        """The output column names, in order."""
        if self._columns is None:
            assert self._find is not None
            self._columns = tuple(self._find())
        return self._columns

    def with_tree(self, tree: exp.Query, columns: Sequence[str] | None = None) -> Frame:
        """The same engine's frame over ``tree`` (``columns``: its outputs, default unchanged)."""
        return Frame(tree, self.columns if columns is None else columns, self.dialect,
                     self.case_insensitive)

    def __repr__(self) -> str:
        return f"<Frame {self.dialect} {list(self.columns)}: {self.tree.sql(self.dialect)}>"

    # -- names --------------------------------------------------------------------------
    def engine_name(self, name: str) -> str:
        """What the engine calls a name the user wrote (:func:`queryref.sql.text.engine_name`)."""
        try:
            return engine_name(name, self.dialect)
        except ParameterError:
            return name

    def lookup(self, name: str) -> str | None:
        """The column's name as the query has it, or None (no error built: this is hot)."""
        names = self.columns
        if name in names:
            return name
        folded_name = self.engine_name(name)  # Snowflake: "amount" means AMOUNT
        if folded_name in names:
            return folded_name
        if self.case_insensitive:
            low = name.lower()
            folded = [n for n in names if n.lower() == low]
            if len(folded) == 1:
                return folded[0]
        return None

    def has(self, name: str) -> bool:
        if not isinstance(name, str):
            raise ParameterError(f"a column name must be text, not {name!r}")
        return self.lookup(name) is not None

    def resolve(self, name: str) -> str:
        """The column's name as the query has it; raises UnknownColumnError."""
        if not isinstance(name, str):
            raise ParameterError(f"a column name must be text, not {name!r}")
        found = self.lookup(name)
        if found is None:
            raise UnknownColumnError([name], list(self.columns))
        self.unambiguous([found])
        return found

    def unambiguous(self, names: Iterable[str]) -> None:
        """Raise ParameterError if one of ``names`` is several columns: the same name twice,
        or names equal but for case where the engine ignores case (DuckDB)."""
        columns = self.columns
        fold = str.lower if self.case_insensitive else str
        keys = [fold(c) for c in columns]
        if len(set(keys)) == len(keys):
            return
        for name in names:
            same = [c for c, k in zip(columns, keys, strict=True) if k == fold(name)]
            if len(same) > 1:
                msg = (f"column {name!r} is ambiguous: the query has {len(same)} columns "
                       f"named {' and '.join(map(repr, same))}"
                       f"{' (this engine ignores case)' if len(set(same)) > 1 else ''}; "
                       "give each its own alias in the SQL")
                raise ParameterError(msg)

    def check(self, nodes: Sequence[exp.Expr]) -> None:
        """Raise UnknownColumnError if an expression names a column the query lacks.

        Names the engine matches case-insensitively are rewritten (in place) to the
        query's own spelling, so later rewrites can match them to their definitions.
        """
        names = set(self.columns)
        missing: list[str] = []
        seen: list[str] = []
        for node in nodes:
            if type(node) is exp.Column and not node.args.get("table"):
                this = node.args.get("this")  # (the usual item: a column by its own name)
                if type(this) is exp.Identifier and this.args["this"] in names:
                    seen.append(this.args["this"])
                    continue
            for c in rw.scope_columns(node):
                name = rw.name_of(c)
                seen.append(name)
                if name in names or name in missing:
                    continue
                found = self.lookup(name)
                if found is None:
                    missing.append(name)
                else:
                    c.set("this", ident(found))
                    seen[-1] = found
        if missing:
            raise UnknownColumnError(missing, list(self.columns))
        self.unambiguous(seen)

    # -- the tree a step extends ----------------------------------------------------------
    def key(self) -> _ctes.NameKey:
        """How this engine matches two table names (for CTE scoping)."""
        return _ctes.engine_key(self.dialect, self.case_insensitive)

    def host(self, new: Sequence[exp.Expr]) -> exp.Query:
        """The tree, ready to take ``new`` expressions: where they read tables (a subquery),
        its CTEs of the same names are renamed (see :mod:`queryref.sql.ctes`)."""
        tree = self.tree
        if tree.args.get("with_") is None or not any(_ctes.has_tables(n) for n in new):
            return tree
        return _ctes.private(tree, new, self.key())

    def prepare(self, op: rw.Op, new: Sequence[exp.Expr] = (),
                items: Sequence[tuple[str, exp.Expr]] = ()) -> tuple[exp.Select, rw.Shape]:
        """The SELECT to extend with ``op``: this one, or this one wrapped as a subquery."""
        return rw.prepare(self.host(new), op, lambda: self.columns, self.dialect, new,
                          items=items)


# -- the steps ----------------------------------------------------------------------------
def project(f: Frame, items: Sequence[tuple[str, exp.Expr]]) -> exp.Select:
    """A new projection: ``items`` are (output name, expression over ``f``'s columns).

    The expressions are used up (changed in place) unless the query has an ORDER BY.
    """
    nodes = [node for _, node in items]
    select, s = f.prepare(rw.Op.PROJECT, nodes, items)
    stars = rw.star_columns(s, f.columns)
    lead = [n for n, node in items[: len(stars)]
            if isinstance(node, exp.Column) and not node.table and rw.name_of(node) == n]
    # the items are this call's own; with an ORDER BY the check above read them, so copy
    own = not s.ordered
    if stars and lead == stars:
        projection = [exp.Star(), *rw.project_items(s, items[len(stars):], copy=not own)]
    else:
        projection = rw.project_items(s, items, copy=not own)
    tree = rw.with_projection(select, s, projection)
    assert tree is not None  # (rw.prepare wrapped what could not keep its ORDER BY)
    return tree


def filter_rows(f: Frame, nodes: Sequence[exp.Expr]) -> exp.Select:
    """Rows where every predicate holds: a WHERE, or a HAVING after an aggregate.

    The predicates hold no window function (see :func:`aggregates_as_windows`; a window
    predicate is computed as a column first).
    """
    select, s = f.prepare(rw.Op.FILTER, nodes)
    cond = rw.and_all([rw.substitute(n, s.aliases) for n in nodes], copy=False)
    return rw.add_condition(select, "having" if s.aggregated else "where", [cond], copy=False)


def aggregate(f: Frame, keys: Sequence[tuple[str, exp.Expr]],
              aggs: Sequence[tuple[str, exp.Expr]]) -> exp.Select:
    """One row per group of ``keys`` with the aggregates ``aggs`` (none nested in another).

    The ``aggs`` expressions are used up (changed in place); the ``keys`` are copied (a
    ``GroupBy`` keeps them for its next ``agg``).
    """
    select, s = f.prepare(rw.Op.AGGREGATE, [node for _, node in [*keys, *aggs]])
    tree = rw.copy_without(select, "order", "expressions", "group")
    tree.set("expressions", [*rw.project_items(s, keys), *rw.project_items(s, aggs, copy=False)])
    group = [rw.substitute(node, s.aliases) for _, node in keys]
    # A constant key does not split groups, and engines read `GROUP BY 3` as a position
    # (Postgres refuses other constants): leave constants out. Grouping only by constants
    # still means "no row for no input", which HAVING COUNT(*) > 0 keeps.
    kept = [g for g in group if not rw.is_constant(g)]
    tree.set("group", exp.Group(expressions=kept) if kept else None)
    if group and not kept:
        tree = tree.having(exp.GT(this=exp.Count(this=exp.Star()),
                                  expression=exp.Literal.number(0)), copy=False)
    return tree


def order(f: Frame, keys: Sequence[exp.Ordered]) -> exp.Select:
    """Sorted by ``keys``, earlier sort keys kept as tie-breakers."""
    select, s = f.prepare(rw.Op.ORDER, [o.this for o in keys])
    return rw.add_order(select, s, list(keys), f.columns)


def limit(f: Frame, n: int | None, offset: int = 0) -> exp.Select:
    """At most ``n`` rows after skipping ``offset`` (after any LIMIT already there)."""
    select, _ = f.prepare(rw.Op.LIMIT)
    return rw.combine_limit(select, n, offset)


def distinct(f: Frame) -> exp.Query:
    """Duplicate rows dropped (``f.tree`` itself when it has no duplicates already)."""
    select, s = f.prepare(rw.Op.DISTINCT)
    if s.distinct:
        return f.tree
    tree = rw.copy_without(select, "distinct")
    tree.set("distinct", exp.Distinct())
    sort = tree.args.get("order")
    if sort is not None and not all(
            isinstance(k.this, exp.Column) and not k.this.table and k.this.name in f.columns
            for k in sort.expressions):
        tree.set("order", None)  # sorted by a column DISTINCT does not keep: order dropped
    return tree


def sample(f: Frame, fraction: float, seed: int | None = None) -> exp.Select:
    """About ``fraction`` of the rows, Bernoulli sampled (repeatable with ``seed``).

    ``TABLESAMPLE BERNOULLI`` where the engine samples what the rows come from (DuckDB and
    Snowflake sample a subquery too, PostgreSQL only a table); elsewhere each row is kept when
    a uniform random number is below ``fraction`` (MySQL's ``RAND(seed)``, Spark's
    ``rand(seed)``, PostgreSQL's ``random()``), the same Bernoulli draw. PostgreSQL cannot seed
    ``random()`` inside a query: a seeded sample of a query that is not a plain table is
    refused there.

    >>> from sqlglot import parse_one
    >>> f = Frame(parse_one("SELECT a FROM t WHERE a > 1"), ["a"], "spark")
    >>> sample(f, 0.25, seed=7).sql("spark")
    'SELECT * FROM (SELECT a FROM t WHERE a > 1) AS _q1 WHERE RAND(7) < 0.25'
    """
    family = portable.family(f.dialect)
    on_table = _reads_a_table(f.tree)
    wrapped = copy_tree(f.tree) if on_table else f.prepare(rw.Op.SOURCE)[0]
    assert isinstance(wrapped, exp.Select)
    source = wrapped.args["from_"].this
    if family in ("mysql", "spark", "databricks") or (family == "postgres" and not on_table):
        if family == "postgres" and seed is not None:
            raise UnsupportedError(
                "PostgreSQL repeats a sample (seed=...) only of a plain table (TABLESAMPLE "
                "... REPEATABLE): sample the table before the other steps, or pass seed=None")
        draw = exp.Rand(this=exp.Literal.number(seed) if seed is not None else None)
        keep = exp.LT(this=draw, expression=exp.Literal.number(fraction))
        where = wrapped.args.get("where")
        wrapped.set("where", exp.Where(this=rw.and_all([where.this, keep]) if where else keep))
        return wrapped
    source.set("sample", exp.TableSample(
        method=exp.var("BERNOULLI"),
        percent=exp.Literal.number(round(fraction * 100, 6)),
        seed=exp.Literal.number(seed) if seed is not None else None,
    ))
    return wrapped


def _reads_a_table(tree: exp.Query) -> bool:
    """``SELECT * FROM <table>`` and nothing else: a sample can go on the table itself."""
    if not isinstance(tree, exp.Select) or [k for k, v in tree.args.items()
                                            if v and k not in ("expressions", "from_")]:
        return False
    source = tree.args["from_"].this
    return (len(tree.expressions) == 1 and isinstance(tree.expressions[0], exp.Star)
            and isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier)
            and not source.args.get("sample"))


def aggregates_as_windows(node: exp.Expr) -> exp.Expr:
    """In a row-level predicate an aggregate means "over all rows": ``AVG(v) OVER ()``.

    >>> from sqlglot import parse_one
    >>> aggregates_as_windows(parse_one("v > AVG(v)")).sql()
    'v > AVG(v) OVER ()'
    """
    node = copy_tree(node)
    targets = [n for n in rw.scope_nodes(node)
               if isinstance(n, exp.AggFunc) and not isinstance(n.parent, exp.Window)]
    for agg in targets:
        window = exp.Window(this=copy_tree(agg))
        if agg is node:
            return window
        agg.replace(window)
    return node
