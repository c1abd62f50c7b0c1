"""Column expressions: ``qr.col("a") + 1 > qr.lit(3)`` builds a sqlglot tree, nothing runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from queryref._expr.aggregates import AggregateMethods
from queryref._expr.base import _data_type, _into_node, _node, _paren, _Sort
from queryref._expr.dates import DateTimeMethods
from queryref._expr.numbers import NumberMethods
from queryref._expr.strings import StringMethods
from queryref._expr.windows import WindowMethods
from queryref.errors import ParameterError
from queryref.sql.text import column, literal, parse_expression

if TYPE_CHECKING:
    from queryref._queryref import QueryRef

__all__ = ["Expr", "asc", "col", "count", "desc", "lit", "when"]


class Expr(NumberMethods, AggregateMethods, WindowMethods):
    """A SQL expression under construction; every operator returns a new ``Expr``.

    >>> import queryref as qr
    >>> ((qr.col("amount") * 2 > 10) & qr.col("status").isin(["open", "held"])).sql()
    "amount * 2 > 10 AND status IN ('open', 'held')"
    """

    __slots__ = ()

    # -- naming --------------------------------------------------------------------------
    @property
    def output_name(self) -> str | None:
        """The column name this expression produces when selected without an alias.

        >>> import queryref as qr
        >>> qr.col("amount").output_name, (qr.col("amount") + 1).output_name
        ('amount', None)
        """
        if self._name is not None:
            return self._name
        if isinstance(self.node, exp.Column):
            return self.node.name
        return None

    def alias(self, name: str) -> Expr:
        """Name the expression's output column (``select(qr.col("a").alias("b"))``). Also
        ``name``.

        >>> import queryref as qr
        >>> q = qr.connect().sql("SELECT 2 AS a")
        >>> q.select((qr.col("a") * 10).alias("b")).to_pandas()["b"].tolist()
        [20]
        """
        return Expr(self.node.copy(), name=name)

    name = alias

    def sql(self, dialect: str = "duckdb") -> str:
        """The expression as SQL text, in ``dialect`` (sqlglot's name; default DuckDB).

        >>> import queryref as qr
        >>> qr.col("x").cast("TEXT").sql("postgres")
        'CAST(x AS TEXT)'
        """
        return self.node.sql(dialect=dialect)

    def __repr__(self) -> str:
        return f"<Expr {self.sql()}{' AS ' + self._name if self._name else ''}>"

    def __bool__(self) -> bool:
        msg = (
            "an Expr has no truth value: combine conditions with & | ~ (not and/or/not), "
            "and compare results after a sink such as .to_pandas()"
        )
        raise TypeError(msg)

    def __hash__(self) -> int:
        return hash(self.node)

    # -- arithmetic ---------------------------------------------------------------------
    def _bin(self, kind: type[exp.Binary], other: Any, reverse: bool = False) -> Expr:
        if isinstance(other, dt.timedelta) and kind in (exp.Add, exp.Sub):
            # a date/time shifted by a span: the value first, the span as a positive INTERVAL
            if reverse and kind is exp.Sub:
                raise ParameterError("a timedelta minus a date or time has no meaning: "
                                     "subtract the timedelta from the expression instead")
            if other < dt.timedelta(0):
                kind, other = (exp.Sub if kind is exp.Add else exp.Add), -other
            reverse = False
        left, right = self.node.copy(), _node(other)
        if reverse:
            left, right = right, left
        return Expr(kind(this=_paren(left, kind), expression=_paren(right, kind, True)))

    def __add__(self, o: Any) -> Expr: return self._bin(exp.Add, o)
    def __radd__(self, o: Any) -> Expr: return self._bin(exp.Add, o, True)
    def __sub__(self, o: Any) -> Expr: return self._bin(exp.Sub, o)
    def __rsub__(self, o: Any) -> Expr: return self._bin(exp.Sub, o, True)
    def __mul__(self, o: Any) -> Expr: return self._bin(exp.Mul, o)
    def __rmul__(self, o: Any) -> Expr: return self._bin(exp.Mul, o, True)
    def __truediv__(self, o: Any) -> Expr:
        # True division whatever the operand types (Postgres divides integers as integers).
        left = exp.cast(self.node.copy(), exp.DataType.Type.DOUBLE)
        return Expr(exp.Div(this=left, expression=_paren(_node(o), exp.Div, True)))
    def __rtruediv__(self, o: Any) -> Expr:
        left = exp.cast(_node(o), exp.DataType.Type.DOUBLE)
        return Expr(exp.Div(this=left, expression=_paren(self.node.copy(), exp.Div, True)))
    def __floordiv__(self, o: Any) -> Expr:
        return Expr(exp.Floor(this=(self / o).node))
    def __rfloordiv__(self, o: Any) -> Expr:
        return Expr(exp.Floor(this=self.__rtruediv__(o).node))
    def __mod__(self, o: Any) -> Expr: return self._bin(exp.Mod, o)
    def __rmod__(self, o: Any) -> Expr: return self._bin(exp.Mod, o, True)
    def __pow__(self, o: Any) -> Expr:
        return Expr(exp.Pow(this=_paren(self.node.copy()), expression=_paren(_node(o))))
    def __rpow__(self, o: Any) -> Expr:
        return Expr(exp.Pow(this=_paren(_node(o)), expression=_paren(self.node.copy())))
    def __neg__(self) -> Expr: return Expr(exp.Neg(this=_paren(self.node.copy(), exp.Neg)))
    def __pos__(self) -> Expr: return self
    # -- comparisons (== None means IS NULL, as in SQLAlchemy) --------------------------
    def __eq__(self, o: Any) -> Expr:  # type: ignore[override]
        return self.is_null() if o is None else self._bin(exp.EQ, o)
    def __ne__(self, o: Any) -> Expr:  # type: ignore[override]
        return self.not_null() if o is None else self._bin(exp.NEQ, o)
    def __lt__(self, o: Any) -> Expr: return self._bin(exp.LT, o)
    def __le__(self, o: Any) -> Expr: return self._bin(exp.LTE, o)
    def __gt__(self, o: Any) -> Expr: return self._bin(exp.GT, o)
    def __ge__(self, o: Any) -> Expr: return self._bin(exp.GTE, o)

    # -- logic --------------------------------------------------------------------------
    def __and__(self, o: Any) -> Expr: return self._bin(exp.And, o)
    def __rand__(self, o: Any) -> Expr: return self._bin(exp.And, o, True)
    def __or__(self, o: Any) -> Expr: return self._bin(exp.Or, o)
    def __ror__(self, o: Any) -> Expr: return self._bin(exp.Or, o, True)
    def __invert__(self) -> Expr: return Expr(exp.Not(this=_paren(self.node.copy(), exp.Not)))

    def is_null(self) -> Expr:
        """``IS NULL`` (``col == None`` means the same).

        >>> import queryref as qr
        >>> qr.col("x").is_null().sql()
        'x IS NULL'
        """
        return Expr(exp.Is(this=_paren(self.node.copy(), exp.Is), expression=exp.Null()))

    def not_null(self) -> Expr:
        """``IS NOT NULL`` (``col != None`` means the same). Also ``is_not_null``.

        >>> import queryref as qr
        >>> qr.col("x").not_null().sql()
        'NOT x IS NULL'
        """
        return Expr(exp.Not(this=self.is_null().node))

    is_not_null = not_null

    def isin(self, values: Iterable[Any] | QueryRef) -> Expr:
        """``IN (values...)`` or ``IN (subquery)`` for a one-column QueryRef.

        Keeps SQL semantics: ``~x.isin(q)`` is ``NOT IN``, which is empty when ``q`` has a NULL.

        >>> import queryref as qr
        >>> qr.col("g").isin(["a", "b"]).sql()
        "g IN ('a', 'b')"
        >>> con = qr.connect()
        >>> t = con.sql("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(id, g)")
        >>> t.filter(qr.col("id").isin(con.sql("SELECT 2 AS id"))).to_pandas()["g"].tolist()
        ['b']
        """
        from queryref._queryref import QueryRef

        if isinstance(values, QueryRef):
            return Expr(exp.In(this=_paren(self.node.copy(), exp.In),
                               query=exp.Subquery(this=values.tree.copy())))
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise ParameterError(f"isin() takes a list of values or a QueryRef, not {values!r}")
        items = [_node(v) for v in values]
        if not items:
            return Expr(exp.false())
        return Expr(exp.In(this=_paren(self.node.copy(), exp.In), expressions=items))

    def between(self, low: Any, high: Any) -> Expr:
        """``BETWEEN low AND high`` (both ends included).

        >>> import queryref as qr
        >>> qr.col("x").between(1, 5).sql()
        'x BETWEEN 1 AND 5'
        """
        return Expr(exp.Between(this=_paren(self.node.copy(), exp.Between),
                                low=_node(low), high=_node(high)))

    def like(self, pattern: str) -> Expr:
        """``LIKE pattern`` (``%`` any text, ``_`` one character).

        >>> import queryref as qr
        >>> qr.col("name").like("A%").sql()
        "name LIKE 'A%'"
        """
        return Expr(exp.Like(this=_paren(self.node.copy(), exp.Like), expression=literal(pattern)))

    def ilike(self, pattern: str) -> Expr:
        """Case-insensitive ``LIKE``.

        >>> import queryref as qr
        >>> qr.col("name").ilike("a%").sql()
        "name ILIKE 'a%'"
        """
        node = _paren(self.node.copy(), exp.ILike)
        return Expr(exp.ILike(this=node, expression=literal(pattern)))

    def cast(self, to: str) -> Expr:
        """``CAST(expr AS to)``; ``to`` is a SQL type such as ``"BIGINT"`` or ``"DECIMAL(9,2)"``.

        >>> import queryref as qr
        >>> qr.col("amount").cast("DECIMAL(9,2)").sql()
        'CAST(amount AS DECIMAL(9, 2))'
        """
        return Expr(exp.cast(self.node.copy(), _data_type(to)), name=self.output_name)

    def coalesce(self, *others: Any) -> Expr:
        """The first non-NULL of this and ``others`` (``fill_null`` takes one value).

        >>> import queryref as qr
        >>> qr.col("nickname").coalesce(qr.col("name"), "?").sql()
        "COALESCE(nickname, name, '?')"
        """
        return Expr(exp.Coalesce(this=self.node.copy(), expressions=[_node(o) for o in others]))

    # -- namespaces (last: ``str`` would shadow the builtin in annotations below it) --------
    @property
    def str(self) -> StringMethods:
        """Text functions: ``qr.col("name").str.upper()``.

        >>> import queryref as qr
        >>> type(qr.col("name").str).__name__
        'StringMethods'
        """
        return StringMethods(self)

    @property
    def dt(self) -> DateTimeMethods:
        """Date and time functions: ``qr.col("day").dt.year()``.

        >>> import queryref as qr
        >>> type(qr.col("day").dt).__name__
        'DateTimeMethods'
        """
        return DateTimeMethods(self)



def asc(key: str | Expr, nulls_first: bool = False) -> _Sort:
    """Ascending sort key (NULLs last unless ``nulls_first``).

    >>> import queryref as qr
    >>> qr.asc("total")
    <Sort total ASC NULLS LAST>
    """
    return _Sort(exp.Ordered(this=_into_node(key), desc=False, nulls_first=nulls_first))


def desc(key: str | Expr, nulls_first: bool = False) -> _Sort:
    """Descending sort key (NULLs last unless ``nulls_first``).

    >>> import queryref as qr
    >>> qr.desc("total")
    <Sort total DESC>
    """
    return _Sort(exp.Ordered(this=_into_node(key), desc=True, nulls_first=nulls_first))


def col(name: str) -> Expr:
    """A column by name; ``"t.name"`` is not split: use the name as the query shows it.

    >>> import queryref as qr
    >>> (qr.col("Amount") > 1).sql()
    '"Amount" > 1'
    """
    if isinstance(name, str) and name == "*":
        return Expr(exp.Star())
    return Expr(column(name), name=name)


def lit(value: Any) -> Expr:
    """A literal value (str, number, bool, None, Decimal, date, datetime ...).

    >>> import queryref as qr
    >>> qr.lit("it's").sql()
    "'it''s'"
    """
    return Expr(literal(value))


def count(expr: str | Expr | None = None) -> Expr:
    """``COUNT(*)``, or ``COUNT(expr)`` (non-NULL values) when given.

    >>> import queryref as qr
    >>> qr.count().sql()
    'COUNT(*)'
    """
    if expr is None:
        return Expr(exp.Count(this=exp.Star()))
    return Expr(exp.Count(this=_into_node(expr)))


class _When:
    """``CASE WHEN ... THEN ...`` under construction; finish with ``.otherwise(value)``."""

    def __init__(self, ifs: list[exp.If]) -> None:
        self._ifs = ifs

    def when(self, condition: Expr | str, value: Any) -> _When:
        """Add a branch."""
        return _When([*self._ifs, _if(condition, value)])

    def otherwise(self, value: Any) -> Expr:
        """Finish the CASE with its ELSE value."""
        return Expr(exp.Case(ifs=[i.copy() for i in self._ifs], default=_node(value)))

    def end(self) -> Expr:
        """Finish the CASE without ELSE (NULL when no branch matches)."""
        return Expr(exp.Case(ifs=[i.copy() for i in self._ifs]))


def _if(condition: Expr | str, value: Any) -> exp.If:
    cond = parse_expression(condition, None) if isinstance(condition, str) else _node(condition)
    return exp.If(this=cond, true=_node(value))


def when(condition: Expr | str, value: Any) -> _When:
    """``CASE WHEN condition THEN value ...``; a text condition is SQL.

    >>> import queryref as qr
    >>> qr.when(qr.col("v") > 0, "pos").when("v < 0", "neg").otherwise("zero").sql()
    "CASE WHEN v > 0 THEN 'pos' WHEN v < 0 THEN 'neg' ELSE 'zero' END"
    """
    return _When([_if(condition, value)])
