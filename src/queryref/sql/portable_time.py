"""Date and time functions lowered per engine: the parts of a date, truncation, epoch seconds,
strftime formatting and date differences (``Expr.dt`` and ``qr.date_diff`` build these nodes).

Each node is one :class:`~queryref.sql.portable.Portable` function in the tree, written for
the engine when SQL is generated. The spellings were checked on DuckDB, PostgreSQL, MariaDB,
Snowflake (fakesnow) and Spark; the generic dialect (``""``) writes DuckDB's. Another engine
family gets :class:`~queryref.errors.UnsupportedError` rather than an unchecked spelling.

What the values mean, on every engine:

- A DATE is midnight; a timestamp without time zone is read as it is written (its epoch is
  taken as UTC); a timestamp with time zone is read in the session's time zone (its epoch is
  the instant's).
- ``weekday`` counts from Monday = 0 (as pandas); ``week`` is the ISO week number; weeks
  start on Monday (truncation, ``date_diff("week", ...)``).
- :class:`DateDiffUnits` counts unit boundaries crossed: ``date_diff("month", Jan 31,
  Feb 1) == 1``, the difference of the two values truncated to the unit.

>>> from sqlglot import exp
>>> weekday = TimePart(this=exp.column("d"), unit=exp.var("weekday"))
>>> weekday.sql("duckdb"), weekday.sql("mysql")
('ISODOW(d) - 1', 'WEEKDAY(d)')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp

from queryref.errors import ParameterError, UnsupportedError
from queryref.sql.portable import Portable, _register

__all__ = [
    "DIFF_UNITS", "PARTS", "STRFTIME_CODES", "TRUNCATE_UNITS", "DateDiffUnits", "TimeEpoch",
    "TimeFormat", "TimePart", "TimeTruncate", "interval", "strftime_tokens",
]

#: the engine families these spellings were checked on ("" is sqlglot's generic SQL)
CHECKED = ("", "duckdb", "postgres", "mysql", "snowflake", "spark", "databricks")

#: the parts ``TimePart`` extracts
PARTS = ("year", "quarter", "month", "day", "hour", "minute", "second", "weekday",
         "day_of_year", "week")
#: the units ``TimeTruncate`` truncates to
TRUNCATE_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")
#: the units ``DateDiffUnits`` counts
DIFF_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")

Tree = exp.Expr
Type = exp.DType  # the SQL types


# -- small builders ------------------------------------------------------------------------
def _fn(name: str, *args: Tree) -> Tree:
    return exp.Anonymous(this=name, expressions=list(args))


def _text(value: str) -> Tree:
    return exp.Literal.string(value)


def _num(value: int | str) -> Tree:
    return exp.Literal.number(value)


def _cast(node: Tree, to: exp.DType) -> Tree:
    return exp.Cast(this=node, to=exp.DataType(this=to))


def _paren(node: Tree) -> Tree:
    return node if isinstance(node, exp.Func | exp.Column | exp.Literal | exp.Paren) \
        else exp.Paren(this=node)


def _add(a: Tree, b: Tree) -> Tree:
    return exp.Add(this=a, expression=b)


def _sub(a: Tree, b: Tree) -> Tree:
    return exp.Sub(this=a, expression=_paren(b))


def _mul(a: Tree, b: Tree) -> Tree:
    return exp.Mul(this=_paren(a), expression=_paren(b))


def _checked(family: str, what: str) -> None:
    if family not in CHECKED:
        msg = (f"{what} is written for DuckDB, PostgreSQL, MySQL/MariaDB, Snowflake and Spark "
               f"only, not for {family!r}: write that part of the query as SQL text")
        raise UnsupportedError(msg)


def _unit(node: Portable, choices: tuple[str, ...]) -> str:
    unit = node.args["unit"].name.lower()
    if unit not in choices:  # (the API checks first; a tree built by hand lands here)
        raise ParameterError(f"unit must be one of {', '.join(choices)}, not {unit!r}")
    return unit


# -- parts ---------------------------------------------------------------------------------
_DUCKDB_PARTS = {"year": "YEAR", "quarter": "QUARTER", "month": "MONTH", "day": "DAY",
                 "hour": "HOUR", "minute": "MINUTE", "second": "SECOND",
                 "day_of_year": "DAYOFYEAR", "week": "WEEKOFYEAR"}
_PG_FIELDS = {"year": "YEAR", "quarter": "QUARTER", "month": "MONTH", "day": "DAY",
              "hour": "HOUR", "minute": "MINUTE", "second": "SECOND", "weekday": "ISODOW",
              "day_of_year": "DOY", "week": "WEEK"}
_CLOCK = ("hour", "minute", "second")


def part(unit: str, x: Tree, family: str) -> Tree:
    """``unit`` of ``x`` (a copy the caller owns) as an integer, spelled for ``family``."""
    if family == "postgres":
        # EXTRACT gives NUMERIC, and refuses clock fields on a DATE: read it as a timestamp
        source = _cast(x, Type.TIMESTAMP) if unit in _CLOCK else x
        node: Tree = exp.Extract(this=exp.var(_PG_FIELDS[unit]), expression=source)
        if unit == "second":  # fractional seconds: whole seconds, as pandas
            node = exp.Floor(this=node)
        node = _cast(node, Type.INT)
        return _sub(node, _num(1)) if unit == "weekday" else node
    if family == "mysql":
        if unit == "weekday":
            return _fn("WEEKDAY", x)
        if unit == "week":
            return _fn("WEEK", x, _num(3))  # mode 3: ISO weeks
        return _fn(_DUCKDB_PARTS[unit], x)
    if family == "snowflake":
        if unit == "weekday":
            return _sub(_fn("DAYOFWEEKISO", x), _num(1))
        if unit == "week":
            return _fn("WEEKISO", x)
        if unit in _CLOCK:  # HOUR() takes times and timestamps: a DATE is read as midnight
            x = _cast(x, Type.TIMESTAMPNTZ)
        return _fn(_DUCKDB_PARTS[unit], x)
    if family in ("spark", "databricks"):
        if unit == "weekday":  # DAYOFWEEK counts from Sunday = 1
            return exp.Mod(this=exp.Paren(this=_add(_fn("DAYOFWEEK", x), _num(5))),
                           expression=_num(7))
        return _fn(_DUCKDB_PARTS[unit], x)
    _checked(family, f"the {unit} of a date")
    if unit == "weekday":
        return _sub(_fn("ISODOW", x), _num(1))
    return _fn(_DUCKDB_PARTS[unit], x)


class TimePart(Portable):
    """A part of a date or timestamp as an integer: ``unit`` is one of :data:`PARTS`."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True}

    def lower(self, dialect: str) -> exp.Expr:
        return part(_unit(self, PARTS), self.this.copy(), dialect)


# -- truncation ----------------------------------------------------------------------------
def _mysql_truncate(unit: str, x: Callable[[], Tree]) -> Tree:
    """MySQL/MariaDB have no DATE_TRUNC: the day, then whole units added back."""
    def p(name: str) -> Tree:
        return part(name, x(), "mysql")

    def plus(base: Tree, amount: Tree, unit_name: str) -> Tree:
        return _add(base, exp.Interval(this=_paren(amount), unit=exp.var(unit_name)))

    day = _fn("DATE", x())
    year = _fn("MAKEDATE", p("year"), _num(1))
    node = {
        "year": lambda: year,
        "quarter": lambda: plus(year, _sub(p("quarter"), _num(1)), "QUARTER"),
        "month": lambda: plus(year, _sub(p("month"), _num(1)), "MONTH"),
        "week": lambda: exp.Sub(this=day, expression=exp.Interval(
            this=p("weekday"), unit=exp.var("DAY"))),
        "day": lambda: day,
        "hour": lambda: plus(day, p("hour"), "HOUR"),
        "minute": lambda: plus(day, _add(_mul(p("hour"), _num(60)), p("minute")), "MINUTE"),
        "second": lambda: plus(day, _add(_add(_mul(p("hour"), _num(3600)),
                                              _mul(p("minute"), _num(60))), p("second")),
                               "SECOND"),
    }[unit]()
    return _cast(node, Type.DATETIME)


class TimeTruncate(Portable):
    """The date or timestamp truncated to the start of its ``unit`` (one of
    :data:`TRUNCATE_UNITS`; weeks start on Monday). A timestamp on every engine but
    Snowflake, where a DATE stays a DATE."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True}

    def lower(self, dialect: str) -> exp.Expr:
        unit = _unit(self, TRUNCATE_UNITS)
        if dialect == "mysql":
            return _mysql_truncate(unit, self.this.copy)
        _checked(dialect, "truncate()")
        if dialect == "snowflake" and unit == "week":  # DATE_TRUNC follows WEEK_START
            day = _fn("DATE_TRUNC", _text("day"), self.this.copy())
            back = _sub(_num(1), _fn("DAYOFWEEKISO", self.this.copy()))
            return _fn("DATEADD", exp.var("DAY"), back, day)
        x = self.this.copy()
        if dialect in ("", "duckdb") and unit in _CLOCK:
            # DuckDB's DATE_TRUNC of a TIMESTAMPTZ to the hour could move forward in time: in
            # New York 01:30 EDT (the first of two) became 01:00 EST, an hour later. The
            # local clock's microseconds into the unit, taken away, keep the instant
            micros: Tree = _fn("MICROSECOND", x)  # (the seconds too, in microseconds)
            if unit == "hour":
                micros = _add(_mul(_fn("MINUTE", self.this.copy()), _num(60_000_000)), micros)
            elif unit == "second":
                micros = exp.Mod(this=micros, expression=_num(1_000_000))
            return _sub(self.this.copy(), _fn("TO_MICROSECONDS", micros))
        if dialect == "postgres":
            # DATE_TRUNC would read a DATE as a timestamp with time zone; plus an empty
            # interval a DATE is a timestamp, while a timestamptz stays one (its truncation is
            # the instant of the session's local midnight, as pandas and DuckDB: a cast to
            # TIMESTAMP would have kept the wall clock and lost the instant)
            x = exp.Add(this=_paren(x), expression=exp.Interval(this=_text("0"),
                                                                 unit=exp.var("SECOND")))
        return _fn("DATE_TRUNC", _text(unit), x)


# -- epoch ---------------------------------------------------------------------------------
class TimeEpoch(Portable):
    """Seconds since 1970-01-01 00:00:00 UTC as a double (with the fraction): a DATE or a
    timestamp without time zone is taken as UTC, a timestamp with time zone as its instant."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}

    def lower(self, dialect: str) -> exp.Expr:
        x = self.this.copy
        million = _num("1e6")
        if dialect == "postgres":
            return _cast(exp.Extract(this=exp.var("EPOCH"), expression=x()), Type.DOUBLE)
        if dialect == "mysql":  # UNIX_TIMESTAMP reads in the session's zone; this does not
            micros = _fn("TIMESTAMPDIFF", exp.var("MICROSECOND"), _text("1970-01-01 00:00:00"),
                         x())
            return exp.Div(this=micros, expression=million)
        if dialect == "snowflake":
            micros = exp.Extract(this=exp.var("EPOCH_MICROSECOND"), expression=x())
            return exp.Div(this=_cast(micros, Type.DOUBLE), expression=million)
        if dialect in ("spark", "databricks"):
            # TIMESTAMP is an instant; a DATE or TIMESTAMP_NTZ is read as UTC, whatever the
            # session's time zone (a cast to TIMESTAMP would read it in that zone)
            instant = _fn("UNIX_MICROS", _cast(x(), Type.TIMESTAMP))
            zero = _cast(_text("1970-01-01 00:00:00"), Type.TIMESTAMPNTZ)
            wall = _fn("TIMESTAMPDIFF", exp.var("MICROSECOND"), zero,
                       _cast(x(), Type.TIMESTAMPNTZ))
            is_instant = exp.EQ(this=_fn("TYPEOF", x()), expression=_text("timestamp"))
            micros = exp.Case(ifs=[exp.If(this=is_instant, true=instant)], default=wall)
            return exp.Div(this=micros, expression=million)
        _checked(dialect, "epoch()")
        return _fn("EPOCH", x())


# -- strftime ------------------------------------------------------------------------------
#: the strftime codes ``TimeFormat`` translates exactly, with what they write
STRFTIME_CODES = {
    "Y": "year, 4 digits", "y": "year, 2 digits", "m": "month 01-12", "d": "day 01-31",
    "H": "hour 00-23", "I": "hour 01-12", "p": "AM or PM", "M": "minute 00-59",
    "S": "second 00-59", "j": "day of the year 001-366", "b": "month name, abbreviated (Jan)",
    "B": "month name (January)", "a": "weekday name, abbreviated (Mon)",
    "A": "weekday name (Monday)", "%": "a literal %",
}
_NATIVE = {
    "postgres": {"Y": "YYYY", "y": "YY", "m": "MM", "d": "DD", "H": "HH24", "I": "HH12",
                 "p": "AM", "M": "MI", "S": "SS", "j": "DDD", "b": "Mon", "B": "FMMonth",
                 "a": "Dy", "A": "FMDay"},
    "mysql": {"Y": "%Y", "y": "%y", "m": "%m", "d": "%d", "H": "%H", "I": "%I", "p": "%p",
              "M": "%i", "S": "%S", "j": "%j", "b": "%b", "B": "%M", "a": "%a", "A": "%W"},
    "spark": {"Y": "yyyy", "y": "yy", "m": "MM", "d": "dd", "H": "HH", "I": "hh", "p": "a",
              "M": "mm", "S": "ss", "j": "DDD", "b": "MMM", "B": "MMMM", "a": "EEE",
              "A": "EEEE"},
}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Token = tuple[bool, str]  # (is a code, the code letter or the literal text)


def strftime_tokens(fmt: str) -> list[Token]:
    """``fmt`` split into codes and literal text; :class:`ParameterError` for a code that
    is not translated exactly on every engine (:data:`STRFTIME_CODES`).

    >>> strftime_tokens("%Y-%m %%")
    [(True, 'Y'), (False, '-'), (True, 'm'), (False, ' '), (True, '%')]
    """
    if not isinstance(fmt, str):
        raise ParameterError(f"a strftime format is text, not {type(fmt).__name__}")
    tokens: list[Token] = []
    text: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%":
            text.append(char)
            i += 1
            continue
        code = fmt[i + 1] if i + 1 < len(fmt) else ""
        if code not in STRFTIME_CODES:
            known = " ".join(f"%{c}" for c in STRFTIME_CODES)
            shown = f"%{code}" if code else "a lone % at the end"
            msg = (f"strftime code {shown} in {fmt!r} is not translated exactly for every "
                   f"engine; the codes are: {known} (write %% for a literal %)")
            raise ParameterError(msg)
        if text:
            tokens.append((False, "".join(text)))
            text = []
        tokens.append((True, code))
        i += 2
    if text:
        tokens.append((False, "".join(text)))
    return tokens


def _texts_merged(tokens: list[Token]) -> list[Token]:
    """``tokens`` with ``%%`` as literal text, adjacent texts joined."""
    out: list[Token] = []
    for is_code, value in tokens:
        if is_code and value == "%":
            is_code = False
        if not is_code and out and not out[-1][0]:
            out[-1] = (False, out[-1][1] + value)
        else:
            out.append((is_code, value))
    return out


def _native_formats(tokens: list[Token], family: str) -> list[str]:
    """The engine's own format strings for ``tokens``: several where one cannot hold two
    codes side by side (Spark reads ``MM`` then ``MMM`` as one pattern ``MMMMM``)."""
    codes = _NATIVE[family]
    formats: list[str] = []
    out: list[str] = []
    last = ""  # the pattern just written, if the last token was a code
    for is_code, value in _texts_merged(tokens):
        if not is_code:
            if family == "mysql":
                out.append(value.replace("%", "%%"))
            elif family == "postgres":  # text in double quotes, \ escapes
                out.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
            else:  # spark: every letter is a pattern; text in single quotes ('' is a quote)
                out.append("'" + value.replace("'", "''") + "'")
            last = ""
            continue
        pattern = codes[value]
        if last and family == "postgres":
            out.append('""')  # an empty text keeps DD and Dy from reading as DDD and y
        elif last and family == "spark" and last[-1] == pattern[0]:
            formats.append("".join(out))
            out = []
        out.append(pattern)
        last = pattern
    formats.append("".join(out))
    return formats


def _pad(node: Tree, width: int) -> Tree:
    return _fn("LPAD", _cast(node, Type.VARCHAR), _num(width), _text("0"))


def _names(index: Tree, names: tuple[str, ...]) -> Tree:
    """The name for ``index`` (1-based); NULL stays NULL."""
    return exp.Case(this=index, ifs=[exp.If(this=_num(i), true=_text(name))
                                     for i, name in enumerate(names, 1)])


_PIECE_PARTS = {"Y": ("year", 4), "m": ("month", 2), "d": ("day", 2), "H": ("hour", 2),
                "M": ("minute", 2), "S": ("second", 2), "j": ("day_of_year", 3)}


def _snowflake_piece(code: str, x: Callable[[], Tree]) -> Tree:
    """One strftime code as Snowflake text, from date parts: its TO_CHAR has no day of the
    year or full weekday name (and fakesnow ignores TO_CHAR's format)."""
    def p(name: str) -> Tree:
        return part(name, x(), "snowflake")

    if code in _PIECE_PARTS:
        name, width = _PIECE_PARTS[code]
        return _pad(p(name), width)
    if code == "y":
        return _pad(exp.Mod(this=p("year"), expression=_num(100)), 2)
    if code == "I":
        hour12 = exp.Mod(this=exp.Paren(this=_add(p("hour"), _num(11))), expression=_num(12))
        return _pad(_add(hour12, _num(1)), 2)
    if code == "p":  # (no ELSE: NULL stays NULL)
        return exp.Case(ifs=[
            exp.If(this=exp.LT(this=p("hour"), expression=_num(12)), true=_text("AM")),
            exp.If(this=exp.GTE(this=p("hour"), expression=_num(12)), true=_text("PM"))])
    if code == "b":
        return _fn("MONTHNAME", x())
    if code == "B":
        return _names(p("month"), _MONTHS)
    if code == "a":
        return _fn("DAYNAME", x())
    return _names(_fn("DAYOFWEEKISO", x()), _DAYS)  # "A"


def _snowflake_format(tokens: list[Token], x: Callable[[], Tree]) -> Tree:
    merged = _texts_merged(tokens) or [(False, "")]
    pieces = [_snowflake_piece(v, x) if is_code else _text(v) for is_code, v in merged]
    node = pieces[0]
    for piece in pieces[1:]:
        node = exp.DPipe(this=node, expression=piece)
    if not any(is_code for is_code, _ in merged):  # text alone: still NULL for a NULL
        return exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=x(), expression=exp.Null())),
                                    true=node)])
    return node


class TimeFormat(Portable):
    """The date or timestamp as text by a Python strftime ``format`` (the codes in
    :data:`STRFTIME_CODES`; names in English)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "format": True}

    def lower(self, dialect: str) -> exp.Expr:
        fmt = self.args["format"].name
        tokens = strftime_tokens(fmt)
        x = self.this.copy
        if dialect == "snowflake":
            return _snowflake_format(tokens, x)
        if dialect in ("postgres", "mysql", "spark", "databricks"):
            family = "spark" if dialect == "databricks" else dialect
            name = "TO_CHAR" if family == "postgres" else "DATE_FORMAT"
            calls = [_fn(name, x(), _text(f)) for f in _native_formats(tokens, family)]
            return calls[0] if len(calls) == 1 else _fn("CONCAT", *calls)
        _checked(dialect, "strftime()")
        return _fn("STRFTIME", x(), _text(fmt))


# -- differences ---------------------------------------------------------------------------
def _day_diff(start: Tree, end: Tree, family: str) -> Tree:
    """Days from ``start``'s date to ``end``'s (times of day ignored)."""
    if family == "mysql":
        return _fn("DATEDIFF", end, start)
    s, e = _cast(start, Type.DATE), _cast(end, Type.DATE)
    if family == "postgres":
        return exp.Sub(this=e, expression=s)
    if family == "snowflake":
        return _fn("DATEDIFF", exp.var("DAY"), s, e)
    if family in ("spark", "databricks"):
        return _fn("DATEDIFF", e, s)
    return _fn("DATE_DIFF", _text("day"), s, e)


class DateDiffUnits(Portable):
    """Whole ``unit`` boundaries crossed from ``this`` (the start) to ``expression`` (the
    end): the difference of the two values truncated to the unit (negative when the end is
    earlier). Weeks start on Monday; seconds ignore their fraction."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "unit": True}

    def lower(self, dialect: str) -> exp.Expr:
        unit = _unit(self, DIFF_UNITS)
        _checked(dialect, "date_diff()")
        s, e = self.this.copy, self.expression.copy

        def delta(name: str) -> Tree:
            return exp.Paren(this=_sub(part(name, e(), dialect), part(name, s(), dialect)))

        if unit == "year":
            node = delta("year")
        elif unit == "month":
            node = _add(_mul(delta("year"), _num(12)), delta("month"))
        elif unit == "week":  # Monday of e's week minus Monday of s's, in weeks
            days = _add(_day_diff(s(), e(), dialect), _sub(part("weekday", s(), dialect),
                                                           part("weekday", e(), dialect)))
            node = exp.Div(this=exp.Paren(this=days), expression=_num(7))
        else:  # days, then each smaller unit in turn: exact 64-bit integer arithmetic
            node = _day_diff(s(), e(), dialect)
            if unit != "day":  # (PostgreSQL's and Spark's day counts are 32-bit)
                node = _cast(node, Type.BIGINT)
            for name, per in (("hour", 24), ("minute", 60), ("second", 60)):
                if unit == "day":
                    break
                node = _add(_mul(node, _num(per)), delta(name))
                if name == unit:
                    break
        return _cast(node, Type.BIGINT)


# -- intervals -----------------------------------------------------------------------------
_SPANS = (("DAY", 86_400_000_000), ("HOUR", 3_600_000_000), ("MINUTE", 60_000_000),
          ("SECOND", 1_000_000), ("MICROSECOND", 1))


def interval(span: dt.timedelta) -> exp.Interval:
    """A ``timedelta`` as an ``INTERVAL`` in the largest unit that holds it exactly (one unit:
    every engine reads that the same way).

    >>> interval(dt.timedelta(days=1, hours=2)).sql("postgres")
    "INTERVAL '26 HOUR'"
    >>> interval(dt.timedelta(seconds=-1.5)).sql("mysql")
    "INTERVAL '-1500000' MICROSECOND"
    """
    nanos: Any = getattr(span, "nanoseconds", 0)
    if nanos:
        raise ParameterError(f"{span!r} has nanoseconds; SQL intervals here count microseconds")
    micros = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
    unit, size = next((u, n) for u, n in _SPANS if micros % n == 0)
    kind = _Days if unit == "DAY" else exp.Interval
    return kind(this=_text(str(micros // size)), unit=exp.var(unit))


class _Days(exp.Interval):
    """An interval of whole days, written in hours on DuckDB and PostgreSQL: there a day
    added to a timestamp with time zone is a calendar day in the session's zone (23 or 25
    hours across a DST change), where a ``timedelta`` day is 24 hours. (On a DATE or a
    timestamp without time zone the two are the same, and of the same type.)"""

    def lower(self, dialect: str) -> exp.Expr:
        days = int(self.this.name)
        if dialect in ("", "duckdb", "postgres"):
            return exp.Interval(this=_text(str(days * 24)), unit=exp.var("HOUR"))
        return exp.Interval(this=self.this.copy(), unit=self.args["unit"].copy())


_register(_Days)
