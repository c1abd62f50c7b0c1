"""Number and NULL functions of ``Expr`` on every engine, against numpy/pandas on the same rows.

The rows hold NULLs, zeros, negative numbers, ties, halves (where rounding rules differ) and,
on every engine but MariaDB (which has none), a NaN. The documented choices are checked as
such: ``round`` is pandas' ``Series.round`` (half to even, on doubles); ``sqrt``/``log``/
``pow`` give NULL (not NaN, not an error) outside their domain; NaN is a number, not a NULL.
Each test computes many functions in one query.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ParameterError

from .qr_conformance import NAN_ENGINES, Engine, uploaded_with_nan

col = qr.col
X, Y, R = col("x"), col("y"), col("r")

#: the row whose x is NaN where the engine has NaN (NULL on MariaDB)
NAN_ID = 3

XS = [0.0, 1.0, -1.0, None, 2.5, -2.5, 0.5, -0.5, 3.0, 3.0, -7.25, 100.0, 0.001, None, 16.0,
      0.1, 42.0, -3.0, 1e-9, 7.5]
YS = [2.0, 0.5, -1.0, 3.0, None, 0.5, -0.5, 2.0, 0.0, -2.0, 2.0, 0.5, 3.0, 1.0, -0.5, None,
      1.5, 3.0, 2.0, -1.0]
# halves at every scale (ties in binary: 0.125, 1e15 + 0.5) and decimals a double holds only
# approximately (2.675 is 2.67499999999999982236431605997495353221893310546875)
_TIES = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.125, 0.375, -0.625, 2.675, 1.005, 0.285, 1234.5,
         -1234.5, 15.0, 25.0, -35.0, 1e15 + 0.5, 4503599627370497.0, 0.0]
_RNG = np.random.default_rng(17)
RS = _TIES + list(np.round(_RNG.normal(0, 500, 60), 4)) + list(_RNG.normal(0, 3, 20))
N = len(RS)

FRAME = pd.DataFrame({
    "id": np.arange(N, dtype="int64"),
    "x": pd.Series((XS * 5)[:N], dtype="float64"),
    "y": pd.Series((YS * 5)[:N], dtype="float64"),
    "r": pd.Series(RS, dtype="float64"),
})
FRAME.loc[NAN_ID, "x"] = None

def table(engine: Engine) -> qr.QueryRef:
    """The rows on ``engine`` (uploaded once), with the NaN put in where the engine has NaN."""
    return uploaded_with_nan(engine, "conf_num_values", FRAME, NAN_ID, "x")


def xs(engine: Engine) -> list[float | None]:
    """The x values as the engine holds them: None for NULL, NaN for NaN."""
    out: list[float | None] = [None if pd.isna(v) else float(v) for v in FRAME.x]
    if engine.name in NAN_ENGINES:
        out[NAN_ID] = math.nan
    return out


def fetch(q: qr.QueryRef, **exprs: qr.Expr) -> pd.DataFrame:
    """``exprs`` computed in one query, rows in ``id`` order, lower-case column names."""
    got = q.select("id", **exprs).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    return got.sort_values("id").reset_index(drop=True)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def check(got: pd.DataFrame, want: dict[str, list[Any]], *, exact: bool = False) -> None:
    """Each column equals its reference value by value: numbers to 1e-9 relative (``exact``:
    the same double), booleans as booleans; NULL and NaN both arrive as NaN in pandas."""
    bad = []
    for name, values in want.items():
        for i, (g, w) in enumerate(zip(got[name].tolist(), values, strict=True)):
            if _missing(w) or _missing(g):
                ok = _missing(w) and _missing(g)
            elif isinstance(w, bool):
                ok = bool(g) == w
            elif exact:
                ok = float(g) == float(w)
            else:
                ok = math.isclose(float(g), float(w), rel_tol=1e-9, abs_tol=1e-12)
            if not ok:
                bad.append(f"{name}[id={i}]: got {g!r}, want {w!r}")
    assert not bad, "\n".join(bad[:20])


def per(values: list[float | None], fn: Any) -> list[Any]:
    """``fn`` on each value that is not NULL (NaN included), None for NULL."""
    return [None if v is None else fn(v) for v in values]


def _domain(v: float, ok: bool, fn: Any) -> float | None:
    return fn(v) if (ok or math.isnan(v)) else None


def test_round_is_pandas_round(engine: Engine):
    """Half to even on doubles, as pandas: ties at every scale, 2.675, 1e15 + 0.5, random."""
    digits = {"r0": 0, "r1": 1, "r2": 2, "r3": 3, "rm1": -1, "rm2": -2}
    got = fetch(table(engine), **{k: R.round(d) for k, d in digits.items()},
                xr=X.round(1), idr=col("id").round(-1))
    want = {k: FRAME.r.round(d).tolist() for k, d in digits.items()}
    want["xr"] = per(xs(engine), lambda v: float(np.round(v, 1)))
    want["idr"] = FRAME.id.astype("float64").round(-1).tolist()
    check(got, want, exact=True)


def test_number_functions(engine: Engine):
    x = xs(engine)
    got = fetch(
        table(engine),
        abs=X.abs(), floor=X.floor(), ceil=X.ceil(), sqrt=X.sqrt(), ln=X.log(), log2=X.log(2),
        log10=X.log10(), log3=X.log(3), exp=(X / 10).exp(), sign=X.sign(),
        p2=X.pow(2), ph=X.pow(0.5), pm1=X.pow(-1), py=X.pow(Y), p3=X.pow(3),
        clip=X.clip(-1, 50), clip_lo=X.clip(lower=0), clip_hi=X.clip(upper=Y),
        nan=X.is_nan(), sqrt_nan=X.sqrt().is_nan(), log_nan=X.log().is_nan(),
        pow_nan=X.pow(0.5).is_nan(),
    )
    y = [None if pd.isna(v) else float(v) for v in FRAME.y]

    def power(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return None
        if (a < 0 and b != math.floor(b)) or (a == 0 and b < 0):
            return None
        return float(np.power(a, b))

    def clip(v: float | None, lo: float | None, hi: float | None) -> float | None:
        if v is None or math.isnan(v):
            return v
        if lo is not None and v < lo:
            return lo
        if hi is not None and v > hi:
            return hi
        return v

    def nan_of(values: list[float | None]) -> list[bool | None]:
        return [None if v is None else math.isnan(v) for v in values]

    sqrt = per(x, lambda v: _domain(v, v >= 0, math.sqrt if not math.isnan(v) else float))
    ln = per(x, lambda v: _domain(v, v > 0, np.log))
    want: dict[str, list[Any]] = {
        "abs": per(x, abs), "floor": per(x, np.floor), "ceil": per(x, np.ceil), "sqrt": sqrt,
        "ln": ln, "log2": per(x, lambda v: _domain(v, v > 0, lambda u: np.log(u) / np.log(2))),
        "log10": per(x, lambda v: _domain(v, v > 0, np.log10)),
        "log3": per(x, lambda v: _domain(v, v > 0, lambda u: np.log(u) / np.log(3))),
        "exp": per(x, lambda v: np.exp(v / 10)), "sign": per(x, np.sign),
        "p2": [power(v, 2) for v in x], "ph": [power(v, 0.5) for v in x],
        "pm1": [power(v, -1) for v in x], "py": [power(a, b) for a, b in zip(x, y, strict=True)],
        "p3": [power(v, 3) for v in x],
        "clip": [clip(v, -1, 50) for v in x], "clip_lo": [clip(v, 0, None) for v in x],
        "clip_hi": [clip(v, None, b) for v, b in zip(x, y, strict=True)],
        "nan": nan_of(x), "sqrt_nan": nan_of(sqrt), "log_nan": nan_of(ln),
        "pow_nan": nan_of([power(v, 0.5) for v in x]),
    }
    check(got, want)


def test_nulls(engine: Engine):
    x = xs(engine)
    got = fetch(table(engine), filled=X.fill_null(0), filled_y=X.fill_null(Y),
                nulled=X.null_if(3), nulled_y=Y.null_if(X), filled_nan=X.fill_null(-1).is_nan())
    y = [None if pd.isna(v) else float(v) for v in FRAME.y]
    want = {
        "filled": [0.0 if v is None else v for v in x],
        "filled_y": [b if a is None else a for a, b in zip(x, y, strict=True)],
        "nulled": [None if v == 3 else v for v in x],
        # NULLIF(y, x): NaN equals nothing in pandas; equal to itself on SQL engines, where
        # it never meets a NaN y here
        "nulled_y": [None if (b is not None and a is not None and a == b) else b
                     for a, b in zip(x, y, strict=True)],
        "filled_nan": [v is not None and math.isnan(v) for v in x],
    }
    check(got, want)


def test_wrong_arguments_are_parameter_errors():
    for call in (lambda: X.round(1.5), lambda: X.log(1), lambda: X.log(-2), lambda: X.clip(),
                 lambda: X.clip(5, 1), lambda: X.log("e")):
        with pytest.raises(ParameterError):
            call()
