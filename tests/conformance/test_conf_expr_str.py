"""``Expr.str`` and ``qr.concat_str`` on every engine, against pandas' ``.str`` (object dtype:
Python's ``str`` methods per value) on the same rows.

The rows hold NULLs, empty strings, non-ASCII text (Danish, German, Japanese, emoji with
modifiers and joiners), leading and trailing whitespace of several kinds, and the characters
that break naive SQL: ``%``, ``_``, quotes, backslashes and regex metacharacters; the patterns
hold them too. Each test computes many functions in one query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import UnsupportedError

from .qr_conformance import Engine, gap

col = qr.col
S = col("s")

VALUES = [
    "Ærø", "ærø ÆRØ", "straße", "STRASSE", "東京タワー", "👍🏽 ok 👨‍👩‍👧", "", None,
    "  padded  ", "\ttab\n", "\u3000ideo\u00a0", "50% off", "a_b_c", "it's \"quoted\"",
    "a.b*c+d?", "(x)[y]{z}|^$\\", "Hello World", "hello world", "café", "CAFÉ", "a,b,,c",
    ",lead,trail,", "x", "Tōkyō-to", "%_%",
]
FRAME = pd.DataFrame({
    "id": np.arange(len(VALUES), dtype="int64"),
    "s": pd.Series(VALUES, dtype=object),
    "t": pd.Series([None if i % 7 == 3 else f"t{i}-ø" for i in range(len(VALUES))], dtype=object),
    "n": np.arange(len(VALUES), dtype="int64") - 5,
})
REF = FRAME.s.str  # pandas' .str on object dtype: Python's str methods, NaN for NULL

_TABLES: dict[str, qr.QueryRef] = {}


def table(engine: Engine) -> qr.QueryRef:
    """The test rows on ``engine`` (uploaded once per engine)."""
    if engine.name not in _TABLES:
        _TABLES[engine.name] = engine.con.create_table("conf_str_values", FRAME)
    return _TABLES[engine.name]


def fetch(q: qr.QueryRef, **exprs: qr.Expr) -> pd.DataFrame:
    """``exprs`` computed in one query, rows in ``id`` order, lower-case column names."""
    got = q.select("id", **exprs).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    return got.sort_values("id").reset_index(drop=True)


def _value(v: Any, kind: str) -> Any:
    if v is None or (np.ndim(v) == 0 and pd.isna(v)):
        return None
    if kind == "bool":
        return bool(v)
    if kind == "int":
        return int(v)
    if kind == "list":
        if isinstance(v, str):  # Snowflake's ARRAY arrives as JSON text
            v = json.loads(v)
        return [str(x) for x in v]
    if kind == "date":
        return pd.Timestamp(v).date()
    if kind == "datetime":
        return pd.Timestamp(v).to_pydatetime()
    return v


def check(got: pd.DataFrame, want: dict[str, pd.Series], kinds: dict[str, str] | None = None,
          rows: pd.Series | None = None) -> None:
    """Each column of ``got`` equals pandas' answer, value by value (``rows``: a mask)."""
    kinds = kinds or {}
    bad = {}
    for name, ref in want.items():
        kind = kinds.get(name, "text")
        for i in range(len(ref)):
            if rows is not None and not rows.iloc[i]:
                continue
            g, w = _value(got[name].iloc[i], kind), _value(ref.iloc[i], kind)
            if g != w:
                bad.setdefault(name, []).append((VALUES[i] if len(ref) == len(VALUES) else i,
                                                 w, g))
    assert not bad, bad


# -- case and length ----------------------------------------------------------------------
#: Unicode special casings (one letter to two, as ß -> SS) are the engine's: these engines map
#: letter by letter (DuckDB, and fakesnow over it, upper-cases ß to ẞ)
def _letterwise(fn: Callable[[str], str], sharp_s: str = "ß") -> Callable[[str], str]:
    def apply(s: str) -> str:
        out = []
        for c in s:
            mapped = fn(c)
            out.append(mapped if len(mapped) == 1 else (sharp_s if c == "ß" else c))
        return "".join(out)
    return apply


CASE_MAPPING = {
    "spark": (str.upper, str.lower),  # Java: full case mapping, as Python
    "duckdb": (_letterwise(str.upper, "ẞ"), str.lower),
    "snowflake": (_letterwise(str.upper, "ẞ"), str.lower),  # fakesnow: DuckDB underneath
    "postgres": (_letterwise(str.upper), str.lower),
    "mariadb": (_letterwise(str.upper), str.lower),
}


def test_case_and_length(engine: Engine):
    got = fetch(table(engine), up=S.str.upper(), low=S.str.lower(), n=S.str.len(),
                nt=col("t").str.len())
    check(got, {"n": REF.len(), "nt": FRAME.t.str.len()}, {"n": "int", "nt": "int"})
    upper, lower = CASE_MAPPING[engine.name]
    check(got, {"up": FRAME.s.map(upper, na_action="ignore"),
                "low": FRAME.s.map(lower, na_action="ignore")})
    # letters with a one-to-one mapping (æ/Æ, é/É, ō) agree with pandas on every engine
    simple = FRAME.s.map(lambda v: v is None or "ß" not in v)
    check(got, {"up": REF.upper(), "low": REF.lower()}, rows=simple)


# -- whitespace ---------------------------------------------------------------------------
def test_strip(engine: Engine):
    got = fetch(table(engine), a=S.str.strip(), b=S.str.lstrip(), c=S.str.rstrip(),
                d=S.str.strip(" .,"), e=S.str.lstrip("]^-\\(x[%_"), f=S.str.rstrip("\\$^|}"),
                g=S.str.strip("aæÆ"))
    check(got, {"a": REF.strip(), "b": REF.lstrip(), "c": REF.rstrip(), "d": REF.strip(" .,"),
                "e": REF.lstrip("]^-\\(x[%_"), "f": REF.rstrip("\\$^|}"),
                "g": REF.strip("aæÆ")})


# -- literal search -----------------------------------------------------------------------
LITERALS = ["%", "_", "'", '"', ".", "a.b", "\\", "(x)", "ø", "ÆR", "ss", "", " ", "%_%",
            "é", "👨‍👩‍👧"]


def test_contains_literal(engine: Engine):
    exprs = {f"c{i}": S.str.contains(p) for i, p in enumerate(LITERALS)}
    exprs |= {f"i{i}": S.str.contains(p, case=False) for i, p in enumerate(LITERALS)}
    got = fetch(table(engine), **exprs)
    want = {f"c{i}": REF.contains(p, regex=False) for i, p in enumerate(LITERALS)}
    # case=False: lower case on both sides (pandas upper-cases; they differ only on ß)
    want |= {f"i{i}": FRAME.s.map(lambda v, p=p: p.lower() in v.lower(), na_action="ignore")
             for i, p in enumerate(LITERALS)}
    check(got, want, dict.fromkeys(want, "bool"))


def test_startswith_endswith_find(engine: Engine):
    exprs: dict[str, qr.Expr] = {}
    want: dict[str, pd.Series] = {}
    kinds: dict[str, str] = {}
    for i, p in enumerate([*LITERALS, "Ær", "a_", "  ", "hello", "👍🏽", "\t", "\n"]):
        exprs |= {f"s{i}": S.str.startswith(p), f"e{i}": S.str.endswith(p),
                  f"f{i}": S.str.find(p)}
        want |= {f"s{i}": REF.startswith(p), f"e{i}": REF.endswith(p), f"f{i}": REF.find(p)}
        kinds |= {f"s{i}": "bool", f"e{i}": "bool", f"f{i}": "int"}
    check(fetch(table(engine), **exprs), want, kinds)


# -- regular expressions (the subset every engine's flavour reads alike) -----------------
REGEXES = [r"^\d+%", r"[Ææ]r", r"l+o", r"^(hello|Hello) ", r"\.", r"o{2}|f$", r"\\",
           r"^$", r"[%_]", r"[ \t]", "ø+", r"\(x\)"]


@pytest.mark.filterwarnings("ignore:This pattern is interpreted as a regular expression")
def test_contains_regex(engine: Engine):
    exprs = {f"r{i}": S.str.contains(p, regex=True) for i, p in enumerate(REGEXES)}
    exprs |= {f"i{i}": S.str.contains(p, regex=True, case=False) for i, p in enumerate(REGEXES)}
    got = fetch(table(engine), **exprs)
    want = {f"r{i}": REF.contains(p, regex=True) for i, p in enumerate(REGEXES)}
    want |= {f"i{i}": REF.contains(p, regex=True, case=False) for i, p in enumerate(REGEXES)}
    check(got, want, dict.fromkeys(want, "bool"))


# -- replace ------------------------------------------------------------------------------
LITERAL_REPLACEMENTS = [("%", "pct"), ("_", "'"), (".", ""), ("ø", "oe"), ("a", "\\1$&"),
                        (" ", ""), ("'", "''"), ("ss", "ß"), ("👍🏽", "+1")]
REGEX_REPLACEMENTS = [(r"(\d+)%", r"\1 pct"), (r"[aeiou]", ""), (r"([a-z])\.([a-z])", r"\2.\1"),
                      (r"[ \t]+", " "), (r"(l+)", r"<\g<1>>"), ("o", r"$0\\"), (r"([%_])", r"\1\1"),
                      (r"(a)(b)?", r"[\1\2]0")]


def test_replace(engine: Engine):
    exprs = {f"l{i}": S.str.replace(a, b) for i, (a, b) in enumerate(LITERAL_REPLACEMENTS)}
    exprs |= {f"r{i}": S.str.replace(a, b, regex=True)
              for i, (a, b) in enumerate(REGEX_REPLACEMENTS)}
    got = fetch(table(engine), **exprs)
    want = {f"l{i}": REF.replace(a, b, regex=False)
            for i, (a, b) in enumerate(LITERAL_REPLACEMENTS)}
    want |= {f"r{i}": REF.replace(a, b, regex=True)
             for i, (a, b) in enumerate(REGEX_REPLACEMENTS)}
    check(got, want)


# -- slices and padding -------------------------------------------------------------------
SLICES = [(0, None), (1, None), (-2, None), (0, 3), (2, 5), (3, 1), (-3, -1), (1, -1),
          (-100, 2), (5, 100), (-1, None), (None, 2), (-4, 4), (2, -100), (-2, -3), (0, 0)]
PADS = [(0, "left", " "), (6, "left", "*"), (6, "right", "0"), (7, "both", "ø"),
        (8, "both", "-"), (3, "right", " "), (11, "both", "%")]


def test_slice_and_pad(engine: Engine):
    exprs = {f"s{i}": S.str.slice(a, b) for i, (a, b) in enumerate(SLICES)}
    exprs |= {f"p{i}": S.str.pad(w, side, c) for i, (w, side, c) in enumerate(PADS)}  # type: ignore[arg-type]
    got = fetch(table(engine), **exprs)
    want = {f"s{i}": REF.slice(a, b) for i, (a, b) in enumerate(SLICES)}
    want |= {f"p{i}": REF.pad(w, side, c) for i, (w, side, c) in enumerate(PADS)}
    check(got, want)


# -- split --------------------------------------------------------------------------------
@gap("mariadb", raises=UnsupportedError, reason="MariaDB has no list type")
def test_split(engine: Engine):
    seps = [",", ".", ", ", "%", "|", "\\", "ø", "o"]
    got = fetch(table(engine), **{f"p{i}": S.str.split(p) for i, p in enumerate(seps)})
    want = {f"p{i}": FRAME.s.map(lambda v, p=p: v.split(p), na_action="ignore")
            for i, p in enumerate(seps)}
    check(got, want, dict.fromkeys(want, "list"))


# -- concat_str ---------------------------------------------------------------------------
def test_concat_str(engine: Engine):
    got = fetch(table(engine), a=qr.concat_str("s", "t"), b=qr.concat_str("s", "t", sep=", "),
                c=qr.concat_str(S, qr.lit("%_'"), col("n"), sep="|"),
                d=qr.concat_str(S.str.upper(), sep="-"), e=qr.concat_str("t", "t", "s", sep=""))
    n = FRAME.n.astype(str)
    check(got, {"a": FRAME.s.str.cat(FRAME.t), "b": FRAME.s.str.cat(FRAME.t, sep=", "),
                "c": FRAME.s.str.cat([pd.Series(["%_'"] * len(FRAME)), n], sep="|"),
                "e": FRAME.t.str.cat([FRAME.t, FRAME.s])})
    assert got.d.isna().tolist() == FRAME.s.isna().tolist()


# -- dates and times from text ------------------------------------------------------------
DAYS = [dt.datetime(2024, 2, 29, 13, 4, 5, 123456), dt.datetime(2023, 12, 31, 23, 59, 59),
        dt.datetime(1999, 1, 1, 0, 0, 0, 1), dt.datetime(2024, 1, 31, 12, 30, 0, 500000),
        dt.datetime(2000, 2, 29, 1, 2, 3), dt.datetime(1970, 6, 30, 11, 59, 0)]
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d.%m.%Y %H:%M", "%b %d %Y", "%B %d, %Y"]
TIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%d %b %Y %I:%M %p",
                "%Y%m%d%H%M%S", "%m/%d/%Y %I%p", "%H:%M %d-%b-%Y"]


def _texts(formats: list[str]) -> pd.DataFrame:
    cols = {f"f{i}": [None, *(d.strftime(f) for d in DAYS)] for i, f in enumerate(formats)}
    return pd.DataFrame({"id": np.arange(len(DAYS) + 1, dtype="int64"), **cols})


def _parsed(texts: pd.DataFrame, formats: list[str], date: bool) -> dict[str, pd.Series]:
    def parse(v: str | None, f: str) -> Any:
        if v is None:
            return None
        got = pd.to_datetime(v, format=f).to_pydatetime()
        return got.date() if date else got
    return {f"f{i}": texts[f"f{i}"].map(lambda v, f=f: parse(v, f)) for i, f in enumerate(formats)}


def parsed(engine: Engine, q: qr.QueryRef, exprs: dict[str, qr.Expr],
           want: dict[str, pd.Series], kind: str) -> None:
    """``exprs`` equal ``want``; NULLs are checked in the engine (``IS NULL``): fakesnow's
    server sends a NULL TIMESTAMP_NTZ as 1970-01-01 (its Arrow struct has no null mask)."""
    nulls = {f"{name}_null": e.is_null() for name, e in exprs.items()}
    got = fetch(q, **exprs, **nulls)
    for name, ref in want.items():
        assert got[f"{name}_null"].astype(bool).tolist() == ref.isna().tolist(), name
    check(got, want, dict.fromkeys(want, kind), rows=~pd.concat(want, axis=1).isna().any(axis=1))


def test_to_date_and_to_datetime(engine: Engine):
    dates, times = _texts(DATE_FORMATS), _texts(TIME_FORMATS)
    qd = engine.con.create_table("conf_str_dates", dates)
    qt = engine.con.create_table("conf_str_times", times)
    parsed(engine, qd, {f"f{i}": col(f"f{i}").str.to_date(f) for i, f in enumerate(DATE_FORMATS)},
           _parsed(dates, DATE_FORMATS, True), "date")
    exprs = {f"f{i}": col(f"f{i}").str.to_datetime(f) for i, f in enumerate(TIME_FORMATS)}
    want = _parsed(times, TIME_FORMATS, False)
    # a time format read as a date keeps the day
    exprs["d"] = col("f1").str.to_date(TIME_FORMATS[1])
    want["d"] = want["f1"].map(lambda v: v.date(), na_action="ignore")
    parsed(engine, qt, exprs, want, "datetime")


@gap("snowflake", raises=qr.errors.BackendError,
     reason="fakesnow keeps the double quotes of literal text in a format as text to match "
            "(Snowflake reads \"Day \" as the text Day)")
def test_format_with_words(engine: Engine):
    formats = ["Day %d of %B %Y, %H:%M", "%Y-%m-%d (at) %Hh%M"]
    texts = _texts(formats)
    exprs = {f"f{i}": col(f"f{i}").str.to_datetime(f) for i, f in enumerate(formats)}
    parsed(engine, engine.con.create_table("conf_str_words", texts), exprs,
           _parsed(texts, formats, False), "datetime")


@gap("mariadb", raises=UnsupportedError, reason="STR_TO_DATE does not read a literal %")
@gap("snowflake", raises=qr.errors.BackendError,
     reason="fakesnow passes a % of a Snowflake format to DuckDB's strptime unescaped")
def test_format_with_percent_sign(engine: Engine):
    formats = ["%Y-%m-%d %H%% %M", "%%%d/%m/%Y"]
    texts = _texts(formats)
    exprs = {f"f{i}": col(f"f{i}").str.to_datetime(f) for i, f in enumerate(formats)}
    parsed(engine, engine.con.create_table("conf_str_pct", texts), exprs,
           _parsed(texts, formats, False), "datetime")


TAILS = [("%Y-%m-%d", "2024-02-29 13:04", dt.datetime(2024, 2, 29)),
         ("%Y-%m-%d %H:%M", "2024-02-29 13:04:05", dt.datetime(2024, 2, 29, 13, 4)),
         ("%Y-%m-%d", "2024-02-29x", dt.datetime(2024, 2, 29))]


@pytest.mark.parametrize("i", range(len(TAILS)))
def test_text_after_the_format(engine: Engine, i: int):
    """Text longer than its format does not match (Python: ValueError): an error, NULL on
    MariaDB (whose STR_TO_DATE read '2024-02-29x' as 2024-02-29); PostgreSQL ignores the rest,
    as its TO_DATE does (its timestamps read the rest's hour as their time zone: 2024-02-28
    11:00 for '2024-02-29 13:04')."""
    fmt, text, prefix = TAILS[i]
    q = engine.con.create_table(f"conf_str_tail{i}", pd.DataFrame({"id": [0], "v": [text]}))
    t, d = col("v").str.to_datetime(fmt), col("v").str.to_date(fmt)
    if engine.name == "postgres":
        got = fetch(q, t=t, d=d)
        assert (_value(got.t[0], "datetime"), _value(got.d[0], "date")) == (prefix,
                                                                          prefix.date())
    elif engine.name == "mariadb":
        assert fetch(q, t=t.is_null(), d=d.is_null()).iloc[0, 1:].astype(bool).tolist() == [
            True, True]
    else:
        for e in (t, d):
            if engine.name == "snowflake" and e is d and fmt == "%Y-%m-%d":
                # fakesnow writes TO_DATE(v, 'YYYY-MM-DD') as CAST(v AS DATE), which DuckDB
                # reads leniently (Snowflake itself does not): an error or the prefix's date
                with contextlib.suppress(qr.errors.BackendError):
                    assert _value(fetch(q, x=e).x[0], "date") == prefix.date()
                continue
            with pytest.raises(qr.errors.BackendError):
                fetch(q, x=e)


@gap("spark", raises=UnsupportedError, reason="Spark reads two-digit years as 2000-2099")
def test_two_digit_year(engine: Engine):
    texts = pd.DataFrame({"id": [0, 1, 2, 3, 4, 5],
                          "v": ["01/02/68", "01/02/69", "31/12/70", None, "29/02/00", "28/02/99"]})
    want = texts.v.map(lambda v: dt.datetime.strptime(v, "%d/%m/%y").date(), na_action="ignore")
    parsed(engine, engine.con.create_table("conf_str_yy", texts),
           {"d": col("v").str.to_date("%d/%m/%y")}, {"d": want}, "date")


@gap("snowflake", raises=UnsupportedError, reason="Snowflake's formats have no day of the year")
def test_day_of_year(engine: Engine):
    texts = pd.DataFrame({"id": [0, 1, 2, 3], "v": ["2024-060", "2023-365", None, "2024-366"]})
    want = texts.v.map(lambda v: dt.datetime.strptime(v, "%Y-%j").date(), na_action="ignore")
    parsed(engine, engine.con.create_table("conf_str_doy", texts),
           {"d": col("v").str.to_date("%Y-%j")}, {"d": want}, "date")


# -- inputs from outside the rows above: Python's answer per value --------------------------
#: combining accents (é as e + U+0301), letters beyond the BMP (two UTF-16 units in Java),
#: line breaks other than \n (which Java's regex counts as line ends, Python's does not),
#: separators Python's strip removes (\x1c-\x1f, \x85, U+2028), a zero-width space (it does
#: not), and regex/LIKE metacharacters as whole values
EDGE = ["e\u0301cole", "École", "ÉCOLE", "\u00a0x\u00a0", "a\nb\n", "\x0b\x0c\x1cz\x1f\x85",
        "\u2028x\u2029", "\u200bzw\u200b", "𝔘𝔫𝔦😀", "😀abc😀", "\\", "^$", "[a]", "*.*", "a%b_c",
        " ", "\t", "", None, "a**b**c", "a$b$", "x\\y\\z", "a||b", "a\rb", "\r\n", "ab", "xxy"]
EDGE_FRAME = pd.DataFrame({"id": np.arange(len(EDGE), dtype="int64"),
                           "s": pd.Series(EDGE, dtype=object)})
_EDGE_TABLES: dict[str, qr.QueryRef] = {}

Case = tuple[qr.Expr, Callable[[str], Any], str]


def edge_check(engine: Engine, cases: dict[str, Case],
               skip: Callable[[str, str], bool] = lambda name, v: False) -> None:
    """Each case's expression on the :data:`EDGE` rows equals its Python function per value
    (NULL for NULL); ``skip(name, value)`` leaves out a documented engine difference."""
    if engine.name not in _EDGE_TABLES:
        _EDGE_TABLES[engine.name] = engine.con.create_table("conf_str_edge", EDGE_FRAME)
    got = fetch(_EDGE_TABLES[engine.name], **{name: e for name, (e, _, _) in cases.items()})
    bad = []
    for name, (_, fn, kind) in cases.items():
        for i, v in enumerate(EDGE):
            if v is not None and skip(name, v):
                continue
            want = None if v is None else _value(fn(v), kind)
            if _value(got[name].iloc[i], kind) != want:
                bad.append((name, v, want, got[name].iloc[i]))
    assert not bad, bad


EDGE_PATTERNS = ["é", "É", "e\u0301", "\u0301", "😀", "𝔫", "%", "_", ".", "*", "\\", "[", "^",
                 "$", "", "\t", "\n", "\u00a0", "a%", "b_c", "\\y", "ÉC", "**", "||"]


def test_edge_search(engine: Engine):
    cases: dict[str, Case] = {}
    for i, p in enumerate(EDGE_PATTERNS):
        cases |= {f"c{i}": (S.str.contains(p), lambda v, p=p: p in v, "bool"),
                  f"i{i}": (S.str.contains(p, case=False),
                            lambda v, p=p: p.lower() in v.lower(), "bool"),
                  f"s{i}": (S.str.startswith(p), lambda v, p=p: v.startswith(p), "bool"),
                  f"e{i}": (S.str.endswith(p), lambda v, p=p: v.endswith(p), "bool"),
                  f"f{i}": (S.str.find(p), lambda v, p=p: v.find(p), "int")}
    edge_check(engine, cases)


def test_edge_rewrite(engine: Engine):
    cases: dict[str, Case] = {"len": (S.str.len(), len, "int")}
    replacements = [("%", "x"), ("_", "%"), (".", "\\"), ("*", "$1"), ("\\", "/"), ("^", ""),
                    ("$", "\\1"), ("e\u0301", "é"), ("😀", ""), ("a", "😀"), ("\n", " "),
                    ("**", "+"), ("x", "xx")]
    for i, (a, b) in enumerate(replacements):
        cases[f"r{i}"] = (S.str.replace(a, b), lambda v, a=a, b=b: v.replace(a, b), "text")
    slices = [(None, -1), (-1, -2), (100, None), (-100, None), (-100, -50), (0, -100), (-1, 0),
              (-1, 100), (2, 1), (3, -3), (50, -1), (-1, -1),
              # beyond the engines' INT (overflow errors, or no SUBSTRING(text, bigint))
              (0, 2**40), (2**31, None), (-2**63, None), (-2**40, -1), (1, 2**63 - 1)]
    for i, (a, b) in enumerate(slices):
        cases[f"sl{i}"] = (S.str.slice(a, b), lambda v, a=a, b=b: v[a:b], "text")
    pads = [(5, "left", "😀"), (5, "both", "😀"), (4, "both", " "), (1, "left", "x"),
            (-3, "right", "x"), (8, "right", "\t"), (6, "both", "'"), (10, "left", "\\")]
    for i, (w, side, c) in enumerate(pads):
        cases[f"p{i}"] = (S.str.pad(w, side, c),  # type: ignore[arg-type]
                          lambda v, w=w, side=side, c=c: pd.Series([v]).str.pad(w, side, c)[0],
                          "text")
    strips = [None, "😀", "\u0301", "\\$^", "x\u00a0", "[]", "-a", "a-c", "\n", ""]
    for i, chars in enumerate(strips):
        cases |= {f"st{i}": (S.str.strip(chars), lambda v, c=chars: v.strip(c), "text"),
                  f"ls{i}": (S.str.lstrip(chars), lambda v, c=chars: v.lstrip(c), "text"),
                  f"rs{i}": (S.str.rstrip(chars), lambda v, c=chars: v.rstrip(c), "text")}
    cases |= {"k0": (qr.concat_str(S, S, sep="%_\\'"), lambda v: v + "%_\\'" + v, "text"),
              "k1": (qr.concat_str(qr.lit("\\"), S, qr.lit("é😀"), sep="$"),
                     lambda v: "\\$" + v + "$é😀", "text")}
    edge_check(engine, cases)


@gap("mariadb", raises=UnsupportedError, reason="MariaDB has no list type")
def test_edge_split(engine: Engine):
    seps = ["**", ".", "$", "\\", "|", "||", "😀", "\t", "\n", "^", "[", " ", "e\u0301", "b$",
            "\\y", "x"]
    edge_check(engine, {f"p{i}": (S.str.split(p), lambda v, p=p: v.split(p), "list")
                        for i, p in enumerate(seps)})


def test_regex_line_breaks(engine: Engine):
    """Only \\n ends a line for ``.``, ``^`` and ``$`` (Spark: Java's regex also took \\r,
    \\x85, U+2028 and U+2029 as line ends, so ``.`` missed them and ``$`` matched before
    them); ``$`` before a final \\n (Python matches there, RE2 and PostgreSQL do not) and
    ``.`` on \\n (PostgreSQL matches) are the documented differences, left out."""
    patterns = {"dot": "a.b", "any": ".", "empty": "^$", "end": "x$", "ends": "[\x85\u2029]$",
                "nothing": ""}  # found in every text (fakesnow's REGEXP_INSTR: in none)
    cases: dict[str, Case] = {}
    for name, p in patterns.items():
        cases |= {name: (S.str.contains(p, regex=True),
                         lambda v, p=p: re.search(p, v) is not None, "bool"),
                  f"i_{name}": (S.str.contains(p, regex=True, case=False),
                                lambda v, p=p: re.search(p, v, re.I) is not None, "bool")}
    cases |= {"r_dot": (S.str.replace(".", "-", regex=True),
                        lambda v: re.sub(".", "-", v), "text"),
              "r_end": (S.str.replace("[\x85\u2029]$", "<", regex=True),
                        lambda v: re.sub("[\x85\u2029]$", "<", v), "text")}

    def documented(name: str, v: str) -> bool:
        return v.endswith("\n") or (engine.name == "postgres" and "\n" in v and "dot" in name)
    edge_check(engine, cases, documented)


@gap("duckdb", "snowflake", raises=qr.errors.BackendError,
     reason="RE2 has no \\Z (its \\z is Python's \\Z)")
def test_regex_end_of_text(engine: Engine):
    """Python's ``\\Z`` is the very end, not before a final line break (as MariaDB's and
    Java's ``\\Z`` are: queryref writes their ``\\z``); ``\\\\Z`` stays a backslash and Z."""
    patterns = ["b\\Z", "\\n\\Z", "[a-z]\\Z", "\\\\Z|\\\\\\Z"]
    cases: dict[str, Case] = {}
    for i, p in enumerate(patterns):
        cases |= {f"c{i}": (S.str.contains(p, regex=True),
                            lambda v, p=p: re.search(p, v) is not None, "bool"),
                  f"r{i}": (S.str.replace(p, "<", regex=True),
                            lambda v, p=p: re.sub(p, "<", v), "text")}
    edge_check(engine, cases)


@gap("mariadb", raises=UnsupportedError,
     reason="MariaDB's REGEXP_REPLACE replaces no empty match")
def test_replace_zero_width(engine: Engine):
    """A pattern that only matches empty text inserts the replacement there, as re.sub."""
    edge_check(engine, {"a": (S.str.replace("^", ">", regex=True),
                              lambda v: re.sub("^", ">", v), "text"),
                        "b": (S.str.replace("^(x)", "[\\1]", regex=True),
                              lambda v: re.sub("^(x)", "[\\1]", v), "text")})


@gap("mariadb", "duckdb", "snowflake", raises=UnsupportedError,
     reason="their REGEXP_REPLACE skips empty matches (MariaDB: all; RE2: one right after a "
            "match)")
def test_replace_empty_or_longer(engine: Engine):
    """``x*``: every empty match is replaced as well, also right after a match and next to an
    emoji (Spark cut emoji in two at such matches: its regex steps by UTF-16 unit)."""
    edge_check(engine, {f"r{i}": (S.str.replace(p, r, regex=True),
                                  lambda v, p=p, r=r: re.sub(p, r, v), "text")
                        for i, (p, r) in enumerate([("x*", "-"), ("a?", "<>"),
                                                    ("(b|)", "[\\1]")])})


@gap("snowflake", raises=qr.errors.BackendError,
     reason="fakesnow unescapes a REGEXP_REPLACE pattern's backslashes a second time "
            "(Snowflake reads '\\\\\\\\' as the regex \\\\, a backslash)")
def test_replace_backslash_pattern(engine: Engine):
    edge_check(engine, {"a": (S.str.replace("\\\\", "/", regex=True),
                              lambda v: re.sub("\\\\", "/", v), "text"),
                        "b": (S.str.replace("x\\\\(.)", "<\\1>", regex=True),
                              lambda v: re.sub("x\\\\(.)", "<\\1>", v), "text")})


# -- bad arguments fail before any SQL runs -------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: S.str.contains(1),  # type: ignore[arg-type]
    lambda: S.str.pad(5, fillchar="ab"),
    lambda: S.str.pad(5, side="middle"),  # type: ignore[arg-type]
    lambda: S.str.split(""),
    lambda: S.str.replace("", "x"),
    lambda: S.str.replace("a", r"\10", regex=True),
    lambda: S.str.replace("a", r"\n", regex=True),
    lambda: S.str.slice(1.5),  # type: ignore[arg-type]
    lambda: S.str.to_date("%Y-%q"),
    lambda: S.str.to_date("%Y-%"),
    lambda: qr.concat_str(),
])
def test_bad_arguments(call: Callable[[], Any]):
    with pytest.raises(qr.errors.ParameterError):
        call()
