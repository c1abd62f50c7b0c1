"""Number and NULL functions on every expression: ``abs``, ``round``, ``floor`` ...

The same answer on every engine, as pandas/numpy would give on the same rows, except where
noted:

- ``round`` rounds half to even, on doubles, exactly as pandas' ``Series.round``;
- ``sqrt``, ``log``, ``log10`` and ``pow`` give NULL outside their real domain (the square root
  of a negative number, the logarithm of zero or less, a negative number to a fractional
  power, zero to a negative power) where numpy gives NaN or infinity and PostgreSQL raises an
  error; overflow (``exp(1000)``) is the engine's: infinity or an error;
- NaN is a number, NULL is missing (as in Polars): ``fill_null`` fills NULLs only, ``is_nan``
  is NULL for NULL. MariaDB has no NaN.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._expr.base import ExprBase, _node
from queryref.errors import ParameterError
from queryref.sql import portable_math as pm

if TYPE_CHECKING:
    from queryref._expr.core import Expr


def _number(value: Any) -> float | None:
    """A plain Python number's value (not a bool), else None (an Expr or other literal)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def _when(cond: exp.Expr, value: exp.Expr) -> exp.Expr:
    """``CASE WHEN cond THEN value END`` (NULL otherwise)."""
    return exp.Case(ifs=[exp.If(this=cond, true=value)])


class NumberMethods(ExprBase):
    """Mixed into ``Expr``: numeric functions and NULL handling."""

    __slots__ = ()

    def abs(self) -> Expr:
        """Absolute value.

        >>> import queryref as qr
        >>> qr.col("x").abs().sql()
        'ABS(x)'
        """
        return self._new(exp.Abs(this=self._copy()))

    def round(self, digits: int = 0) -> Expr:
        """Round to ``digits`` decimals (negative: to tens, hundreds ...), half to even, as
        pandas' ``Series.round`` does: the same double on every engine.

        The value is computed as a double (``x * 10**digits``, rounded to the nearest whole
        number, a tie going to the even one, divided back), exactly as numpy does, so
        ``0.125`` gives ``0.12`` and ``2.675`` (the double just below it) ``2.67``. SQL's own
        ``ROUND`` rounds half away from zero on most engines; the result here is always a
        double, also for integer and decimal input. ``digits`` is from -20 to 20 (a double
        holds about 16 significant digits).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (0.5), (1.5), (2.5), (-2.5), (0.125)) t(x)")
        >>> q.select(r=qr.col("x").round(), r2=qr.col("x").round(2)).to_pandas().values.tolist()
        [[0.0, 0.5], [2.0, 1.5], [2.0, 2.5], [-2.0, -2.5], [0.0, 0.12]]
        """
        if not isinstance(digits, int) or isinstance(digits, bool) or abs(digits) > 20:
            msg = f"round() takes a whole number of digits from -20 to 20, not {digits!r}"
            raise ParameterError(msg)
        return self._new(pm.RoundHalfEven(this=self._copy(),
                                          decimals=exp.Literal.number(digits)))

    def floor(self) -> Expr:
        """The largest whole number not above the value (NaN and infinities stay).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1.5), (-1.5)) t(x)")
        >>> q.select(f=qr.col("x").floor(), c=qr.col("x").ceil()).to_pandas().values.tolist()
        [[1.0, 2.0], [-2.0, -1.0]]
        """
        return self._new(pm.Floor(this=self._copy()))

    def ceil(self) -> Expr:
        """The smallest whole number not below the value (NaN and infinities stay).

        >>> import queryref as qr
        >>> qr.col("x").ceil().sql()
        'CEIL(x)'
        """
        return self._new(pm.Ceil(this=self._copy()))

    def _domain(self, cond: type[exp.Binary]) -> exp.Expr:
        """The value where ``value <cond> 0`` holds, NULL elsewhere (NaN passes: it sorts above
        every number)."""
        test = cond(this=self._copy(), expression=exp.Literal.number(0))
        return _when(test, self._copy())

    def sqrt(self) -> Expr:
        """Square root; NULL for a negative number (numpy: NaN; PostgreSQL: an error).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (16), (-1)) t(x)")
        >>> q.select(r=qr.col("x").sqrt()).to_pandas()["r"].tolist()
        [4.0, nan]
        """
        return self._new(exp.Sqrt(this=self._domain(exp.GTE)))

    def log(self, base: float | None = None) -> Expr:
        """Natural logarithm, or to ``base`` (a positive number other than 1); NULL for zero or
        a negative number (numpy: -inf or NaN; PostgreSQL: an error).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (8), (0)) t(x)")
        >>> q.select(r=qr.col("x").log(2)).to_pandas()["r"].tolist()
        [3.0, nan]
        """
        ln = exp.Ln(this=self._domain(exp.GT))
        if base is None:
            return self._new(ln)
        b = _number(base)
        if b is None or b <= 0 or b == 1:
            raise ParameterError(f"log() takes a positive base other than 1, not {base!r}")
        if b == 10:
            return self.log10()
        return self._new(exp.Div(this=ln, expression=exp.Ln(this=exp.Literal.number(b))))

    def log10(self) -> Expr:
        """Base-10 logarithm; NULL for zero or a negative number.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1000), (-5)) t(x)")
        >>> q.select(r=qr.col("x").log10()).to_pandas()["r"].tolist()
        [3.0, nan]
        """
        return self._new(pm.Log10(this=self._domain(exp.GT)))

    def exp(self) -> Expr:
        """``e`` to the power of the value.

        >>> import queryref as qr
        >>> qr.col("x").exp().sql()
        'EXP(x)'
        """
        return self._new(exp.Exp(this=self._copy()))

    def pow(self, exponent: Any) -> Expr:
        """The value to the power ``exponent`` (a number or an expression), as ``x ** y``
        but NULL where the result is not a real number: a negative number to a fractional
        power, zero to a negative power (numpy: NaN or inf; PostgreSQL: an error).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (4), (-8), (0)) t(x)")
        >>> q.select(a=qr.col("x").pow(2), b=qr.col("x").pow(0.5)).to_pandas().values.tolist()
        [[16.0, 2.0], [64.0, nan], [0.0, 0.0]]
        """
        y = _number(exponent)
        x = self._copy()
        power = exp.Pow(this=self._copy(), expression=_node(exponent))
        zero = exp.Literal.number(0)
        bad: list[exp.Expr] = []
        if y is None:  # an expression: test both cases
            fractional = exp.NEQ(this=_node(exponent), expression=pm.Floor(this=_node(exponent)))
            bad = [exp.and_(exp.LT(this=x.copy(), expression=zero.copy()), fractional),
                   exp.and_(exp.EQ(this=x.copy(), expression=zero.copy()),
                            exp.LT(this=_node(exponent), expression=zero.copy()))]
        else:
            if y != int(y):
                bad.append(exp.LT(this=x.copy(), expression=zero.copy()))
            if y < 0:
                bad.append(exp.EQ(this=x.copy(), expression=zero.copy()))
        if not bad:
            return self._new(power)
        cond = bad[0] if len(bad) == 1 else exp.or_(*bad)
        return self._new(exp.Case(ifs=[exp.If(this=cond, true=exp.Null())], default=power))

    def sign(self) -> Expr:
        """-1, 0 or 1 by the sign of the value (NaN stays NaN, as in numpy).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (-2.5), (0), (7)) t(x)")
        >>> q.select(s=qr.col("x").sign()).to_pandas()["s"].tolist()
        [-1.0, 0.0, 1.0]
        """
        return self._new(pm.Sign(this=self._copy()))

    def clip(self, lower: Any = None, upper: Any = None) -> Expr:
        """The value limited to ``[lower, upper]`` (either may be None: no limit on that side;
        a bound may be an expression). NULL and NaN stay as they are, as in pandas.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (-5), (3), (50)) t(x)")
        >>> q.select(c=qr.col("x").clip(0, 10)).to_pandas()["c"].tolist()
        [0, 3, 10]
        """
        if lower is None and upper is None:
            raise ParameterError("clip() needs lower=, upper= or both")
        lo, hi = _number(lower), _number(upper)
        if lo is not None and hi is not None and lo > hi:
            raise ParameterError(f"clip() needs lower <= upper, not {lower!r} > {upper!r}")
        ifs = [exp.If(this=pm.IsNan(this=self._copy()), true=self._copy())]
        if lower is not None:
            ifs.append(exp.If(this=exp.LT(this=self._copy(), expression=_node(lower)),
                              true=_node(lower)))
        if upper is not None:
            ifs.append(exp.If(this=exp.GT(this=self._copy(), expression=_node(upper)),
                              true=_node(upper)))
        return self._new(exp.Case(ifs=ifs, default=self._copy()))

    def is_nan(self) -> Expr:
        """True where the value is NaN (not a number), false for other numbers, NULL for NULL
        (MariaDB has no NaN: false or NULL).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES ('NaN'::DOUBLE), (1.0), (NULL)) t(x)")
        >>> q.select(n=qr.col("x").is_nan()).to_pandas()["n"].tolist()
        [True, False, <NA>]
        """
        return self._new(pm.IsNan(this=self._copy()))

    # -- NULLs ----------------------------------------------------------------------------
    def fill_null(self, value: Any) -> Expr:
        """``value`` where this is NULL (``COALESCE``); NaN is a number and stays (as in
        Polars; pandas' ``fillna`` would fill it too: use ``is_nan`` for that).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (NULL)) t(x)")
        >>> q.select(x=qr.col("x").fill_null(0)).to_pandas()["x"].tolist()
        [1, 0]
        """
        return self._new(exp.Coalesce(this=self._copy(), expressions=[_node(value)]))

    def null_if(self, value: Any) -> Expr:
        """NULL where the value equals ``value`` (``NULLIF``), the value elsewhere.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT * FROM (VALUES (1), (0)) t(x)")
        >>> q.select(r=10 / qr.col("x").null_if(0)).to_pandas()["r"].tolist()
        [10.0, nan]
        """
        return self._new(exp.Nullif(this=self._copy(), expression=_node(value)))
