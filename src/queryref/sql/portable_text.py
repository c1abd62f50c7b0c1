"""Text functions whose spelling differs per engine (``Expr.str``): :class:`Portable` nodes.

Each class is one node in the tree, lowered to the engine's own functions when SQL is
written. What they settle, so that every engine returns what Python's ``str`` methods return:

- *exact* comparison: MariaDB compares with the column's collation, which ignores case (and
  trailing spaces in ``=``), so its lowerings compare as ``utf8mb4_bin`` or as bytes;
- literal patterns stay literal: positions (``STRPOS``/``LOCATE``), never ``LIKE``;
- ``strip`` removes a *set* of characters (Python's whitespace by default), not a string;
- a regular expression's replacement is written Python's way (``\\1``) and respelt per
  engine (Spark's ``$1``);
- a split gives a list, or an :class:`~queryref.errors.UnsupportedError` where the engine has
  none (MariaDB);
- dates and times are read with strftime codes, translated per engine
  (:func:`check_time_format` lists them).

>>> from sqlglot import exp
>>> node = Position(this=exp.column("s"), substr=exp.Literal.string("ab"))
>>> node.sql("duckdb"), node.sql("spark")
("STRPOS(s, 'ab')", "LOCATE('ab', s)")
>>> node.sql("mysql").startswith("LOCATE(CAST('ab' AS CHAR CHARACTER SET utf8mb4) COLLATE")
True
"""

from __future__ import annotations

import importlib
import re
import warnings
from typing import ClassVar

from sqlglot import exp

from queryref.errors import ParameterError, UnsupportedError
from queryref.sql.portable import Portable

__all__ = [
    "WHITESPACE", "Affix", "ParseTime", "Position", "RegexpContains", "RegexpReplaceAll", "Split",
    "Strip", "check_time_format", "replacement_parts", "time_format",
]

#: what Python's ``str.strip()`` removes (``str.isspace``): ASCII and Unicode spaces
WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def _text(node: exp.Expr) -> str | None:
    """The text of a string literal, else None."""
    return node.name if isinstance(node, exp.Literal) and node.is_string else None


def _utf8_bin(node: exp.Expr) -> exp.Expr:
    """MySQL/MariaDB: ``node`` as utf8mb4 compared code point by code point (case and accents
    count; the column's ``_ci`` collation would ignore them)."""
    charset = exp.DataType(this=exp.DataType.Type.CHARACTER_SET, kind=exp.Var(this="utf8mb4"))
    return exp.Collate(this=exp.Cast(this=node, to=charset), expression=exp.Var(this="utf8mb4_bin"))


def _bytes(node: exp.Expr) -> exp.Expr:
    """MySQL/MariaDB: ``node`` as its UTF-8 bytes (compared without padding or case rules)."""
    charset = exp.DataType(this=exp.DataType.Type.CHARACTER_SET, kind=exp.Var(this="utf8mb4"))
    return exp.cast(exp.Cast(this=node, to=charset), exp.DataType.Type.BINARY)


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


class Position(Portable):
    """The 1-based position of ``substr``'s first occurrence in ``this`` (0 when absent),
    compared exactly: case and accents count; an empty ``substr`` is found at 1."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "substr": True}

    def lower(self, dialect: str) -> exp.Expr:
        this, substr = self.this.copy(), self.args["substr"].copy()
        if dialect == "mysql":
            this, substr = _utf8_bin(this), _utf8_bin(substr)
        return exp.StrPosition(this=this, substr=substr)


class Affix(Portable):
    """``this`` starts with (or, with ``suffix``, ends with) ``expression``, compared exactly."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "suffix": False}

    def lower(self, dialect: str) -> exp.Expr:
        this, affix = self.this.copy(), self.expression.copy()
        suffix = bool(self.args.get("suffix"))
        text = _text(affix)
        if dialect == "mysql":  # bytes: no case rules, no PAD SPACE; UTF-8 affixes are affixes
            n: exp.Expr = (exp.Literal.number(len(text.encode())) if text is not None
                           else exp.Length(this=_bytes(affix.copy())))
            part = exp.Right if suffix else exp.Left
            return exp.EQ(this=part(this=_bytes(this), expression=n), expression=_bytes(affix))
        if dialect == "postgres" and suffix:  # PostgreSQL has STARTS_WITH but no ENDS_WITH
            n = (exp.Literal.number(len(text)) if text is not None
                 else exp.Length(this=affix.copy()))
            return exp.EQ(this=exp.Right(this=this, expression=n), expression=affix)
        return (exp.EndsWith if suffix else exp.StartsWith)(this=this, expression=affix)


def _prefixed(flags: str, pattern: exp.Expr) -> exp.Expr:
    """``pattern`` with inline regex flags in front."""
    text = _text(pattern)
    if text is not None:
        return exp.Literal.string(flags + text)
    return exp.Concat(expressions=[exp.Literal.string(flags), pattern])


def _java_lines(pattern: exp.Expr) -> str:
    """Java's UNIX_LINES flag (``d``) where ``pattern`` may need it: only ``\n`` ends a line for
    ``.``, ``^`` and ``$``, as in Python (Java's ``.`` would not match ``\r``, ``\x85``,
    ``\u2028``; its ``$`` would match before them). The flag changes nothing else."""
    text = _text(pattern)
    return "d" if text is None or any(c in text for c in ".^$") else ""


#: Java: no position between the two halves (UTF-16) of an emoji or other astral character
_JAVA_WHOLE_CHARS = "(?![\\x{DC00}-\\x{DFFF}])"
_re_parser = importlib.import_module("re._parser")  # the parser of Python's re (typed Any)


_ESCAPE = re.compile(r"\\(.)", re.S)


def _end_of_text(pattern: exp.Expr, dialect: str) -> exp.Expr:
    """``pattern`` with Python's ``\\Z`` (the very end) as ``\\z`` where ``\\Z`` would also
    match before a final line break (MariaDB's PCRE2, Java)."""
    text = _text(pattern)
    if text is None or dialect not in ("mysql", "spark", "databricks") or "\\Z" not in text:
        return pattern
    return exp.Literal.string(_ESCAPE.sub(
        lambda m: "\\z" if m.group(1) == "Z" else m.group(0), text))


def _width(pattern: str) -> tuple[int, int] | None:
    """The fewest and most characters a match of ``pattern`` spans, as Python's ``re`` reads
    it; None when Python cannot read it (an engine's own syntax)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo, hi = _re_parser.parse(pattern).getwidth()
    except (re.error, RecursionError, OverflowError):
        return None
    return int(lo), int(hi)


class RegexpContains(Portable):
    """``this`` has a match of the regular expression ``expression`` (unanchored search, as
    Python's ``re.search``); ``ignore_case`` folds case by Unicode rules where the engine can."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "ignore_case": False}

    def lower(self, dialect: str) -> exp.Expr:
        this, pattern = self.this.copy(), _end_of_text(self.expression.copy(), dialect)
        icase = bool(self.args.get("ignore_case"))
        zero = exp.Literal.number(0)
        if dialect == "duckdb":
            args = [this, pattern, *([exp.Literal.string("i")] if icase else [])]
            return _call("REGEXP_MATCHES", *args)
        if dialect == "mysql":  # the column's _ci collation would make every match ignore case
            found = _call("REGEXP_INSTR", this, _prefixed("(?i)" if icase else "(?-i)", pattern))
            return exp.GT(this=found, expression=zero)
        if dialect == "snowflake":  # REGEXP_LIKE matches the whole string; INSTR searches
            if _text(pattern) == "":  # '' is found in all text (fakesnow: in none); so is ^
                pattern = exp.Literal.string("^")
            one = exp.Literal.number(1)
            args = [this, pattern, *([one, one, zero, exp.Literal.string("i")] if icase else [])]
            return exp.GT(this=_call("REGEXP_INSTR", *args), expression=zero)
        if dialect in ("spark", "databricks"):  # Java: (?u) folds case beyond ASCII
            flags = ("iu" if icase else "") + _java_lines(pattern)
            return exp.RegexpLike(this=this, expression=_prefixed(f"(?{flags})", pattern)
                                  if flags else pattern)
        return (exp.RegexpILike if icase else exp.RegexpLike)(this=this, expression=pattern)


_TEMPLATE = re.compile(r"\\(?:g<(\w+)>|(\d+)|(.))", re.S)


def replacement_parts(template: str) -> list[str | int]:
    """A replacement written as for Python's ``re.sub`` as parts: text, and group numbers
    (``\\1`` .. ``\\9``, ``\\g<1>``); ``\\\\`` is a backslash.

    >>> replacement_parts(r"<\\1-\\g<2>> \\\\ $")
    ['<', 1, '-', 2, '> \\\\ $']
    """
    parts: list[str | int] = []
    text, at = "", 0
    for m in _TEMPLATE.finditer(template):
        text += template[at:m.start()]
        at = m.end()
        named, number, char = m.groups()
        if char is not None:
            if char != "\\":
                msg = (f"replacement {template!r}: only \\1 .. \\9, \\g<1> .. \\g<9> and \\\\ "
                       f"are understood after a backslash, not \\{char}; write the character "
                       "itself")
                raise ParameterError(msg)
            text += "\\"
            continue
        group = named if named is not None else number
        if not group.isdigit() or not 1 <= int(group) <= 9:
            msg = (f"replacement {template!r}: groups are referred to by number, 1 to 9 "
                   f"(\\1 or \\g<1>), not {m.group(0)!r}")
            raise ParameterError(msg)
        if text:
            parts.append(text)
            text = ""
        parts.append(int(group))
    text += template[at:]
    if text:
        parts.append(text)
    return parts


def _replacement(parts: list[str | int], dialect: str) -> str:
    out = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"${part}" if dialect in ("spark", "databricks") else f"\\{part}")
        elif dialect in ("spark", "databricks"):  # Java: \ escapes; $ groups; a digit after
            out.append(re.sub(r"([\\$0-9])", r"\\\1", part))  # a group would extend it
        else:
            out.append(part.replace("\\", "\\\\"))
    return "".join(out)


class RegexpReplaceAll(Portable):
    """Every match of ``expression`` in ``this`` replaced by ``replacement``, a string literal
    written as for Python's ``re.sub`` (see :func:`replacement_parts`)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "replacement": True}

    def lower(self, dialect: str) -> exp.Expr:
        this, pattern = self.this.copy(), _end_of_text(self.expression.copy(), dialect)
        template = _text(self.args["replacement"])
        if template is None:
            raise ParameterError("a regex replacement must be a string literal")
        with_ = exp.Literal.string(_replacement(replacement_parts(template), dialect))
        text, python_text = _text(pattern), _text(self.expression)  # (\Z respelt as \z)
        width = None if python_text is None else _width(python_text)
        _check_empty_matches(python_text, width, dialect)
        if dialect in ("duckdb", "postgres"):  # these replace the first match without 'g'
            return _call("REGEXP_REPLACE", this, pattern, with_, exp.Literal.string("g"))
        if dialect == "mysql":
            return _call("REGEXP_REPLACE", this, _prefixed("(?-i)", pattern), with_)
        if dialect in ("spark", "databricks"):
            lines = _java_lines(pattern)
            flags = f"(?{lines})" if lines else ""
            if text is not None and (width is None or width[0] == 0):
                # Java steps one UTF-16 unit past an empty match: it would match again
                # between an emoji's halves and cut it in two ('?')
                pattern = exp.Literal.string(f"{flags}{_JAVA_WHOLE_CHARS}(?:{text})")
            elif flags:
                pattern = _prefixed(flags, pattern)
        return _call("REGEXP_REPLACE", this, pattern, with_)


def _check_empty_matches(pattern: str | None, width: tuple[int, int] | None,
                         dialect: str) -> None:
    """Refuse a replacement whose empty matches the engine places differently from Python's
    ``re.sub`` (which replaces every empty match, also one right after another match)."""
    if pattern is None or width is None or width[0] > 0:
        return
    if dialect == "mysql":
        msg = (f"regex {pattern!r} can match empty text, and MariaDB's REGEXP_REPLACE "
               "replaces no empty match (Python's re.sub replaces each): use a pattern that "
               "matches at least one character (x+ rather than x*; for ^ or $, concat_str)")
        raise UnsupportedError(msg)
    if dialect in ("duckdb", "snowflake") and width[1] > 0:
        engine = "DuckDB" if dialect == "duckdb" else "Snowflake"
        msg = (f"regex {pattern!r} can match both empty and non-empty text, and {engine}'s "
               "REGEXP_REPLACE skips an empty match right after another match (Python's "
               "re.sub replaces it: 'x*' on 'xy' gives '--y-'): use a pattern that matches "
               "at least one character (x+ rather than x*)")
        raise UnsupportedError(msg)


def _char_class(chars: str) -> str:
    return "[" + re.sub(r"([\\\]\[^-])", r"\\\1", chars) + "]"


class Strip(Portable):
    """``this`` without the characters of ``chars`` (a string literal: a set of characters, as
    Python's ``str.strip(chars)``) at its ``side``: ``"both"``, ``"leading"``, ``"trailing"``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "chars": True, "side": False}

    def lower(self, dialect: str) -> exp.Expr:
        this, chars = self.this.copy(), self.args["chars"].copy()
        if _text(chars) == "":  # str.strip(""): nothing to remove (MariaDB's [] is no class)
            return this
        side = self.args.get("side") or "both"
        if dialect == "mysql":  # TRIM(... FROM x) removes a string, not a set: a regex does
            text = _text(chars)
            if text is None:
                raise UnsupportedError("MariaDB/MySQL strip a literal set of characters only")
            cls = _char_class(text)
            ends = {"leading": [f"^{cls}+"], "trailing": [f"{cls}+\\z"],
                    "both": [f"^{cls}+", f"{cls}+\\z"]}[side]
            pattern = exp.Literal.string("(?-i)" + "|".join(ends))
            return _call("REGEXP_REPLACE", this, pattern, exp.Literal.string(""))
        if dialect == "snowflake":
            # Snowflake reads TRIM's argument as text anyway; fakesnow drops the characters
            # argument of a TRIM whose operand is not such a cast
            this = exp.cast(this, exp.DataType.Type.VARCHAR)
        position = {"leading": "LEADING", "trailing": "TRAILING"}.get(side)
        return exp.Trim(this=this, expression=chars, position=position)


class Split(Portable):
    """``this`` split at every ``sep`` (a non-empty literal text) into a list, as Python's
    ``str.split(sep)``: ``''`` gives ``['']``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True}

    def lower(self, dialect: str) -> exp.Expr:
        this, sep = self.this.copy(), self.expression.copy()
        if dialect == "mysql":
            msg = ("MariaDB/MySQL have no list type, so .str.split() cannot be computed there: "
                   "take the parts you need with .str.find() and .str.slice(), or split after "
                   "fetching (to_pandas()[...].str.split())")
            raise UnsupportedError(msg)
        if dialect == "duckdb":
            return _call("STR_SPLIT", this, sep)
        if dialect == "postgres":  # STRING_TO_ARRAY('', sep) is an empty array
            empty = exp.EQ(this=this.copy(), expression=exp.Literal.string(""))
            return exp.Case(ifs=[exp.If(this=empty, true=exp.Array(
                expressions=[exp.Literal.string("")]))],
                default=_call("STRING_TO_ARRAY", this, sep))
        if dialect in ("spark", "databricks"):  # Spark splits at a regex: escape the separator
            text = _text(sep)
            if text is None:
                raise UnsupportedError("Spark splits at a literal separator only")
            escaped = re.sub(r"([^\w\s])", r"\\\1", text)
            return _call("SPLIT", this, exp.Literal.string(escaped), exp.Literal.number(-1))
        return exp.Split(this=this, expression=sep)


# -- dates and times from text ----------------------------------------------------------
#: strftime code -> its spelling per engine ("" = the engine cannot read it)
_CODES: dict[str, dict[str, str]] = {
    #      duckdb  postgres  mysql  snowflake  spark
    "Y": dict(duckdb="%Y", postgres="YYYY", mysql="%Y", snowflake="YYYY", spark="yyyy"),
    "m": dict(duckdb="%m", postgres="MM", mysql="%m", snowflake="MM", spark="MM"),
    "d": dict(duckdb="%d", postgres="DD", mysql="%d", snowflake="DD", spark="dd"),
    "H": dict(duckdb="%H", postgres="HH24", mysql="%H", snowflake="HH24", spark="HH"),
    "I": dict(duckdb="%I", postgres="HH12", mysql="%h", snowflake="HH12", spark="hh"),
    "p": dict(duckdb="%p", postgres="AM", mysql="%p", snowflake="AM", spark="a"),
    "M": dict(duckdb="%M", postgres="MI", mysql="%i", snowflake="MI", spark="mm"),
    "S": dict(duckdb="%S", postgres="SS", mysql="%s", snowflake="SS", spark="ss"),
    "f": dict(duckdb="%f", postgres="US", mysql="%f", snowflake="FF6", spark="SSSSSS"),
    "y": dict(duckdb="%y", postgres="YY", mysql="%y", snowflake="YY", spark=""),
    "b": dict(duckdb="%b", postgres="Mon", mysql="%b", snowflake="MON", spark="MMM"),
    "B": dict(duckdb="%B", postgres="Month", mysql="%M", snowflake="MMMM", spark="MMMM"),
    "j": dict(duckdb="%j", postgres="DDD", mysql="%j", snowflake="", spark="DDD"),
}
_WHY_NOT = {
    ("y", "spark"): "Spark reads two-digit years as 2000-2099 (Python: 1969-2068)",
    ("j", "snowflake"): "Snowflake's formats have no day of the year",
}
_FORMAT_PART = re.compile(r"%(.)|([^%]+)", re.S)


def check_time_format(fmt: str) -> list[tuple[str, str]]:
    """``fmt`` (strftime codes) as parts: ``("code", letter)`` and ``("text", literal)``.

    Codes: ``%Y %m %d %H %I %p %M %S %f %y %b %B %j`` and ``%%``; numbers as the codes write
    them (zero-padded), month names in English.

    >>> check_time_format("%d/%m/%Y")
    [('code', 'd'), ('text', '/'), ('code', 'm'), ('text', '/'), ('code', 'Y')]
    """
    if not isinstance(fmt, str) or not fmt:
        raise ParameterError(f"a date/time format is strftime text such as '%Y-%m-%d', not {fmt!r}")
    parts: list[tuple[str, str]] = []
    at = 0
    for m in _FORMAT_PART.finditer(fmt):
        if m.start() != at:
            break
        at = m.end()
        code, text = m.groups()
        if code is None or code == "%":
            text = text if code is None else "%"
            if parts and parts[-1][0] == "text":
                text = parts.pop()[1] + text
            parts.append(("text", text))
        elif code in _CODES:
            parts.append(("code", code))
        else:
            known = " ".join(f"%{c}" for c in _CODES)
            msg = (f"format {fmt!r}: %{code} is not one of the codes read on every engine "
                   f"({known}, %%)")
            raise ParameterError(msg)
    if at != len(fmt):
        raise ParameterError(f"format {fmt!r} ends in a lone '%': write %% for a percent sign")
    return parts


def _quote_text(text: str, dialect: str) -> str:
    if dialect in ("duckdb", "mysql", ""):
        return text.replace("%", "%%")
    if dialect in ("spark", "databricks"):  # letters and symbols are pattern letters
        return "'" + text.replace("'", "''") + "'"
    # PostgreSQL and Snowflake: letters may be template patterns; double quotes make text
    if not re.search(r"[A-Za-z\"\\]", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def time_format(fmt: str, dialect: str) -> str:
    """``fmt`` (strftime codes) spelt for ``dialect``'s own date functions.

    >>> time_format("%Y-%m-%dT%H:%M", "postgres"), time_format("%d.%m.%Y", "spark")
    ('YYYY-MM-DD"T"HH24:MI', "dd'.'MM'.'yyyy")
    """
    family = dialect if dialect in ("duckdb", "postgres", "mysql", "snowflake") else (
        "spark" if dialect in ("spark", "databricks") else "duckdb")
    out = []
    for kind, value in check_time_format(fmt):
        if kind == "text":
            out.append(_quote_text(value, dialect or "duckdb"))
            continue
        spelt = _CODES[value][family]
        if not spelt:
            msg = (f"format {fmt!r}: %{value} cannot be read on {family}: "
                   f"{_WHY_NOT[(value, family)]}; change the text first (e.g. .str.slice and "
                   "concat_str) or use another code")
            raise UnsupportedError(msg)
        out.append(spelt)
    return "".join(out)


#: MariaDB: a character no date text ends with (U+001F, the unit separator)
_END = "\x1f"


class ParseTime(Portable):
    """Text read as a date (``to="date"``) or a timestamp without time zone (``"datetime"``)
    with a strftime ``format`` (a string literal), as Python's ``datetime.strptime``. Text
    that does not match is an error on most engines, NULL on MariaDB."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "format": True, "to": False}

    def lower(self, dialect: str) -> exp.Expr:
        fmt = _text(self.args["format"])
        if fmt is None:
            raise ParameterError("a date/time format must be a string literal")
        date = self.args.get("to") == "date"
        parsed = self._parse(fmt, date, dialect)
        two_digit_year = ("code", "y") in check_time_format(fmt)
        if two_digit_year and dialect in ("postgres", "mysql", "snowflake"):
            # these read '69' as 2069; Python's %y as 1969 (00-68 are 20xx on all)
            older: exp.Expr = exp.DateAdd(this=parsed.copy(), expression=exp.Literal.number(-100),
                                unit=exp.Var(this="YEAR"))
            if date and dialect == "postgres":  # date + interval is a timestamp there
                older = exp.cast(older, exp.DataType.Type.DATE)
            in_2069 = exp.EQ(this=exp.Year(this=parsed.copy()), expression=exp.Literal.number(2069))
            return exp.Case(ifs=[exp.If(this=in_2069, true=older)], default=parsed)
        return parsed

    def _parse(self, fmt: str, date: bool, dialect: str) -> exp.Expr:
        this = self.this.copy()
        spelt = exp.Literal.string(time_format(fmt, dialect))
        if dialect == "postgres":
            if date:
                return _call("TO_DATE", this, spelt)
            # TO_TIMESTAMP reads local time in the session's zone (a DST gap would move it):
            # read the text as UTC and take UTC's wall time back, whatever the session's zone.
            # The zone goes first: after the text, TZH would read the hour of text longer than
            # the format ('2024-02-29 13:04' as %Y-%m-%d gave 2024-02-28 11:00)
            utc_text = exp.DPipe(this=exp.Literal.string("+00 "), expression=this, safe=True)
            utc_fmt = exp.Literal.string("TZH " + spelt.name)
            return exp.AtTimeZone(this=_call("TO_TIMESTAMP", utc_text, utc_fmt),
                                  zone=exp.Literal.string("UTC"))
        if dialect == "mysql":
            if any(kind == "text" and "%" in text for kind, text in check_time_format(fmt)):
                msg = (f"format {fmt!r}: MariaDB's STR_TO_DATE cannot read a literal %: remove "
                       "it from the text first (.str.replace('%', '')) and from the format")
                raise UnsupportedError(msg)
            kind = "DATE" if date else "DATETIME(6)"
            # STR_TO_DATE ignores text after the format ('2024-02-29x' is a date): a mark after
            # both makes such text a mismatch, which is NULL
            ended = exp.Concat(expressions=[this, exp.Literal.string(_END)], safe=False,
                               coalesce=False)
            return exp.cast(_call("STR_TO_DATE", ended, exp.Literal.string(spelt.name + _END)),
                            exp.DataType.build(kind, dialect="mysql"))
        if dialect == "snowflake":
            return _call("TO_DATE" if date else "TO_TIMESTAMP_NTZ", this, spelt)
        if dialect in ("spark", "databricks"):
            return _call("TO_DATE" if date else "TO_TIMESTAMP_NTZ", this, spelt)
        parsed = _call("STRPTIME", this, spelt) if dialect == "duckdb" else exp.StrToTime(
            this=this, format=exp.Literal.string(fmt))
        return exp.cast(parsed, exp.DataType.Type.DATE) if date else parsed
