"""Number functions and aggregates whose spelling differs per engine: :class:`Portable` nodes.

Each class is one node in the tree, lowered to the engine's own functions when SQL is written.
What they settle, so that every engine returns the same numbers:

- ``round`` rounds half to even exactly as numpy (and so pandas) does on doubles: the value is
  scaled by ``10**digits`` in double precision and the nearest integer taken, a tie going to
  the even one (SQL engines round half away from zero, or differently per type);
- NaN: ``is_nan`` is true for NaN only (NULL stays NULL, MariaDB has no NaN); ``sign`` keeps
  NaN (PostgreSQL and DuckDB say 0); ``floor``/``ceil`` keep NaN, infinities and doubles
  beyond 2**52 on Spark, whose ``FLOOR`` turns a double into a saturating BIGINT;
- ``log10`` is each engine's base-10 logarithm (``LOG(10, x)`` divides natural logarithms on
  MariaDB and Spark: ``LOG(10, 1000)`` is 2.9999999999999996 there);
- ``quantile``/``median`` interpolate linearly between the two nearest values (pandas'
  default) on every engine, on doubles (DuckDB's keep a decimal's scale: 0.16666 became 0.1),
  with its exact function: Spark's ``PERCENTILE`` (its
  ``PERCENTILE_CONT`` is transpiled to an approximation), MariaDB's window-only
  ``PERCENTILE_CONT``; a placement an engine lacks is an :class:`UnsupportedError`;
- ``mean`` averages doubles on MariaDB/MySQL, Snowflake and Spark, whose ``AVG`` of integers
  or decimals is a decimal cut to a few more digits than the input (MariaDB: ``AVG`` of 1, 2,
  2 was 1.6667 over a window, 1.666666666 in ``agg``; Spark: decimal(p+4, s+4));
- ``first``/``last`` take the value on the first row of an order (``FIRST(x ORDER BY ..)``,
  ``ARRAY_AGG(..)[1]``, ``MIN_BY``), rows tied on the order broken by the value itself;
- a window with a frame (``ROWS BETWEEN ...``) keeps its NULLs-last order on MariaDB, where
  sqlglot's emulation of ``NULLS LAST`` leaves framed windows out.

>>> from sqlglot import exp
>>> node = QuantileCont(this=exp.column("x"), quantile=exp.Literal.number(0.25))
>>> node.sql("duckdb"), node.sql("spark")
('QUANTILE_CONT(CAST(x AS DOUBLE), 0.25)', 'PERCENTILE(CAST(x AS DOUBLE), 0.25)')
>>> node.sql("postgres")
'PERCENTILE_CONT(0.25) WITHIN GROUP (ORDER BY CAST(x AS DOUBLE PRECISION))'
"""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp

from queryref.errors import UnsupportedError
from queryref.sql.portable import Portable

__all__ = [
    "Ceil", "FirstBy", "Floor", "FramedWindow", "IsNan", "Log10", "Mean", "PortableAgg",
    "QuantileCont", "RoundHalfEven", "Sign",
]

#: 2**52: every double at least this large is a whole number
_WHOLE = 4503599627370496
_SPARK = ("spark", "databricks", "hive")
_LABELS = {"duckdb": "DuckDB", "postgres": "PostgreSQL", "mysql": "MariaDB/MySQL",
           "snowflake": "Snowflake", "spark": "Spark", "databricks": "Databricks"}


def _label(dialect: str) -> str:
    return _LABELS.get(dialect, dialect or "sqlglot's generic SQL")


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _double(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, exp.DataType.Type.DOUBLE)


def _case(cond: exp.Expr, then: exp.Expr, default: exp.Expr) -> exp.Expr:
    return exp.Case(ifs=[exp.If(this=cond, true=then)], default=default)


def nan_test(node: exp.Expr, dialect: str) -> exp.Expr:
    """``node`` is NaN, in ``dialect``: NULL for NULL, false where the engine has no NaN."""
    if dialect == "mysql":  # MariaDB/MySQL doubles have no NaN: false (NULL for NULL)
        return exp.NEQ(this=exp.paren(node), expression=exp.paren(node.copy()))
    if dialect == "duckdb":
        return _call("ISNAN", node)
    # NaN equals NaN on PostgreSQL, Snowflake and Spark (it sorts above every number there)
    nan = _double(exp.Literal.string("NaN"))
    return exp.EQ(this=_double(node), expression=nan)


class IsNan(Portable):
    """True where ``this`` is NaN, false for other numbers, NULL for NULL."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}

    def lower(self, dialect: str) -> exp.Expr:
        return nan_test(self.this.copy(), dialect)


class Sign(Portable):
    """-1, 0 or 1 by the sign of ``this``; NaN stays NaN (PostgreSQL and DuckDB say 0)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}

    def lower(self, dialect: str) -> exp.Expr:
        sign = exp.Sign(this=self.this.copy())
        if dialect == "mysql" or dialect in _SPARK:  # no NaN / SIGN(NaN) is NaN
            return sign
        # (also gives fakesnow a type it can describe: its SIGN is a TINYINT)
        return _case(nan_test(self.this.copy(), dialect), self.this.copy(), sign)


class _Rounding(Portable):
    """FLOOR / CEIL that keep NaN and infinities (Spark's turn a double into a BIGINT)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}
    _node: type[exp.Func] = exp.Floor

    def lower(self, dialect: str) -> exp.Expr:
        whole = self._node(this=self.this.copy())
        if dialect not in _SPARK:
            return whole
        # NaN and NULL fail the test (NaN sorts above every number on Spark) and stay as they
        # are; so do infinities and doubles past 2**52, which are whole numbers already
        small = exp.LT(this=exp.Abs(this=self.this.copy()), expression=exp.Literal.number(_WHOLE))
        return _case(small, whole, self.this.copy())


class Floor(_Rounding):
    """The largest whole number not above ``this`` (NaN and infinities unchanged)."""

    _node = exp.Floor


class Ceil(_Rounding):
    """The smallest whole number not below ``this`` (NaN and infinities unchanged)."""

    _node = exp.Ceil


class Log10(Portable):
    """The base-10 logarithm of ``this`` with the engine's own function."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}

    def lower(self, dialect: str) -> exp.Expr:
        if dialect == "snowflake":  # Snowflake has no LOG10
            return exp.Log(this=exp.Literal.number(10), expression=self.this.copy())
        return _call("LOG10", self.this.copy())


class RoundHalfEven(Portable):
    """``this`` rounded to ``decimals`` (an integer literal, negative for tens, hundreds ...)
    as numpy rounds a double: ``rint(x * 10**d) / 10**d``, ties to even."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "decimals": True}

    def lower(self, dialect: str) -> exp.Expr:
        digits = int(self.args["decimals"].to_py())
        scale = exp.Literal.number(float(10 ** abs(digits)))

        def scaled() -> exp.Expr:
            value = _double(self.this.copy())
            if digits == 0:
                return value
            kind = exp.Mul if digits > 0 else exp.Div
            return kind(this=value, expression=scale.copy())

        if dialect == "postgres":  # ROUND(double precision) is rint: half to even already
            whole: exp.Expr = exp.Round(this=scaled())
        else:
            # a tie is exactly .5 from ROUND(y), whichever way the engine breaks it; then
            # 2 * ROUND(y / 2) is the even neighbour (y / 2 is never a tie itself)
            tie = exp.EQ(this=exp.Abs(this=exp.Sub(this=scaled(),
                                                   expression=exp.Round(this=scaled()))),
                         expression=exp.Literal.number(0.5))
            half = exp.Round(this=exp.Div(this=scaled(), expression=exp.Literal.number(2)))
            even = exp.Mul(this=exp.Literal.number(2), expression=half)
            whole = _case(tie, even, exp.Round(this=scaled()))
        if digits == 0:
            return whole
        kind = exp.Div if digits > 0 else exp.Mul
        return kind(this=exp.paren(whole), expression=scale)


class FramedWindow(Portable, exp.Window):
    """A window with a frame: on MariaDB/MySQL (no ``NULLS FIRST/LAST``) each key whose NULLs
    go where MySQL would not put them is preceded by a ``key IS NULL`` key, which sqlglot
    writes itself only for windows without a frame."""

    arg_types: ClassVar[dict[str, bool]] = exp.Window.arg_types

    def lower(self, dialect: str) -> exp.Expr:
        args = {k: (v.copy() if isinstance(v, exp.Expr) else
                    [i.copy() for i in v] if isinstance(v, list) else v)
                for k, v in self.args.items()}
        order = args.get("order")
        if dialect == "mysql" and isinstance(order, exp.Order):
            keys: list[exp.Expr] = []
            for key in order.expressions:
                desc = bool(key.args.get("desc"))
                nulls_first = key.args.get("nulls_first")
                # MySQL sorts NULLs first ascending, last descending
                if nulls_first is not None and bool(nulls_first) == desc:
                    is_null = exp.Is(this=key.this.copy(), expression=exp.Null())
                    keys.append(exp.Ordered(this=is_null, desc=bool(nulls_first),
                                            nulls_first=not bool(nulls_first)))
                key.set("nulls_first", not desc)
                keys.append(key)
            order.set("expressions", keys)
        return exp.Window(**args)


class PortableAgg(Portable, exp.AggFunc):
    """A :class:`Portable` that is an aggregate: the rewrites see it as one (GROUP BY, HAVING,
    windows)."""

    def window(self) -> exp.Window | None:
        """The window this aggregate is computed over, if it is inside one."""
        return self.parent if isinstance(self.parent, exp.Window) else None


class QuantileCont(PortableAgg):
    """The ``quantile`` (a literal in [0, 1]) of ``this``, interpolated linearly between the two
    nearest values (pandas' default), exact on every engine that computes it."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "quantile": True}

    def lower(self, dialect: str) -> exp.Expr:
        # on doubles, as pandas: DuckDB's QUANTILE_CONT of a DECIMAL keeps its scale (the 1/3
        # quantile of 0.1, 0.2, 0.4 as DECIMAL(10,1) was 0.1), MariaDB's is a decimal of 10
        x, q = _double(self.this.copy()), self.args["quantile"].copy()
        median = q.name in ("0.5", "0.50")
        window = self.window()
        plain = window is None or not (window.args.get("order") or window.args.get("spec"))
        name = "median()" if median else "quantile()"
        if dialect == "duckdb":
            return _call("MEDIAN", x) if median else _call("QUANTILE_CONT", x, q)
        if dialect in _SPARK:  # exact; Spark's PERCENTILE_CONT is written as an approximation
            return _call("MEDIAN", x) if median else _call("PERCENTILE", x, q)
        if dialect == "postgres" and window is not None:
            msg = (f"PostgreSQL has no window form of PERCENTILE_CONT, so {name} cannot take "
                   ".over(): compute it with group_by(...).agg(...) and join it back")
            raise UnsupportedError(msg)
        if dialect == "mysql" and window is None:
            msg = (f"MariaDB computes {name} only as a window function (MySQL not at all): use "
                   "it with .over(partition_by=...) in mutate(), then distinct() or agg(...) "
                   "with min() of that column")
            raise UnsupportedError(msg)
        if dialect in ("mysql", "snowflake") and not plain:
            msg = (f"{_label(dialect)} computes {name} over a window only with partition_by=: "
                   "no order_by= or rows=")
            raise UnsupportedError(msg)
        ordered = exp.Ordered(this=x, nulls_first=dialect == "mysql")
        call = _call("PERCENTILE_CONT", q)
        return exp.WithinGroup(this=call, expression=exp.Order(expressions=[ordered]))


class Mean(PortableAgg):
    """The mean of ``this`` (``AVG``), a double on every engine: MariaDB/MySQL, Snowflake and
    Spark average integers and decimals as a decimal cut to a few more digits than the input
    (DuckDB's ``AVG`` is a double already, PostgreSQL's exact; both also average dates)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}

    def lower(self, dialect: str) -> exp.Expr:
        x = self.this.copy()
        cut = dialect in ("mysql", "snowflake") or dialect in _SPARK
        return exp.Avg(this=_double(x) if cut else x)


def _flags(key: exp.Ordered, largest: bool) -> list[exp.Expr]:
    """Spark's struct key for ``key``: NULL placement as a boolean, then the value (MIN_BY's
    smallest struct comes first; MAX_BY's largest)."""
    value = key.this.copy()
    null_first = bool(key.args.get("nulls_first"))
    is_null: exp.Expr = exp.Is(this=value.copy(), expression=exp.Null())
    if null_first != largest:  # the rows to come first get the smaller (or larger) flag
        is_null = exp.Not(this=is_null)
    return [is_null, value]


def _not_null(node: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=node, expression=exp.Null()))


class FirstBy(PortableAgg):
    """The first value of ``this`` that is not NULL, by ``expressions`` (``exp.Ordered`` keys);
    rows tied on the keys are ordered by the value itself in the last key's direction, so the
    answer does not depend on the engine's row order (but on Snowflake, see :meth:`lower`).

    ``last()`` is this with every key's direction reversed.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expressions": True}

    def _keys(self) -> list[exp.Ordered]:
        keys = [k.copy() for k in self.expressions]
        last_desc = bool(keys[-1].args.get("desc"))
        return [*keys, exp.Ordered(this=self.this.copy(), desc=last_desc, nulls_first=False)]

    def _filtered(self, agg: exp.Expr) -> exp.Expr:
        return exp.Filter(this=agg, expression=exp.Where(this=_not_null(self.this.copy())))

    def lower(self, dialect: str) -> exp.Expr:
        x, keys = self.this.copy(), self._keys()
        if self.window() is not None:
            msg = "first()/last() are aggregates: over a window use first_value()/last_value()"
            raise UnsupportedError(msg)
        if dialect == "duckdb":
            return self._filtered(_call("FIRST", exp.Order(this=x, expressions=keys)))
        if dialect == "postgres" or dialect == "":
            agg = self._filtered(exp.ArrayAgg(this=exp.Order(this=x, expressions=keys)))
            return exp.Bracket(this=exp.paren(agg), expressions=[exp.Literal.number(0)])
        user = keys[:-1]
        directions = {bool(k.args.get("desc")) for k in user}
        if dialect in _SPARK and len(directions) == 1:
            largest = directions.pop()
            flags = [f for k in user for f in _flags(k, largest)]
            struct = exp.Struct(expressions=[*flags, x.copy()])
            return self._filtered(_call("MAX_BY" if largest else "MIN_BY", x, struct))
        if dialect == "snowflake" and len(user) == 1:
            return self._snowflake(user[0])
        if dialect in _SPARK:
            msg = ("Spark computes first()/last() with MIN_BY/MAX_BY: give every order_by key "
                   "the same direction (all ascending or all qr.desc(...))")
        elif dialect == "snowflake":
            msg = ("Snowflake computes first()/last() with MIN_BY/MAX_BY, which take one "
                   "ordering key: order by one column (or one expression)")
        else:
            msg = (f"{_label(dialect)} has no ordered first/last aggregate: use "
                   "first_value()/last_value() with .over(partition_by=..., order_by=...) in "
                   "mutate(), then distinct()")
        raise UnsupportedError(msg)

    def _snowflake(self, key: exp.Ordered) -> exp.Expr:
        """``MIN_BY``/``MAX_BY`` skip rows whose key is NULL, and take any one of the rows tied
        on the key (Snowflake has no deterministic form: documented in ``first()``). Rows
        whose value is NULL get a NULL key, so every engine (fakesnow's DuckDB too) skips
        them; rows whose key is NULL are looked at where NULLs sort: before or after."""
        name = "MAX_BY" if key.args.get("desc") else "MIN_BY"
        present = _not_null(self.this.copy())
        keyed = exp.Case(ifs=[exp.If(this=present, true=key.this.copy())])
        null_keyed = exp.Case(ifs=[exp.If(
            this=exp.and_(present.copy(), exp.Is(this=key.this.copy(), expression=exp.Null())),
            true=exp.Literal.number(0))])
        by_key = _call(name, self.this.copy(), keyed)
        by_null = _call(name, self.this.copy(), null_keyed)
        pair = [by_null, by_key] if key.args.get("nulls_first") else [by_key, by_null]
        return exp.Coalesce(this=pair[0], expressions=[pair[1]])
