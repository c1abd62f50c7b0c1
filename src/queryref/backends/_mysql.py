"""What MySQL/MariaDB need beyond SQLAlchemy: a read-only transaction per query, the session
cleaned before its connection goes back to the pool, ``KILL QUERY``, the rows of their plans,
and PyMySQL's unread results."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlglot import exp

from queryref.backends._base import PlanEstimate

#: how a query's connection starts on MySQL/MariaDB: a transaction the server keeps read-only
BEGIN = "START TRANSACTION READ ONLY"
#: how it is cleaned before going back (after the pool's rollback): user-level locks
#: (``GET_LOCK``) released, ``LAST_INSERT_ID()`` back to 0, and the names of the user variables
#: left behind (each then set to NULL: MariaDB has no way to drop one short of resetting the
#: whole connection, which would also undo the driver's own settings made at login)
CHECKIN = (
    "SELECT RELEASE_ALL_LOCKS(), LAST_INSERT_ID(0), (SELECT GROUP_CONCAT(CONCAT('@`', "
    "REPLACE(VARIABLE_NAME, '`', '``'), '` = NULL')) FROM information_schema.USER_VARIABLES "
    "WHERE VARIABLE_VALUE IS NOT NULL)"
)
#: where information_schema.USER_VARIABLES is missing (MySQL): locks and LAST_INSERT_ID only
CHECKIN_LOCKS = "SELECT RELEASE_ALL_LOCKS(), LAST_INSERT_ID(0), NULL"


def reset(dbapi_con: Any, user_variables: bool) -> bool:
    """:data:`CHECKIN` on the driver's connection itself (SQLAlchemy's layer would double the
    cost of these few microseconds of SQL); whether the server has USER_VARIABLES (False:
    locks and LAST_INSERT_ID only, from then on)."""
    cursor = dbapi_con.cursor()
    try:
        if user_variables:
            try:
                cursor.execute(CHECKIN)
            except Exception:  # no information_schema.USER_VARIABLES (MySQL)
                user_variables = False
        if not user_variables:
            cursor.execute(CHECKIN_LOCKS)
        row = cursor.fetchone()
        if row is not None and row[2]:
            cursor.execute(f"SET {row[2]}")
    finally:
        cursor.close()
    return user_variables


def kill_query(thread_id: int) -> str:
    """``KILL QUERY <id>``: stops the query a connection runs, sent from another one.

    >>> kill_query(42)
    'KILL QUERY 42'
    """
    return exp.Kill(this=exp.Literal.number(thread_id), kind="QUERY").sql(dialect="mysql")


def forget_unread(dbapi_connection: Any, record: Any, exception: Any = None) -> None:
    """PyMySQL: a connection dropped mid-result has nothing left to read.

    Otherwise the unread result, and the cursor holding it, try to read the rest of it when
    they are garbage-collected, from the socket closed meanwhile, and Python prints
    "Exception ignored in SSCursor.close ... AttributeError" (after a Ctrl-C, a timeout, or a
    stream left early). Listens to the engine's pool ``invalidate`` event, which comes before
    the driver connection is closed, whoever drops it (queryref or SQLAlchemy itself).
    """
    unread = getattr(dbapi_connection, "_result", None)
    if unread is not None and getattr(unread, "unbuffered_active", False):
        unread.unbuffered_active = False
        unread.connection = None


def plan_json(text: str) -> dict[str, Any] | None:
    """A MySQL/MariaDB JSON plan; MariaDB writes a quote in a literal as ``\\'`` (not JSON)."""
    for attempt in (text, re.sub(r"(?<!\\)((?:\\\\)*)\\'", r"\1'", text)):
        try:
            plan = json.loads(attempt)
        except ValueError:
            continue
        return plan if isinstance(plan, dict) else None
    return None


def plan_rows(block: dict[str, Any], engine: str) -> PlanEstimate:
    """Rows out of a MySQL/MariaDB plan that reads one table (through a sort at most)."""
    node: Any = block
    while isinstance(node, dict):
        if node.get("message") == "No tables used" or node.get("table", {}).get(
                "message") == "No tables used":
            return PlanEstimate(1, None, f"{engine}'s plan (no table read)")
        if "table" in node:
            table = node["table"]
            filtered = float(table.get("filtered", 100))
            rows = table.get("rows_produced_per_join")
            if rows is None and "rows" in table:
                if table.get("attached_condition") and filtered >= 100:
                    break  # no selectivity known for the condition: only an upper bound
                rows = float(table["rows"]) * filtered / 100
            if rows is None:
                break
            return PlanEstimate(int(float(rows)), None, f"{engine}'s plan (EXPLAIN FORMAT=JSON)")
        loop = node.get("nested_loop")
        node = (loop[0] if len(loop) == 1 else None) if isinstance(loop, list) else \
            node.get("filesort") or node.get("read_sorted_file") or node.get("ordering_operation")
    return PlanEstimate(None, None, f"{engine}'s plan counts rows examined, not rows returned, "
                                    "for this query (a join, subquery or unselective condition)")
