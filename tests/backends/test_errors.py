"""Driver errors become queryref errors in one place (Backend.fail / guard, _common.wrap_error)
from each backend's table; a secret never shows, nor stays in the chain."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from queryref.backends._common import Deadline, ErrorRule, raise_wrapped, wrap_error
from queryref.backends._rows import split_bytes
from queryref.backends.duckdb import DuckDBBackend
from queryref.errors import (
    BackendError,
    QueryCancelled,
    QueryRefError,
    QueryTimeout,
    SQLParseError,
)

TABLE = (ErrorRule(lambda e, m: "canceled" in m, lambda m: QueryCancelled(f"stopped: {m}")),)


def test_the_table_decides_else_backend_error() -> None:
    assert isinstance(wrap_error(RuntimeError("SQL execution canceled"), "X", table=TABLE),
                      QueryCancelled)
    other = wrap_error(RuntimeError("no such table t"), "X", table=TABLE)
    assert type(other) is BackendError and str(other) == "X: no such table t"


def test_a_fired_deadline_and_queryref_errors_come_first() -> None:
    deadline = Deadline(30, lambda: None)
    deadline.stop()
    deadline.expired = True  # (as if it had fired)
    assert isinstance(wrap_error(RuntimeError("canceled"), "X", table=TABLE, deadline=deadline),
                      QueryTimeout)
    ours = SQLParseError("bad")
    assert wrap_error(ours, "X", table=TABLE) is ours


def test_a_message_is_redacted_before_the_table_sees_it() -> None:
    made = wrap_error(RuntimeError("canceled for hunter2"), "X", ["hunter2"], table=TABLE)
    assert str(made) == "stopped: canceled for ***"


def test_a_secret_in_the_driver_error_cuts_the_chain() -> None:
    with pytest.raises(BackendError) as info:
        raise_wrapped(RuntimeError("login failed: hunter2"), "X", ["hunter2"])
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    with pytest.raises(BackendError) as info:
        raise_wrapped(RuntimeError("no such table"), "X", ["hunter2"])
    assert isinstance(info.value.__cause__, RuntimeError)


def test_duckdb_declares_its_table() -> None:
    backend = DuckDBBackend.open()
    try:
        with pytest.raises(SQLParseError):
            backend.guard(lambda: backend._con.execute("SELEC 1"))
        with pytest.raises(BackendError, match=r"^DuckDB: "):
            backend.guard(lambda: backend._con.execute("SELECT * FROM qr_no_such_table"))
        with pytest.raises(ValueError):  # not the driver's: left alone
            backend.guard(lambda: int("x"))
    finally:
        backend.close()
    assert issubclass(duckdb.ParserException, DuckDBBackend.driver_errors)
    assert isinstance(SQLParseError("x"), QueryRefError)


def test_split_bytes_keeps_every_row_within_the_bound() -> None:
    batch = pa.record_batch({"s": ["x" * (i % 50) for i in range(1000)]})
    bound = batch.nbytes // 7
    pieces = list(split_bytes(batch, bound))
    assert sum(p.num_rows for p in pieces) == 1000 and len(pieces) >= 7
    assert all(p.nbytes <= bound or p.num_rows == 1 for p in pieces)
    assert pa.Table.from_batches(pieces).equals(pa.Table.from_batches([batch]))
    assert list(split_bytes(batch, batch.nbytes)) == [batch]
