"""Fixtures of the reliability campaign: real engines with a canary table, and the scale knob.

``QUERYREF_RELIABILITY_SCALE`` (default 1) multiplies the generated corpora; ``make fuzz``
runs with 10. Engines come from the conformance suite's openers (same servers, same rules:
skipped locally when a server is missing, a failure under ``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

import queryref as qr
from conformance.qr_conformance import _OPENERS

from ._payloads import CANARY

SCALE = max(1, int(os.environ.get("QUERYREF_RELIABILITY_SCALE", "1")))
CANARY_ROWS = [1, 2, 3]
PWNED_FILE = "/tmp/qr_pwned"


@dataclass
class Target:
    """An engine holding the canary table, and how to read its state back."""

    name: str
    con: qr.Connection
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Target {self.name}>"


def _canary_state(t: Target) -> dict[str, Any]:
    """What an executed payload would change: the canary's rows, an audit of writes on it,
    the session's search path (PostgreSQL), the attached databases (DuckDB), a file."""
    state: dict[str, Any] = {"file": os.path.exists(PWNED_FILE)}
    df = t.con.table(CANARY).to_pandas()
    state["rows"] = sorted(int(v) for v in df.iloc[:, 0])
    if t.name == "postgres":
        state["audit"] = int(t.con.sql("SELECT COUNT(*) AS n FROM qr_canary_audit")
                             .to_pandas().iloc[0, 0])
        state["search_path"] = t.con.sql("SELECT current_setting('search_path') AS p") \
            .to_pandas().iloc[0, 0]
    if t.name == "duckdb":
        state["databases"] = sorted(t.con.sql("SELECT database_name FROM duckdb_databases()")
                                    .to_pandas().iloc[:, 0])
    return state


def _install_canary(t: Target) -> None:
    t.con.create_table(CANARY, pd.DataFrame({"n": CANARY_ROWS}))
    if t.name == "postgres":
        # any write of any kind on the canary leaves a row here (statement-level triggers)
        t.con.execute("CREATE TABLE qr_canary_audit (op text)")
        t.con.execute(
            "CREATE FUNCTION qr_canary_audit_fn() RETURNS trigger LANGUAGE plpgsql AS "
            "$f$ BEGIN INSERT INTO qr_canary_audit VALUES (TG_OP); RETURN NULL; END $f$")
        t.con.execute(
            f"CREATE TRIGGER qr_canary_audit_t AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {CANARY} FOR EACH STATEMENT EXECUTE FUNCTION qr_canary_audit_fn()")


@pytest.fixture(scope="module", params=["duckdb", "postgres", "snowflake", "mariadb"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """Each engine in turn with a canary table; after the module, the canary must be intact."""
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(_OPENERS[request.param]())
        t = Target(request.param, con)
        _install_canary(t)
        t.extra["before"] = _canary_state(t)
        yield t
        assert _canary_state(t) == t.extra["before"]


@pytest.fixture
def canary(target: Target) -> Iterator[Target]:
    """The engine, checked after the test: the canary and the session are as they were."""
    yield target
    assert _canary_state(target) == target.extra["before"]
