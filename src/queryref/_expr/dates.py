"""``Expr.dt``: date and time functions, spelled for each engine by ``sql.portable_time``.

The same values on every engine: a DATE is midnight, a timestamp without time zone is read as
written (its epoch taken as UTC), a timestamp with time zone is read in the session's time
zone. Weekdays count from Monday = 0 and weeks start on Monday, as pandas' ``weekday`` and
ISO weeks do. Adding a ``datetime.timedelta`` (``qr.col("ts") + dt.timedelta(hours=2)``) is
ordinary arithmetic on the expression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._expr.base import ExprBase, _node
from queryref.errors import ParameterError
from queryref.sql.portable_time import (
    DIFF_UNITS,
    TRUNCATE_UNITS,
    DateDiffUnits,
    TimeEpoch,
    TimeFormat,
    TimePart,
    TimeTruncate,
    strftime_tokens,
)
from queryref.sql.text import column

if TYPE_CHECKING:
    from queryref._expr.core import Expr

__all__ = ["DateTimeMethods", "date_diff"]


def _unit(unit: str, choices: tuple[str, ...], what: str) -> exp.Var:
    name = unit.lower() if isinstance(unit, str) else unit
    if name not in choices:
        raise ParameterError(f"{what} takes a unit among {', '.join(choices)}, not {unit!r}")
    return exp.var(name)


class DateTimeMethods:
    """Date and time functions of an expression: ``qr.col("day").dt.year()``."""

    __slots__ = ("_expr",)

    def __init__(self, expr: ExprBase) -> None:
        self._expr = expr

    def __repr__(self) -> str:
        return f"<DateTimeMethods of {self._expr!r}>"

    def _new(self, node: object) -> Expr:
        return self._expr._new(node)  # type: ignore[arg-type]

    def _part(self, unit: str) -> Expr:
        return self._new(TimePart(this=self._expr._copy(), unit=exp.var(unit)))

    # -- parts -----------------------------------------------------------------------------
    def year(self) -> Expr:
        """The year, as an integer.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT DATE '2024-02-29' AS d")
        >>> q.select(y=qr.col("d").dt.year()).to_pandas()["y"].tolist()
        [2024]
        """
        return self._part("year")

    def quarter(self) -> Expr:
        """The quarter of the year, 1 to 4.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT DATE '2024-11-05' AS d")
        >>> q.select(q=qr.col("d").dt.quarter()).to_pandas()["q"].tolist()
        [4]
        """
        return self._part("quarter")

    def month(self) -> Expr:
        """The month, 1 to 12.

        >>> import queryref as qr
        >>> qr.col("d").dt.month().sql("postgres")
        'CAST(EXTRACT(MONTH FROM d) AS INT)'
        """
        return self._part("month")

    def day(self) -> Expr:
        """The day of the month, 1 to 31.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT DATE '2024-02-29' AS d")
        >>> q.select(day=qr.col("d").dt.day()).to_pandas()["day"].tolist()
        [29]
        """
        return self._part("day")

    def hour(self) -> Expr:
        """The hour, 0 to 23 (0 for a DATE).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '2024-02-29 23:59:59' AS ts")
        >>> q.select(h=qr.col("ts").dt.hour()).to_pandas()["h"].tolist()
        [23]
        """
        return self._part("hour")

    def minute(self) -> Expr:
        """The minute, 0 to 59.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '2024-02-29 23:58:59' AS ts")
        >>> q.select(m=qr.col("ts").dt.minute()).to_pandas()["m"].tolist()
        [58]
        """
        return self._part("minute")

    def second(self) -> Expr:
        """The whole seconds, 0 to 59 (a fraction is dropped, as pandas does).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '2024-02-29 23:58:59.75' AS ts")
        >>> q.select(s=qr.col("ts").dt.second()).to_pandas()["s"].tolist()
        [59]
        """
        return self._part("second")

    def weekday(self) -> Expr:
        """The day of the week, Monday = 0 to Sunday = 6 (as pandas' ``weekday``). Also
        ``day_of_week``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT DATE '2024-02-29' AS d")   # a Thursday
        >>> q.select(w=qr.col("d").dt.weekday()).to_pandas()["w"].tolist()
        [3]
        """
        return self._part("weekday")

    day_of_week = weekday  # (pandas 3's name for it)

    def day_of_year(self) -> Expr:
        """The day of the year, 1 to 366.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT DATE '2024-12-31' AS d")
        >>> q.select(n=qr.col("d").dt.day_of_year()).to_pandas()["n"].tolist()
        [366]
        """
        return self._part("day_of_year")

    def week(self) -> Expr:
        """The ISO 8601 week number, 1 to 53 (weeks start on Monday; week 1 holds the year's
        first Thursday, so early January can be week 52 or 53 of the year before).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT DATE '2021-01-03' AS d")
        >>> q.select(w=qr.col("d").dt.week()).to_pandas()["w"].tolist()
        [53]
        """
        return self._part("week")

    # -- whole values ----------------------------------------------------------------------
    def date(self) -> Expr:
        """The date part, as a DATE (a timestamp with time zone: its date in the session's
        zone).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '2024-02-29 23:59:59' AS ts")
        >>> q.select(d=qr.col("ts").dt.date()).to_pandas()["d"].dt.date.astype(str).tolist()
        ['2024-02-29']
        """
        return self._new(exp.Cast(this=self._expr._copy(), to=exp.DataType.build("DATE")))

    def truncate(self, unit: str) -> Expr:
        """The start of the ``unit`` the value falls in: ``"year"``, ``"quarter"``,
        ``"month"``, ``"week"`` (Monday), ``"day"``, ``"hour"``, ``"minute"`` or ``"second"``.

        The result is a timestamp (Snowflake keeps a DATE a DATE).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '2024-02-29 23:59:59' AS ts")
        >>> q.select(m=qr.col("ts").dt.truncate("month")).to_pandas()["m"].astype(str).tolist()
        ['2024-02-01']
        """
        node = TimeTruncate(this=self._expr._copy(),
                            unit=_unit(unit, TRUNCATE_UNITS, "truncate()"))
        return self._new(node)

    def epoch(self) -> Expr:
        """Seconds since 1970-01-01 00:00:00 UTC, as a float with the fraction of a second.

        A DATE or a timestamp without time zone is taken as UTC; a timestamp with time zone
        gives its instant's seconds.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '1970-01-02 00:00:01.5' AS ts")
        >>> q.select(s=qr.col("ts").dt.epoch()).to_pandas()["s"].tolist()
        [86401.5]
        """
        return self._new(TimeEpoch(this=self._expr._copy()))

    def strftime(self, format: str) -> Expr:
        """The value as text by a Python ``strftime`` format, translated for each engine.

        The codes: ``%Y %y %m %d %H %I %p %M %S %j %b %B %a %A %%`` (names in English); any
        other code raises :class:`~queryref.errors.ParameterError`, since not every engine
        can write it exactly.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT TIMESTAMP '2024-02-29 23:05:09' AS ts")
        >>> q.select(s=qr.col("ts").dt.strftime("%a %d %b %Y, %I:%M %p")).to_pandas()["s"].tolist()
        ['Thu 29 Feb 2024, 11:05 PM']
        >>> qr.col("ts").dt.strftime("%Y-%m-%d").sql("postgres")
        'TO_CHAR(ts, \\'YYYY"-"MM"-"DD\\')'
        """
        strftime_tokens(format)  # a bad code fails here, not when SQL is written
        return self._new(TimeFormat(this=self._expr._copy(), format=exp.Literal.string(format)))


def _date_operand(value: Any) -> exp.Expr:
    """A column name (text), an Expr, or a date/datetime value."""
    if isinstance(value, str):
        return column(value)
    return _node(value)


def date_diff(unit: str, start: Any, end: Any) -> Expr:
    """The number of ``unit`` boundaries crossed from ``start`` to ``end``: ``"year"``,
    ``"month"``, ``"week"``, ``"day"``, ``"hour"``, ``"minute"`` or ``"second"``.

    It is the difference of the two values truncated to the unit, as Snowflake's
    ``DATEDIFF``: from Jan 31 to Feb 1 is one month, from 23:59 to 00:01 the next day is one
    day; weeks start on Monday, seconds drop their fraction. Negative when ``end`` is
    earlier; NULL when either is. ``start`` and ``end`` are column names, expressions or
    date/datetime values.

    >>> import queryref as qr
    >>> q = qr.connect().sql("SELECT DATE '2024-01-31' AS a, TIMESTAMP '2024-02-01 08:00' AS b")
    >>> q.select(months=qr.date_diff("month", "a", "b"),
    ...          hours=qr.date_diff("hour", "a", qr.col("b"))).to_pandas().iloc[0].tolist()
    [1, 32]
    """
    from queryref._expr.core import Expr  # (core imports this module)

    node = DateDiffUnits(this=_date_operand(start), expression=_date_operand(end),
                         unit=_unit(unit, DIFF_UNITS, "date_diff()"))
    return Expr(node)
