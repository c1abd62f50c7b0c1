"""``Expr.dt``, ``qr.date_diff`` and date/time ± ``datetime.timedelta`` on every engine, against
pandas (and plain Python for ``date_diff``) on the same rows.

The rows hold a DATE and a TIMESTAMP column each side of a pair: NULLs (both, or one side),
leap days (2024-02-29, 2000-02-29, and 1900, which is not leap), month and year ends, the ISO
week 53 / week 1 boundaries (2020-12-31, 2021-01-03, 2021-01-04, 2019-12-30, 2024-12-30),
times a fraction of a second from midnight, noon and half past midnight (for ``%I %p``),
dates before 1970, and seeded random timestamps with microseconds. Each test computes many
functions in one query.

Timestamp results are compared through ``epoch()`` (a number: the same on every engine
whatever type the engine gives back); one test reads timestamps back as they are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

import queryref as qr

from .qr_conformance import Engine

col = qr.col
D, TS, D2, TS2 = col("d"), col("ts"), col("d2"), col("ts2")
T = dt.datetime

PAIRS: list[tuple[T | None, T | None]] = [
    (T(2024, 2, 29, 23, 59, 59, 500000), T(2024, 3, 1, 0, 0, 0, 100000)),
    (T(2020, 12, 31, 0, 0), T(2021, 1, 3, 23, 59, 59)),       # Thu -> Sun: both ISO week 53
    (T(2021, 1, 3, 12, 30, 15), T(2021, 1, 4, 0, 0)),          # Sun -> Mon: a week boundary
    (T(1969, 12, 31, 23, 59, 59, 999999), T(1970, 1, 1)),
    (T(1900, 2, 28, 6, 0), T(1900, 3, 1, 18, 0)),              # 1900 has no Feb 29
    (T(2024, 1, 31, 12, 0), T(2024, 2, 1, 11, 59)),
    (T(2023, 12, 31, 23, 0), T(2021, 1, 1, 1, 0)),             # end before start
    (T(2019, 12, 30, 0, 30), T(2024, 12, 30, 12, 0)),          # Mondays in ISO week 1
    (T(2026, 12, 31, 11, 59, 59), T(2026, 12, 31, 11, 59, 59)),
    (T(2000, 2, 29, 12, 0), T(1999, 3, 1, 0, 0)),
    (T(2023, 4, 30, 0, 0, 1), T(2023, 5, 1, 0, 0)),
    (T(1965, 7, 20, 20, 17, 40, 123456), T(2015, 1, 1, 0, 0, 1)),
    (T(2022, 1, 1, 0, 0), T(2021, 12, 31, 23, 59, 59, 999999)),
    (None, T(2022, 6, 15)),
    (T(2022, 6, 15, 8), None),
    (None, None),
]


def _random_pairs(n: int = 24, seed: int = 17) -> list[tuple[T, T]]:
    rng = np.random.default_rng(seed)
    base = T(1950, 1, 1)
    span = int((T(2060, 1, 1) - base).total_seconds())
    out = []
    for _ in range(n):
        a, b = (base + dt.timedelta(seconds=int(s), microseconds=int(u))
                for s, u in zip(rng.integers(0, span, 2), rng.integers(0, 1_000_000, 2),
                                strict=True))
        out.append((a, b))
    return out


def _frame() -> pd.DataFrame:
    pairs = PAIRS + _random_pairs()
    ts = [a for a, _ in pairs]
    ts2 = [b for _, b in pairs]
    d = [a.date() if a is not None else None for a in ts]
    d[1] = None  # a DATE that is NULL beside a timestamp that is not
    return pd.DataFrame({
        "k": np.arange(len(pairs), dtype="int64"),
        "d": pd.Series(d, dtype=object),
        "ts": pd.Series(ts, dtype="datetime64[us]"),
        "d2": pd.Series([b.date() if b is not None else None for b in ts2], dtype=object),
        "ts2": pd.Series(ts2, dtype="datetime64[us]"),
    })


FRAME = _frame()
_TABLES: dict[str, tuple[qr.QueryRef, pd.DataFrame]] = {}
#: Spark's uploads make TIMESTAMP (an instant in the session's zone); the other engines'
#: are timestamps without time zone, as is Spark's TIMESTAMP_NTZ (and queryref's Spark
#: backend cannot read TIMESTAMP yet: see test_values_as_read)
_SPARK_NTZ = ("SELECT k, d, CAST(ts AS TIMESTAMP_NTZ) AS ts, d2, "
              "CAST(ts2 AS TIMESTAMP_NTZ) AS ts2 FROM conf_dt_values")


def table(engine: Engine) -> tuple[qr.QueryRef, pd.DataFrame]:
    """The rows on ``engine`` (uploaded once) and the rows as the engine keeps them:
    MariaDB's uploads keep whole seconds (``create_table`` writes ``DATETIME``), so its
    reference is computed from the rows read back; Spark's timestamps are TIMESTAMP_NTZ."""
    if engine.name not in _TABLES:
        q = engine.con.create_table("conf_dt_values", FRAME)
        if engine.name == "spark":
            q = engine.con.create_table("conf_dt_ntz", engine.con.sql(_SPARK_NTZ))
        stored = FRAME
        if engine.name == "mariadb":
            stored = q.to_pandas()
            stored.columns = [c.lower() for c in stored.columns]
            stored = stored.sort_values("k").reset_index(drop=True)
        _TABLES[engine.name] = (q, stored)
    return _TABLES[engine.name]


def stamps(values: pd.Series) -> pd.Series:
    """Dates or timestamps as pandas timestamps (NaT for NULL)."""
    return pd.to_datetime(values).astype("datetime64[us]")


def fetch(q: qr.QueryRef, **exprs: qr.Expr) -> pd.DataFrame:
    """``exprs`` in one query, rows in ``k`` order, lower-case column names."""
    got = q.select("k", **exprs).to_pandas()
    got.columns = [c.lower() for c in got.columns]
    return got.sort_values("k").reset_index(drop=True)


def _plain(v: Any, kind: str) -> Any:
    if v is None or (np.ndim(v) == 0 and pd.isna(v)):
        return None
    if kind == "int":
        assert float(v) == int(v), v
        return int(v)
    if kind == "float":
        return round(float(v), 6)
    if kind == "date":
        return pd.Timestamp(v).date()
    if kind == "stamp":
        return pd.Timestamp(v).tz_localize(None) if pd.Timestamp(v).tzinfo else pd.Timestamp(v)
    return v


def check(got: pd.DataFrame, want: dict[str, pd.Series], kind: str) -> None:
    """Each column of ``got`` equals the reference, value by value."""
    bad: dict[str, list[Any]] = {}
    for name, ref in want.items():
        for i in range(len(ref)):
            g, w = _plain(got[name].iloc[i], kind), _plain(ref.iloc[i], kind)
            if g != w:
                bad.setdefault(name, []).append((int(got["k"].iloc[i]), w, g))
    assert not bad, bad


def epoch(values: pd.Series) -> pd.Series:
    """Seconds since 1970-01-01 of naive timestamps (taken as UTC)."""
    return (stamps(values) - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)


# -- parts ------------------------------------------------------------------------------------
PARTS = ("year", "quarter", "month", "day", "hour", "minute", "second", "weekday",
         "day_of_year", "week")


def _pandas_part(values: pd.Series, part: str) -> pd.Series:
    s = stamps(values).dt
    if part == "week":
        return s.isocalendar().week.astype("Float64")
    return getattr(s, {"weekday": "day_of_week"}.get(part, part))


@pytest.mark.parametrize("rows", ["typical", "edges"])
def test_parts(engine: Engine, rows: str):
    q, stored = (table if rows == "typical" else edge_table)(engine)
    exprs = {f"{c}_{p}": getattr(col(c).dt, p)() for c in ("d", "ts") for p in PARTS}
    got = fetch(q, **exprs)
    check(got, {f"{c}_{p}": _pandas_part(stored[c], p) for c in ("d", "ts") for p in PARTS},
          "int")


# -- whole values -----------------------------------------------------------------------------
def test_date_and_epoch(engine: Engine):
    q, stored = table(engine)
    got = fetch(q, ts_date=TS.dt.date(), d_date=D.dt.date(), ts_epoch=TS.dt.epoch(),
                d_epoch=D.dt.epoch(), ts2_epoch=TS2.dt.epoch())
    check(got, {"ts_date": stamps(stored.ts).dt.normalize(),
                "d_date": stamps(stored.d)}, "date")
    check(got, {"ts_epoch": epoch(stored.ts), "d_epoch": epoch(stored.d),
                "ts2_epoch": epoch(stored.ts2)}, "float")


def _pandas_truncate(values: pd.Series, unit: str) -> pd.Series:
    s = stamps(values)
    if unit in ("year", "quarter", "month"):
        return s.dt.to_period({"year": "Y", "quarter": "Q", "month": "M"}[unit]).dt.start_time
    if unit == "week":
        return s.dt.normalize() - pd.to_timedelta(s.dt.day_of_week, unit="D")
    return s.dt.floor({"day": "D", "hour": "h", "minute": "min", "second": "s"}[unit])


TRUNCATE_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")


@pytest.mark.parametrize("rows", ["typical", "edges"])
def test_truncate(engine: Engine, rows: str):
    q, stored = (table if rows == "typical" else edge_table)(engine)
    exprs = {f"{c}_{u}": col(c).dt.truncate(u).dt.epoch()
             for c in ("d", "ts") for u in TRUNCATE_UNITS}
    want = {f"{c}_{u}": epoch(_pandas_truncate(stored[c], u))
            for c in ("d", "ts") for u in TRUNCATE_UNITS}
    exprs.update(ts_epoch=TS.dt.epoch(), d_epoch=D.dt.epoch(), ts2_epoch=TS2.dt.epoch())
    want.update(ts_epoch=epoch(stored.ts), d_epoch=epoch(stored.d), ts2_epoch=epoch(stored.ts2))
    check(fetch(q, **exprs), want, "float")


SHIFTS: dict[str, tuple[str, str, dt.timedelta]] = {  # name: (column, + or -, span)
    "a": ("ts", "+", dt.timedelta(days=1, hours=2)),
    "b": ("ts", "-", dt.timedelta(minutes=90)),
    "c": ("d", "+", dt.timedelta(days=3)),
    "e": ("d", "+", dt.timedelta(hours=36)),
    "f": ("ts", "r+", dt.timedelta(microseconds=1500)),
    "g": ("ts", "+", dt.timedelta(days=-2, seconds=5)),
    "h": ("ts", "-", dt.timedelta(weeks=-1)),
    "i": ("d", "-", dt.timedelta(days=366)),
    "j": ("ts2", "+", dt.timedelta(seconds=0.25)),
}


def _shift(name: str) -> qr.Expr:
    c, op, span = SHIFTS[name]
    return {"+": col(c) + span, "-": col(c) - span, "r+": span + col(c)}[op]


def test_timedelta(engine: Engine):
    q, stored = table(engine)
    got = fetch(q, **{n: _shift(n).dt.epoch() for n in SHIFTS})
    want = {}
    for n, (c, op, span) in SHIFTS.items():
        want[n] = epoch(stamps(stored[c]) + (-span if op == "-" else span))
    check(got, want, "float")


def test_values_as_read(engine: Engine):
    """Timestamps as the engine hands them back (NULL checked in the engine: fakesnow's server
    sends a NULL TIMESTAMP_NTZ as 1970-01-01)."""
    q, stored = table(engine)
    exprs = {"m": D.dt.truncate("month"), "w": TS.dt.truncate("week"),
             "s": TS.dt.truncate("second"), "a": _shift("a"), "c": _shift("c"),
             "e": _shift("e")}
    got = fetch(q, **exprs, **{f"{n}_null": e.is_null() for n, e in exprs.items()})
    want = {"m": _pandas_truncate(stored.d, "month"), "w": _pandas_truncate(stored.ts, "week"),
            "s": _pandas_truncate(stored.ts, "second")}
    for n in ("a", "c", "e"):
        c, _, span = SHIFTS[n]
        want[n] = stamps(stored[c]) + span
    for n, ref in want.items():
        assert got[f"{n}_null"].astype(bool).tolist() == ref.isna().tolist(), n
        present = ~ref.isna()
        check(got[present].reset_index(drop=True), {n: ref[present].reset_index(drop=True)},
              "stamp")


# -- strftime ---------------------------------------------------------------------------------
FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%j|%b|%B|%a|%A|%y|%p|%I",
    "%m%b%d%a%y%Y%H%I%p%M%S%j",              # codes side by side
    "Day %j of %Y: it's 100%% \"ok\" T\\ [x] {y} #'",   # text with quotes, letters, brackets
    "%%",
    "plain text",
]


@pytest.mark.parametrize("rows", ["typical", "edges"])
def test_strftime(engine: Engine, rows: str):
    q, stored = (table if rows == "typical" else edge_table)(engine)
    exprs = {f"{c}{i}": col(c).dt.strftime(f) for c in ("d", "ts") for i, f in enumerate(FORMATS)}
    want = {f"{c}{i}": stamps(stored[c]).dt.strftime(f)
            for c in ("d", "ts") for i, f in enumerate(FORMATS)}
    check(fetch(q, **exprs), want, "text")


# -- date_diff --------------------------------------------------------------------------------
DIFF_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")


def _boundaries(unit: str, start: Any, end: Any) -> int | None:
    """Python reference: the unit boundaries between start and end, from their values
    truncated to the unit (calendar arithmetic for months and years)."""
    if pd.isna(start) or pd.isna(end):
        return None
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    if unit == "year":
        return e.year - s.year
    if unit == "month":
        return e.to_period("M").ordinal - s.to_period("M").ordinal
    if unit == "week":
        monday_s = s.normalize() - pd.Timedelta(days=s.weekday())
        monday_e = e.normalize() - pd.Timedelta(days=e.weekday())
        return (monday_e - monday_s).days // 7
    size = {"day": "D", "hour": "h", "minute": "min", "second": "s"}[unit]
    return int((e.floor(size) - s.floor(size)) / pd.Timedelta(1, unit=size))


COMBOS = {"tt": ("ts", "ts2"), "dt": ("d", "ts2"), "dd": ("d", "d2"), "td": ("ts2", "d")}


@pytest.mark.parametrize("rows", ["typical", "edges"])
def test_date_diff(engine: Engine, rows: str):
    q, stored = (table if rows == "typical" else edge_table)(engine)
    exprs = {f"{name}_{u}": qr.date_diff(u, a, col(b))
             for name, (a, b) in COMBOS.items() for u in DIFF_UNITS}
    want = {f"{name}_{u}": pd.Series([_boundaries(u, x, y) for x, y in
                                      zip(stamps(stored[a]), stamps(stored[b]), strict=True)],
                                     dtype=object)
            for name, (a, b) in COMBOS.items() for u in DIFF_UNITS}
    check(fetch(q, **exprs), want, "int")


def test_date_diff_with_values(engine: Engine):
    """Python dates and datetimes as either end."""
    q, stored = table(engine)
    day, moment = dt.date(2000, 1, 1), dt.datetime(2021, 1, 4, 12, 0, 0)
    got = fetch(q, a=qr.date_diff("day", day, TS), b=qr.date_diff("week", TS, moment),
                c=qr.date_diff("month", D, day), e=qr.date_diff("hour", moment, D))
    want = {"a": [_boundaries("day", day, x) for x in stamps(stored.ts)],
            "b": [_boundaries("week", x, moment) for x in stamps(stored.ts)],
            "c": [_boundaries("month", x, day) for x in stamps(stored.d)],
            "e": [_boundaries("hour", moment, x) for x in stamps(stored.d)]}
    check(got, {k: pd.Series(v, dtype=object) for k, v in want.items()}, "int")


# -- edges: far past and future, microseconds at the end of a second ----------------------------
EDGE_PAIRS: list[tuple[T | None, T | None]] = [
    (T(9999, 12, 31, 23, 59, 59, 999999), T(1000, 1, 1)),
    (T(1899, 12, 31, 12, 0, 59, 999999), T(1900, 1, 1, 0, 0, 0, 1)),
    (T(1582, 10, 10, 13, 14, 15), T(1582, 10, 20, 1, 2, 3)),   # days Rome skipped in 1582
    (T(1000, 1, 1, 0, 0, 0, 1), T(9999, 1, 4, 12)),
    (T(1600, 2, 29, 0, 0), T(1700, 3, 1, 0, 0)),                # 1600 leap, 1700 not
    (T(2024, 12, 30, 0, 0, 0, 1), T(2021, 1, 3, 23, 59, 59, 999999)),
    (T(1969, 12, 31, 23, 59, 59, 1), T(1969, 1, 1, 0, 0, 0, 500000)),
    (T(2023, 1, 31, 0, 0), T(2023, 2, 28, 23, 59)),
    (T(2024, 3, 31, 12, 0), T(2024, 2, 29, 12, 0)),
]


def _edge_frame() -> pd.DataFrame:
    ts = [a for a, _ in EDGE_PAIRS]
    ts2 = [b for _, b in EDGE_PAIRS]
    return pd.DataFrame({
        "k": np.arange(len(ts), dtype="int64"),
        "d": pd.Series([a.date() for a in ts], dtype=object),
        "ts": pd.Series(ts, dtype="datetime64[us]"),
        "d2": pd.Series([b.date() for b in ts2], dtype=object),
        "ts2": pd.Series(ts2, dtype="datetime64[us]"),
    })


def edge_table(engine: Engine) -> tuple[qr.QueryRef, pd.DataFrame]:
    key = engine.name + ":edges"
    if key not in _TABLES:
        frame = _edge_frame()
        q = engine.con.create_table("conf_dt_edges", frame)
        if engine.name == "spark":
            q = engine.con.create_table("conf_dt_edges_ntz", engine.con.sql(
                _SPARK_NTZ.replace("conf_dt_values", "conf_dt_edges")))
        stored = frame
        if engine.name == "mariadb":
            stored = q.to_pandas()
            stored.columns = [c.lower() for c in stored.columns]
            stored = stored.sort_values("k").reset_index(drop=True)
            for c in ("ts", "ts2"):
                stored[c] = stamps(stored[c])
        _TABLES[key] = (q, stored)
    return _TABLES[key]


# -- timestamps with time zone (DuckDB TIMESTAMPTZ, PostgreSQL timestamptz) --------------------
ZONE = "America/New_York"
INSTANTS = ["2020-12-31 23:30:00.75", "2021-01-01 04:59:59.999999", "2021-03-14 06:59:59",
            "2021-03-14 07:00:00", "2021-11-07 05:30:00", "2021-11-07 06:30:00",
            "1969-12-31 23:00:00", "2024-02-29 04:00:00"]   # UTC; New York's DST changes
_TZ_SET = {"duckdb": (f"SET TimeZone = '{ZONE}'", "RESET TimeZone"),
           "postgres": (f"SET TIME ZONE '{ZONE}'", "RESET TIME ZONE")}


@pytest.mark.parametrize("engine", list(_TZ_SET), indirect=True)
def test_timestamptz_local_wall_clock(engine: Engine):
    """A timestamp with time zone is read in the session's zone: parts, dates, formats and
    truncations are New York's wall clock, truncate() is that local midnight's instant (on
    PostgreSQL it was the wall clock read as UTC: 5 hours off), epoch() is the instant, and a
    timedelta of days adds 24 hours a day."""
    rows = " UNION ALL ".join(f"SELECT {k} AS k, CAST('{v}+00' AS TIMESTAMPTZ) AS t"
                              for k, v in enumerate(INSTANTS))
    first = dt.datetime(2020, 12, 31, 18, 30, 0, 750000)   # INSTANTS[0] in New York
    on, off = _TZ_SET[engine.name]
    engine.con.execute(on)
    try:
        q = engine.con.sql(rows)
        exprs: dict[str, qr.Expr] = {p: getattr(col("t").dt, p)() for p in PARTS}
        exprs.update({f"tr_{u}": col("t").dt.truncate(u).dt.epoch() for u in TRUNCATE_UNITS})
        exprs.update(e=col("t").dt.epoch(), f=col("t").dt.strftime("%Y-%m-%d %H:%M:%S %p"))
        exprs.update({f"diff_{u}": qr.date_diff(u, first, col("t")) for u in DIFF_UNITS})
        exprs.update(plus=(col("t") + dt.timedelta(days=1)).dt.epoch(),
                     minus=(col("t") - dt.timedelta(days=2)).dt.epoch())
        got = fetch(q, **exprs)
    finally:
        engine.con.execute(off)
    utc = pd.Series(pd.to_datetime(INSTANTS, format="ISO8601").tz_localize("UTC"))
    wall = utc.dt.tz_convert(ZONE).dt.tz_localize(None).astype("datetime64[us]")
    check(got, {p: _pandas_part(wall, p) for p in PARTS}, "int")
    check(got, {"f": wall.dt.strftime("%Y-%m-%d %H:%M:%S %p")}, "text")
    # date_diff counts on the local wall clock (documented): 01:59:59 EST to 03:00 EDT on
    # 2021-03-14 is 2 hours, though the instants are a second apart
    check(got, {f"diff_{u}": pd.Series([_boundaries(u, wall[0], w) for w in wall], dtype=object)
                for u in DIFF_UNITS}, "int")
    dst = np.array([bool(t.dst()) for t in utc.dt.tz_convert(ZONE)])  # 01:30 twice in Nov

    def instant(local: pd.Series) -> pd.Series:
        return local.dt.tz_localize(ZONE, ambiguous=dst).dt.tz_convert(None)

    want = {f"tr_{u}": epoch(instant(_pandas_truncate(wall, u))) for u in TRUNCATE_UNITS}
    want["e"] = epoch(utc.dt.tz_convert(None))
    # a timedelta day is 24 hours, as in pandas (a SQL day across New York's DST change was
    # 23 or 25 hours on DuckDB and PostgreSQL)
    want["plus"] = want["e"] + 86_400
    want["minus"] = want["e"] - 2 * 86_400
    check(got, want, "float")
