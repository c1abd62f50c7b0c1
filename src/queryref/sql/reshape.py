"""The reshaping rewrites below ``QueryRef``'s ``fill_null``, ``pivot``, ``unpivot`` and
``unnest``: pure functions from a :class:`~queryref.sql.compose.Frame` (or plain values) to
sqlglot nodes, plus the type rules the verbs check against an Arrow schema.

``unpivot`` and ``unnest`` read the query as one subquery (the one wrap decision,
:func:`queryref.sql.rewrite.prepare`, which keeps its order as an outer ORDER BY) joined to
the rows they make: a small table of the unpivoted column names, or the list's elements.

>>> from sqlglot import parse_one
>>> from queryref.sql.compose import Frame
>>> f = Frame(parse_one("SELECT * FROM t"), ("id", "a", "b"))
>>> print(unpivot(f, ["a", "b"], ["id"], "variable", "value").sql(pretty=True))
SELECT
  _q1.id,
  _qr_n._qr_var AS variable,
  CASE _qr_n._qr_pos WHEN 1 THEN _q1.a WHEN 2 THEN _q1.b END AS value
FROM (
  SELECT
    *
  FROM t
) AS _q1
CROSS JOIN (
  SELECT
    1 AS _qr_pos,
    'a' AS _qr_var
  UNION ALL
  SELECT
    2 AS _qr_pos,
    'b' AS _qr_var
) AS _qr_n
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
from sqlglot import exp

from queryref.errors import ParameterError, UnsupportedError
from queryref.sql import rewrite as rw
from queryref.sql.compose import Frame
from queryref.sql.portable import family
from queryref.sql.portable_math import Mean
from queryref.sql.text import column, copy_tree, ident, literal

__all__ = ["PIVOT_AGGS", "Kind", "check_lists", "common_decimal", "fill_literal", "fits", "kind",
           "pivot_cells", "pivot_label", "same_family", "typed_literal", "unnest", "unpivot"]

Kind = Literal["integer", "float", "decimal", "text", "boolean", "date", "timestamp", "time",
               "binary", "list", "other"]

#: the aggregates ``pivot`` takes, by name (pandas' and Polars' spellings)
PIVOT_AGGS = ("sum", "mean", "min", "max", "count", "len")


# -- types ----------------------------------------------------------------------------------
def kind(t: pa.DataType) -> Kind:
    """The family of an Arrow type, as the reshaping verbs compare types.

    A decimal with no fraction digits (Snowflake's integers, ``NUMBER(38, 0)``) is an integer.

    >>> kind(pa.int32()), kind(pa.decimal128(38, 0)), kind(pa.decimal128(12, 2))
    ('integer', 'integer', 'decimal')
    >>> kind(pa.large_string()), kind(pa.list_(pa.int64())), kind(pa.timestamp("us", "UTC"))
    ('text', 'list', 'timestamp')
    """
    if pa.types.is_dictionary(t):
        return kind(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "integer" if t.scale == 0 else "decimal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) \
            or pa.types.is_list_view(t):
        return "list"
    return "other"


_NUMBERS = ("integer", "float", "decimal")


def same_family(kinds: Sequence[Kind]) -> bool:
    """Whether values of these kinds can share one column without a cast (numbers of any
    kind together; otherwise one kind).

    >>> same_family(["integer", "float", "decimal"]), same_family(["integer", "text"])
    (True, False)
    """
    families = {"number" if k in _NUMBERS else k for k in kinds}
    return len(families) <= 1


def common_decimal(types: Sequence[pa.DataType]) -> exp.DataType | None:
    """``DECIMAL(p, s)`` holding every value of these integer and decimal types exactly, when
    one of them has fraction digits and ``p`` is at most 38; else None (the engine's own
    common type is kept). Without it PostgreSQL's CASE over ``NUMERIC(20, 1)`` and an
    integer is a NUMERIC of no precision, which reaches Arrow as a double (digits lost).

    >>> common_decimal([pa.int32(), pa.decimal128(20, 1)]).sql()
    'DECIMAL(20, 1)'
    >>> common_decimal([pa.int64(), pa.decimal128(10, 2)]).sql(), common_decimal([pa.int64()])
    ('DECIMAL(21, 2)', None)
    """
    whole, scale = 0, 0
    for t in types:
        if pa.types.is_integer(t):
            lo, hi = _integer_range(t) or (0, 0)
            whole = max(whole, len(str(max(-lo, hi))))
        elif pa.types.is_decimal(t):
            whole, scale = max(whole, t.precision - t.scale), max(scale, t.scale)
        else:
            return None
    if scale == 0 or whole + scale > 38:
        return None
    return exp.DataType.build(f"DECIMAL({whole + scale}, {scale})")


def _integer_range(t: pa.DataType) -> tuple[int, int] | None:
    if pa.types.is_integer(t):
        bits = t.bit_width
        if pa.types.is_signed_integer(t):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1
    if pa.types.is_decimal(t):
        top = 10 ** t.precision - 1
        return -top, top
    return None


def fits(value: Any, t: pa.DataType) -> bool:
    """Whether a column of Arrow type ``t`` holds ``value`` as it is (no change of type).

    Whole numbers fit integer columns they are within the range of, and any float or decimal
    column; other numbers only float and decimal columns; text only text, a bool only
    booleans, a date only dates, a datetime only timestamps, a time only times.

    >>> fits(0, pa.int8()), fits(300, pa.int8()), fits(2.5, pa.int64()), fits(2.0, pa.int64())
    (True, False, False, True)
    >>> fits("x", pa.string()), fits("x", pa.int64()), fits(True, pa.int64())
    (True, False, False)
    >>> fits(dt.date(2024, 2, 29), pa.date32()), fits(dt.date(2024, 2, 29), pa.string())
    (True, False)
    """
    k = kind(t)
    if isinstance(value, bool):
        return k == "boolean"
    if isinstance(value, int | float | decimal.Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return k == "float"
        if k in ("float", "decimal"):
            return True
        if k != "integer" or value != int(value):
            return False
        bounds = _integer_range(t)
        return bounds is None or bounds[0] <= int(value) <= bounds[1]
    if isinstance(value, str):
        return k == "text"
    if isinstance(value, dt.datetime):
        return k == "timestamp"
    if isinstance(value, dt.date):
        return k == "date"
    if isinstance(value, dt.time):
        return k == "time"
    return False


def fill_literal(value: Any, t: pa.DataType, dialect: str = "") -> exp.Expr:
    """``value`` as the literal a COALESCE over a column of type ``t`` takes: a whole
    number for an integer column (``2.0`` is ``2`` there, so the column stays an integer).

    >>> fill_literal(2.0, pa.int64()).sql(), fill_literal(2.0, pa.float64()).sql()
    ('2', '2.0')
    """
    if kind(t) == "integer" and not isinstance(value, bool) \
            and isinstance(value, float | decimal.Decimal):
        return literal(int(value))
    return typed_literal(value, dialect)


def typed_literal(value: Any, dialect: str = "") -> exp.Expr:
    """``value`` as a literal of its type on ``dialect``. MySQL/MariaDB: a time of day or a
    timestamp is cast to ``TIME(6)`` / ``DATETIME(6)``, since a bare ``CAST(... AS
    DATETIME)`` there drops the microseconds (and a pivot cell compared with it would miss
    its rows); a NaN or infinity, which MariaDB has not (``CAST('NaN' AS DOUBLE)`` is 0
    there), raises UnsupportedError.

    >>> typed_literal(dt.datetime(2024, 2, 29, 12, 30, 0, 5), "mysql").sql("mysql")
    "CAST('2024-02-29 12:30:00.000005' AS DATETIME(6))"
    >>> plus2 = dt.timezone(dt.timedelta(hours=2))
    >>> typed_literal(dt.datetime(2024, 6, 1, 12, tzinfo=plus2), "mysql").sql("mysql")
    "CAST('2024-06-01 10:00:00' AS DATETIME(6))"
    """
    if family(dialect) == "mysql":
        if isinstance(value, float) and not math.isfinite(value):
            raise UnsupportedError(f"MariaDB and MySQL have no {value!r} (a DOUBLE holds "
                                   "finite numbers only); use NULL or a number instead")
        if isinstance(value, dt.datetime | dt.time):
            to = "DATETIME(6)" if isinstance(value, dt.datetime) else "TIME(6)"
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.UTC)  # (as an aware upload is stored: UTC)
            text = value.replace(tzinfo=None).isoformat(sep=" ") \
                if isinstance(value, dt.datetime) else value.replace(tzinfo=None).isoformat()
            return exp.cast(exp.Literal.string(text), exp.DataType.build(to, dialect="mysql"))
        if isinstance(value, dt.timedelta):  # (a TIME column reaches Arrow as a duration)
            return exp.cast(exp.Literal.string(_clock(value)),
                            exp.DataType.build("TIME(6)", dialect="mysql"))
    return literal(value)


def _clock(value: dt.timedelta) -> str:
    """A duration as MySQL's TIME text, ``[-]H:MM:SS.ffffff`` (hours may pass 24)."""
    us = abs(value) // dt.timedelta(microseconds=1)
    seconds, us = divmod(us, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    sign = "-" if value < dt.timedelta(0) else ""
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}.{us:06d}"


# -- pivot ----------------------------------------------------------------------------------
def pivot_label(value: Any) -> str:
    """A column name made from a value of the pivoted column: text as it is; whole numbers
    as integers, other numbers as their shortest text; dates and times in ISO form;
    booleans ``true`` / ``false``.

    >>> [pivot_label(v) for v in ("Nord", 3, 3.0, 2.5, decimal.Decimal("2.50"), True)]
    ['Nord', '3', '3', '2.5', '2.5', 'true']
    >>> pivot_label(dt.date(2024, 2, 29)), pivot_label(dt.datetime(2024, 2, 29, 12, 30))
    ('2024-02-29', '2024-02-29 12:30:00')
    >>> pivot_label(dt.timedelta(hours=1, seconds=3.25)), pivot_label(dt.time(1, 0, 3, 250000))
    ('01:00:03.250000', '01:00:03.250000')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.timedelta) and dt.timedelta(0) <= value < dt.timedelta(days=1):
        return (dt.datetime.min + value).time().isoformat()  # (MySQL's TIME, as a time of day)
    return str(value)


def _cell(agg: str, on: str, key: Any, value: str, dialect: str = "") -> exp.Expr:
    """One pivot cell: ``AGG(CASE WHEN on = key THEN value END)``."""
    matched = exp.EQ(this=column(on), expression=typed_literal(key, dialect))
    then: exp.Expr = exp.Literal.number(1) if agg == "len" else column(value)
    case = exp.Case(ifs=[exp.If(this=matched, true=then)])
    if agg == "sum":
        return exp.Sum(this=case)
    if agg == "mean":  # (a double on every engine, as Expr.mean: see portable_math.Mean)
        return Mean(this=case)
    if agg == "min":
        return exp.Min(this=case)
    if agg == "max":
        return exp.Max(this=case)
    if agg in ("count", "len"):
        return exp.Count(this=case)
    raise ParameterError(f"pivot() agg must be one of {', '.join(PIVOT_AGGS)}, not {agg!r}")


def pivot_cells(on: str, values: Sequence[str], keys: Sequence[Any], agg: str,
                labels: Sequence[str] | None = None, dialect: str = ""
                ) -> list[tuple[str, exp.Expr]]:
    """The pivot's aggregates, one per value column and key of ``on``: named by the key's
    label, or ``<value>_<label>`` when there are several value columns (as Polars names them).

    >>> [(n, e.sql()) for n, e in pivot_cells("g", ["v"], ["a", 1], "sum")]
    [('a', "SUM(CASE WHEN g = 'a' THEN v END)"), ('1', 'SUM(CASE WHEN g = 1 THEN v END)')]
    >>> [n for n, _ in pivot_cells("g", ["v", "w"], ["a"], "len")]
    ['v_a', 'w_a']
    """
    if agg not in PIVOT_AGGS:
        raise ParameterError(f"pivot() agg must be one of {', '.join(PIVOT_AGGS)}, not {agg!r}")
    names = list(labels) if labels is not None else [pivot_label(k) for k in keys]
    out = []
    for value in values:
        for key, label in zip(keys, names, strict=True):
            name = label if len(values) == 1 else f"{value}_{label}"
            out.append((name, _cell(agg, on, key, value, dialect)))
    return out


# -- unpivot and unnest: the query as one subquery, joined to the rows they make -------------
def _wrapped(f: Frame) -> tuple[exp.Select, str]:
    """The query as ``SELECT * FROM (q) AS _qN`` (its order carried outside) and ``_qN``."""
    select, _ = f.prepare(rw.Op.SOURCE)
    source = select.args["from_"].this
    return select, source.alias


def _qualified(key: exp.Ordered, table: str) -> exp.Ordered:
    """A sort key of the wrapped query with its bare column names qualified by ``table``,
    so names the new projection gives its outputs cannot capture them."""
    key = copy_tree(key)
    for c in list(key.find_all(exp.Column)):
        if not c.args.get("table") and not isinstance(c.this, exp.Star):
            c.set("table", ident(table))
    return key


def _finish(select: exp.Select, projection: list[exp.Expr], source: str,
            position: exp.Expr, first: bool) -> exp.Select:
    """``select`` with ``projection``; an ordered query stays ordered, ``position`` (the
    generated rows' own order) first or after the query's keys."""
    out = rw.copy_without(select, "expressions", "order")
    out.set("expressions", projection)
    order = select.args.get("order")
    if order is not None and order.expressions:
        keys = [_qualified(k, source) for k in order.expressions]
        pos = exp.Ordered(this=position, desc=False, nulls_first=False)
        out.set("order", exp.Order(expressions=[pos, *keys] if first else [*keys, pos]))
    return out


def _fresh(taken: Sequence[str], base: str) -> str:
    folded = {t.lower() for t in taken}
    name, i = base, 1
    while name.lower() in folded:
        i += 1
        name = f"{base}{i}"
    return name


def unpivot(f: Frame, on: Sequence[str], index: Sequence[str], variable: str,
            value: str, dtype: exp.DataType | None = None) -> exp.Select:
    """Columns ``on`` turned into rows: ``index`` columns, then ``variable`` (the column's
    name) and ``value`` (its value, cast to ``dtype`` if given), one row per input row and
    ``on`` column.

    One pass over the query: it is cross-joined with a small table of the names (``UNION
    ALL`` of one-row SELECTs, which every engine has), and a CASE picks each row's value. An
    ordered query stays ordered by column first, then its order (as ``pandas.melt`` stacks
    the columns).
    """
    if not on:
        raise ParameterError("unpivot() needs at least one column to turn into rows")
    select, source = _wrapped(f)
    names = _fresh(f.columns, "_qr_n")
    rows = [exp.select(exp.Alias(this=exp.Literal.number(i), alias=ident("_qr_pos")),
                       exp.Alias(this=exp.Literal.string(c), alias=ident("_qr_var")))
            for i, c in enumerate(on, 1)]
    table: exp.Query = rows[0]
    for row in rows[1:]:
        table = exp.Union(this=table, expression=row, distinct=False)
    joined = rw.copy_without(select, "joins")
    joined.set("joins", [*select.args.get("joins", []), exp.Join(
        this=exp.Subquery(this=table, alias=exp.TableAlias(this=ident(names))), kind="CROSS")])
    pick: exp.Expr = exp.Case(this=column("_qr_pos", names), ifs=[
        exp.If(this=exp.Literal.number(i), true=column(c, source)) for i, c in enumerate(on, 1)])
    if dtype is not None:
        pick = exp.Cast(this=pick, to=copy_tree(dtype))
    projection: list[exp.Expr] = [column(c, source) for c in index]
    projection += [exp.Alias(this=column("_qr_var", names), alias=ident(variable)),
                   exp.Alias(this=pick, alias=ident(value))]
    return _finish(joined, projection, source, column("_qr_pos", names), first=True)


_LIST_ENGINES = ("duckdb", "postgres", "spark", "databricks", "snowflake")


def check_lists(dialect: str) -> str:
    """The engine family of ``dialect`` if ``unnest`` can spell it, else UnsupportedError.

    >>> check_lists("duckdb")
    'duckdb'
    >>> check_lists("mysql")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    queryref.errors.UnsupportedError: unnest() needs list (array) columns, and MariaDB and MySQL...
    """
    engine = family(dialect)
    if engine not in _LIST_ENGINES:
        what = "MariaDB and MySQL have" if engine == "mysql" else f"{dialect} has"
        msg = (f"unnest() needs list (array) columns, and {what} none; store one row "
               "per element instead (a table of (id, element) rows), or unnest on an "
               "engine with lists (DuckDB, PostgreSQL, Snowflake, Spark)")
        raise UnsupportedError(msg)
    return engine


def unnest(f: Frame, name: str, *, keep_empty: bool = True,
           dtype: exp.DataType | None = None) -> exp.Select:
    """One row per element of the list column ``name``, which keeps its name and place and
    holds the element; the other columns repeat. With ``keep_empty``, a NULL or empty list
    gives one row whose element is NULL (as ``pandas.explode`` and Polars' ``explode`` do);
    without, such rows go (as SQL's ``UNNEST`` does). ``dtype``: a type to cast elements to.

    Per engine: a ``LEFT JOIN LATERAL UNNEST(...) WITH ORDINALITY`` (DuckDB, PostgreSQL),
    ``LATERAL VIEW [OUTER] POSEXPLODE`` (Spark), ``LATERAL FLATTEN`` (Snowflake, whose
    elements are VARIANT unless ``dtype`` is given). An ordered query stays ordered, each
    row's elements in list order. Engines without list types raise ``UnsupportedError``.

    >>> from sqlglot import parse_one
    >>> tree = parse_one("SELECT * FROM t ORDER BY id", read="postgres")
    >>> print(unnest(Frame(tree, ("id", "tags"), "postgres"), "tags").sql("postgres", pretty=True))
    SELECT
      _q1.id,
      _qr_u._qr_v AS tags
    FROM (
      SELECT
        *
      FROM t
    ) AS _q1
    LEFT JOIN LATERAL UNNEST(_q1.tags) WITH ORDINALITY AS _qr_u(_qr_v, _qr_p)
      ON TRUE
    ORDER BY
      _q1.id,
      _qr_u._qr_p ASC
    >>> from queryref.sql.text import render
    >>> for d in ("snowflake", "spark"):  # doctest: +NORMALIZE_WHITESPACE
    ...     print(render(unnest(Frame(parse_one("SELECT * FROM t"), ("id", "tags"), d), "tags"), d))
    SELECT "_q1"."id", "_qr_u".VALUE AS "tags" FROM (SELECT * FROM t) AS "_q1",
      LATERAL FLATTEN(INPUT => IFF(ARRAY_SIZE("_q1"."tags") > 0, "_q1"."tags", [NULL]),
      OUTER => TRUE) AS "_qr_u"
    SELECT _q1.id, _qr_u._qr_v AS tags FROM (SELECT * FROM t) AS _q1
      LATERAL VIEW OUTER POSEXPLODE(_q1.tags) _qr_u AS _qr_p, _qr_v
    """
    engine = check_lists(f.dialect)
    select, source = _wrapped(f)
    u = _fresh(f.columns, "_qr_u")
    listed = column(name, source)
    element: exp.Expr
    if engine in ("duckdb", "postgres"):
        lateral = exp.Lateral(this=exp.Unnest(expressions=[listed], offset=ident("_qr_p")),
                              alias=exp.TableAlias(this=ident(u),
                                                   columns=[ident("_qr_v")]))
        join = exp.Join(this=lateral, side="LEFT" if keep_empty else None,
                        kind=None if keep_empty else "CROSS",
                        on=exp.Boolean(this=True) if keep_empty else None)
        select = rw.copy_without(select, "joins")
        select.set("joins", [join])
        element, position = column("_qr_v", u), column("_qr_p", u)
    elif engine == "snowflake":
        # OUTER => TRUE keeps a row for an empty or NULL input; the IFF gives such a row one
        # NULL element as well (engines that ignore OUTER, such as fakesnow, then agree)
        given = exp.If(this=exp.GT(this=exp.ArraySize(this=listed),
                                   expression=exp.Literal.number(0)),
                       true=copy_tree(listed), false=exp.Array(expressions=[exp.Null()])) \
            if keep_empty else listed
        args = [exp.Kwarg(this=exp.var("OUTER"), expression=exp.Boolean(this=True))] \
            if keep_empty else []
        flatten = exp.Explode(this=exp.Kwarg(this=exp.var("INPUT"), expression=given),
                              expressions=args)
        select = rw.copy_without(select, "joins")
        select.set("joins", [exp.Join(this=exp.Lateral(
            this=flatten, alias=exp.TableAlias(this=ident(u))))])
        element, position = column("VALUE", u), column("INDEX", u)
    else:  # Spark, Databricks
        explode = exp.Posexplode(this=listed)
        select = rw.copy_without(select, "laterals")
        select.set("laterals", [exp.Lateral(
            this=explode, view=True, outer=keep_empty,
            alias=exp.TableAlias(this=ident(u), columns=[ident("_qr_p"), ident("_qr_v")]))])
        element, position = column("_qr_v", u), column("_qr_p", u)
    if dtype is not None:
        element = exp.Cast(this=element, to=dtype)
    projection: list[exp.Expr] = [
        exp.Alias(this=element, alias=ident(c)) if c == name else column(c, source)
        for c in f.columns]
    return _finish(select, projection, source, position, first=False)
