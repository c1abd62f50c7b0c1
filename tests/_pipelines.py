"""Random pipelines and an independent pandas reference for them (the fuzzers' generator).

A :class:`Pipeline` is a list of steps drawn by Hypothesis (:func:`pipelines`) over the fuzz
tables below: filters with NULL-laden three-valued predicates, mutates, select/drop/rename,
group_by + agg, joins with customers (duplicate and NULL keys, a colliding ``region``), window
functions (row_number/rank/dense_rank/lag/lead over a total order; sum/count/min/max/mean over
partitions, running or whole), order_by + limit, distinct and set operations (union, intersect,
except; distinct and ALL). A third of the pipelines start from ``con.sql(text)`` instead of
the table, over SQL shaped like the public query sets' (:class:`SqlSource`: WITH clauses, one
of them named like a real table; windows in the projection; GROUP BY positions; set
operations; ORDER BY positions, output names and expressions, with LIMIT). Each step runs
through queryref (``on_qr``) and, step by step, through a pandas reference written from SQL
semantics, never from queryref's SQL (``on_pd``). An order, once there, is checked through
the steps that promise to keep it (filter, mutate, select, rename, drop, windows).
Used by ``test_property.py`` (DuckDB: ``to_pandas`` and ``count``) and
``reliability/test_differential.py`` (DuckDB, PostgreSQL and pandas must agree; TLP on every
engine).

SQL semantics the reference models:

- predicates are three-valued: a predicate is a pandas ``boolean`` Series (Kleene ``& | ~``,
  ``NA`` for unknown), a filter keeps rows where it is True, ``CASE WHEN`` takes the ELSE
  branch on unknown, ``x IN (..., NULL)`` is unknown when nothing matches;
- SUM/MIN/MAX/AVG skip NULLs and give NULL on an all-NULL (or empty) input, COUNT(col) counts
  non-NULLs, NULL group keys form their own group, a whole-table aggregate has one row even
  when the input is empty;
- a NULL join key never matches (an anti join keeps it); ``/`` is true division;
- windows: NULL partition keys form one partition, rows with equal sort keys (NULLs equal each
  other) are peers, a running aggregate (``ORDER BY`` in ``OVER``) includes the peers of the
  current row (SQL's default RANGE frame); set operations and DISTINCT treat NULLs as equal.

Numbers are kept in pandas ``Float64`` (nullable) and text in a NA-backed string dtype. To keep
float results comparable to 6 decimals the generator tracks a bound on every numeric column's
magnitude, the decimal scale DuckDB's DECIMAL arithmetic would need, and whether its values
are exact, deterministic (IEEE, same in every engine) or "fuzzy" (order-dependent float sums);
fuzzy columns are never used as keys, in predicates, sorts, DISTINCT or set operations.

What the generator keeps away from, on purpose (engine semantics queryref does not promise to
change, see docs/reliability.md): text values are lower-case ASCII letters and digits, whose
order is the same in byte order (DuckDB, PostgreSQL's ``C`` collation) and in the usual
``en_US`` collations, because queryref compares and sorts text in the engine's collation.
Names are written in another case now and then (``customerid`` for ``CustomerId``) only on the
engines that match names case-insensitively (DuckDB, MariaDB): :func:`build` writes them
exactly elsewhere, as PostgreSQL and Snowflake hold them.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import math
import operator
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from hypothesis import strategies as st

import queryref as qr

NUM = pd.Float64Dtype()  # (dtype objects: a dtype given as text is parsed on every use)
STR = pd.StringDtype("python", na_value=pd.NA)
BOOL = pd.BooleanDtype()

EXACT, DET, FUZZY = 0, 1, 2  # exact values / deterministic IEEE results / order-dependent sums
VMAX = 1e9  # row values stay inside DuckDB's INTEGER (int literals are INT32): no overflow
FUZZ_MAX = 1e6  # an order-dependent float keeps its error far below 1e-6 while this small
MAX_SCALE = 4  # DECIMAL scale from multiplying by 1.5 etc.: exact in float64 and in DuckDB

NUM_LITS = [10, 0, 1, 2, 3, 5, 100, -1, -2, -7, 0.5, 1.5, 2.5, -0.5]
TEXT_LITS = ["north", "open", "east", "south", "held", "west", "closed", "m", "", "zz", "c1",
             "c3"]
DIVISORS = [2, 3, 4, -2, 0.5, 8]

# -- the data: >= 20% NULLs in every nullable column, duplicate keys, mixed-case names --------
NULL_SHARE = 0.25  # exactly this share of every nullable column is NULL (asserted by the tests)
ORDERS_TABLE, CUSTOMERS_TABLE = "FuzzOrders", "FuzzCustomers"  # mixed case: quoted everywhere


def _nulls(rng: np.random.Generator, n: int) -> np.ndarray:
    """A mask with exactly ``ceil(NULL_SHARE * n)`` True values at random places."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=math.ceil(NULL_SHARE * n), replace=False)] = True
    return mask


def make_orders(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Orders: ``id`` a key (never NULL); every other column a quarter NULL; duplicate
    customer ids (and NULL ones); the mixed-case ``Status`` and ``CustomerId``."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "region": pd.array(rng.choice(["north", "south", "east", "west"], n), dtype=object),
        "Status": pd.array(rng.choice(["open", "closed", "held"], n), dtype=object),
        "amount": rng.integers(-50, 500, n).astype("float64"),
        "qty": pd.array(rng.integers(0, 20, n), dtype="Int64"),
        "CustomerId": pd.array(rng.integers(0, 40, n), dtype="Int64"),
    })
    for c in ("region", "Status", "amount", "qty", "CustomerId"):
        df.loc[_nulls(rng, n), c] = None
    return df


def make_customers(seed: int = 11) -> pd.DataFrame:
    """Customers: some ids twice, a quarter of them NULL; ``region`` collides with orders'."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.arange(0, 45), rng.integers(0, 45, 8)])
    n = len(ids)
    df = pd.DataFrame({
        "CustomerId": pd.array(ids, dtype="Int64"),
        "name": pd.array([f"c{i}" for i in ids], dtype=object),
        "region": pd.array(rng.choice(["north", "south", "east"], n), dtype=object),
    })
    for c in df.columns:
        df.loc[_nulls(rng, n), c] = None
    return df


NULLABLE = {ORDERS_TABLE: ["region", "Status", "amount", "qty", "CustomerId"],
            CUSTOMERS_TABLE: ["CustomerId", "name", "region"]}


# -- metadata the generator keeps about each column ------------------------------------------
@dataclass(frozen=True)
class Meta:
    kind: str  # "num" | "text"
    bound: float = 0.0  # |value| <= bound
    scale: int = 0  # decimal digits DuckDB keeps (1.5 * 1.5 -> 2)
    exact: int = EXACT
    const: bool = False  # a literal put in by mutate(x=3)
    shadow: bool = False  # replaced by mutate: its name may also be a source column

    @property
    def usable(self) -> bool:
        """May appear in predicates, keys, sorts, DISTINCT."""
        return self.exact != FUZZY


TEXT = Meta("text")


@dataclass(frozen=True)
class State:
    cols: tuple[tuple[str, Meta], ...]
    unique: tuple[frozenset[str], ...]  # column sets known to be unique (a key)
    rows: int  # upper bound on the row count
    joins: int = 0
    grouped: bool = False
    order: tuple[str, ...] | None = None  # sort keys when the last step sorted
    total: bool = False  # ... and they make a total order
    sorted_sql: bool = False  # an ORDER BY is in the SQL (until an aggregate or join)
    scalar_agg: bool = False  # a whole-table aggregate's SELECT (until a join or group_by)
    avoid: frozenset[str] = frozenset()  # not to be referenced in expressions (known bug)
    respell: bool = True  # may write names in another case (DuckDB matches them anyway)
    gaps: frozenset[str] = frozenset()  # what the engine cannot do (see ENGINE_GAPS)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.cols]

    def meta(self, name: str) -> Meta:
        return dict(self.cols)[name]

    def usable(self, kind: str | None = None) -> list[str]:
        return [n for n, m in self.cols if m.usable and (kind is None or m.kind == kind)]

    def refs(self, kind: str | None = None) -> list[str]:
        """Usable columns an expression may name."""
        return [n for n in self.usable(kind) if n not in self.avoid]


def _state_of(df: pd.DataFrame, kinds: dict[str, Meta], unique: Sequence[str]) -> State:
    return State(cols=tuple((c, kinds[c]) for c in df.columns),
                 unique=(frozenset(unique),) if unique else (), rows=len(df))


ORDERS_KINDS = {
    "id": Meta("num", 400), "region": TEXT, "Status": TEXT, "amount": Meta("num", 500),
    "qty": Meta("num", 20), "CustomerId": Meta("num", 40),
}
CUSTOMER_KINDS = {"CustomerId": Meta("num", 45), "name": TEXT, "region": TEXT}


def _reference_frame(df: pd.DataFrame, kinds: dict[str, Meta]) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(df)))
    for c in df.columns:
        s = df[c].reset_index(drop=True)
        if kinds[c].kind == "num":
            out[c] = s.astype("float64").astype(NUM)
        else:
            out[c] = s.astype(object).where(s.notna(), None).astype(STR)
    return out


ORDERS = make_orders()
CUSTOMERS = make_customers()
ORDERS_PD = _reference_frame(ORDERS, ORDERS_KINDS)
CUSTOMERS_PD = _reference_frame(CUSTOMERS, CUSTOMER_KINDS)
ORDERS_STATE = _state_of(ORDERS_PD, ORDERS_KINDS, ["id"])
CUSTOMERS_STATE = _state_of(CUSTOMERS_PD, CUSTOMER_KINDS, [])


def _const(df: pd.DataFrame, value: Any, kind: str) -> pd.Series:
    if kind == "num" and not pd.isna(value):
        return pd.Series(pd.array(np.full(len(df), float(value)), dtype=NUM), index=df.index)
    return pd.Series([value] * len(df), index=df.index, dtype=NUM if kind == "num" else STR)


def _zero_sign(s: pd.Series) -> pd.Series:
    """-0.0 -> 0.0 (SQL and pandas compare them equal; BIGINT arithmetic never makes -0)."""
    return s + 0.0 if isinstance(s.dtype, pd.Float64Dtype) or s.dtype.kind == "f" else s


def _truth(mask: pd.Series) -> pd.Series:
    """Rows where a three-valued predicate is True (unknown counts as not)."""
    return pd.Series(mask.to_numpy(dtype=bool, na_value=False), index=mask.index)


# -- value expressions -------------------------------------------------------------------------
class _Code:
    """Shown as the queryref code it stands for (also in Hypothesis's failure reports)."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


class V(_Code):
    meta: Meta

    def qr(self) -> Any:
        raise NotImplementedError

    def pd(self, df: pd.DataFrame) -> pd.Series:
        raise NotImplementedError

    def __repr__(self) -> str:
        raise NotImplementedError


@dataclass(repr=False)
class Col(V):
    name: str
    meta: Meta
    spelled: str = ""

    def qr(self) -> Any:
        return qr.col(_written(self.spelled, self.name))

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return df[self.name]

    def __repr__(self) -> str:
        return f"qr.col({self.spelled or self.name!r})"


@dataclass(repr=False)
class Lit(V):
    value: Any
    meta: Meta

    def qr(self) -> Any:
        return self.value

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return _const(df, self.value, self.meta.kind)

    def __repr__(self) -> str:
        return repr(self.value)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
}


@dataclass(repr=False)
class Arith(V):
    op: str
    a: V
    b: V
    meta: Meta

    def qr(self) -> Any:
        return _ARITH[self.op](self.a.qr(), self.b.qr())

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return _ARITH[self.op](self.a.pd(df), self.b.pd(df))

    def __repr__(self) -> str:
        return f"({self.a!r} {self.op} {self.b!r})"


@dataclass(repr=False)
class Div(V):
    a: V
    divisor: float
    meta: Meta

    def qr(self) -> Any:
        return self.a.qr() / self.divisor

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return self.a.pd(df) / self.divisor

    def __repr__(self) -> str:
        return f"({self.a!r} / {self.divisor!r})"


@dataclass(repr=False)
class Neg(V):
    a: V
    meta: Meta

    def qr(self) -> Any:
        return -self.a.qr()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return -self.a.pd(df)

    def __repr__(self) -> str:
        return f"(-{self.a!r})"


@dataclass(repr=False)
class When(V):
    cond: P
    a: V
    b: V
    meta: Meta

    def qr(self) -> Any:
        return qr.when(self.cond.qr(), self.a.qr()).otherwise(self.b.qr())

    def pd(self, df: pd.DataFrame) -> pd.Series:
        mask = _truth(self.cond.pd(df))  # CASE WHEN: unknown -> ELSE
        out = self.b.pd(df).copy()
        out[mask] = self.a.pd(df)[mask]
        return out

    def __repr__(self) -> str:
        return f"qr.when({self.cond!r}, {self.a!r}).otherwise({self.b!r})"


# -- the expression vocabulary: number, NULL and text functions --------------------------------
#: (name, arguments) of number functions: each keeps a value's bound, scale and exactness
NUM_FNS: list[tuple[str, tuple[Any, ...]]] = [
    ("abs", ()), ("sign", ()), ("clip", (-2, 10)), ("clip", (0, None)), ("clip", (None, 5)),
    ("fill_null", (0,)), ("fill_null", (-7,)), ("null_if", (0,)), ("null_if", (1,)),
]
#: text functions that keep text lower-case ASCII (the order every engine agrees on)
TEXT_FNS: list[tuple[str, tuple[Any, ...]]] = [
    ("lower", ()), ("strip", ()), ("slice", (0, 2)), ("slice", (1, None)), ("slice", (-2, None)),
    ("replace", ("o", "0")), ("replace", ("th", "")), ("fill_null", ("zz",)),
    ("pad", (6, "left", "x")),
]
#: text predicates (pattern, and whether the engine-side pattern must be treated literally)
TEXT_PREDS: list[tuple[str, str]] = [
    ("startswith", "n"), ("startswith", "so"), ("endswith", "st"), ("endswith", "d"),
    ("contains", "e"), ("contains", "ol"), ("contains", "%"), ("startswith", "_"),
]


def _num_fn(s: pd.Series, fn: str, args: tuple[Any, ...]) -> pd.Series:
    """What pandas computes for ``Expr.<fn>(*args)`` (NULL stays NULL unless filled)."""
    if fn == "abs":
        return s.abs()
    if fn == "sign":
        return pd.Series(np.sign(s.to_numpy(dtype="float64", na_value=np.nan)),
                         index=s.index).astype(NUM)
    if fn == "clip":
        return s.clip(*args)
    if fn == "fill_null":
        return s.fillna(args[0])
    assert fn == "null_if", fn
    return s.mask(s.eq(args[0]).fillna(False).astype(bool))


def _text_fn(s: pd.Series, fn: str, args: tuple[Any, ...]) -> pd.Series:
    if fn == "fill_null":
        return s.fillna(args[0])
    if fn == "slice":
        return s.str.slice(*args)
    if fn == "pad":
        width, side, fill = args
        return s.str.pad(width, side=side, fillchar=fill)
    return getattr(s.str, fn)(*args)


@dataclass(repr=False)
class NumFn(V):
    """``x.abs()``, ``x.clip(lo, hi)``, ``x.fill_null(v)`` ... on a numeric expression."""

    fn: str
    args: tuple[Any, ...]
    a: V
    meta: Meta

    def qr(self) -> Any:
        return getattr(self.a.qr(), self.fn)(*self.args)

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return _num_fn(self.a.pd(df), self.fn, self.args)

    def __repr__(self) -> str:
        return f"{self.a!r}.{self.fn}({', '.join(map(repr, self.args))})"


@dataclass(repr=False)
class TextFn(V):
    """``x.str.lower()``, ``x.str.slice(0, 2)`` ... (``fill_null`` is on the expression)."""

    fn: str
    args: tuple[Any, ...]
    a: Col
    meta: Meta

    def qr(self) -> Any:
        x = self.a.qr()
        return getattr(x if self.fn == "fill_null" else x.str, self.fn)(*self.args)

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return _text_fn(self.a.pd(df), self.fn, self.args).astype(STR)

    def __repr__(self) -> str:
        ns = "" if self.fn == "fill_null" else ".str"
        return f"{self.a!r}{ns}.{self.fn}({', '.join(map(repr, self.args))})"


@dataclass(repr=False)
class TextLen(V):
    """``x.str.len()``: characters."""

    a: Col
    meta: Meta

    def qr(self) -> Any:
        return self.a.qr().str.len()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return self.a.pd(df).str.len().astype("float64").astype(NUM)

    def __repr__(self) -> str:
        return f"{self.a!r}.str.len()"


# -- predicates (three-valued: pandas "boolean" Series) ---------------------------------------
class P(_Code):
    def qr(self) -> Any:
        raise NotImplementedError

    def pd(self, df: pd.DataFrame) -> pd.Series:
        raise NotImplementedError


_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


@dataclass(repr=False)
class Cmp(P):
    op: str
    a: V
    b: V

    def qr(self) -> Any:
        return _CMP[self.op](self.a.qr(), self.b.qr())  # a literal on the left reflects

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return _CMP[self.op](self.a.pd(df), self.b.pd(df)).astype(BOOL)

    def __repr__(self) -> str:
        return f"({self.a!r} {self.op} {self.b!r})"


@dataclass(repr=False)
class AggCmp(P):
    """``col > col.mean()``: an aggregate in a row-level predicate is over all rows."""

    op: str
    a: Col
    fn: str

    def qr(self) -> Any:
        return _CMP[self.op](self.a.qr(), getattr(self.a.qr(), self.fn)())

    def pd(self, df: pd.DataFrame) -> pd.Series:
        s = self.a.pd(df)
        whole = getattr(s, self.fn)()  # skips NA; NA when there is no value
        return _CMP[self.op](s, _const(df, whole, "num")).astype(BOOL)

    def __repr__(self) -> str:
        return f"({self.a!r} {self.op} {self.a!r}.{self.fn}())"


@dataclass(repr=False)
class And(P):
    a: P
    b: P

    def qr(self) -> Any:
        return self.a.qr() & self.b.qr()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return self.a.pd(df) & self.b.pd(df)

    def __repr__(self) -> str:
        return f"({self.a!r} & {self.b!r})"


@dataclass(repr=False)
class Or(P):
    a: P
    b: P

    def qr(self) -> Any:
        return self.a.qr() | self.b.qr()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return self.a.pd(df) | self.b.pd(df)

    def __repr__(self) -> str:
        return f"({self.a!r} | {self.b!r})"


@dataclass(repr=False)
class Not(P):
    a: P

    def qr(self) -> Any:
        return ~self.a.qr()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return ~self.a.pd(df)  # Kleene: ~NA is NA

    def __repr__(self) -> str:
        return f"~{self.a!r}"


@dataclass(repr=False)
class IsIn(P):
    a: V
    values: list[Any]

    def qr(self) -> Any:
        return self.a.qr().isin(self.values)

    def pd(self, df: pd.DataFrame) -> pd.Series:
        s = self.a.pd(df)
        if not self.values:  # queryref renders an empty IN as FALSE
            return pd.Series(False, index=df.index, dtype=BOOL)
        present = [v for v in self.values if v is not None]
        hit = s.isin(present).fillna(False).astype(bool) & s.notna()
        out = pd.Series(hit, index=df.index, dtype=BOOL)
        unknown = s.isna() | (~hit & (len(present) < len(self.values)))
        out[unknown] = pd.NA
        return out

    def __repr__(self) -> str:
        return f"{self.a!r}.isin({self.values!r})"


@dataclass(repr=False)
class TextPred(P):
    """``x.str.startswith(s)`` / ``endswith`` / ``contains`` (a literal pattern)."""

    fn: str
    a: Col
    pat: str

    def qr(self) -> Any:
        return getattr(self.a.qr().str, self.fn)(self.pat)

    def pd(self, df: pd.DataFrame) -> pd.Series:
        s = self.a.pd(df)
        if self.fn == "contains":
            return s.str.contains(self.pat, regex=False).astype(BOOL)
        return getattr(s.str, self.fn)(self.pat).astype(BOOL)

    def __repr__(self) -> str:
        return f"{self.a!r}.str.{self.fn}({self.pat!r})"


@dataclass(repr=False)
class Between(P):
    a: V
    lo: Any
    hi: Any

    def qr(self) -> Any:
        return self.a.qr().between(self.lo, self.hi)

    def pd(self, df: pd.DataFrame) -> pd.Series:
        s = self.a.pd(df)
        kind = self.a.meta.kind
        return (s >= _const(df, self.lo, kind)).astype(BOOL) & \
            (s <= _const(df, self.hi, kind)).astype(BOOL)

    def __repr__(self) -> str:
        return f"{self.a!r}.between({self.lo!r}, {self.hi!r})"


@dataclass(repr=False)
class IsNull(P):
    a: V
    negate: bool

    def qr(self) -> Any:
        return self.a.qr().not_null() if self.negate else self.a.qr().is_null()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        s = self.a.pd(df)
        return (s.notna() if self.negate else s.isna()).astype(BOOL)

    def __repr__(self) -> str:
        return f"{self.a!r}.{'not_null' if self.negate else 'is_null'}()"


@dataclass(repr=False)
class PredIsNull(P):
    """``(p) IS NULL``: true exactly where the predicate is unknown."""

    a: P

    def qr(self) -> Any:
        return self.a.qr().is_null()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return self.a.pd(df).isna().astype(BOOL)

    def __repr__(self) -> str:
        return f"{self.a!r}.is_null()"


# -- pipeline steps ----------------------------------------------------------------------------
# Names as the pipeline wrote them (``customerid`` for ``CustomerId``) where the engine matches
# names case-insensitively (DuckDB, MariaDB); elsewhere (PostgreSQL, Snowflake) exactly: set by
# build() for the engine at hand.
_RESPELL: contextvars.ContextVar[bool] = contextvars.ContextVar("respell", default=True)


def _written(spelled: str, name: str) -> str:
    return (spelled or name) if _RESPELL.get() else name


class _Memo:
    """The last ``size`` results by key (prefixes of pipelines, as code)."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._size = size

    def find(self, key: str) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def keep(self, key: str, value: Any) -> Any:
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


@dataclass(frozen=True, repr=False)
class Env(_Code):
    orders: qr.QueryRef
    customers: qr.QueryRef
    built: _Memo = field(default_factory=lambda: _Memo(), compare=False)  # see build()

    def __repr__(self) -> str:
        return "<the fuzz orders and customers on one connection>"


class Step(_Code):
    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        raise NotImplementedError

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def advance(self, s: State) -> State:
        raise NotImplementedError


def keep_order(before: State, after: State, *, changed: frozenset[str] | set[str] = frozenset(),
               renamed: dict[str, str] | None = None) -> State:
    """``after`` in ``before``'s order, where it had one: filter, mutate, select, rename, drop
    and window steps keep a QueryRef's order (the promise of issue 13; the pandas reference
    keeps its rows' order through them too). It is checked on the sort keys while they are
    still columns with their values (a mutate that replaces one ends the check)."""
    if before.order is None or set(before.order) & changed:
        return replace(after, order=None, total=False)
    order = tuple((renamed or {}).get(k, k) for k in before.order)
    if not set(order) <= set(after.names):
        return replace(after, order=None, total=False)
    return replace(after, order=order, total=any(u <= set(order) for u in after.unique))


@dataclass(repr=False)
class Filter(Step):
    preds: list[P]

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.filter(*[p.qr() for p in self.preds])

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        mask = self.preds[0].pd(df)
        for p in self.preds[1:]:
            mask = mask & p.pd(df)
        return df[_truth(mask)]

    def advance(self, s: State) -> State:
        return keep_order(s, s)

    def __repr__(self) -> str:
        return f".filter({', '.join(map(repr, self.preds))})"


@dataclass(repr=False)
class Mutate(Step):
    assigns: list[tuple[str, str, V]]  # (as written, the column it names, value)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        # text passed to mutate() is SQL, so a string literal goes in as qr.lit(...)
        return q.mutate(**{_written(spelled, name): qr.lit(v.value) if isinstance(v, Lit) and
                           v.meta.kind == "text" else v.qr()
                           for spelled, name, v in self.assigns})

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        new = {name: v.pd(df) for _, name, v in self.assigns}  # all from the input row
        out = df.copy()
        for name, s in new.items():
            out[name] = s
        return out

    def advance(self, s: State) -> State:
        cols = dict(s.cols)
        for _, name, v in self.assigns:
            cols[name] = replace(v.meta, const=isinstance(v, Lit), shadow=name in cols)
        replaced = {name for _, name, _ in self.assigns}
        return keep_order(s, replace(s, cols=tuple(cols.items()),
                                     unique=tuple(u for u in s.unique if not u & replaced)),
                          changed=replaced)

    def __repr__(self) -> str:
        def value(v: V) -> str:
            return f"qr.lit({v!r})" if isinstance(v, Lit) and v.meta.kind == "text" else repr(v)

        return f".mutate({', '.join(f'{a}={value(v)}' for a, _, v in self.assigns)})"


@dataclass(repr=False)
class Select(Step):
    names: list[str]

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.select(*self.names)

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return df[self.names]

    def advance(self, s: State) -> State:
        kept = set(self.names)
        return keep_order(s, replace(s, cols=tuple((n, s.meta(n)) for n in self.names),
                                     avoid=s.avoid & kept,
                                     unique=tuple(u for u in s.unique if u <= kept)))

    def __repr__(self) -> str:
        return f".select({', '.join(map(repr, self.names))})"


@dataclass(repr=False)
class Drop(Step):
    names: list[tuple[str, str]]  # (as written, column)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.drop(*[_written(spelled, name) for spelled, name in self.names])

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=[n for _, n in self.names])

    def advance(self, s: State) -> State:
        gone = {n for _, n in self.names}
        return keep_order(s, replace(s, cols=tuple(c for c in s.cols if c[0] not in gone),
                                     unique=tuple(u for u in s.unique if not u & gone)))

    def __repr__(self) -> str:
        return f".drop({', '.join(repr(a) for a, _ in self.names)})"


@dataclass(repr=False)
class Rename(Step):
    pairs: list[tuple[str, str, str]]  # (as written, column, new name)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.rename({_written(spelled, old): new for spelled, old, new in self.pairs})

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.rename(columns={old: new for _, old, new in self.pairs})

    def advance(self, s: State) -> State:
        m = {old: new for _, old, new in self.pairs}
        return keep_order(s, replace(s, cols=tuple((m.get(n, n), meta) for n, meta in s.cols),
                                     avoid=frozenset(m.get(n, n) for n in s.avoid),
                                     unique=tuple(frozenset(m.get(n, n) for n in u)
                                                  for u in s.unique)), renamed=m)

    def __repr__(self) -> str:
        return f".rename({ {a: n for a, _, n in self.pairs}!r})"


AGG_FUNCS = ("sum", "mean", "min", "max", "count", "count_distinct", "count_star", "median",
             "std")


@dataclass(repr=False)
class GroupAgg(Step):
    keys: list[str]
    named_keys: list[tuple[str, V]]
    aggs: list[tuple[str, str, V | None, Meta]]  # (output, function, argument, result meta)

    def _agg(self, fn: str, v: V | None) -> Any:
        if fn == "count_star":
            return qr.count()
        assert v is not None
        return getattr(v.qr(), fn)()

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        aggs = {out: self._agg(fn, v) for out, fn, v, _ in self.aggs}
        if not self.keys and not self.named_keys:
            return q.agg(**aggs)
        return q.group_by(*self.keys, **{n: v.qr() for n, v in self.named_keys}).agg(**aggs)

    @staticmethod
    def _reduce(fn: str, s: Any) -> Any:
        """One aggregate over a Series or a SeriesGroupBy, with SQL's NULL rules."""
        if fn == "sum":
            return s.sum(min_count=1)
        if fn == "count_distinct":
            return s.nunique(dropna=True)
        if fn == "count_star":
            return s.size() if callable(s.size) else s.size
        return getattr(s, fn)()  # mean/min/max skip NA (NA when none), count non-NA

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        work = pd.DataFrame(index=df.index)
        key_names = [*self.keys, *(n for n, _ in self.named_keys)]
        for k in self.keys:
            work[k] = _zero_sign(df[k])
        for n, v in self.named_keys:
            work[n] = _zero_sign(v.pd(df))
        for i, (_, _, v, _) in enumerate(self.aggs):
            work[f"__a{i}"] = _zero_sign(v.pd(df)) if v is not None else 1.0
        if key_names:
            g = work.groupby(key_names, dropna=False, sort=False)  # NULL keys: own group
            parts = {out: self._reduce(fn, g[f"__a{i}"])
                     for i, (out, fn, _, _) in enumerate(self.aggs)}
            res = pd.DataFrame(parts).reset_index()
        else:  # a whole-table aggregate: one row, even over no rows
            res = pd.DataFrame({out: [self._reduce(fn, work[f"__a{i}"])]
                                for i, (out, fn, _, _) in enumerate(self.aggs)})
        metas = {**{k: work[k].dtype for k in key_names}}
        for out, _, _, meta in self.aggs:
            metas[out] = NUM if meta.kind == "num" else STR
        res = res[[*key_names, *(out for out, _, _, _ in self.aggs)]]
        return pd.DataFrame({c: res[c].astype(object).where(res[c].notna(), None).astype(t)
                             for c, t in metas.items()}, index=res.index)

    def advance(self, s: State) -> State:
        keys = [(k, s.meta(k)) for k in self.keys] + [(n, v.meta) for n, v in self.named_keys]
        cols = (*keys, *((out, meta) for out, _, _, meta in self.aggs))
        return State(cols=tuple((n, replace(m, shadow=False)) for n, m in cols),
                     unique=(frozenset(k for k, _ in keys),), rows=s.rows, joins=s.joins,
                     grouped=True, scalar_agg=not keys, respell=s.respell, gaps=s.gaps)

    def __repr__(self) -> str:
        def agg(fn: str, v: V | None) -> str:
            return "qr.count()" if fn == "count_star" else f"{v!r}.{fn}()"

        aggs = ", ".join(f"{out}={agg(fn, v)}" for out, fn, v, _ in self.aggs)
        if not self.keys and not self.named_keys:
            return f".agg({aggs})"
        keys = [*map(repr, self.keys), *(f"{n}={v!r}" for n, v in self.named_keys)]
        return f".group_by({', '.join(keys)}).agg({aggs})"


def _join_names(left: Sequence[str]) -> dict[str, str]:
    """Output names of the customers columns that are not the key: suffix "_right" on clash."""
    taken = set(left)
    out = {}
    for c in ("name", "region"):
        name = c
        if name in taken:
            name = c + "_right"
            while name in taken:
                name += "_right"
        taken.add(name)
        out[c] = name
    return out


@dataclass(repr=False)
class Join(Step):
    how: str
    on: str  # as written ("CustomerId" in any case)
    right_preds: list[P]

    def _right_pd(self) -> pd.DataFrame:
        r = CUSTOMERS_PD
        return Filter(self.right_preds).on_pd(r) if self.right_preds else r

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        right = env.customers
        if self.right_preds:
            right = right.filter(*[p.qr() for p in self.right_preds])
        return q.join(right, on=_written(self.on, "CustomerId"), how=self.how)

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        r = self._right_pd()
        lk, rk = _zero_sign(df["CustomerId"]), r["CustomerId"]
        matched = lk.isin(rk.dropna()).fillna(False).astype(bool) & lk.notna()  # NULL never
        if self.how == "semi":
            return df[matched]
        if self.how == "anti":
            return df[~matched]
        names = _join_names(df.columns)
        rr = r[rk.notna()].rename(columns=names).rename(columns={"CustomerId": "__k"})
        ll = df[lk.notna()].assign(__k=lk[lk.notna()])
        out = ll.merge(rr, on="__k", how="inner").drop(columns="__k")
        if self.how == "left":
            rest = df[~matched].copy()
            for c in names.values():
                rest[c] = pd.Series(pd.NA, index=rest.index, dtype=STR)
            out = pd.concat([out, rest], ignore_index=True)
        return out[[*df.columns, *names.values()]].reset_index(drop=True)

    def advance(self, s: State) -> State:
        left = s.cols
        if self.how in ("semi", "anti"):
            return replace(s, cols=left, order=None, total=False, joins=s.joins + 1,
                       sorted_sql=False, scalar_agg=False, avoid=frozenset())
        names = _join_names(s.names)
        cols = (*left, *((names[c], TEXT) for c in ("name", "region")))
        return replace(s, cols=cols, unique=(), rows=s.rows * 3, joins=s.joins + 1,
                       order=None, total=False, sorted_sql=False, scalar_agg=False,
                       avoid=frozenset())

    def __repr__(self) -> str:
        right = "customers" + (Filter(self.right_preds).__repr__() if self.right_preds else "")
        return f".join({right}, on={self.on!r}, how={self.how!r})"


@dataclass(repr=False)
class OrderBy(Step):
    keys: list[tuple[str, bool, bool, str]]  # (column, descending, nulls first, spelling)

    def _key(self, name: str, desc: bool, nulls_first: bool, style: str) -> Any:
        if desc:
            return qr.desc(name, nulls_first=nulls_first)
        if nulls_first or style == "asc":
            return qr.asc(name, nulls_first=nulls_first)
        return qr.col(name) if style == "col" else name

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.order_by(*[self._key(*k) for k in self.keys])

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        work = df.copy()
        by, ascending = [], []
        for i, (name, desc, nulls_first, _) in enumerate(self.keys):
            work[f"__n{i}"] = df[name].notna() if nulls_first else df[name].isna()
            by += [f"__n{i}", name]
            ascending += [True, not desc]
        work = work.sort_values(by, ascending=ascending, na_position="last", kind="stable")
        return work[list(df.columns)]

    def advance(self, s: State) -> State:
        names = [n for n, _, _, _ in self.keys]
        total = any(u <= set(names) for u in s.unique)
        return replace(s, order=tuple(dict.fromkeys(names)), total=total, sorted_sql=True)

    def __repr__(self) -> str:
        def key(name: str, desc: bool, nulls_first: bool, style: str) -> str:
            nf = ", nulls_first=True" if nulls_first else ""
            if desc:
                return f"qr.desc({name!r}{nf})"
            if nulls_first or style == "asc":
                return f"qr.asc({name!r}{nf})"
            return f"qr.col({name!r})" if style == "col" else repr(name)

        return f".order_by({', '.join(key(*k) for k in self.keys)})"


@dataclass(repr=False)
class Limit(Step):
    n: int
    offset: int

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.limit(self.n, self.offset)

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.iloc[self.offset:self.offset + self.n]

    def advance(self, s: State) -> State:
        return s  # ORDER BY ... LIMIT keeps the order

    def __repr__(self) -> str:
        return f".limit({self.n}, {self.offset})"


@dataclass(repr=False)
class Distinct(Step):
    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.distinct()

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        norm = df.apply(_zero_sign)
        return norm.drop_duplicates()  # NULLs equal each other, as in SQL DISTINCT

    def advance(self, s: State) -> State:
        return replace(s, unique=(*s.unique, frozenset(s.names)), order=None, total=False)

    def __repr__(self) -> str:
        return ".distinct()"


WINDOW_FUNCS = ("row_number", "rank", "dense_rank", "lag", "lead", "sum", "mean", "count",
                "count_star", "min", "max")
TOTAL_ORDER_FUNCS = ("row_number", "lag", "lead")  # deterministic only over a total order


def _codes(s: pd.Series) -> np.ndarray:
    """Integer codes with equal values (NULLs too) equal: peers and partitions."""
    return pd.factorize(_zero_sign(s), use_na_sentinel=False)[0]


def _starts(change: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row of its run (``change`` marks run starts)."""
    idx = np.arange(len(change))
    return np.maximum.accumulate(np.where(change, idx, 0))


def _ends(change: np.ndarray) -> np.ndarray:
    """For each row, the index of the last row of its run."""
    n = len(change)
    nxt = np.append(change[1:], True)  # a run ends where the next one starts
    idx = np.arange(n)
    return np.minimum.accumulate(np.where(nxt, idx, n - 1)[::-1])[::-1]


def _series(values: Sequence[Any], kind: str, index: pd.Index) -> pd.Series:
    clean = [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v
             for v in values]
    return pd.Series(pd.array(clean, dtype=NUM if kind == "num" else STR), index=index)


@dataclass(repr=False)
class Window(Step):
    """``mutate(name=fn.over(partition_by=..., order_by=...))``."""

    name: str
    fn: str
    arg: V | None
    partition: list[str]
    order: list[tuple[str, bool, bool]]  # (column, descending, nulls first)
    meta: Meta
    offset: int = 1  # lag/lead
    default: Any = None  # lag/lead: the value past the partition's edge

    def expr(self) -> Any:
        if self.fn in ("row_number", "rank", "dense_rank"):
            e = getattr(qr, self.fn)()
        elif self.fn in ("lag", "lead"):
            assert self.arg is not None
            e = getattr(qr, self.fn)(self.arg.qr(), self.offset, self.default)
        elif self.fn == "count_star":
            e = qr.count()
        else:
            assert self.arg is not None
            e = getattr(self.arg.qr(), self.fn)()
        keys = [qr.desc(c, nulls_first=nf) if d else qr.asc(c, nulls_first=nf)
                for c, d, nf in self.order]
        return e.over(partition_by=list(self.partition) or None, order_by=keys or None)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.mutate(**{self.name: self.expr()})

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        n = len(df)
        if n == 0:
            out[self.name] = _series([], self.meta.kind, df.index)
            return out
        work = pd.DataFrame({"__pos": np.arange(n)}, index=df.index)
        parts = []
        for i, c in enumerate(self.partition):
            work[f"__p{i}"] = _zero_sign(df[c])
            parts.append(f"__p{i}")
        by, ascending, keys = list(parts), [True] * len(parts), []
        for i, (c, desc, nulls_first) in enumerate(self.order):
            key = _zero_sign(df[c])
            work[f"__n{i}"] = key.notna() if nulls_first else key.isna()
            work[f"__o{i}"] = key
            by += [f"__n{i}", f"__o{i}"]
            ascending += [True, not desc]
            keys.append(f"__o{i}")
        if self.arg is not None:
            work["__v"] = self.arg.pd(df)
        if by:
            work = work.sort_values(by, ascending=ascending, na_position="last", kind="stable")
        pchange = np.zeros(n, dtype=bool)
        pchange[0] = True
        for c in parts:
            code = _codes(work[c])
            pchange[1:] |= code[1:] != code[:-1]
        change = pchange.copy()  # a new peer group: new partition or new sort key values
        for c in keys:
            code = _codes(work[c])
            change[1:] |= code[1:] != code[:-1]
        start, end = _starts(pchange), _ends(pchange)
        idx = np.arange(n)
        fn = self.fn
        values: Sequence[Any]
        if fn == "row_number":
            values = (idx - start + 1).astype(float)
        elif fn == "rank":
            values = (_starts(change) - start + 1).astype(float)
        elif fn == "dense_rank":
            group = np.cumsum(change)
            values = (group - group[start] + 1).astype(float)
        elif fn in ("lag", "lead"):
            v = work["__v"].astype(object).tolist()
            src = idx - self.offset if fn == "lag" else idx + self.offset
            inside = (src >= start) & (src <= end)
            values = [v[j] if ok else self.default for j, ok in zip(src, inside, strict=True)]
        elif fn in ("min", "max"):
            pid = np.cumsum(pchange)
            values = work["__v"].groupby(pid).transform(fn).astype(object).tolist()
        else:  # sum / mean / count / count(*): over the partition, or running with peers
            if fn == "count_star":
                vals, has = np.ones(n), np.ones(n, dtype=bool)
            else:
                raw = work["__v"]
                has = raw.notna().to_numpy()
                vals = np.where(has, raw.astype("float64").fillna(0.0).to_numpy(), 0.0) \
                    if self.arg is not None and self.arg.meta.kind == "num" else has * 1.0
            csum, ccount = np.cumsum(vals), np.cumsum(has)
            last = _ends(change) if self.order else end  # the frame ends at the last peer
            before = start - 1
            total = csum[last] - np.where(before >= 0, csum[np.maximum(before, 0)], 0.0)
            count = ccount[last] - np.where(before >= 0, ccount[np.maximum(before, 0)], 0)
            if fn in ("count", "count_star"):
                values = count.astype(float)
            elif fn == "sum":
                values = [t if c else None for t, c in zip(total, count, strict=True)]
            else:
                values = [t / c if c else None for t, c in zip(total, count, strict=True)]
        result = [None] * n
        for pos, v in zip(work["__pos"].to_numpy(), values, strict=True):
            result[pos] = v
        out[self.name] = _series(result, self.meta.kind, df.index)
        return out

    def advance(self, s: State) -> State:
        return keep_order(s, replace(s, cols=(*s.cols, (self.name, self.meta))))

    def __repr__(self) -> str:
        if self.fn in ("row_number", "rank", "dense_rank"):
            e = f"qr.{self.fn}()"
        elif self.fn in ("lag", "lead"):
            e = f"qr.{self.fn}({self.arg!r}, {self.offset}, {self.default!r})"
        elif self.fn == "count_star":
            e = "qr.count()"
        else:
            e = f"{self.arg!r}.{self.fn}()"
        keys = ", ".join(f"qr.{'desc' if d else 'asc'}({c!r}, nulls_first={nf})"
                         for c, d, nf in self.order)
        return (f".mutate({self.name}={e}.over(partition_by={self.partition!r}, "
                f"order_by=[{keys}]))")


def _row_keys(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as tuples in which equal SQL values (NULLs, 0.0 and -0.0) are equal."""
    cols = []
    for c in df.columns:
        cols.append([None if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                     else (v + 0.0 if isinstance(v, float) else v) for v in df[c].tolist()])
    return list(zip(*cols, strict=True)) if cols else [() for _ in range(len(df))]


def set_rows(kind: str, distinct: bool, df: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """``df UNION/INTERSECT/EXCEPT [ALL] right`` (NULLs equal each other, as in SQL)."""
    if kind == "union":
        both = pd.concat([df, right.set_axis(df.columns, axis=1)], ignore_index=True)
        if not distinct:
            return both
        seen: set[tuple[Any, ...]] = set()
        keep = [i for i, k in enumerate(_row_keys(both)) if not (k in seen or seen.add(k))]
        return both.iloc[keep]
    theirs = Counter(_row_keys(right))
    keep, seen = [], set()
    for i, k in enumerate(_row_keys(df)):
        if distinct:
            if k in seen:
                continue
            seen.add(k)
            if (k in theirs) == (kind == "intersect"):
                keep.append(i)
        elif kind == "intersect":  # ALL: as many copies as both sides have
            if theirs[k] > 0:
                theirs[k] -= 1
                keep.append(i)
        elif theirs[k] > 0:  # EXCEPT ALL: each right copy takes one left copy away
            theirs[k] -= 1
        else:
            keep.append(i)
    return df.iloc[keep]


@dataclass(repr=False)
class SetOp(Step):
    """``q.union(q.filter(p))`` and friends: the right side is this query, maybe filtered."""

    kind: str  # union | intersect | except
    distinct: bool
    right_preds: list[P]

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        right = q.filter(*[p.qr() for p in self.right_preds]) if self.right_preds else q
        if self.kind == "union":
            return q.union(right, distinct=self.distinct)
        if self.kind == "intersect":
            return q.intersect(right, distinct=self.distinct)
        return q.except_(right, distinct=self.distinct)

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        right = Filter(self.right_preds).on_pd(df) if self.right_preds else df
        return set_rows(self.kind, self.distinct, df, right)

    def advance(self, s: State) -> State:
        if self.kind == "union":
            unique = (frozenset(s.names),) if self.distinct else ()
            rows = 2 * s.rows
        else:  # a subset of the left side: its keys stay keys
            unique = (*s.unique, frozenset(s.names)) if self.distinct else s.unique
            rows = s.rows
        return replace(s, unique=unique, rows=rows, order=None, total=False, sorted_sql=False,
                       scalar_agg=False)

    def __repr__(self) -> str:
        right = "q" + (Filter(self.right_preds).__repr__() if self.right_preds else "")
        method = "except_" if self.kind == "except" else self.kind
        return f".{method}({right}, distinct={self.distinct})"


# -- SQL sources: con.sql over SQL written the way people write it ------------------------------
# A pipeline may start from ``con.sql(text)`` instead of the orders table: SQL over the fuzz
# tables with the shapes found in real query sets (TPC-H, TPC-DS): a WITH clause (its CTE
# sometimes named like the real FuzzCustomers table, which a later join reads), windows in the
# projection, GROUP BY positions, set operations, and an ORDER BY (positions, output names,
# expressions over inputs or over a CTE's columns the outer query passes on, explicit NULLS
# placement) with a LIMIT when the order is total. The text is valid on DuckDB and PostgreSQL as
# it is; other engines get sqlglot's transpilation (engines that cannot run it list
# "sql_source" in ENGINE_GAPS). The reference computes the same rows in pandas.
def _sql_ident(name: str) -> str:
    return name if name == name.lower() else f'"{name}"'


def _sql_value(v: Any) -> str:
    return f"'{v}'" if isinstance(v, str) else repr(v)


_SQL_CMP = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "<>"}


def _sql_of(x: Any) -> str:
    """SQL text of the predicates :func:`_source_pred` draws."""
    if isinstance(x, Col):
        return _sql_ident(x.name)
    if isinstance(x, Lit):
        return _sql_value(x.value)
    if isinstance(x, Cmp):
        return f"{_sql_of(x.a)} {_SQL_CMP[x.op]} {_sql_of(x.b)}"
    if isinstance(x, IsNull):
        return f"{_sql_of(x.a)} IS {'NOT ' if x.negate else ''}NULL"
    if isinstance(x, And):
        return f"({_sql_of(x.a)} AND {_sql_of(x.b)})"
    if isinstance(x, Or):
        return f"({_sql_of(x.a)} OR {_sql_of(x.b)})"
    assert isinstance(x, Not), x
    return f"NOT ({_sql_of(x.a)})"


def _source_pred(draw: Draw, depth: int = 1) -> P:
    """A WHERE predicate over the orders table, in the forms :func:`_sql_of` writes."""
    kind = pick(draw, ["num", "text", "null", "and", "or", "not"] if depth else
                ["num", "text", "null"])
    if kind in ("and", "or"):
        a, b = _source_pred(draw, depth - 1), _source_pred(draw, depth - 1)
        return And(a, b) if kind == "and" else Or(a, b)
    if kind == "not":
        return Not(_source_pred(draw, depth - 1))
    if kind == "num":
        name = pick(draw, ["qty", "amount", "CustomerId", "id"])
        v = pick(draw, [5, 10, 0, 100, 200, 20])
        return Cmp(pick(draw, list(_CMP)), Col(name, ORDERS_KINDS[name]),
                   Lit(v, Meta("num", abs(v))))
    if kind == "text":
        name = pick(draw, ["region", "Status"])
        return Cmp(pick(draw, ["==", "!=", "<", ">="]), Col(name, TEXT),
                   Lit(pick(draw, ["north", "open", "east", "held", "m"]), TEXT))
    return IsNull(Col(pick(draw, ["region", "amount", "qty", "Status"]), TEXT), coin(draw))


def _running_sum(d: pd.DataFrame) -> pd.Series:
    """``SUM(qty) OVER (PARTITION BY region ORDER BY id)``: NULLs skipped, NULL until the
    partition's first value; NULL regions are one partition."""
    work = d.sort_values("id")
    part = work["region"].astype(object).where(work["region"].notna(), "\0")
    qty = work["qty"].astype("float64")
    total = qty.fillna(0.0).groupby(part, sort=False).cumsum()
    seen = qty.notna().groupby(part, sort=False).cumsum()
    return pd.Series(pd.array(total.where(seen > 0).reindex(d.index), dtype=NUM), index=d.index)


# alias: (SQL over the orders table, the same in pandas, metadata); "a" is the key
SOURCE_ITEMS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series], Meta]] = {
    "a": ("id", lambda d: d["id"], ORDERS_KINDS["id"]),
    "b2": ("amount * 2", lambda d: d["amount"] * 2, Meta("num", 1000)),
    "q1": ("qty + 1", lambda d: d["qty"] + 1, Meta("num", 21)),
    "r": ("region", lambda d: d["region"], TEXT),
    "Status": ('"Status"', lambda d: d["Status"], TEXT),
    "CustomerId": ('"CustomerId"', lambda d: d["CustomerId"], ORDERS_KINDS["CustomerId"]),
    "amount": ("amount", lambda d: d["amount"], ORDERS_KINDS["amount"]),
}
WINDOW_ITEMS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series], Meta]] = {
    "rn": ("ROW_NUMBER() OVER (ORDER BY id)",
           lambda d: d["id"].rank(method="first").astype(NUM), Meta("num", 400)),
    "rs": ("SUM(qty) OVER (PARTITION BY region ORDER BY id)", _running_sum, Meta("num", 8000)),
}


def _sorted_by(df: pd.DataFrame, keys: list[tuple[pd.Series, bool, bool]]) -> pd.DataFrame:
    """Rows in the order of (value, descending, NULLs first) keys, ties kept as they are."""
    work = df.reset_index(drop=True)
    cols, ascending = {}, []
    for i, (v, desc, nulls_first) in enumerate(keys):
        v = v.reset_index(drop=True)
        cols[f"__n{i}"] = v.notna() if nulls_first else v.isna()
        cols[f"__k{i}"] = v
        ascending += [True, not desc]
    order = pd.DataFrame(cols).sort_values(list(cols), ascending=ascending,
                                           na_position="last", kind="stable").index
    return work.loc[order].reset_index(drop=True)


@dataclass(repr=False)
class SqlSource(Step):
    """``con.sql(text)``: the pipeline's first step (it replaces the orders table)."""

    text: str  # DuckDB and PostgreSQL read it as it is
    frame: pd.DataFrame  # its rows, from pandas (in its order, where it has one)
    state: State

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        con = env.orders.connection
        text = self.text
        if con.dialect not in ("duckdb", "postgres"):
            text = sqlglot.transpile(text, read="postgres", write=con.dialect)[0]
        return con.sql(text)

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.frame

    def advance(self, s: State) -> State:
        return replace(self.state, respell=s.respell, gaps=s.gaps)

    def __repr__(self) -> str:
        return f"con.sql({self.text!r})"


def _order_clause(draw: Draw, names: list[str], frame: pd.DataFrame, metas: dict[str, Meta],
                  total_key: list[str], exprs: dict[str, str] | None = None,
                  names_only: bool = False) -> tuple[str, pd.DataFrame, list[str], bool]:
    """An ORDER BY over the output columns: each key a position, an output name or (unless
    ``names_only``) an expression (``-b2`` over a column the query reads as ``b2``, or the
    output's own expression over the inputs, ``exprs``). ``total_key`` is appended when drawn
    (the order is then total). Returns the clause, the rows in that order, the output columns
    the keys sort on, and whether the order is total."""
    chosen = some(draw, names, 1, 2)
    if total_key and coin(draw):
        chosen += [k for k in total_key if k not in chosen]
    terms, keys = [], []
    for name in chosen:
        desc, nulls_first = coin(draw), one_in(draw, 3)
        styles = ["position", "name"]
        if not names_only and metas[name].kind == "num":
            styles += ["negated"]
        if not names_only and exprs and name in exprs and exprs[name] != _sql_ident(name):
            styles += ["expression"]
        style = pick(draw, styles)
        value = frame[name]
        if style == "position":
            written = str(names.index(name) + 1)
        elif style == "name":
            written = _sql_ident(name)
        elif style == "negated":  # -x ASC is x DESC: written one way, sorted the other
            src = exprs[name] if exprs else _sql_ident(name)
            written = f"-({src})" if exprs else f"-{src}"
            value = -value
        else:
            written = exprs[name]  # type: ignore[index]
        nulls = "FIRST" if nulls_first else "LAST"
        terms.append(f"{written} {'DESC' if desc else 'ASC'} NULLS {nulls}")
        keys.append((value, desc, nulls_first))
    total = bool(total_key) and set(total_key) <= set(chosen)
    return "ORDER BY " + ", ".join(terms), _sorted_by(frame, keys), chosen, total


@st.composite
def sql_source(draw: Draw) -> SqlSource:
    """A ``con.sql`` source (see the section's comment)."""
    shape = pick(draw, ["select", "cte", "group", "setop", "cte"])
    where = _source_pred(draw) if not one_in(draw, 3) else None
    base = ORDERS_PD[_truth(where.pd(ORDERS_PD))] if where is not None else ORDERS_PD
    where_sql = f" WHERE {_sql_of(where)}" if where is not None else ""
    pool = list(SOURCE_ITEMS) + (list(WINDOW_ITEMS) if shape != "setop" else [])
    items = {**SOURCE_ITEMS, **WINDOW_ITEMS}
    unique: tuple[frozenset[str], ...] = ()
    if shape == "group":
        # GROUP BY positions; COUNT(*) and SUM over the groups
        frame = GroupAgg(["region", "Status"], [], [
            ("n", "count_star", None, Meta("num", 400)),
            ("s", "sum", Col("qty", ORDERS_KINDS["qty"]), Meta("num", 8000))]).on_pd(base)
        frame = frame.rename(columns={"region": "r"}).reset_index(drop=True)
        metas = {"r": TEXT, "Status": TEXT, "n": Meta("num", 400), "s": Meta("num", 8000)}
        select = f'SELECT region AS r, "Status", COUNT(*) AS n, SUM(qty) AS s ' \
                 f'FROM {ORDERS_TABLE}{where_sql} GROUP BY 1, 2'
        names, unique = list(frame.columns), (frozenset({"r", "Status"}),)
        exprs = {"r": "region", "Status": '"Status"', "n": "COUNT(*)", "s": "SUM(qty)"}
        total_key = ["r", "Status"]
        order_names_only = False
    else:
        names = some(draw, pool, 1, 4)
        if "a" not in names and not one_in(draw, 4):
            names.insert(draw(_ints(0, len(names))), "a")
        metas = {n: items[n][2] for n in names}
        frame = pd.DataFrame({n: items[n][1](base) for n in names}).reset_index(drop=True)
        proj = ", ".join(items[n][0] if items[n][0] == _sql_ident(n) else
                         f"{items[n][0]} AS {_sql_ident(n)}" for n in names)
        exprs = {n: items[n][0] for n in names}
        unique = (frozenset({"a"}),) if "a" in names else ()
        total_key = ["a"] if "a" in names else []
        order_names_only = False
        if shape == "select":
            select = f'SELECT {proj} FROM {ORDERS_TABLE}{where_sql}'
        elif shape == "cte":
            cte = pick(draw, ["base", CUSTOMERS_TABLE, "o"])
            outer = ", ".join(_sql_ident(n) for n in names)
            select = f'WITH {cte} AS (SELECT {proj} FROM {ORDERS_TABLE}{where_sql}) ' \
                     f"SELECT {outer} FROM {cte}"
            exprs = {n: _sql_ident(n) for n in names}  # the outer query reads the CTE's names
        else:
            kind = pick(draw, ["union", "union", "intersect", "except"])
            distinct = coin(draw)
            other = _source_pred(draw)
            right_base = ORDERS_PD[_truth(other.pd(ORDERS_PD))]
            right = pd.DataFrame({n: items[n][1](right_base) for n in names})
            frame = set_rows(kind, distinct, frame, right).reset_index(drop=True)
            op = {"union": "UNION", "intersect": "INTERSECT", "except": "EXCEPT"}[kind]
            select = f'SELECT {proj} FROM {ORDERS_TABLE}{where_sql} ' \
                     f'{op}{"" if distinct else " ALL"} ' \
                     f'SELECT {proj} FROM {ORDERS_TABLE} WHERE {_sql_of(other)}'
            if kind == "union" and not distinct:
                unique, total_key = (), []
            elif distinct:
                unique = (*unique, frozenset(names))
                total_key = total_key or list(names)
            exprs, order_names_only = None, True  # a set operation sorts on its outputs
    state = State(cols=tuple((n, metas[n]) for n in names), unique=unique, rows=2 * len(ORDERS),
                  grouped=shape == "group")
    text = select
    if not one_in(draw, 4):
        clause, frame, keys, total = _order_clause(draw, names, frame, metas, total_key, exprs,
                                                   order_names_only)
        text += " " + clause
        state = replace(state, order=tuple(keys), total=total, sorted_sql=True)
        if total and coin(draw):
            n = draw(_ints(0, 30))
            text += f" LIMIT {n}"
            frame = frame.iloc[:n]
    return SqlSource(text, frame.reset_index(drop=True), state)


@dataclass(repr=False)
class Pipeline(_Code):
    steps: list[Step]
    final: State  # the generator's state after the last step

    def __repr__(self) -> str:
        steps = "".join(map(repr, self.steps))
        return steps if self.steps and isinstance(self.steps[0], SqlSource) else "orders" + steps


# -- generators ------------------------------------------------------------------------------
Draw = Callable[[st.SearchStrategy[Any]], Any]


# Strategies are made once and reused: building one per draw (st.sampled_from(list)) costs
# Hypothesis a validation and a label each time, which was most of the generator's time.
@functools.cache
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


_BOOL = st.booleans()


def pick(draw: Draw, seq: Sequence[Any]) -> Any:
    """One element (Hypothesis shrinks towards the first)."""
    return seq[draw(_ints(0, len(seq) - 1))]


def coin(draw: Draw) -> bool:
    return bool(draw(_BOOL))


def one_in(draw: Draw, k: int) -> bool:
    return draw(_ints(0, k - 1)) == 0


def some(draw: Draw, seq: Sequence[Any], lo: int, hi: int) -> list[Any]:
    """Between ``lo`` and ``hi`` distinct elements, in a drawn order."""
    pool = list(seq)
    out = []
    for _ in range(draw(_ints(min(lo, len(pool)), min(hi, len(pool))))):
        out.append(pool.pop(draw(_ints(0, len(pool) - 1))))
    return out


def _spell(draw: Draw, name: str, s: State) -> str:
    """The name as written: DuckDB resolves names case-insensitively, so a lowered spelling
    must find the mixed-case column (the table's, a computed one or a join key). Used only on
    such engines (see :func:`build`)."""
    if s.respell and name != name.lower() and one_in(draw, 4):
        return name.lower()
    return name


def _num_lit(draw: Draw) -> Lit:
    v = pick(draw, NUM_LITS)
    return Lit(v, Meta("num", abs(v), 1 if isinstance(v, float) else 0))


def _ok(m: Meta) -> bool:
    return m.bound <= VMAX and m.scale <= MAX_SCALE and (m.exact != FUZZY or
                                                         m.bound <= FUZZ_MAX)


def num_value(draw: Draw, s: State, depth: int, *, need_col: bool = False,
              fuzzy: bool = False) -> V:
    cols = [n for n, m in s.cols if m.kind == "num" and (fuzzy or m.usable)
            and m.bound <= VMAX and n not in s.avoid]
    kinds = (["col", "col"] if cols else []) + ([] if need_col and cols else ["lit"])
    if depth > 0 and cols:
        kinds += ["arith", "arith", "arith", "neg", "div"] + (["when"] if s.refs() else [])
        kinds += ["fn"] + (["len"] if s.refs("text") else [])
    kind = pick(draw, kinds)
    if kind == "fn":
        a = num_value(draw, s, depth - 1, need_col=True, fuzzy=fuzzy)
        fn, args = pick(draw, NUM_FNS)
        if fn == "sign":
            return NumFn(fn, args, a, Meta("num", 1, 0, a.meta.exact))
        extra = max((abs(v) for v in args if isinstance(v, int | float)), default=0)
        return NumFn(fn, args, a, replace(a.meta, bound=max(a.meta.bound, extra),
                                          const=False, shadow=False))
    if kind == "len":
        return TextLen(Col(pick(draw, s.refs("text")), TEXT), Meta("num", 100))
    if kind == "col":
        name = pick(draw, cols)
        return Col(name, s.meta(name), _spell(draw, name, s))
    if kind == "lit":
        return _num_lit(draw)
    if kind == "neg":
        a = num_value(draw, s, depth - 1, need_col=True, fuzzy=fuzzy)
        return Neg(a, a.meta)
    if kind == "div":
        a = num_value(draw, s, depth - 1, need_col=True, fuzzy=fuzzy)
        d = pick(draw, DIVISORS)
        m = Meta("num", a.meta.bound / abs(d), 0, max(a.meta.exact, DET))
        return Div(a, d, m) if _ok(m) else a
    if kind == "when":
        cond = pred(draw, s, depth - 1)
        a = num_value(draw, s, depth - 1, fuzzy=fuzzy)
        b = num_value(draw, s, depth - 1, fuzzy=fuzzy)
        m = Meta("num", max(a.meta.bound, b.meta.bound), max(a.meta.scale, b.meta.scale),
                 max(a.meta.exact, b.meta.exact))
        return When(cond, a, b, m) if _ok(m) else a
    op = pick(draw, ["+", "-", "*"])
    a = num_value(draw, s, depth - 1, fuzzy=fuzzy)
    b = num_value(draw, s, depth - 1, fuzzy=fuzzy)
    if isinstance(a, Lit) and isinstance(b, Lit):  # keep a column in every operation
        name = pick(draw, cols)
        b = Col(name, s.meta(name))
    if coin(draw):
        a, b = b, a  # Python numbers on either side
    ma, mb = a.meta, b.meta
    if op == "*":
        m = Meta("num", ma.bound * mb.bound, ma.scale + mb.scale, max(ma.exact, mb.exact))
    else:
        m = Meta("num", ma.bound + mb.bound, max(ma.scale, mb.scale), max(ma.exact, mb.exact))
    return Arith(op, a, b, m) if _ok(m) else (a if not isinstance(a, Lit) else b)


def text_value(draw: Draw, s: State, depth: int) -> V:
    cols = s.refs("text")
    kinds = (["col", "col"] if cols else []) + ["lit"] + (["when"] if depth > 0 and cols else [])
    kinds += ["fn"] if depth > 0 and cols else []
    kind = pick(draw, kinds)
    if kind == "col":
        return Col(pick(draw, cols), TEXT)
    if kind == "fn":
        fn, args = pick(draw, TEXT_FNS)
        return TextFn(fn, args, Col(pick(draw, cols), TEXT), TEXT)
    if kind == "lit":
        return Lit(pick(draw, TEXT_LITS), TEXT)
    return When(pred(draw, s, depth - 1), text_value(draw, s, depth - 1),
                text_value(draw, s, depth - 1), TEXT)


def can_filter(s: State) -> bool:
    return bool(s.refs())


def _isin_values(draw: Draw, pool: Sequence[Any]) -> list[Any]:
    """Mostly non-empty lists (maybe with a NULL); an empty IN (rendered FALSE) now and then."""
    n = 0 if one_in(draw, 8) else draw(_ints(1, 5))
    return [pick(draw, pool) for _ in range(n)]


def pred(draw: Draw, s: State, depth: int, *, agg: bool = False) -> P:
    """A predicate; ``agg``: may compare with an aggregate over all rows (filters only)."""
    nums = [n for n in s.refs("num") if s.meta(n).bound <= VMAX]
    texts = s.refs("text")
    kinds = []  # (Hypothesis favours the first choices: keep them selective but not empty)
    if nums:
        kinds += ["ncmp", "ncmp", "ncmp", "nisin", "nbetween"]
        if agg and not s.grouped:
            kinds += ["aggcmp"]  # (filtering on an aggregate projects a helper column)
    if texts:
        kinds += ["tcmp", "tcmp", "tisin", "tbetween", "tpred"]
    kinds += ["isnull"]
    if depth > 0:
        kinds += ["and", "or", "or", "not", "pisnull"]
    kind = pick(draw, kinds)
    op = pick(draw, list(_CMP))
    if kind in ("and", "or"):
        a, b = pred(draw, s, depth - 1, agg=agg), pred(draw, s, depth - 1, agg=agg)
        return And(a, b) if kind == "and" else Or(a, b)
    if kind == "not":
        return Not(pred(draw, s, depth - 1, agg=agg))
    if kind == "pisnull":
        return PredIsNull(pred(draw, s, depth - 1, agg=agg))
    if kind == "isnull":
        if nums and coin(draw):
            a: V = num_value(draw, s, 1, need_col=True)
        else:
            name = pick(draw, s.refs())
            a = Col(name, s.meta(name), _spell(draw, name, s))
        return IsNull(a, not coin(draw))
    if kind == "aggcmp":
        name = pick(draw, nums)
        return AggCmp(op, Col(name, s.meta(name)), pick(draw, ["mean", "min", "max"]))
    if kind == "ncmp":
        a = num_value(draw, s, min(depth, 2), need_col=True)
        b = num_value(draw, s, 1) if coin(draw) else _num_lit(draw)
        return Cmp(op, *((b, a) if coin(draw) else (a, b)))
    if kind == "nisin":
        a = num_value(draw, s, 1, need_col=True)
        return IsIn(a, _isin_values(draw, [*NUM_LITS, None]))
    if kind == "nbetween":
        a = num_value(draw, s, 1, need_col=True)
        return Between(a, pick(draw, NUM_LITS), pick(draw, NUM_LITS))
    name = pick(draw, texts)
    col = Col(name, TEXT, _spell(draw, name, s))
    if kind == "tcmp":
        others = [t for t in texts if t != name]
        other = pick(draw, others) if others and coin(draw) else None
        b = Col(other, TEXT) if other else Lit(pick(draw, TEXT_LITS), TEXT)
        return Cmp(op, *((b, col) if coin(draw) else (col, b)))
    if kind == "tisin":
        return IsIn(col, _isin_values(draw, [*TEXT_LITS, None]))
    if kind == "tpred":
        fn, pat = pick(draw, TEXT_PREDS)
        return TextPred(fn, col, pat)
    return Between(col, pick(draw, TEXT_LITS), pick(draw, TEXT_LITS))


def draw_filter(draw: Draw, s: State, names: Any) -> Step:
    n = 2 if one_in(draw, 4) else 1
    return Filter([pred(draw, s, 2, agg=True) for _ in range(n)])


def draw_mutate(draw: Draw, s: State, names: Any) -> Step:
    assigns: list[tuple[str, str, V]] = []
    replaceable = s.usable()
    for _ in range(draw(_ints(1, 2))):
        if coin(draw) or not replaceable:
            target = spelled = f"m{next(names)}"
        else:
            target = pick(draw, replaceable)
            if any(t == target for _, t, _ in assigns):
                continue
            spelled = _spell(draw, target, s)
        if one_in(draw, 4):
            v = text_value(draw, s, 1)
        else:
            v = num_value(draw, s, 2, fuzzy=True)
        assigns.append((spelled, target, v))
    if not assigns:  # fall back to copying the first column
        name, first = f"m{next(names)}", s.names[0]
        assigns.append((name, name, Col(first, s.meta(first))))
    return Mutate(assigns)


def draw_select(draw: Draw, s: State, names: Any) -> Step:
    return Select(some(draw, s.names, 1, len(s.names)))


def draw_drop(draw: Draw, s: State, names: Any) -> Step:
    gone = some(draw, s.names, 1, len(s.names) - 1)
    return Drop([(_spell(draw, n, s), n) for n in gone])


def draw_rename(draw: Draw, s: State, names: Any) -> Step:
    old = some(draw, s.names, 1, 2)
    return Rename([(_spell(draw, n, s), n, f"r{next(names)}") for n in old])


def draw_group(draw: Draw, s: State, names: Any) -> Step:
    keys = some(draw, s.usable(), 0, 2)
    named_keys = []
    if s.refs("num") and one_in(draw, 5):
        named_keys.append((f"k{next(names)}", num_value(draw, s, 1, need_col=True)))
    aggs: list[tuple[str, str, V | None, Meta]] = []
    for _ in range(draw(_ints(1, 3))):
        fn = pick(draw, [f for f in AGG_FUNCS if f not in s.gaps])
        out = f"a{next(names)}"
        if fn == "count_star":
            aggs.append((out, fn, None, Meta("num", s.rows)))
            continue
        if fn in ("sum", "mean", "median", "std") or coin(draw):
            if not [n for n, m in s.cols if m.kind == "num"]:
                continue
            v = num_value(draw, s, 1, need_col=True, fuzzy=True)
        else:
            name = pick(draw, s.names)
            v = Col(name, s.meta(name))
        m = v.meta
        if fn in ("count", "count_distinct"):
            if fn == "count_distinct" and not m.usable:
                continue
            meta = Meta("num", s.rows)
        elif fn == "sum":
            meta = Meta("num", m.bound * s.rows, m.scale, EXACT if m.exact == EXACT else FUZZY)
        elif fn == "mean":
            meta = Meta("num", m.bound, 0, DET if m.exact == EXACT else FUZZY)
        elif fn == "median":  # (the middle value or the mean of the two middle ones)
            meta = Meta("num", m.bound, 0, DET if m.exact == EXACT else FUZZY)
        elif fn == "std":  # (sample: NULL for one value, as pandas' NaN)
            meta = Meta("num", 2 * m.bound, 0, FUZZY)
        else:
            meta = m
        if meta.kind == "num" and not _ok(replace(meta, bound=min(meta.bound, VMAX))):
            continue
        aggs.append((out, fn, v, meta))
    if not aggs:
        aggs.append((f"a{next(names)}", "count_star", None, Meta("num", s.rows)))
    return GroupAgg(keys, named_keys, aggs)


def draw_join(draw: Draw, s: State, names: Any) -> Step:
    how = pick(draw, ["inner", "left", "semi", "anti"])
    on = pick(draw, ["CustomerId", "CustomerId", "customerid", "CUSTOMERID"]) if s.respell \
        else "CustomerId"
    filtered = not one_in(draw, 3) if how == "anti" else one_in(draw, 3)
    right = [pred(draw, replace(CUSTOMERS_STATE, respell=s.respell), 1)] if filtered else []
    return Join(how, on, right)


def _sort_key(draw: Draw, name: str) -> tuple[str, bool, bool]:
    return name, coin(draw), one_in(draw, 5)  # (column, descending, NULLs first)


def draw_order(draw: Draw, s: State, names: Any) -> Step:
    usable = s.usable()
    # often sort by a key (a total order, so a limit can follow)
    keys = [n for u in s.unique if u <= set(usable) for n in sorted(u)][: 3]
    chosen = some(draw, usable, 0 if keys else 1, 3)
    if keys and coin(draw):
        chosen = list(dict.fromkeys([*chosen, *keys]))
    if not chosen:
        chosen = [pick(draw, usable)]
    return OrderBy([(*_sort_key(draw, n), pick(draw, ["str", "col", "asc"])) for n in chosen])


def draw_limit(draw: Draw, s: State, names: Any) -> Step:
    n = draw(_ints(1, 60)) if not one_in(draw, 10) else 0
    return Limit(n, draw(_ints(0, 12)))


def draw_distinct(draw: Draw, s: State, names: Any) -> Step:
    return Distinct()


def draw_window(draw: Draw, s: State, names: Any) -> Step:
    usable = s.usable()
    partition = some(draw, usable, 0, 2)
    totals = [u for u in s.unique if u <= set(usable)]
    fns = [f for f in WINDOW_FUNCS if totals or f not in TOTAL_ORDER_FUNCS]
    fn = pick(draw, fns)
    order: list[tuple[str, bool, bool]] = []
    if fn in TOTAL_ORDER_FUNCS:  # ties broken by a key: one right answer
        unique = sorted(pick(draw, totals))  # (MariaDB, Snowflake: these need an ORDER BY)
        extra = some(draw, usable, 0, 1)
        order = [_sort_key(draw, n) for n in dict.fromkeys([*extra, *unique])]
    elif fn in ("rank", "dense_rank"):  # ties share a rank: any keys will do
        order = [_sort_key(draw, n) for n in some(draw, usable, 1, 2)]
    elif fn not in ("min", "max"):  # sum/mean/count: the partition, or running (with peers)
        order = [_sort_key(draw, n) for n in some(draw, usable, 0, 2)]
    name = f"w{next(names)}"
    rows = Meta("num", s.rows)
    if fn in ("row_number", "rank", "dense_rank", "count_star"):
        return Window(name, fn, None, partition, order, rows)
    if fn in ("sum", "mean"):
        if not [n for n, m in s.cols if m.kind == "num" and m.bound <= VMAX]:
            return Window(name, "count_star", None, partition, order, rows)
        v = num_value(draw, s, 1, need_col=True, fuzzy=True)
        m = v.meta
        meta = Meta("num", m.bound * s.rows, m.scale, EXACT if m.exact == EXACT else FUZZY) \
            if fn == "sum" else Meta("num", m.bound, 0, DET if m.exact == EXACT else FUZZY)
        if not _ok(meta):
            return Window(name, "count", v, partition, order, rows)
        return Window(name, fn, v, partition, order, meta)
    col = pick(draw, s.names)
    v = Col(col, s.meta(col))
    if fn == "count":
        return Window(name, fn, v, partition, order, rows)
    if fn in ("min", "max"):
        return Window(name, fn, v, partition, order, v.meta)
    offset = pick(draw, [1, 1, 2, 3])
    default = None
    if "lag_default" not in s.gaps and one_in(draw, 3):
        # (a whole number: DuckDB gives the default the value's type, LAG(int, 1, 0.5) is 1,
        # PostgreSQL the common one, 0.5; see docs/reliability.md)
        default = _num_lit(draw) if v.meta.kind == "num" else Lit(pick(draw, TEXT_LITS), TEXT)
        if isinstance(default.value, float):
            default = Lit(int(default.value), Meta("num", abs(int(default.value))))
    meta = v.meta
    if isinstance(default, Lit) and meta.kind == "num":
        meta = replace(meta, bound=max(meta.bound, default.meta.bound),
                       scale=max(meta.scale, default.meta.scale))
    return Window(name, fn, v, partition, order, meta, offset,
                  default.value if default is not None else None)


def draw_setop(draw: Draw, s: State, names: Any) -> Step:
    kind = pick(draw, ["union", "intersect", "except", "union"])
    preds = [pred(draw, s, 1)] if can_filter(s) and not one_in(draw, 4) else []
    distinct = coin(draw) or (kind != "union" and "set_all" in s.gaps)
    return SetOp(kind, distinct, preds)


def _available(s: State) -> list[tuple[str, Callable[..., Step]]]:
    out = []
    if can_filter(s):
        out += [("filter", draw_filter)] * 3
    out += [("mutate", draw_mutate)] * 2
    out += [("select", draw_select), ("rename", draw_rename)]
    if len(s.cols) > 1:
        out.append(("drop", draw_drop))
    if s.usable():
        out += [("group", draw_group)] * 2
        out += [("order", draw_order)] * 2
        out += [("window", draw_window)] * 2
    if (s.joins < 2 and "CustomerId" in s.names and s.meta("CustomerId").kind == "num"
            and s.meta("CustomerId").usable):
        out += [("join", draw_join)] * 2
    if s.order is not None and s.total:
        out += [("limit", draw_limit)] * 8
    if all(m.usable for _, m in s.cols):
        out.append(("distinct", draw_distinct))
        if s.rows <= 2000:
            out.append(("setop", draw_setop))
    return out


# Engine gaps the generator steers around (each pinned by a test that it raises a typed error):
# MariaDB's LAG/LEAD take no default value; Snowflake has no INTERSECT ALL / EXCEPT ALL.
# Both also skip the SQL sources for now (their text is DuckDB's and PostgreSQL's; see SqlSource).
ENGINE_GAPS = {"mariadb": frozenset({"lag_default", "sql_source", "median"}),
               "snowflake": frozenset({"set_all", "sql_source"})}


@st.composite
def pipelines(draw: Draw, max_steps: int = 6, respell: bool = True,
              gaps: frozenset[str] = frozenset()) -> Pipeline:
    """A pipeline over the orders table (``respell``: names may be written in another case;
    ``gaps``: what the engine cannot do)."""
    names = itertools.count()
    s = replace(ORDERS_STATE, respell=respell, gaps=gaps)
    steps: list[Step] = []
    if "sql_source" not in gaps and one_in(draw, 3):  # con.sql over SQL like real query sets
        source = draw(sql_source())
        steps.append(source)
        s = source.advance(s)
    for _ in range(draw(_ints(0 if steps else 1, max_steps - len(steps)))):
        _, make = pick(draw, _available(s))
        step = make(draw, s, names)
        steps.append(step)
        s = step.advance(s)
    return Pipeline(steps, s)


# -- running a pipeline, and comparing results ----------------------------------------------
def load(con: qr.Connection) -> Env:
    """The fuzz tables on ``con`` (replacing earlier copies)."""
    return Env(con.create_table(ORDERS_TABLE, ORDERS, replace=True),
               con.create_table(CUSTOMERS_TABLE, CUSTOMERS, replace=True))


# Hypothesis draws many pipelines that start like an earlier one (about 40% of all steps): the
# QueryRef and the reference frame of a prefix seen before are reused. QueryRefs are values
# (a step never changes the one it extends), so this is how users compose them as well; were
# a step to change its input in place, later pipelines on the same prefix would show it.
@contextlib.contextmanager
def names_for(env: Env) -> Iterator[None]:
    """Within: names written as ``env``'s engine reads them (see ``_RESPELL``)."""
    token = _RESPELL.set(env.orders.connection.backend.case_insensitive)
    try:
        yield
    finally:
        _RESPELL.reset(token)


def build(p: Pipeline, env: Env) -> qr.QueryRef:
    with names_for(env):
        return _build(p, env)


def _build(p: Pipeline, env: Env) -> qr.QueryRef:
    q, key = env.orders, ""
    for step in p.steps:
        key += repr(step)
        hit = env.built.find(key)  # (a QueryRef has no truth value: no `or` here)
        q = hit if hit is not None else env.built.keep(key, step.on_qr(q, env))
    return q


_REFERENCE = _Memo()


def reference(p: Pipeline) -> pd.DataFrame:
    df, key = ORDERS_PD, ""
    for step in p.steps:
        key += repr(step)
        hit = _REFERENCE.find(key)
        df = hit if hit is not None else _REFERENCE.keep(key, step.on_pd(df))
    return df.reset_index(drop=True)


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column comparable across engines: numbers as float64 rounded to 6 places (NaN as
    NULL, no -0.0), text as plain strings."""
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) \
            or pa.types.is_null(t):
        as_float = pc.cast(column, pa.float64())
        as_float = pc.if_else(pc.is_nan(as_float), None, as_float)
        return pc.add(pc.round(as_float, 6), 0.0)  # (+ 0.0: -0.0 becomes 0.0)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pc.cast(column, pa.string())
    return column


def table(data: pd.DataFrame | pa.Table) -> pa.Table:
    """A result (the reference's DataFrame or an engine's Arrow table) with plain columns
    named ``c0, c1, ...`` (names are compared apart)."""
    if isinstance(data, pd.DataFrame):
        cols = [_plain(pa.array(data[c], from_pandas=True)) for c in data.columns]
    else:
        cols = [_plain(c) for c in data.columns]
    return pa.table(cols, names=[f"c{i}" for i in range(len(cols))])


def _sorted(t: pa.Table) -> pa.Table:
    return t.sort_by([(c, "ascending") for c in t.column_names]) if t.num_columns else t


def columns(data: pd.DataFrame | Any) -> list[str]:
    return list(data.columns) if isinstance(data, pd.DataFrame) else list(data.column_names)


@dataclass(frozen=True)
class Expected:
    """The reference's answer, prepared once for comparing with every engine's."""

    columns: list[str]
    rows: pa.Table  # in order where ``ordered``, else sorted
    ordered: bool  # the pipeline promises this order (a total one)
    keys: pa.Table | None  # sort keys that must be in order (ties in any order)


def expected(want: pd.DataFrame, final: State) -> Expected:
    w = table(want)
    ordered = final.order is not None and final.total
    keys = None
    if final.order is not None and not ordered:
        keys = w.select([list(want.columns).index(k) for k in final.order])
    return Expected(list(want.columns), w if ordered else _sorted(w), ordered, keys)


def _differ(got: pa.Table, want: pa.Table, label: str) -> str:
    """A readable account of the first differences, for the assertion message."""
    g, w = got.to_pylist(), want.to_pylist()
    bad = [i for i, (a, b) in enumerate(zip(g, w, strict=False)) if a != b][:3]
    return f"{label}: {len(g)} rows, {len(w)} expected; " + "; ".join(
        f"row {i}: got {g[i]} expected {w[i]}" for i in bad)


def check(got: pd.DataFrame | pa.Table, want: Expected, label: str) -> None:
    """``got`` (an engine's result) holds the expected rows, in the expected order where the
    pipeline promises one, else with the sort keys in order."""
    assert columns(got) == want.columns, (label, columns(got), want.columns)
    g = table(got)
    assert g.num_rows == want.rows.num_rows, (label, g.num_rows, want.rows.num_rows)
    if not want.ordered:
        if want.keys is not None:  # ties in any order, but the keys in order
            keys = g.select(want.keys.column_names)
            assert keys.equals(want.keys), _differ(keys, want.keys, label + " (sort keys)")
        g = _sorted(g)
    assert g.equals(want.rows), _differ(g, want.rows, label)


def same(got: pd.DataFrame | pa.Table, want: pd.DataFrame, final: State, label: str) -> None:
    check(got, expected(want, final), label)
