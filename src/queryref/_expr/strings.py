"""``Expr.str``: text functions, spelled for each engine by sqlglot or ``sql.portable_text``.

Every function follows Python's ``str`` method of the same name (which pandas' ``.str``
applies per value): positions count characters from 0, slices take negative indices,
``strip`` removes Python's whitespace, literal patterns are literal (``%``, ``_``, quotes and
regex metacharacters match themselves), comparisons are exact (case and accents count, also
on MariaDB's case-insensitive collations). NULL in gives NULL out. What each engine cannot do
is an :class:`~queryref.errors.UnsupportedError` that says what to do instead; the table and
the engine notes are in ``docs/expressions-strings.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

from queryref._expr import core as _core  # (core imports this module: use it at call time)
from queryref._expr.base import ExprBase, _into_node
from queryref.errors import ParameterError
from queryref.sql import portable_text as pt
from queryref.sql.text import literal

if TYPE_CHECKING:
    from queryref._expr.core import Expr

__all__ = ["StringMethods", "concat_str"]


def _text(value: Any, what: str) -> exp.Literal:
    if not isinstance(value, str):
        raise ParameterError(f"{what} must be text (a Python str), not {value!r}")
    return exp.Literal.string(value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{what} must be an int, not {value!r}")
    return value


#: no engine holds text this long: slice bounds beyond it mean the same as it, and keep to the
#: INT the engines' SUBSTRING/RIGHT take (2**40 would be an overflow or a missing function)
_LONGEST = 2**31 - 2


def _clip(index: int) -> int:
    return max(-_LONGEST, min(_LONGEST, index))


class StringMethods:
    """Text functions of an expression: ``qr.col("name").str.upper()``."""

    __slots__ = ("_expr",)

    def __init__(self, expr: ExprBase) -> None:
        self._expr = expr

    def __repr__(self) -> str:
        return f"<StringMethods of {self._expr!r}>"

    def _new(self, node: object) -> Expr:
        return self._expr._new(node)  # type: ignore[arg-type]

    def _x(self) -> exp.Expr:
        return self._expr._copy()

    # -- case and length ----------------------------------------------------------------
    def upper(self) -> Expr:
        """Upper case, by the engine's Unicode case mapping (``æ`` -> ``Æ`` everywhere; ``ß``
        -> ``SS`` only where the engine maps one letter to two, see the docs).

        >>> import queryref as qr
        >>> qr.col("name").str.upper().sql()
        'UPPER(name)'
        """
        return self._new(exp.Upper(this=self._x()))

    def lower(self) -> Expr:
        """Lower case, by the engine's Unicode case mapping (``Æ`` -> ``æ`` everywhere).

        >>> import queryref as qr
        >>> qr.connect().sql("SELECT 'ÆRØ' AS s").select(t=qr.col("s").str.lower()).to_pandas()
             t
        0  ærø
        """
        return self._new(exp.Lower(this=self._x()))

    def len(self) -> Expr:
        """The number of characters (Unicode code points, as Python's ``len``; not bytes:
        MariaDB's ``LENGTH`` counts bytes, so this is ``CHAR_LENGTH`` there).

        >>> import queryref as qr
        >>> qr.col("s").str.len().sql("mysql")
        'CHAR_LENGTH(s)'
        """
        return self._new(exp.Length(this=self._x()))

    # -- whitespace -------------------------------------------------------------------------
    def _strip(self, chars: str | None, side: str) -> Expr:
        text = pt.WHITESPACE if chars is None else chars
        return self._new(pt.Strip(this=self._x(), chars=_text(text, "chars"), side=side))

    def strip(self, chars: str | None = None) -> Expr:
        """Remove leading and trailing characters: Python's whitespace (spaces, tabs, line
        breaks, Unicode spaces such as U+00A0 and U+3000), or the characters of ``chars`` (a
        set, as ``str.strip(chars)``).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT '  a b\\t' AS s")
        >>> s = qr.col("s").str
        >>> q.select(t=s.strip(), u=s.strip(" a")).to_pandas().iloc[0].tolist()
        ['a b', 'b\\t']
        """
        return self._strip(chars, "both")

    def lstrip(self, chars: str | None = None) -> Expr:
        """Remove leading characters (whitespace, or those of ``chars``), as ``str.lstrip``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT '  a ' AS s")
        >>> q.select(t=qr.col("s").str.lstrip()).to_pandas()["t"].tolist()
        ['a ']
        """
        return self._strip(chars, "leading")

    def rstrip(self, chars: str | None = None) -> Expr:
        """Remove trailing characters (whitespace, or those of ``chars``), as ``str.rstrip``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT '  a ' AS s")
        >>> q.select(t=qr.col("s").str.rstrip()).to_pandas()["t"].tolist()
        ['  a']
        """
        return self._strip(chars, "trailing")

    # -- searching ------------------------------------------------------------------------
    def contains(self, pat: str, regex: bool = False, case: bool = True) -> Expr:
        """Whether the text contains ``pat``: literal text (``%``, ``_``, ``.`` match
        themselves) unless ``regex``, then a regular expression searched anywhere (the
        engine's regex flavour: keep to the common subset). ``case=False`` ignores case by
        Unicode rules (literal: ``LOWER`` on both sides; regex: the engine's flag).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT '50% off' AS s")
        >>> s = qr.col("s").str
        >>> q.select(a=s.contains("0%"), b=s.contains("OFF", case=False),
        ...          c=s.contains(r"^\\d+%", regex=True)).to_pandas().iloc[0].tolist()
        [True, True, True]
        """
        pattern = _text(pat, "pat")
        if regex:
            node = pt.RegexpContains(this=self._x(), expression=pattern, ignore_case=not case)
            return self._new(node)
        this: exp.Expr = self._x()
        sub: exp.Expr = pattern
        if not case:
            this, sub = exp.Lower(this=this), exp.Lower(this=sub)
        found = pt.Position(this=this, substr=sub)
        return self._new(exp.GT(this=found, expression=exp.Literal.number(0)))

    def startswith(self, prefix: str) -> Expr:
        """Whether the text starts with ``prefix`` (literal, exact).

        >>> import queryref as qr
        >>> qr.col("s").str.startswith("a_").sql("postgres")
        "STARTS_WITH(s, 'a_')"
        """
        return self._new(pt.Affix(this=self._x(), expression=_text(prefix, "prefix")))

    def endswith(self, suffix: str) -> Expr:
        """Whether the text ends with ``suffix`` (literal, exact).

        >>> import queryref as qr
        >>> qr.col("s").str.endswith("%").sql("postgres")
        "RIGHT(s, 1) = '%'"
        """
        node = pt.Affix(this=self._x(), expression=_text(suffix, "suffix"), suffix=True)
        return self._new(node)

    def find(self, sub: str) -> Expr:
        """The 0-based position of the first ``sub`` (literal, exact), -1 when absent, as
        ``str.find``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 'Tōkyō-to' AS s")
        >>> q.select(a=qr.col("s").str.find("-"), b=qr.col("s").str.find("x")).to_pandas()
           a  b
        0  5 -1
        """
        found = pt.Position(this=self._x(), substr=_text(sub, "sub"))
        return self._new(exp.Sub(this=found, expression=exp.Literal.number(1)))

    # -- rewriting ------------------------------------------------------------------------
    def replace(self, old: str, new: str, regex: bool = False) -> Expr:
        """Every occurrence of ``old`` replaced by ``new``: literal text, or with ``regex`` a
        regular expression whose replacement may name groups as Python's ``re.sub`` does
        (``\\1`` .. ``\\9``, ``\\g<1>``; ``\\\\`` for a backslash). A pattern that can match
        empty text (``x*``) is an :class:`~queryref.errors.UnsupportedError` where the engine
        replaces empty matches otherwise than ``re.sub`` (MariaDB; DuckDB and Snowflake when
        it can also match longer text): see the docs.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 'a.b.c' AS s")
        >>> q.select(a=qr.col("s").str.replace(".", "_"),
        ...          b=qr.col("s").str.replace(r"(\\w)\\.", r"\\1:", regex=True)).to_pandas()
               a      b
        0  a_b_c  a:b:c
        """
        pattern, replacement = _text(old, "old"), _text(new, "new")
        if regex:
            pt.replacement_parts(new)  # refuse a replacement no engine reads before SQL runs
            node: exp.Expr = pt.RegexpReplaceAll(this=self._x(), expression=pattern,
                                                 replacement=replacement)
            return self._new(node)
        if not old:
            msg = ("replace() needs a non-empty old text (inserting between characters is not "
                   "portable)")
            raise ParameterError(msg)
        return self._new(exp.Replace(this=self._x(), expression=pattern,
                                     replacement=replacement))

    def slice(self, start: int | None = None, stop: int | None = None) -> Expr:
        """Characters ``start`` to ``stop`` (0-based, ``stop`` excluded, negative counting
        from the end), as the Python slice ``s[start:stop]``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 'straße' AS s")
        >>> q.select(a=qr.col("s").str.slice(1, 3), b=qr.col("s").str.slice(-2),
        ...          c=qr.col("s").str.slice(0, -4)).to_pandas()
            a   b   c
        0  tr  ße  st
        """
        first = 0 if start is None else _clip(_int(start, "start"))
        end = None if stop is None else _clip(_int(stop, "stop"))
        x = self._x()

        def num(n: int) -> exp.Expr:
            return exp.Literal.number(n)

        def at_least_0(node: exp.Expr) -> exp.Expr:
            return exp.Greatest(this=node, expressions=[num(0)])

        def from_end(n: int) -> exp.Expr:  # len + n, n < 0
            return exp.Add(this=exp.Length(this=x.copy()), expression=num(n))

        if first >= 0:
            begin: exp.Expr = num(first + 1)
            if end is None:
                return self._new(exp.Substring(this=x, start=begin))
            if end >= 0:
                size = num(max(end - first, 0))
                return self._new(exp.Substring(this=x, start=begin, length=size))
            size = at_least_0(exp.Sub(this=from_end(end), expression=num(first)))
            return self._new(exp.Substring(this=x, start=begin, length=size))
        if end is None:
            return self._new(exp.Right(this=x, expression=num(-first)))
        zero_based = at_least_0(from_end(first))  # where the slice begins, 0-based
        begin = exp.Add(this=zero_based, expression=num(1))
        stop_at = num(end) if end >= 0 else from_end(end)
        size = at_least_0(exp.Sub(this=stop_at, expression=zero_based.copy()))
        return self._new(exp.Substring(this=x, start=begin, length=size))

    def split(self, sep: str) -> Expr:
        """The text split at every ``sep`` (literal, non-empty) into a list, as
        ``str.split(sep)`` (``''`` gives ``['']``). On Snowflake the list is an ARRAY, which
        arrives as JSON text; MariaDB has no lists (an
        :class:`~queryref.errors.UnsupportedError` when the SQL is written).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 'a,b,' AS s")
        >>> q.select(p=qr.col("s").str.split(",")).to_pandas()["p"][0].tolist()
        ['a', 'b', '']
        """
        if not isinstance(sep, str) or not sep:
            raise ParameterError(f"split() needs a non-empty separator text, not {sep!r}")
        return self._new(pt.Split(this=self._x(), expression=exp.Literal.string(sep)))

    def pad(self, width: int, side: Literal["left", "right", "both"] = "left",
            fillchar: str = " ") -> Expr:
        """Pad to ``width`` characters with ``fillchar`` on the ``side`` given, as pandas'
        ``str.pad``: longer text is kept whole (never cut); ``"both"`` centres as
        ``str.center`` does.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 'ab' AS s UNION ALL SELECT 'abcdef'")
        >>> q.select(p=qr.col("s").str.pad(4, fillchar="*"),
        ...          c=qr.col("s").str.pad(5, "both", "-")).to_pandas().to_dict("list")
        {'p': ['**ab', 'abcdef'], 'c': ['--ab-', 'abcdef']}
        """
        w = _int(width, "width")
        if side not in ("left", "right", "both"):
            raise ParameterError(f"side is 'left', 'right' or 'both', not {side!r}")
        if not isinstance(fillchar, str) or len(fillchar) != 1:
            raise ParameterError(f"fillchar must be one character, not {fillchar!r}")
        x, fill, num = self._x(), exp.Literal.string(fillchar), exp.Literal.number
        size = exp.Length(this=x.copy())
        if side != "both":
            padded: exp.Expr = exp.Pad(this=x.copy(), expression=num(w), fill_pattern=fill,
                                       is_left=side == "left")
        else:  # str.center: the odd character goes left when the width is odd
            margin = exp.Sub(this=num(w + w % 2), expression=size.copy())
            # as INT: PostgreSQL's DIV gives a numeric, which REPEAT does not take
            left = exp.cast(exp.IntDiv(this=exp.Paren(this=margin), expression=num(2)),
                            exp.DataType.Type.INT)
            right = exp.Sub(this=exp.Sub(this=num(w), expression=size.copy()),
                            expression=left.copy())
            padded = exp.Concat(expressions=[exp.Repeat(this=fill, times=left), x.copy(),
                                             exp.Repeat(this=fill.copy(), times=right)],
                                safe=False, coalesce=False)
        # LPAD/RPAD cut longer text to the width: longer text is kept as it is
        longer = exp.GTE(this=size, expression=num(w))
        return self._new(exp.Case(ifs=[exp.If(this=longer, true=x)], default=padded))

    # -- dates from text ------------------------------------------------------------------
    def to_date(self, fmt: str) -> Expr:
        """Read the text as a date with strftime codes (``"%d/%m/%Y"``), translated per
        engine: ``%Y %m %d %H %I %p %M %S %f %y %b %B %j %%``. Text that does not match is an
        error on most engines (NULL on MariaDB).

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT '29/02/2024' AS s")
        >>> q.select(d=qr.col("s").str.to_date("%d/%m/%Y")).to_pandas()["d"][0]
        Timestamp('2024-02-29 00:00:00')
        """
        pt.check_time_format(fmt)
        return self._new(pt.ParseTime(this=self._x(), format=exp.Literal.string(fmt), to="date"))

    def to_datetime(self, fmt: str) -> Expr:
        """Read the text as a timestamp (no time zone) with strftime codes
        (``"%Y-%m-%d %H:%M:%S"``); the codes are those of :meth:`to_date`.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT '2024-02-29 13:04:05' AS s")
        >>> q.select(t=qr.col("s").str.to_datetime("%Y-%m-%d %H:%M:%S")).to_pandas()["t"][0]
        Timestamp('2024-02-29 13:04:05')
        """
        pt.check_time_format(fmt)
        node = pt.ParseTime(this=self._x(), format=exp.Literal.string(fmt), to="datetime")
        return self._new(node)


def concat_str(*exprs: Any, sep: str = "") -> Expr:
    """The texts of ``exprs`` joined with ``sep``; a text argument is a column name (use
    ``qr.lit`` for fixed text). NULL when any part is NULL, as pandas' ``str.cat`` without
    ``na_rep`` (fill first with ``fill_null`` to keep the other parts). Parts that are not
    text are cast to the engine's text (its own number and date formats).

    >>> import queryref as qr
    >>> q = qr.connect().sql("SELECT 'a' AS x, 1 AS y, 'z' AS z UNION ALL SELECT 'b', 2, NULL")
    >>> out = q.select(s=qr.concat_str("x", "y", qr.lit("!"), sep="-"),
    ...                n=qr.concat_str("x", "z")).order_by("s").to_pandas()
    >>> out["s"].tolist(), out["n"].isna().tolist()
    (['a-1-!', 'b-2-!'], [False, True])
    """
    if not exprs:
        raise ParameterError("concat_str() needs at least one expression")
    if not isinstance(sep, str):
        raise ParameterError(f"sep must be text, not {sep!r}")
    parts: list[exp.Expr] = []
    for i, value in enumerate(exprs):
        node = _into_node(value)
        if not (isinstance(node, exp.Literal) and node.is_string):
            node = exp.cast(node, exp.DataType.Type.VARCHAR)
        if i and sep:
            parts.append(literal(sep))
        parts.append(node)
    return _core.Expr(exp.Concat(expressions=parts, safe=False, coalesce=False))
