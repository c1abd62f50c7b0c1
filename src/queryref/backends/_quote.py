"""Names and values as SQL, through sqlglot: the quoting every layer above shares.

:func:`ident` and :func:`literal` live here, below the SQL layer, so a backend that builds its
own statements (Snowflake's ``create_table``) quotes exactly as the rewrites do
(:mod:`queryref.sql.text` takes them from here).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
from typing import Any

from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokens import Tokenizer, TokenType

from queryref.errors import ParameterError

_SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\Z")  # \Z: "$" would let "x\n" through

# Reserved words of the SQL standard and the engines we target (Postgres, DuckDB, Snowflake).
_RESERVED = frozenset("""
ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BETWEEN BINARY BOTH BY CASE
CAST CHECK COLLATE COLUMN CONCURRENTLY CONNECT CONSTRAINT CREATE CROSS CURRENT CURRENT_CATALOG
CURRENT_DATE CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEFAULT
DEFERRABLE DELETE DESC DISTINCT DO DROP ELSE END EXCEPT EXISTS FALSE FETCH FILTER FOR FOREIGN
FREEZE FROM FULL GRANT GROUP HAVING ILIKE IN INCREMENT INITIALLY INNER INSERT INTERSECT
INTERVAL INTO IS ISNULL JOIN LATERAL LEADING LEFT LIKE LIMIT LOCALTIME LOCALTIMESTAMP MINUS
NATURAL NOT NOTNULL NULL OFFSET ON ONLY OR ORDER OUTER OVER OVERLAPS PARTITION PIVOT PLACING
PRIMARY QUALIFY RANGE REFERENCES REGEXP RETURNING RIGHT RLIKE ROW ROWS SAMPLE SELECT
SESSION_USER SIMILAR SOME START SYMMETRIC TABLE TABLESAMPLE THEN TO TRAILING TRIGGER TRUE
TRY_CAST UNION UNIQUE UNPIVOT UPDATE USER USING VALUES VARIADIC VERBOSE WHEN WHENEVER WHERE
WINDOW WITH
""".split()) | frozenset(
    # DuckDB's words that sqlglot's tokenizer reads as names but DuckDB's parser refuses as a
    # bare column name (``SELECT DISTINCT at FROM t`` is a syntax error): found by trying every
    # word of ``duckdb_keywords()`` in a select list, WHERE, GROUP BY and ORDER BY
    "AT COLLATION LAMBDA PIVOT_LONGER PIVOT_WIDER POSITIONAL SUMMARIZE UNPACK".split())


@functools.lru_cache(maxsize=4096)
def _is_keyword(name: str) -> bool:
    """Whether ``name`` reads as a keyword (``order``, ``select`` ...) rather than a name."""
    if name.upper() in _RESERVED:
        return True
    try:
        tokens = Tokenizer().tokenize(name)
    except TokenError:
        return True
    return len(tokens) != 1 or tokens[0].token_type != TokenType.VAR


def ident(name: str) -> exp.Identifier:
    """An identifier, quoted unless it is a plain lower-case name that is no keyword.

    Lower-case plain names stay unquoted so every engine's case rule resolves them as
    written (Snowflake's upper-casing included); anything else is quoted to mean exactly it.

    >>> ident("amount").sql(), ident("Amount").sql(), ident("order").sql()
    ('amount', '"Amount"', '"order"')
    """
    if not isinstance(name, str) or not name:
        raise ParameterError(f"a column or table name must be non-empty text, not {name!r}")
    node = exp.Identifier(this=name, quoted=_needs_quotes(name))
    node._meta = {_EXACT: True}  # means exactly ``name``: render() quotes it where engines fold
    return node


@functools.lru_cache(maxsize=8192)
def _needs_quotes(name: str) -> bool:
    if "\x00" in name:
        raise ParameterError("a name cannot contain a NUL character")
    return not _SIMPLE_NAME.match(name) or _is_keyword(name)


_EXACT = "queryref_exact_name"


def _fraction(kind: Any, microsecond: int) -> Any:
    """``kind``, with six fractional digits when the value has microseconds: MariaDB and
    MySQL's ``CAST(... AS DATETIME)`` drops them (a filter ``ts > <that instant>`` then let
    through the rows of the same second)."""
    if not microsecond:
        return kind
    return exp.DataType(this=kind, expressions=[exp.DataTypeParam(this=exp.Literal.number(6))])


def literal(value: Any) -> exp.Expr:
    """A Python value as a correctly quoted SQL literal.

    >>> import datetime, decimal
    >>> [literal(v).sql() for v in ("it's", 3, None, datetime.date(2024, 1, 31))]
    ["'it''s'", '3', 'NULL', "CAST('2024-01-31' AS DATE)"]
    >>> literal(decimal.Decimal("1.50")).sql()
    'CAST(1.50 AS DECIMAL(3, 2))'
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            return exp.cast(exp.Literal.string(text), exp.DataType.Type.DOUBLE)
        return exp.Literal.number(repr(value))
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ParameterError(f"cannot use the non-finite decimal {value!r} as a SQL value")
        _sign, digits, exponent = value.as_tuple()
        scale = max(0, -int(exponent))
        precision = max(len(digits), scale + 1)
        dtype = exp.DataType(this=exp.DataType.Type.DECIMAL, expressions=[
            exp.DataTypeParam(this=exp.Literal.number(precision)),
            exp.DataTypeParam(this=exp.Literal.number(scale)),
        ])  # built, not parsed: this runs once per value when rows are uploaded
        return exp.cast(exp.Literal.number(str(value)), dtype)
    if isinstance(value, str):
        if "\x00" in value:
            raise ParameterError("text values cannot contain a NUL character")
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        kind = exp.DataType.Type.TIMESTAMPTZ if value.tzinfo else exp.DataType.Type.TIMESTAMP
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")),
                        _fraction(kind, value.microsecond))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, dt.time):
        return exp.cast(exp.Literal.string(value.isoformat()),
                        _fraction(exp.DataType.Type.TIME, value.microsecond))
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        return exp.Interval(this=exp.Literal.string(repr(seconds)), unit=exp.var("SECOND"))
    msg = (
        f"cannot use a {type(value).__name__} as a SQL value; use str, int, float, bool, "
        "Decimal, date, datetime, time, timedelta or None"
    )
    raise ParameterError(msg)
