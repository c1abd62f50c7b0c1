"""Side effects hidden in functions: what a read-only query can still change on the server.

The parse check of ``con.sql`` stops statements and a list of named functions (also those that
run SQL given as text, such as PostgreSQL's ``query_to_xml``); a function it cannot know still
reaches the server (a user's own ``run_sql(text)`` that runs ``EXECUTE``: the ``run_sql(...)``
cases). So
the server enforces read-only too (a read-only transaction, rolled back), and a pooled
connection is cleaned before it goes back. Each case runs through ``con.sql(...).to_pandas()``
and then the server's state is read from a SEPARATE connection (or from the next checkout of
the pool, for session state): not only whether the query raised. The outcome of every case
(refused by the parse check / stopped by the server / ran) and whether it left lasting state
is printed (``pytest -s``) and checked against :data:`PG_LASTING` / :data:`MYSQL_LASTING`,
the ones known to leave state, each with why (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

import queryref as qr
from conformance.qr_conformance import _OPENERS, MYSQL_URL, PG_URL
from queryref.errors import BackendError, ReadOnlyError, SQLParseError


@dataclass
class Case:
    """A query with a side effect, and how to see whether the effect lasted (True: it did)."""

    name: str
    sql: str
    lasting: Callable[[Any], bool] | None = None  # None: nothing left to look at (a read)


def _one(con: qr.Connection, sql: str, **params: Any) -> Any:
    return con.sql(sql, **params).to_pandas(max_bytes=None).iloc[0, 0]


def _run(con: qr.Connection, sql: str) -> str:
    """``parse`` (refused by con.sql), ``server`` (the server refused it) or ``ran``."""
    try:
        q = con.sql(sql)
    except (ReadOnlyError, SQLParseError):
        return "parse"
    try:
        q.to_pandas(max_bytes=None)
    except BackendError:
        return "server"
    return "ran"


def _campaign(con: qr.Connection, cases: list[Case], env: Any) -> dict[str, tuple[str, bool]]:
    out = {}
    for case in cases:
        outcome = _run(con, case.sql)
        out[case.name] = (outcome, bool(case.lasting and case.lasting(env)))
    width = max(len(n) for n in out)
    for name, (outcome, left) in out.items():
        print(f"{name:<{width}}  {outcome:<6}  {'LEFT STATE' if left else 'clean'}")
    return out


# -- PostgreSQL -----------------------------------------------------------------------------
#: cases that leave state on PostgreSQL even so, and why (superuser-only functions whose effect
#: is outside any transaction and any session: the fix is a role without those rights)
PG_LASTING = {
    "run_sql(pg_create_physical_replication_slot)": "replication slots are not transactional; "
                                                     "needs superuser or REPLICATION",
    "run_sql(pg_stat_reset)": "statistics counters are not transactional; superuser by default",
}


@dataclass
class PgEnv:
    con: qr.Connection  # the pooled connection under test (its own schema)
    admin: qr.Connection  # a separate connection reading the server's state
    schema: str
    listener: Any
    lo: int  # a large object that must survive
    stats_reset: Any
    search_path: str
    tag: str


def _pg_cases(e: PgEnv) -> list[Case]:
    s, tag = e.schema, e.tag

    def seq(env: PgEnv) -> bool:
        return bool(_one(env.admin, f"SELECT is_called FROM {s}.s"))

    def objects(env: PgEnv) -> bool:
        return int(_one(env.admin, "SELECT COUNT(*) FROM pg_largeobject_metadata WHERE "
                        "lomowner = 'postgres'::regrole AND oid > {{ lo }}", lo=env.lo)) > 0

    def lo_gone(env: PgEnv) -> bool:
        return int(_one(env.admin, "SELECT COUNT(*) FROM pg_largeobject_metadata "
                        "WHERE oid = {{ lo }}", lo=env.lo)) == 0

    def lo_changed(env: PgEnv) -> bool:
        return bytes(_one(env.admin, "SELECT lo_get({{ lo }})", lo=env.lo)) != b"keep"

    def locks(env: PgEnv) -> bool:
        return int(_one(env.admin, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND objid IN (4242, 4243, 4244, 4245)")) > 0

    def notified(env: PgEnv) -> bool:
        return bool(list(env.listener.notifies(timeout=0.3, stop_after=1)))

    def slot(name: str) -> Callable[[PgEnv], bool]:
        def made(env: PgEnv) -> bool:
            return int(_one(env.admin, "SELECT COUNT(*) FROM pg_replication_slots WHERE "
                            "slot_name = {{ n }}", n=f"qr_{tag}_{name}")) > 0
        return made

    def stats(env: PgEnv) -> bool:
        now = _one(env.admin, "SELECT stats_reset FROM pg_stat_database "
                   "WHERE datname = current_database()")
        if pd.isna(now) and pd.isna(env.stats_reset):  # never reset (NaT != NaT)
            return False
        return bool(now != env.stats_reset)

    def bgwriter(env: PgEnv) -> bool:
        return bool(_one(env.admin, "SELECT stats_reset > now() - interval '1 minute' "
                         "FROM pg_stat_bgwriter"))

    def path(env: PgEnv) -> bool:  # the next checkout of the same pool
        return bool(_one(env.con, "SELECT current_setting('search_path')") != env.search_path)

    def role(env: PgEnv) -> bool:
        return bool(_one(env.con, "SELECT current_user") != "postgres")

    def read_only_off(env: PgEnv) -> bool:
        return _run(env.con, f"SELECT {s}.run_sql('CREATE TABLE qr_ro_probe (x int)')") == "ran"

    def seeded(env: PgEnv) -> bool:
        known = _one(env.admin, f"SELECT {s}.run_sql('select setseed(0.25)') || random()::text")
        return bool(_one(env.con, "SELECT random()")) and str(known).endswith(
            str(_one(env.con, "SELECT random()")))

    def q2x(sql: str) -> str:  # a user's function that runs SQL text: no parse check sees in
        return f"SELECT {s}.run_sql('" + sql.replace("'", "''") + "') AS x"

    return [
        Case("set_config(search_path)", "SELECT set_config('search_path', 'pwned', false)", path),
        Case("run_sql(set_config(search_path))",
             q2x("select set_config('search_path', 'pwned', false)"), path),
        Case("run_sql(set_config(role))", q2x("select set_config('role', 'pg_monitor', "
                                                     "false)"), role),
        Case("run_sql(default_transaction_read_only off)",
             q2x("select set_config('default_transaction_read_only', 'off', false)"),
             read_only_off),
        Case("nextval", f"SELECT nextval('{s}.s')", seq),
        Case("run_sql(nextval)", q2x(f"select nextval('{s}.s')"), seq),
        Case("run_sql(setval)", q2x(f"select setval('{s}.s', 99)"), seq),
        Case("lo_from_bytea", "SELECT lo_from_bytea(0, 'x')", objects),
        Case("lo_create", "SELECT lo_create(0)", objects),
        Case("lo_import", "SELECT lo_import('/etc/hostname')", objects),
        Case("run_sql(lo_import)", q2x("select lo_import('/etc/hostname')"), objects),
        Case("run_sql(lo_unlink)", q2x(f"select lo_unlink({e.lo})"), lo_gone),
        Case("lo_put", f"SELECT lo_put({e.lo}, 0, 'y')", lo_changed),
        Case("pg_try_advisory_lock", "SELECT pg_try_advisory_lock(4242)", locks),
        Case("pg_advisory_lock_shared", "SELECT pg_advisory_lock_shared(4243)", locks),
        Case("pg_try_advisory_xact_lock", "SELECT pg_try_advisory_xact_lock(4244)", locks),
        Case("run_sql(pg_advisory_lock)", q2x("select pg_advisory_lock(4245)"), locks),
        Case("pg_notify", f"SELECT pg_notify('qr_{tag}', 'x')", notified),
        Case("run_sql(pg_notify)", q2x(f"select pg_notify('qr_{tag}', 'x')"), notified),
        Case("pg_logical_emit_message(transactional)",
             "SELECT pg_logical_emit_message(true, 'qr', 'x')", None),
        Case("pg_logical_emit_message(non-transactional)",
             "SELECT pg_logical_emit_message(false, 'qr', 'x')", None),
        Case("pg_create_physical_replication_slot",
             f"SELECT pg_create_physical_replication_slot('qr_{tag}_a')", slot("a")),
        Case("run_sql(pg_create_physical_replication_slot)",
             q2x(f"select pg_create_physical_replication_slot('qr_{tag}_b')"), slot("b")),
        Case("pg_create_logical_replication_slot",
             f"SELECT pg_create_logical_replication_slot('qr_{tag}_c', 'pgoutput')", slot("c")),
        Case("pg_stat_reset", "SELECT pg_stat_reset()", stats),
        Case("pg_stat_reset_shared", "SELECT pg_stat_reset_shared('bgwriter')", bgwriter),
        Case("setseed", "SELECT setseed(0.25)", seeded),
        Case("run_sql(setseed)", q2x("select setseed(0.25)"), seeded),
        Case("pg_read_file", "SELECT pg_read_file('/etc/hostname')", None),
        Case("pg_read_binary_file", "SELECT pg_read_binary_file('/etc/hostname')", None),
        Case("pg_ls_dir", "SELECT pg_ls_dir('.')", None),
        Case("pg_stat_file", "SELECT pg_stat_file('/etc/hostname')", None),
        Case("txid_current", "SELECT txid_current()", None),
        Case("pg_export_snapshot", "SELECT pg_export_snapshot()", None),
        Case("pg_log_backend_memory_contexts",
             "SELECT pg_log_backend_memory_contexts(pg_backend_pid())", None),
        Case("pg_switch_wal", "SELECT pg_switch_wal()", None),
        Case("pg_create_restore_point", "SELECT pg_create_restore_point('qr')", None),
        Case("pg_reload_conf", "SELECT pg_reload_conf()", None),
        Case("pg_cancel_backend", "SELECT pg_cancel_backend(0)", None),
        Case("run_sql(pg_terminate_backend)", q2x("select pg_terminate_backend(0)"), None),
        Case("run_sql(create table)", q2x("create table qr_pwned (x int)"), None),
        Case("pg_sleep", "SELECT pg_sleep(0)", None),
        Case("query_to_xml", "SELECT query_to_xml('select 1', true, true, '')", None),
        Case("dblink", "SELECT dblink('dbname=postgres', 'select 1')", None),
        Case("run_sql(pg_stat_reset)", q2x("select pg_stat_reset()"), stats),
    ]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgEnv]:
    psycopg = pytest.importorskip("psycopg")
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(_OPENERS["postgres"]())
        admin = stack.enter_context(qr.connect(PG_URL))
        schema = str(_one(con, "SELECT current_schema()"))
        con.execute("CREATE SEQUENCE s")
        con.execute("CREATE FUNCTION run_sql(q text) RETURNS text LANGUAGE plpgsql "
                    "AS $$ BEGIN EXECUTE q; RETURN 'ran'; END $$")
        admin.execute("SELECT lo_from_bytea(0, 'keep')")
        lo = int(_one(admin, "SELECT MAX(oid::bigint) FROM pg_largeobject_metadata"))
        listener = psycopg.connect(PG_URL, autocommit=True)
        stack.callback(listener.close)
        tag = uuid.uuid4().hex[:8]
        listener.execute(f"LISTEN qr_{tag}")
        env = PgEnv(con, admin, schema, listener, lo,
                    _one(admin, "SELECT stats_reset FROM pg_stat_database "
                         "WHERE datname = current_database()"),
                    str(_one(con, "SELECT current_setting('search_path')")), tag)
        try:
            yield env
        finally:
            admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM "
                          f"pg_replication_slots WHERE slot_name LIKE 'qr_{tag}%'")
            admin.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata "
                          f"WHERE oid >= {lo}")


def test_postgres_side_effects_are_stopped_or_undone(pg: PgEnv) -> None:
    results = _campaign(pg.con, _pg_cases(pg), pg)
    left = {name for name, (_, lasting) in results.items() if lasting}
    assert left == set(PG_LASTING) & set(results)
    assert results["run_sql(set_config(search_path))"][0] == "ran"  # undone, not refused
    assert results["run_sql(nextval)"][0] == "server"
    assert results["run_sql(create table)"][0] == "server"
    for refused in ("query_to_xml", "dblink", "pg_stat_reset",
                    "pg_create_physical_replication_slot"):
        assert results[refused][0] == "parse", refused


# -- MariaDB --------------------------------------------------------------------------------
#: cases that leave state on MariaDB even so, and why
MYSQL_LASTING: dict[str, str] = {}


@dataclass
class MyEnv:
    con: qr.Connection
    admin: qr.Connection
    db: str


def _mysql_cases(e: MyEnv) -> list[Case]:
    db = e.db

    def lock(env: MyEnv) -> bool:
        return _one(env.admin, "SELECT IS_USED_LOCK('qr_lock_x')") is not None and \
            str(_one(env.admin, "SELECT IS_USED_LOCK('qr_lock_x')")) != "nan"

    def variables(env: MyEnv) -> bool:  # the next checkout of the same pool
        row = env.con.sql("SELECT @a AS a, @b AS b").to_pandas().iloc[0]
        return bool(row.notna().any())

    def last_id(env: MyEnv) -> bool:
        return int(_one(env.con, "SELECT LAST_INSERT_ID()")) != 0

    def seq(env: MyEnv) -> bool:
        return int(_one(env.admin, f"SELECT COUNT(*) FROM {db}.audit")) > 0 or \
            int(_one(env.admin, f"SELECT next_not_cached_value FROM {db}.s")) != 1

    def audit(env: MyEnv) -> bool:
        return int(_one(env.admin, f"SELECT COUNT(*) FROM {db}.audit")) > 0

    return [
        Case("GET_LOCK", "SELECT GET_LOCK('qr_lock_x', 0)", lock),
        Case("GET_LOCK in a subquery", "SELECT (SELECT GET_LOCK('qr_lock_x', 0)) AS l", lock),
        Case("@a := 5", "SELECT @a := 5", variables),
        Case("@b := in a WHERE",
             "SELECT 1 AS x FROM (SELECT 1 AS y) t WHERE (@b := 7) > 0", variables),
        Case("LAST_INSERT_ID(77)", "SELECT LAST_INSERT_ID(77)", last_id),
        Case("NEXTVAL", "SELECT NEXTVAL(s)", seq),
        Case("NEXT VALUE FOR", "SELECT NEXT VALUE FOR s", seq),
        Case("SETVAL", "SELECT SETVAL(s, 100)", seq),
        Case("a stored function that writes", "SELECT qr_write()", audit),
        Case("LOAD_FILE", "SELECT LOAD_FILE('/etc/hostname')", None),
        Case("SLEEP", "SELECT SLEEP(0)", None),
        Case("BENCHMARK", "SELECT BENCHMARK(10, MD5('x'))", None),
        Case("UUID_SHORT", "SELECT UUID_SHORT()", None),
        Case("INTO OUTFILE", "SELECT 1 INTO OUTFILE '/tmp/qr_pwned_mysql'", None),
        Case("INTO @variable", "SELECT 1 INTO @a", variables),
    ]


@pytest.fixture(scope="module")
def my() -> Iterator[MyEnv]:
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(_OPENERS["mariadb"]())
        admin = stack.enter_context(qr.connect(MYSQL_URL))
        db = str(_one(con, "SELECT DATABASE()"))
        con.execute("CREATE SEQUENCE s")
        con.execute("CREATE TABLE audit (x INT)")
        con.execute("CREATE FUNCTION qr_write() RETURNS INT MODIFIES SQL DATA "
                    "BEGIN INSERT INTO audit VALUES (1); RETURN 1; END")
        yield MyEnv(con, admin, db)


def test_mariadb_side_effects_are_stopped_or_undone(my: MyEnv) -> None:
    results = _campaign(my.con, _mysql_cases(my), my)
    left = {name for name, (_, lasting) in results.items() if lasting}
    assert left == set(MYSQL_LASTING)
    assert results["a stored function that writes"][0] == "server"
    assert results["GET_LOCK"][0] == "ran"  # released before the connection went back
