"""Reshaping verbs of ``QueryRef``: ``fill_null``, ``drop_nulls``, ``pivot``, ``unpivot``,
``unnest``. Mixed into ``QueryRef``; each returns a new ``QueryRef`` built by a SQL rewrite
(:mod:`queryref.sql.reshape`). Nothing runs, except ``pivot``'s one small query for the
distinct values that become its columns, and a zero-row query for the schema where a verb
checks column types (``fill_null``, ``unpivot``, ``unnest``) and the schema is not known yet.
"""

# mypy: disable-error-code="misc"
# (methods take ``self: QueryRef``, the class they are mixed into, as in ``_verbs``)
from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

from queryref._expr import Expr, _data_type
from queryref.errors import ParameterError
from queryref.sql import compose
from queryref.sql import reshape as _rs
from queryref.sql.portable import family
from queryref.sql.text import column, copy_tree

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

PivotAgg = Literal["sum", "mean", "min", "max", "count", "len"]


def _names(value: str | Sequence[str] | None, what: str) -> list[str]:
    """A column name or a list of them, as a list (None: empty)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParameterError(f"{what} takes a column name or a list of names, not {value!r}")


class ReshapeVerbs:
    """Mixed into ``QueryRef``: verbs that reshape rows and columns."""

    __slots__ = ()

    def _distinct_names(self: QueryRef, names: Sequence[str], what: str) -> list[str]:
        """``names`` resolved to the query's columns, each once."""
        out = [self._resolve(n) for n in names]
        twice = sorted({n for n in out if out.count(n) > 1})
        if twice:
            raise ParameterError(f"{what} names {twice} more than once")
        return out

    def _clash(self: QueryRef, new: Sequence[str], taken: Sequence[str], what: str) -> None:
        """Raise ParameterError if a new output name equals another output name (ignoring
        case where the engine does)."""
        fold = str.lower if self._con.backend.case_insensitive else str
        seen: dict[str, str] = {fold(t): t for t in taken}
        for name in new:
            other = seen.get(fold(name))
            if other is not None:
                same = "" if other == name else f" (as {other!r}: this engine ignores case)"
                msg = f"{what} would make two columns named {name!r}{same}; {_RENAME_HINT}"
                raise ParameterError(msg)
            seen[fold(name)] = name

    # -- nulls --------------------------------------------------------------------------
    def fill_null(self: QueryRef, value: Any) -> QueryRef:
        """NULLs replaced by a value (``COALESCE``): one value for every column whose type
        holds it, or ``{column: value}`` per column (the value may be an expression, such as
        another column).

        A single value fills the columns of its type and leaves the others as they are
        (numbers fill number columns, text fills text columns ..., as Polars does); a value
        that fits no column raises [`ParameterError`][queryref.errors.ParameterError]. In a
        mapping, a value that does not fit its column's type raises too instead of changing
        the column's type (``2.5`` for an integer column, ``"n/a"`` for a number column):
        ``cast`` the column first. Reads the schema (no rows). NaN is a value, not NULL.

        >>> import queryref as qr
        >>> q = qr.connect().sql(
        ...     "SELECT * FROM (VALUES (1, NULL, 'a'), (NULL, 2.5, NULL)) t(n, x, s)")
        >>> q.fill_null(0).to_pandas()
           n    x    s
        0  1  0.0    a
        1  0  2.5  NaN
        >>> q.fill_null({"s": "?", "x": qr.col("n") * 10}).to_pandas()
             n     x  s
        0  1.0  10.0  a
        1  NaN   2.5  ?
        >>> q.fill_null({"n": 2.5})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        queryref.errors.ParameterError: fill_null() cannot fill 'n' (int32) with 2.5 (float) ...
        """
        types = dict(zip(self.schema.names, self.schema.types, strict=True))
        fills: dict[str, exp.Expr] = {}
        if isinstance(value, Mapping):
            if not value:
                raise ParameterError("fill_null() got an empty mapping: name the columns to fill")
            for name, v in value.items():
                c = self._resolve(name)
                if isinstance(v, Expr | exp.Expr):
                    fills[c] = self._to_node(v)  # (checked with the projection)
                    continue
                if v is None or not _rs.fits(v, types[c]):
                    raise ParameterError(_wrong_type(c, v, types[c]))
                fills[c] = _rs.fill_literal(v, types[c], self.dialect)
        else:
            if value is None or isinstance(value, Expr | exp.Expr):
                msg = ("fill_null() takes one plain value (a number, text, date ...) for every "
                       "column, or {column: value_or_expression}; not " + repr(value))
                raise ParameterError(msg)
            fills = {c: _rs.fill_literal(value, t, self.dialect) for c, t in types.items()
                     if _rs.fits(value, t)}
            if not fills:
                kinds = sorted({_rs.kind(t) for t in types.values()})
                msg = (f"fill_null({value!r}) fits no column: the columns are {kinds}; fill "
                       "columns one by one with {column: value}, after a cast where needed")
                raise ParameterError(msg)
        items = [(c, exp.Coalesce(this=column(c), expressions=[fills[c]]) if c in fills
                  else column(c)) for c in self.columns]
        return self._project(items)

    def drop_nulls(self: QueryRef, subset: str | Sequence[str] | None = None, *,
                   how: Literal["any", "all"] = "any") -> QueryRef:
        """Rows with a NULL in any of ``subset`` (default: every column) removed; with
        ``how="all"``, only rows where all of them are NULL (pandas' ``dropna``). NaN is a
        value, not NULL (as in Polars' ``drop_nulls``).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 'a'), (2, NULL), (NULL, NULL)) t(n, s)")
        >>> q.drop_nulls().to_pandas()
           n  s
        0  1  a
        >>> q.drop_nulls("n").count(), q.drop_nulls(how="all").count()
        (2, 2)
        """
        if how not in ("any", "all"):
            raise ParameterError(f"drop_nulls() how must be 'any' or 'all', not {how!r}")
        names = self._distinct_names(_names(subset, "drop_nulls()"), "drop_nulls()") \
            if subset is not None else self.columns
        if not names:
            raise ParameterError("drop_nulls() got an empty subset: name a column or pass None")
        present = [_not_null(n) for n in names]
        return self.filter(Expr(exp.and_(*present) if how == "any" else exp.or_(*present)))

    # -- reshaping ----------------------------------------------------------------------
    def pivot(self: QueryRef, on: str, values: str | Sequence[str], agg: PivotAgg = "sum",
              index: str | Sequence[str] | None = None, *, max_columns: int = 100) -> QueryRef:
        """One column per distinct value of ``on``, holding ``agg`` of ``values`` for the
        rows with that value, one row per ``index`` group (pandas' ``pivot_table``, Polars'
        ``pivot``).

        The distinct values are found in the warehouse first (one small query, at most
        ``max_columns + 1`` rows); more than ``max_columns`` raise
        [`ParameterError`][queryref.errors.ParameterError] saying how many there are.
        Then one query: ``AGG(CASE WHEN on = value THEN values END)`` per value, grouped by
        ``index`` (default: every column but ``on`` and ``values``; none: one row).

        Column names come from the values: text as it is, whole numbers as integers, other
        numbers as their shortest text, dates in ISO form. An empty text value, or two names
        the same (also ignoring case on engines that do, or an index column's name) raise
        ``ParameterError``. Values compare as the engine compares text (MariaDB's default
        collation: ignoring case and accents). The result has no order: ``order_by`` it.

        Parameters
        ----------
        on
            The column whose values become columns, sorted (NaN last, as a column ``nan``:
            NaN is a value, not NULL). Rows where it is NULL are left out (as
            ``pivot_table`` does; ``fill_null({on: ...})`` first to keep them).
        values
            The column (or list of columns) aggregated into the cells; with several, a
            column is named ``<values>_<value>``.
        agg
            ``"sum"``, ``"mean"`` (number values only: other types raise
            ``ParameterError``), ``"min"``, ``"max"``, ``"count"`` (non-NULL values) or
            ``"len"`` (rows). A cell with no rows is NULL, or 0 for ``count`` / ``len``;
            a sum of only NULLs is NULL (SQL's SUM; pandas shows 0).
        index
            The columns that make the rows (a NULL key is a group, as in SQL and Polars).
        max_columns
            The most columns ``on``'s values may make.

        >>> import queryref as qr
        >>> q = qr.connect().sql(
        ...     "SELECT * FROM (VALUES ('n', 'a', 1), ('n', 'b', 2), ('s', 'a', 5), ('n', 'a', 3))"
        ...     " t(region, product, qty)")
        >>> q.pivot("product", values="qty", index="region").order_by("region").to_pandas()
          region    a    b
        0      n  4.0  2.0
        1      s  5.0  NaN
        """
        if isinstance(max_columns, bool) or not isinstance(max_columns, int) or max_columns < 1:
            raise ParameterError(f"pivot() max_columns must be a positive integer, not "
                                 f"{max_columns!r}")
        if agg not in _rs.PIVOT_AGGS:
            raise ParameterError(f"pivot() agg must be one of {', '.join(_rs.PIVOT_AGGS)}, "
                                 f"not {agg!r}")
        key = self._resolve(on)
        vals = self._distinct_names(_names(values, "pivot() values"), "pivot() values")
        if not vals:
            raise ParameterError("pivot() needs a values column")
        if index is None:
            keys = [c for c in self.columns if c != key and c not in vals]
        else:
            keys = self._distinct_names(_names(index, "pivot() index"), "pivot() index")
        if agg in ("sum", "mean"):  # (MariaDB sums text as 0 and dates as 20240101 numbers,
            # fakesnow as NULL; others fail in the engine: one clear error everywhere)
            types = dict(zip(self.schema.names, self.schema.types, strict=True))
            bad = [f"{v} ({_rs.kind(types[v])})" for v in vals
                   if _rs.kind(types[v]) not in ("integer", "float", "decimal")]
            if bad:
                raise ParameterError(f"pivot() agg={agg!r} needs number values; {', '.join(bad)}"
                                     f" is not: use agg='min', 'max', 'count' or 'len', or "
                                     f"cast to a number first")
        roles = [key, *vals, *keys]
        twice = sorted({n for n in roles if roles.count(n) > 1})
        if twice:
            raise ParameterError(f"pivot() uses {twice} in two roles (on, values, index)")
        rows = self.filter(Expr(_not_null(key)))
        found = rows._pivot_keys(key, max_columns)
        if not found and not keys:
            raise ParameterError(f"pivot() found no values in {on!r} (all NULL, or no rows)")
        labels = [_rs.pivot_label(v) for v in found]
        if "" in labels:
            msg = (f"pivot() cannot name a column after the empty text in {on!r}: replace it "
                   f"first, e.g. .mutate({on}=qr.when(qr.col({on!r}) == '', 'empty')"
                   f".otherwise(qr.col({on!r})))")
            raise ParameterError(msg)
        cells = _rs.pivot_cells(key, vals, found, agg, labels, self.dialect)
        self._clash([n for n, _ in cells], keys, "pivot()")
        frame = rows._frame()
        tree = compose.aggregate(frame, [(k, column(k)) for k in keys], cells)
        return rows._new(tree, [*keys, *(n for n, _ in cells)])

    def _pivot_keys(self: QueryRef, key: str, most: int) -> list[Any]:
        """The distinct values of ``key`` (no NULLs here), sorted; more than ``most`` is a
        ParameterError that says how many there are. One query, at most ``most + 1`` rows."""
        count = exp.Window(this=exp.Count(this=exp.Star()))
        n = "_qr_n" if key.lower() != "_qr_n" else "_qr_n2"
        q = self.select(key).distinct().mutate(**{n: Expr(count)}).limit(most + 1)
        table = q.to_arrow(max_rows=None)
        values = table.column(0).to_pylist()
        total = table.column(1)[0].as_py() if table.num_rows else 0
        if total > most:
            msg = (f"pivot() would make {total} columns, one per distinct value of {key!r}, "
                   f"more than max_columns={most}: filter the rows to the values you need "
                   f"first, or pass max_columns={total} if you mean it")
            raise ParameterError(msg)
        try:  # (NaN compares false with everything: last, so the order is the engine's own)
            return sorted(values, key=lambda v: (v != v, 0 if v != v else v))
        except TypeError:
            return sorted(values, key=repr)

    def unpivot(self: QueryRef, on: str | Sequence[str] | None = None,
                index: str | Sequence[str] | None = None, *, variable_name: str = "variable",
                value_name: str = "value") -> QueryRef:
        """Columns turned into rows (Polars' ``unpivot``, pandas' ``melt``): the ``index``
        columns, then ``variable_name`` holding a column's name and ``value_name`` its value,
        one row per input row and ``on`` column.

        ``on`` defaults to every column not in ``index`` (``index`` to none). The ``on``
        columns must share a type family (numbers of any kind, or text, or dates ...: the
        engine picks the common number type); mixed families raise
        [`ParameterError`][queryref.errors.ParameterError] rather than turning numbers into
        text: ``cast`` them first. One pass over the query on every engine (a CROSS JOIN
        with a table of the names, not a UNION of scans). NULL values are kept. An ordered
        query stays ordered, by column first (as ``melt`` stacks them). Reads the schema.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1, 10, 2.5), (2, NULL, 4.0)) t(id, a, b)")
        >>> q.unpivot(["a", "b"], index="id").order_by("variable", "id").to_pandas()
           id variable  value
        0   1        a   10.0
        1   2        a    NaN
        2   1        b    2.5
        3   2        b    4.0
        """
        if on is None and index is None:
            keys: list[str] = []
            cols = list(self.columns)
        else:
            keys = self._distinct_names(_names(index, "unpivot() index"), "unpivot() index")
            cols = self._distinct_names(_names(on, "unpivot() on"), "unpivot() on") \
                if on is not None else [c for c in self.columns if c not in keys]
        if not cols:
            raise ParameterError("unpivot() needs at least one column to turn into rows")
        both = sorted(set(cols) & set(keys))
        if both:
            raise ParameterError(f"unpivot() has {both} both in on and in index")
        for what, name in (("variable_name", variable_name), ("value_name", value_name)):
            if not isinstance(name, str) or not name:
                raise ParameterError(f"unpivot() {what} must be non-empty text, not {name!r}")
        var, val = self._engine_name(variable_name), self._engine_name(value_name)
        self._clash([var, val], keys, "unpivot()")
        types = dict(zip(self.schema.names, self.schema.types, strict=True))
        kinds = [_rs.kind(types[c]) for c in cols]
        if not _rs.same_family(kinds):
            listed = ", ".join(f"{c} ({k})" for c, k in zip(cols, kinds, strict=True))
            msg = (f"unpivot() puts the values of {listed} in one column, and their types "
                   "differ; cast them to one type first, e.g. .cast("
                   f"{cols[0]}='VARCHAR') (no silent cast is made)")
            raise ParameterError(msg)
        common = _rs.common_decimal([types[c] for c in cols])
        tree = _rs.unpivot(self._frame(), cols, keys, var, val, common)
        return self._new(tree, [*keys, var, val])

    def unnest(self: QueryRef, column: str, *, keep_empty: bool = True,
               dtype: str | None = None) -> QueryRef:
        """One row per element of a list column (pandas' and Polars' ``explode``): the
        column keeps its name and place and holds the element; the other columns repeat.

        A NULL or empty list gives one row with a NULL element, as ``explode`` does;
        ``keep_empty=False`` drops such rows instead (as SQL's ``UNNEST`` does). An ordered
        query stays ordered, each row's elements in list order. ``dtype`` casts the elements
        (on Snowflake, whose arrays are untyped, elements are VARIANT unless it is given).
        DuckDB and PostgreSQL use ``UNNEST ... WITH ORDINALITY``, Spark ``POSEXPLODE``,
        Snowflake ``LATERAL FLATTEN``; MariaDB has no list type:
        [`UnsupportedError`][queryref.errors.UnsupportedError].

        >>> import queryref as qr
        >>> q = qr.connect().sql(
        ...     "SELECT * FROM (VALUES (1, ['a', 'b']), (2, []), (3, NULL)) t(id, tags)")
        >>> q.order_by("id").unnest("tags").to_pandas()
           id tags
        0   1    a
        1   1    b
        2   2  NaN
        3   3  NaN
        >>> q.unnest("tags", keep_empty=False).count()
        2
        """
        _rs.check_lists(self.dialect)
        name = self._resolve(column)
        target = _data_type(dtype) if dtype is not None else None
        t = self.schema.types[self.schema.names.index(name)]
        k = _rs.kind(t)
        # Snowflake's ARRAY (and VARIANT) columns reach Arrow as text: only there text passes
        if k != "list" and not (k == "text" and family(self.dialect) == "snowflake"):
            msg = (f"unnest() takes a list column; {name!r} is {t}. Split text into a list "
                   "first, e.g. with .mutate(parts=qr.col(name).str.split(','))")
            raise ParameterError(msg)
        tree = _rs.unnest(self._frame(), name, keep_empty=bool(keep_empty),
                          dtype=copy_tree(target) if target is not None else None)
        return self._new(tree, self.columns)


def _not_null(name: str) -> exp.Expr:
    return exp.Not(this=exp.Is(this=column(name), expression=exp.Null()))


_RENAME_HINT = "rename a column first, or choose other names"


def _wrong_type(name: str, value: Any, t: Any) -> str:
    if value is None:
        return f"fill_null() got None for {name!r}: give a value to fill with"
    to = next((sql for kinds, sql in _CAST_HINTS if isinstance(value, kinds)), "VARCHAR")
    return (f"fill_null() cannot fill {name!r} ({t}) with {value!r} "
            f"({type(value).__name__}) without changing its type; fill with a value of its "
            f"type, or cast the column first, e.g. .cast({name}='{to}')")


_CAST_HINTS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "BOOLEAN"), (int, "BIGINT"), ((float, decimal.Decimal), "DOUBLE"),
    (dt.datetime, "TIMESTAMP"), (dt.date, "DATE"), (dt.time, "TIME"))
