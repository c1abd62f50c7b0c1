"""The Spark backend's own pieces: the token never shows, the plan's statistics read as an
estimate, errors without JVM traces (no server needed); timestamps in the session's zone."""

from __future__ import annotations

import pytest

pytest.importorskip("pyspark.sql.connect.session")

from queryref.backends import spark
from queryref.errors import QueryRefError


def test_the_token_is_a_secret_and_never_described() -> None:
    backend = spark.SparkBackend(object(), owned=False, label="sc://db.example:443",
                                 secrets=("Sup3rS3cret",))
    assert "Sup3rS3cret" not in backend.describe() and backend.describe().startswith("spark")
    with pytest.raises(QueryRefError) as info:
        backend.fail(RuntimeError("call failed: token=Sup3rS3cret rejected"))
    chain, err = "", info.value
    while err is not None:
        chain += repr(err)
        err = err.__cause__ or err.__context__
    assert "Sup3rS3cret" not in chain and "call failed" in str(info.value)


@pytest.mark.parametrize(("text", "rows", "width"), [
    ("Statistics(sizeInBytes=1600.0 KiB, rowCount=1.00E+5)", 100_000, 16),
    ("Statistics(sizeInBytes=8.0 EiB)", None, None),
])
def test_plan_statistics(text: str, rows: int | None, width: int | None) -> None:
    found = spark._STATS.search(text)
    assert found is not None
    got_rows = int(float(found.group(3))) if found.group(3) else None
    assert got_rows == rows
    if rows:
        size = float(found.group(1)) * spark._UNITS[found.group(2)]
        assert int(size / rows) == width


def test_errors_lose_the_jvm_stack_traces() -> None:
    backend = spark.SparkBackend(object(), owned=False, label="sc://h:1")
    message = ("Job aborted due to stage failure: Task 0 failed: java.lang.OutOfMemoryError: "
               "Java heap space\n\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)\n"
               "\tat x.y(z)\n\nJVM stacktrace:\norg.apache.spark.SparkException\n\tat a.b(c)\n"
               "Caused by: java.lang.OutOfMemoryError: Java heap space\n\tat d.e(f)")
    with pytest.raises(QueryRefError) as info:
        backend.fail(RuntimeError(message))
    text = str(info.value)
    assert text.startswith("Spark: Job aborted") and "\tat " not in text
    assert "Caused by: java.lang.OutOfMemoryError" in text and len(text.splitlines()) <= 7


def test_timestamps_follow_a_time_zone_set_on_the_session() -> None:
    """TIMESTAMP results arrive in the session's time zone, read once and read again after
    a statement (``SET spark.sql.session.timeZone`` changes it), so the instant is kept."""
    import pandas as pd

    from conformance.qr_conformance import _OPENERS

    with _OPENERS["spark"]() as con:
        stamp = pd.Timestamp("2024-01-01 12:00", tz="UTC")  # an instant: Spark's TIMESTAMP
        con.create_table("qr_zone", pd.DataFrame({"ts": [stamp]}), replace=True)
        q = con.sql("SELECT ts AS t FROM qr_zone")
        before = q.to_pandas()["t"][0]
        con.execute("SET spark.sql.session.timeZone = America/New_York")
        after = con.sql("SELECT ts AS t FROM qr_zone").to_pandas()["t"][0]
        assert str(after.tz) == "America/New_York" and str(before.tz) != str(after.tz)
        assert after == before == stamp  # the same instant, shown in the zone now set
