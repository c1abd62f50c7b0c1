"""Property-based tests: random pipelines checked against an independent pandas reference.

1. ``test_pipeline_matches_pandas``: Hypothesis draws a pipeline over the conftest orders and
   customers data (NULLs, duplicate keys, the mixed-case ``CustomerId``): filters, mutates,
   select/drop/rename, group_by + agg, joins with customers, order_by + limit, distinct. The
   pipeline runs through queryref on DuckDB and, step by step, through a pandas reference
   written from SQL semantics (never from queryref's SQL); the rows must be the same.
2. ``test_ternary_logic_partitioning``: for a random predicate ``p`` (SQLancer's TLP),
   ``count(q) == count(q.filter(p)) + count(q.filter(~p)) + count(q.filter(p.is_null()))``.

SQL semantics the reference models:

- predicates are three-valued: a predicate is a pandas ``boolean`` Series (Kleene ``& | ~``,
  ``NA`` for unknown), a filter keeps rows where it is True, ``CASE WHEN`` takes the ELSE
  branch on unknown, ``x IN (..., NULL)`` is unknown when nothing matches;
- SUM/MIN/MAX/AVG skip NULLs and give NULL on an all-NULL (or empty) input, COUNT(col) counts
  non-NULLs, NULL group keys form their own group, a whole-table aggregate has one row even
  when the input is empty;
- a NULL join key never matches (an anti join keeps it); ``/`` is true division.

Numbers are kept in pandas ``Float64`` (nullable) and text in a NA-backed string dtype. To keep
float results comparable to 6 decimals (what ``same_rows`` rounds to) the generator tracks a
bound on every numeric column's magnitude, the decimal scale DuckDB's DECIMAL arithmetic would
need, and whether its values are exact, deterministic (IEEE, same in both engines) or "fuzzy"
(order-dependent float sums); fuzzy columns are never used as keys or in predicates.

``QUERYREF_FUZZ_EXAMPLES`` scales the number of examples (default 160 / 120).
"""

from __future__ import annotations

import itertools
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import queryref as qr
from conftest import make_customers, make_orders, same_rows

NUM = "Float64"
STR = pd.StringDtype("python", na_value=pd.NA)

EXACT, DET, FUZZY = 0, 1, 2  # exact values / deterministic IEEE results / order-dependent sums
VMAX = 1e9  # row values stay inside DuckDB's INTEGER (int literals are INT32): no overflow
FUZZ_MAX = 1e6  # an order-dependent float keeps its error far below 1e-6 while this small
MAX_SCALE = 4  # DECIMAL scale from multiplying by 1.5 etc.: exact in float64 and in DuckDB

_EXAMPLES = int(os.environ.get("QUERYREF_FUZZ_EXAMPLES", "0") or 0)
PIPELINE_EXAMPLES = _EXAMPLES or 160
TLP_EXAMPLES = _EXAMPLES or 120

NUM_LITS = [10, 0, 1, 2, 3, 5, 100, -1, -2, -7, 0.5, 1.5, 2.5, -0.5]
TEXT_LITS = ["north", "open", "east", "south", "held", "west", "closed", "m", "", "zz", "c1",
             "c3"]
DIVISORS = [2, 3, 4, -2, 0.5, 8]


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
    "id": Meta("num", 400), "region": TEXT, "status": TEXT, "amount": Meta("num", 500),
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


ORDERS_PD = _reference_frame(make_orders(), ORDERS_KINDS)
CUSTOMERS_PD = _reference_frame(make_customers(), CUSTOMER_KINDS)
ORDERS_STATE = _state_of(ORDERS_PD, ORDERS_KINDS, ["id"])
CUSTOMERS_STATE = _state_of(CUSTOMERS_PD, CUSTOMER_KINDS, [])


def _const(df: pd.DataFrame, value: Any, kind: str) -> pd.Series:
    return pd.Series([value] * len(df), index=df.index, dtype=NUM if kind == "num" else STR)


def _zero_sign(s: pd.Series) -> pd.Series:
    """-0.0 -> 0.0 (SQL and pandas compare them equal; BIGINT arithmetic never makes -0)."""
    return s + 0.0 if s.dtype == NUM or s.dtype.kind == "f" else s


def _truth(mask: pd.Series) -> pd.Series:
    """Rows where a three-valued predicate is True (unknown counts as not)."""
    return mask.fillna(False).astype(bool)


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
        return qr.col(self.spelled or self.name)

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
        return _CMP[self.op](self.a.pd(df), self.b.pd(df)).astype("boolean")

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
        return _CMP[self.op](s, _const(df, whole, "num")).astype("boolean")

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
            return pd.Series(False, index=df.index, dtype="boolean")
        present = [v for v in self.values if v is not None]
        hit = s.isin(present).fillna(False).astype(bool) & s.notna()
        out = pd.Series(hit, index=df.index, dtype="boolean")
        unknown = s.isna() | (~hit & (len(present) < len(self.values)))
        out[unknown] = pd.NA
        return out

    def __repr__(self) -> str:
        return f"{self.a!r}.isin({self.values!r})"


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
        return (s >= _const(df, self.lo, kind)).astype("boolean") & \
            (s <= _const(df, self.hi, kind)).astype("boolean")

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
        return (s.notna() if self.negate else s.isna()).astype("boolean")

    def __repr__(self) -> str:
        return f"{self.a!r}.{'not_null' if self.negate else 'is_null'}()"


@dataclass(repr=False)
class PredIsNull(P):
    """``(p) IS NULL``: true exactly where the predicate is unknown."""

    a: P

    def qr(self) -> Any:
        return self.a.qr().is_null()

    def pd(self, df: pd.DataFrame) -> pd.Series:
        return self.a.pd(df).isna().astype("boolean")

    def __repr__(self) -> str:
        return f"{self.a!r}.is_null()"


# -- pipeline steps ----------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Env(_Code):
    orders: qr.QueryRef
    customers: qr.QueryRef

    def __repr__(self) -> str:
        return "<orders and customers on one DuckDB connection>"


class Step(_Code):
    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        raise NotImplementedError

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def advance(self, s: State) -> State:
        raise NotImplementedError


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
        return replace(s, order=None, total=False)

    def __repr__(self) -> str:
        return f".filter({', '.join(map(repr, self.preds))})"


@dataclass(repr=False)
class Mutate(Step):
    assigns: list[tuple[str, str, V]]  # (as written, the column it names, value)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        # text passed to mutate() is SQL, so a string literal goes in as qr.lit(...)
        return q.mutate(**{spelled: qr.lit(v.value) if isinstance(v, Lit) and
                           v.meta.kind == "text" else v.qr() for spelled, _, v in self.assigns})

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
        return replace(s, cols=tuple(cols.items()), order=None, total=False,
                       unique=tuple(u for u in s.unique if not u & replaced))

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
        return replace(s, cols=tuple((n, s.meta(n)) for n in self.names), order=None,
                       avoid=s.avoid & kept,
                       total=False, unique=tuple(u for u in s.unique if u <= kept))

    def __repr__(self) -> str:
        return f".select({', '.join(map(repr, self.names))})"


@dataclass(repr=False)
class Drop(Step):
    names: list[tuple[str, str]]  # (as written, column)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.drop(*[spelled for spelled, _ in self.names])

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=[n for _, n in self.names])

    def advance(self, s: State) -> State:
        gone = {n for _, n in self.names}
        return replace(s, cols=tuple(c for c in s.cols if c[0] not in gone), order=None,
                       total=False, unique=tuple(u for u in s.unique if not u & gone))

    def __repr__(self) -> str:
        return f".drop({', '.join(repr(a) for a, _ in self.names)})"


@dataclass(repr=False)
class Rename(Step):
    pairs: list[tuple[str, str, str]]  # (as written, column, new name)

    def on_qr(self, q: qr.QueryRef, env: Env) -> qr.QueryRef:
        return q.rename({spelled: new for spelled, _, new in self.pairs})

    def on_pd(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.rename(columns={old: new for _, old, new in self.pairs})

    def advance(self, s: State) -> State:
        m = {old: new for _, old, new in self.pairs}
        return replace(s, cols=tuple((m.get(n, n), meta) for n, meta in s.cols), order=None,
                       avoid=frozenset(m.get(n, n) for n in s.avoid),
                       total=False, unique=tuple(frozenset(m.get(n, n) for n in u)
                                                 for u in s.unique))

    def __repr__(self) -> str:
        return f".rename({ {a: n for a, _, n in self.pairs}!r})"


AGG_FUNCS = ("sum", "mean", "min", "max", "count", "count_distinct", "count_star")


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
        avoid = frozenset(k for k, m in keys if m.shadow) if AVOID_SHADOWED_GROUP_KEY \
            else frozenset()
        return State(cols=tuple((n, replace(m, shadow=False)) for n, m in cols),
                     unique=(frozenset(k for k, _ in keys),), rows=s.rows, joins=s.joins,
                     grouped=True, scalar_agg=not keys, avoid=avoid)

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
        return q.join(right, on=self.on, how=self.how)

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


@dataclass(repr=False)
class Pipeline(_Code):
    steps: list[Step]
    final: State  # the generator's state after the last step

    def __repr__(self) -> str:
        return "orders" + "".join(map(repr, self.steps))


# -- generators ------------------------------------------------------------------------------
Draw = Callable[[st.SearchStrategy[Any]], Any]


def _spell(draw: Draw, name: str) -> str:
    """The name as written: DuckDB resolves names case-insensitively, so a lowered spelling
    must find the mixed-case column (the table's, a computed one or a join key)."""
    if name != name.lower() and draw(st.integers(0, 3)) == 0:
        return name.lower()
    return name


def _num_lit(draw: Draw) -> Lit:
    v = draw(st.sampled_from(NUM_LITS))
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
    kind = draw(st.sampled_from(kinds))
    if kind == "col":
        name = draw(st.sampled_from(cols))
        return Col(name, s.meta(name), _spell(draw, name))
    if kind == "lit":
        return _num_lit(draw)
    if kind == "neg":
        a = num_value(draw, s, depth - 1, need_col=True, fuzzy=fuzzy)
        return Neg(a, a.meta)
    if kind == "div":
        a = num_value(draw, s, depth - 1, need_col=True, fuzzy=fuzzy)
        d = draw(st.sampled_from(DIVISORS))
        m = Meta("num", a.meta.bound / abs(d), 0, max(a.meta.exact, DET))
        return Div(a, d, m) if _ok(m) else a
    if kind == "when":
        cond = pred(draw, s, depth - 1)
        a = num_value(draw, s, depth - 1, fuzzy=fuzzy)
        b = num_value(draw, s, depth - 1, fuzzy=fuzzy)
        m = Meta("num", max(a.meta.bound, b.meta.bound), max(a.meta.scale, b.meta.scale),
                 max(a.meta.exact, b.meta.exact))
        return When(cond, a, b, m) if _ok(m) else a
    op = draw(st.sampled_from(["+", "-", "*"]))
    a = num_value(draw, s, depth - 1, fuzzy=fuzzy)
    b = num_value(draw, s, depth - 1, fuzzy=fuzzy)
    if isinstance(a, Lit) and isinstance(b, Lit):  # keep a column in every operation
        name = draw(st.sampled_from(cols))
        b = Col(name, s.meta(name))
    if draw(st.booleans()):
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
    kind = draw(st.sampled_from(kinds))
    if kind == "col":
        return Col(draw(st.sampled_from(cols)), TEXT)
    if kind == "lit":
        return Lit(draw(st.sampled_from(TEXT_LITS)), TEXT)
    return When(pred(draw, s, depth - 1), text_value(draw, s, depth - 1),
                text_value(draw, s, depth - 1), TEXT)


def can_filter(s: State) -> bool:
    return bool(s.refs())


def _isin_min(draw: Draw) -> int:
    """Mostly non-empty lists; an empty IN (rendered FALSE) now and then."""
    return 0 if draw(st.integers(0, 7)) == 0 else 1


def pred(draw: Draw, s: State, depth: int, *, agg: bool = False) -> P:
    """A predicate; ``agg``: may compare with an aggregate over all rows (filters only)."""
    nums = [n for n in s.refs("num") if s.meta(n).bound <= VMAX]
    texts = s.refs("text")
    kinds = []  # (Hypothesis favours the first choices: keep them selective but not empty)
    if nums:
        kinds += ["ncmp", "ncmp", "ncmp", "nisin", "nbetween"]
        if agg and not s.grouped and not (AVOID_PROJECTION_AFTER_ORDER and s.sorted_sql):
            kinds += ["aggcmp"]  # (filtering on an aggregate projects a helper column)
    if texts:
        kinds += ["tcmp", "tcmp", "tisin", "tbetween"]
    kinds += ["isnull"]
    if depth > 0:
        kinds += ["and", "or", "or", "not", "pisnull"]
    kind = draw(st.sampled_from(kinds))
    op = draw(st.sampled_from(list(_CMP)))
    if kind in ("and", "or"):
        a, b = pred(draw, s, depth - 1, agg=agg), pred(draw, s, depth - 1, agg=agg)
        return And(a, b) if kind == "and" else Or(a, b)
    if kind == "not":
        return Not(pred(draw, s, depth - 1, agg=agg))
    if kind == "pisnull":
        return PredIsNull(pred(draw, s, depth - 1, agg=agg))
    if kind == "isnull":
        usable = s.refs()
        if nums and draw(st.booleans()):
            a: V = num_value(draw, s, 1, need_col=True)
        else:
            name = draw(st.sampled_from(usable))
            a = Col(name, s.meta(name), _spell(draw, name))
        return IsNull(a, not draw(st.booleans()))
    if kind == "aggcmp":
        name = draw(st.sampled_from(nums))
        return AggCmp(op, Col(name, s.meta(name)), draw(st.sampled_from(["mean", "min", "max"])))
    if kind == "ncmp":
        a = num_value(draw, s, min(depth, 2), need_col=True)
        b = num_value(draw, s, 1) if draw(st.booleans()) else _num_lit(draw)
        return Cmp(op, *((b, a) if draw(st.booleans()) else (a, b)))
    if kind == "nisin":
        a = num_value(draw, s, 1, need_col=True)
        values = draw(st.lists(st.sampled_from([*NUM_LITS, None]), min_size=_isin_min(draw),
                               max_size=5))
        return IsIn(a, values)
    if kind == "nbetween":
        a = num_value(draw, s, 1, need_col=True)
        lo, hi = draw(st.sampled_from(NUM_LITS)), draw(st.sampled_from(NUM_LITS))
        return Between(a, lo, hi)
    name = draw(st.sampled_from(texts))
    col = Col(name, TEXT, _spell(draw, name))
    if kind == "tcmp":
        others = [t for t in texts if t != name]
        other = draw(st.sampled_from(others)) if others and draw(st.booleans()) else None
        b = Col(other, TEXT) if other else Lit(draw(st.sampled_from(TEXT_LITS)), TEXT)
        return Cmp(op, *((b, col) if draw(st.booleans()) else (col, b)))
    if kind == "tisin":
        return IsIn(col, draw(st.lists(st.sampled_from([*TEXT_LITS, None]),
                                       min_size=_isin_min(draw), max_size=5)))
    lo, hi = draw(st.sampled_from(TEXT_LITS)), draw(st.sampled_from(TEXT_LITS))
    return Between(col, lo, hi)


def _columns_of(node: Any) -> set[str]:
    """The columns an expression or predicate reads."""
    if isinstance(node, Col):
        return {node.name}
    if isinstance(node, V | P):
        out: set[str] = set()
        for value in vars(node).values():
            if isinstance(value, V | P):
                out |= _columns_of(value)
        return out
    return set()


def draw_filter(draw: Draw, s: State, names: Any) -> Step:
    n = 2 if draw(st.integers(0, 3)) == 0 else 1
    return Filter([pred(draw, s, 2, agg=True) for _ in range(n)])


# Known library bug (see test_whole_table_agg_then_only_constants): when no aggregate is left
# in the projection of a whole-table agg() (replaced by constants, or a constant column added
# and selected alone) the aggregation is dropped: one row per input row. Until fixed, after a
# whole-table agg mutate only adds columns computed from other columns.
AVOID_REPLACING_SCALAR_AGG = False


def draw_mutate(draw: Draw, s: State, names: Any) -> Step:
    assigns: list[tuple[str, str, V]] = []
    replaceable = [] if AVOID_REPLACING_SCALAR_AGG and s.scalar_agg else s.usable()
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()) or not replaceable:
            target = spelled = f"m{next(names)}"
        else:
            target = draw(st.sampled_from(replaceable))
            if any(t == target for _, t, _ in assigns):
                continue
            spelled = _spell(draw, target)
        if draw(st.integers(0, 3)) == 0:
            v = text_value(draw, s, 1)
        else:
            v = num_value(draw, s, 2, fuzzy=True)
        if AVOID_REPLACING_SCALAR_AGG and s.scalar_agg and not _columns_of(v):
            continue
        assigns.append((spelled, target, v))
    if not assigns:  # fall back to copying the first column
        name, first = f"m{next(names)}", s.names[0]
        assigns.append((name, name, Col(first, s.meta(first))))
    return Mutate(assigns)


def draw_select(draw: Draw, s: State, names: Any) -> Step:
    order = draw(st.permutations(s.names))
    return Select(list(order[: draw(st.integers(1, len(order)))]))


def draw_drop(draw: Draw, s: State, names: Any) -> Step:
    gone = draw(st.lists(st.sampled_from(s.names), min_size=1, max_size=len(s.names) - 1,
                         unique=True))
    return Drop([(_spell(draw, n), n) for n in gone])


def draw_rename(draw: Draw, s: State, names: Any) -> Step:
    old = draw(st.lists(st.sampled_from(s.names), min_size=1, max_size=2, unique=True))
    return Rename([(_spell(draw, n), n, f"r{next(names)}") for n in old])


# Known library bug (see test_group_by_column_that_is_an_integer_literal): grouping by a
# column that mutate() set to an integer literal renders GROUP BY <int>, a position.
AVOID_GROUP_BY_LITERAL = False


# Known library bug (see test_having_on_a_replaced_group_key): after mutate(g=id + g) and
# group_by("g"), a filter on g becomes HAVING id + g > ..., where DuckDB reads g as the output
# alias: a binder error. Until fixed, such keys are not referenced after the aggregate.
AVOID_SHADOWED_GROUP_KEY = False


def draw_group(draw: Draw, s: State, names: Any) -> Step:
    candidates = [n for n in s.usable()
                  if not (AVOID_GROUP_BY_LITERAL and s.meta(n).const)]
    keys = draw(st.lists(st.sampled_from(candidates), max_size=2, unique=True)) \
        if candidates else []
    named_keys = []
    if s.refs("num") and draw(st.integers(0, 4)) == 0:
        v = num_value(draw, s, 1, need_col=True)
        if not (AVOID_GROUP_BY_LITERAL and any(s.meta(c).const for c in _columns_of(v))):
            named_keys.append((f"k{next(names)}", v))
    aggs: list[tuple[str, str, V | None, Meta]] = []
    for _ in range(draw(st.integers(1, 3))):
        fn = draw(st.sampled_from(AGG_FUNCS))
        out = f"a{next(names)}"
        if fn == "count_star":
            aggs.append((out, fn, None, Meta("num", s.rows)))
            continue
        if fn in ("sum", "mean") or draw(st.booleans()):
            if not [n for n, m in s.cols if m.kind == "num"]:
                continue
            v = num_value(draw, s, 1, need_col=True, fuzzy=True)
        else:
            name = draw(st.sampled_from(s.names))
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
        else:
            meta = m
        if meta.kind == "num" and not _ok(replace(meta, bound=min(meta.bound, VMAX))):
            continue
        aggs.append((out, fn, v, meta))
    if not aggs:
        aggs.append((f"a{next(names)}", "count_star", None, Meta("num", s.rows)))
    return GroupAgg(keys, named_keys, aggs)


def draw_join(draw: Draw, s: State, names: Any) -> Step:
    how = draw(st.sampled_from(["inner", "left", "semi", "anti"]))
    on = draw(st.sampled_from(["CustomerId", "CustomerId", "customerid", "CUSTOMERID"]))
    # (every order's customer exists: an anti join is empty unless customers are filtered)
    filtered = draw(st.integers(0, 2)) != 0 if how == "anti" else draw(st.integers(0, 2)) == 0
    right = [pred(draw, CUSTOMERS_STATE, 1)] if filtered else []
    return Join(how, on, right)


def draw_order(draw: Draw, s: State, names: Any) -> Step:
    usable = s.usable()
    # often sort by a key (a total order, so a limit can follow)
    keys = [n for u in s.unique if u <= set(usable) for n in sorted(u)][: 3]
    chosen = draw(st.lists(st.sampled_from(usable), min_size=0 if keys else 1, max_size=3,
                           unique=True))
    if keys and draw(st.booleans()):
        chosen = list(dict.fromkeys([*chosen, *keys]))
    if not chosen:
        chosen = [draw(st.sampled_from(usable))]
    return OrderBy([(n, draw(st.booleans()), draw(st.integers(0, 4)) == 0,
                     draw(st.sampled_from(["str", "col", "asc"]))) for n in chosen])


def draw_limit(draw: Draw, s: State, names: Any) -> Step:
    n = draw(st.integers(1, 60)) if draw(st.integers(0, 9)) else 0
    return Limit(n, draw(st.integers(0, 12)))


def draw_distinct(draw: Draw, s: State, names: Any) -> Step:
    return Distinct()


# Known library bug (see test_projection_after_order_by_on_computed_column): a projection
# after order_by qualifies a computed sort key with the table name. Until it is fixed the
# generator does not project while the SQL has an ORDER BY; set False to fuzz that path again.
AVOID_PROJECTION_AFTER_ORDER = False


def _available(s: State) -> list[tuple[str, Callable[..., Step]]]:
    out = []
    if can_filter(s):
        out += [("filter", draw_filter)] * 3
    if not (AVOID_PROJECTION_AFTER_ORDER and s.sorted_sql):
        out += [("mutate", draw_mutate)] * 2
        out += [("select", draw_select), ("rename", draw_rename)]
        if len(s.cols) > 1:
            out.append(("drop", draw_drop))
    if s.usable():
        out += [("group", draw_group)] * 2
        out += [("order", draw_order)] * 2
    if (s.joins < 2 and "CustomerId" in s.names and s.meta("CustomerId").kind == "num"
            and s.meta("CustomerId").usable):
        out += [("join", draw_join)] * 2
    if s.order is not None and s.total:
        out += [("limit", draw_limit)] * 8
    if all(m.usable for _, m in s.cols):
        out.append(("distinct", draw_distinct))
    return out


@st.composite
def pipelines(draw: Draw, max_steps: int = 6) -> Pipeline:
    names = itertools.count()
    s = ORDERS_STATE
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, max_steps))):
        _, make = draw(st.sampled_from(_available(s)))
        step = make(draw, s, names)
        steps.append(step)
        s = step.advance(s)
    return Pipeline(steps, s)


# -- the tests --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env() -> Any:
    con = qr.connect()
    env = Env(con.create_table("orders", make_orders()),
              con.create_table("customers", make_customers()))
    yield env
    con.close()


def _run(p: Pipeline, env: Env) -> tuple[qr.QueryRef, pd.DataFrame]:
    q, df = env.orders, ORDERS_PD
    for step in p.steps:
        q, df = step.on_qr(q, env), step.on_pd(df)
    return q, df.reset_index(drop=True)


def _normalised(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: _zero_sign(df[c]) for c in df.columns}, index=df.index)


@settings(max_examples=PIPELINE_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pipeline=pipelines())
def test_pipeline_matches_pandas(env: Env, pipeline: Pipeline) -> None:
    final = pipeline.final
    q, want = _run(pipeline, env)
    assert q.columns == list(want.columns)
    got = q.to_pandas()
    got, want = _normalised(got), _normalised(want)
    sorted_by = final.order
    for step in pipeline.steps:  # shown by --hypothesis-show-statistics
        event(f"step {type(step).__name__}")
    event("result rows: " + ("0" if got.empty else "1" if len(got) == 1 else "many"))
    same_rows(got, want, ordered=sorted_by is not None and final.total)
    if sorted_by is not None and not final.total:  # ties in any order, but keys in order
        same_rows(got[list(sorted_by)], want[list(sorted_by)], ordered=True)
    assert q.count() == len(want)


def _tlp_bases() -> dict[str, list[Step]]:
    amount, qty = Col("amount", ORDERS_KINDS["amount"]), Col("qty", ORDERS_KINDS["qty"])
    return {
        "table": [],
        "limited": [OrderBy([("id", False, False, "str")]), Limit(300, 7)],
        "grouped": [GroupAgg(["region", "status"], [], [
            ("n", "count_star", None, Meta("num", 400)),
            ("total", "sum", amount, Meta("num", 200_000)),
            ("avg", "mean", amount, Meta("num", 500, 0, DET)),
            ("top", "max", qty, Meta("num", 20)),
        ])],
        "distinct": [Select(["region", "status", "qty"]), Distinct()],
        "joined": [Join("left", "CustomerId", [])],
        "mutated": [Mutate([("big", "big", When(Cmp(">", amount, Lit(100, Meta("num", 100))),
                                                 qty, Neg(qty, qty.meta), qty.meta))])],
    }


TLP_BASES = _tlp_bases()


@st.composite
def tlp_cases(draw: Draw) -> tuple[str, P]:
    base = draw(st.sampled_from(sorted(TLP_BASES)))
    s = ORDERS_STATE
    for step in TLP_BASES[base]:
        s = step.advance(s)
    return base, pred(draw, s, 3, agg=True)


@settings(max_examples=TLP_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=tlp_cases())
def test_ternary_logic_partitioning(env: Env, case: tuple[str, P]) -> None:
    base, p = case
    q = env.orders
    for step in TLP_BASES[base]:
        q = step.on_qr(q, env)
    e = p.qr()
    parts = [q.filter(e).count(), q.filter(~e).count(), q.filter(e.is_null()).count()]
    assert sum(parts) == q.count(), (base, p, parts)


# -- library bugs the fuzzer found, as minimal reproductions. The xfail ones are still open:
#    the generator steers around them while the AVOID_* switches above are on (turn a switch
#    off once its test passes); the others were fixed and stay as regression tests ----------
@pytest.fixture
def small(con: qr.Connection) -> qr.QueryRef:
    con.execute('CREATE TABLE small AS SELECT range AS "Id", range % 3 AS g, range * 10 AS v '
                "FROM range(6)")
    return con.table("small")


def test_projection_after_order_by_on_computed_column(small: qr.QueryRef) -> None:
    q = small.mutate(s=qr.col("v") * 2).order_by(qr.desc("s")).select("s")
    assert q.to_pandas()["s"].tolist() == [100, 80, 60, 40, 20, 0]


def test_respelled_join_key_in_filter(orders: qr.QueryRef, customers: qr.QueryRef) -> None:
    joined = orders.join(customers, on="CustomerId", how="inner")
    want = joined.filter(qr.col("CustomerId") > 30).count()
    assert joined.filter(qr.col("customerid") > 30).count() == want


def test_respelled_reference_to_a_replaced_column(small: qr.QueryRef) -> None:
    q = small.mutate(Id=qr.col("v") + 1)  # Id is now 1, 11, ..., 51
    assert q.filter(qr.col("Id") > 15).count() == 4
    assert q.filter(qr.col("id") > 15).count() == 4  # was 0: WHERE id > 15 on the old Id
    assert q.mutate(w=qr.col("id")).to_pandas()["w"].tolist() == [1, 11, 21, 31, 41, 51]


def test_group_by_column_that_is_an_integer_literal(small: qr.QueryRef) -> None:
    q = small.mutate(k=3).group_by("k").agg(n=qr.count())
    assert q.to_pandas().values.tolist() == [[3, 6]]


def test_whole_table_agg_then_only_constants(small: qr.QueryRef) -> None:
    total = small.agg(s=qr.col("v").sum())
    assert len(total.mutate(s=0).to_pandas()) == 1  # got 6 rows: SELECT 0 AS s FROM small
    assert len(total.mutate(c=qr.lit("x")).select("c").to_pandas()) == 1


def test_having_on_a_replaced_group_key(small: qr.QueryRef) -> None:
    q = small.mutate(g=qr.col("Id") + qr.col("g")).group_by("g").agg(n=qr.count())
    assert sorted(q.filter(qr.col("g") > 2).to_pandas()["g"].tolist()) == [3, 4, 5, 7]


def test_filter_on_an_aggregate_after_agg(small: qr.QueryRef) -> None:
    per_g = small.group_by("g").agg(t=qr.col("v").sum())  # t = 30, 50, 70
    assert per_g.filter(qr.col("t") > qr.col("t").mean()).to_pandas()["t"].tolist() == [70]
