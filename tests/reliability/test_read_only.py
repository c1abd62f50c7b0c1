"""Read-only corpus: writing or side-effecting statements are refused by ``con.sql`` before the
engine sees them; legitimate read-only queries are all accepted (no false refusals).

"Before": on DuckDB the recorded connection's log stays empty; on PostgreSQL the canary table
and its write audit are unchanged (``canary`` fixture, which also runs the accepted corpus).
"""

from __future__ import annotations

import itertools

import pytest

import queryref as qr
from queryref.errors import ReadOnlyError, SQLParseError

from .conftest import Target

_BASE = [
    # DML, data-modifying CTEs, MERGE, TRUNCATE
    "INSERT INTO qr_canary VALUES (666)", "INSERT INTO qr_canary SELECT 1",
    "UPDATE qr_canary SET n = 666", "DELETE FROM qr_canary", "DELETE FROM qr_canary WHERE n > 0",
    "TRUNCATE qr_canary", "TRUNCATE TABLE qr_canary",
    "MERGE INTO qr_canary t USING (SELECT 1 AS n) s ON t.n = s.n WHEN MATCHED THEN DELETE",
    "WITH d AS (DELETE FROM qr_canary RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE qr_canary SET n = 0 RETURNING n) SELECT n FROM u",
    "WITH i AS (INSERT INTO qr_canary VALUES (7) RETURNING n) SELECT * FROM i",
    "SELECT * INTO pwned FROM qr_canary", "REPLACE INTO qr_canary VALUES (1)",
    "UPSERT INTO qr_canary VALUES (1)",
    # DDL
    "CREATE TABLE pwned (x INT)", "CREATE TABLE pwned AS SELECT 1 AS x",
    "CREATE OR REPLACE TABLE qr_canary AS SELECT 666 AS n", "CREATE VIEW v AS SELECT 1 AS x",
    "CREATE TEMP TABLE t AS SELECT 1", "CREATE SCHEMA pwned", "CREATE INDEX i ON qr_canary (n)",
    "CREATE SEQUENCE s", "CREATE MACRO m(a) AS a", "CREATE FUNCTION f() RETURNS int AS 'select 1'",
    "CREATE EXTENSION dblink", "DROP TABLE qr_canary", "DROP TABLE IF EXISTS qr_canary CASCADE",
    "DROP VIEW v", "DROP SCHEMA public CASCADE", "ALTER TABLE qr_canary ADD COLUMN x INT",
    "ALTER TABLE qr_canary RENAME TO gone", "ALTER TABLE qr_canary DROP COLUMN n",
    "COMMENT ON TABLE qr_canary IS 'x'", "CREATE DATABASE pwned", "DROP DATABASE postgres",
    # files, databases, extensions, settings
    "COPY qr_canary TO '/tmp/qr_pwned'", "COPY qr_canary FROM '/etc/passwd'",
    "COPY (SELECT 1) TO '/tmp/qr_pwned' (FORMAT csv)", "COPY qr_canary TO PROGRAM 'id'",
    "ATTACH ':memory:' AS pwned", "ATTACH DATABASE '/tmp/x.db' AS x", "DETACH pwned",
    "INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs", "SET threads = 1",
    "SET search_path TO pwned", "SET SESSION AUTHORIZATION postgres", "RESET ALL",
    "RESET search_path", "SET LOCAL statement_timeout = 1", "PRAGMA threads = 1",
    "PRAGMA enable_profiling", "CALL pwned()", "CALL dbgen(sf = 0.01)",
    "EXPORT DATABASE '/tmp/qr_export'", "IMPORT DATABASE '/tmp/qr_export'", "VACUUM",
    "VACUUM FULL qr_canary", "CHECKPOINT", "FORCE CHECKPOINT", "ANALYZE qr_canary",
    "GRANT ALL ON qr_canary TO PUBLIC", "REVOKE ALL ON qr_canary FROM PUBLIC",
    "USE pwned", "BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "LOCK TABLE qr_canary",
    "REFRESH MATERIALIZED VIEW v", "CLUSTER qr_canary", "REINDEX TABLE qr_canary",
    "DISCARD ALL", "LISTEN x", "NOTIFY x", "PREPARE p AS SELECT 1", "EXECUTE p",
    "DEALLOCATE p", "DO $$ BEGIN DELETE FROM qr_canary; END $$", "SHOW search_path",
    "DESCRIBE qr_canary", "SUMMARIZE qr_canary", "KILL 1", "UNLISTEN *",
    "ALTER SYSTEM SET work_mem = '1GB'", "SECURITY LABEL ON TABLE qr_canary IS 'x'",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE qr_canary", "FLUSH PRIVILEGES",
    "PUT file:///tmp/x @~", "REMOVE @~/x", "UNDROP TABLE qr_canary", "ALTER SESSION SET x = 1",
    "PWNED COMMAND", "FROBNICATE qr_canary",
    # side-effecting functions inside an otherwise read-only SELECT
    "SELECT nextval('s')", "SELECT setval('s', 1)", "SELECT set_config('search_path', 'x', false)",
    "SELECT pg_terminate_backend(1)", "SELECT pg_cancel_backend(1)", "SELECT pg_sleep(5)",
    "SELECT lo_import('/etc/passwd')", "SELECT pg_reload_conf()", "SELECT setseed(0.5)",
    "SELECT * FROM query('DELETE FROM qr_canary')", "SELECT pg_advisory_lock(1)",
    # several statements
    "SELECT 1; DROP TABLE qr_canary", "SELECT 1; SELECT 2", "SELECT 1;;DELETE FROM qr_canary",
]


def _tricks(stmt: str) -> list[str]:
    """The statement as written, in odd casing, behind comments, with a trailing statement."""
    return [
        stmt,
        stmt.lower(),
        stmt.swapcase(),
        f"/* harmless */ {stmt}",
        f"-- a comment\n{stmt}",
        f"  \n\t{stmt};",
        f"SELECT 1; {stmt}",
    ]


def corpus() -> list[str]:
    seen: set[str] = set()
    out = []
    for stmt in itertools.chain.from_iterable(_tricks(s) for s in _BASE):
        if stmt not in seen:
            seen.add(stmt)
            out.append(stmt)
    return out


WRITES = corpus()

READS = [
    "SELECT 1 AS x", "SELECT n FROM qr_canary", "SELECT * FROM qr_canary WHERE n > 1",
    "SELECT COUNT(*) AS c FROM qr_canary", "SELECT n, COUNT(*) AS c FROM qr_canary GROUP BY n",
    "SELECT n FROM qr_canary ORDER BY n DESC LIMIT 2",
    "WITH a AS (SELECT n FROM qr_canary) SELECT * FROM a",
    "WITH a AS (SELECT n FROM qr_canary), b AS (SELECT n * 2 AS m FROM a) SELECT * FROM b",
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5) SELECT i FROM r",
    "SELECT n, ROW_NUMBER() OVER (ORDER BY n) AS rn FROM qr_canary",
    "SELECT n, SUM(n) OVER (PARTITION BY n % 2 ORDER BY n) AS s FROM qr_canary",
    "SELECT n, LAG(n) OVER (ORDER BY n) AS p FROM qr_canary",
    "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(x, y)", "VALUES (1), (2)",
    "SELECT UNNEST([1, 2, 3]) AS x", "SELECT * FROM UNNEST([1, 2]) AS t(x)",
    "SELECT n FROM qr_canary UNION SELECT 4",
    "SELECT n FROM qr_canary UNION ALL SELECT n FROM qr_canary",
    "SELECT n FROM qr_canary INTERSECT SELECT 2", "SELECT n FROM qr_canary EXCEPT SELECT 2",
    "SELECT CASE WHEN n > 1 THEN 'big' ELSE 'small' END AS k FROM qr_canary",
    "SELECT 'DROP TABLE qr_canary' AS text_not_sql", "SELECT 'a;b' AS x -- DELETE in a comment",
    "SELECT /* INSERT INTO qr_canary */ 1 AS x", "SELECT n AS \"update\" FROM qr_canary",
    "SELECT n AS \"delete\" FROM qr_canary", "SELECT \"n\" FROM \"qr_canary\"",
    "SELECT a.n FROM qr_canary a JOIN qr_canary b ON a.n = b.n",
    "SELECT n FROM qr_canary WHERE n IN (SELECT n FROM qr_canary WHERE n < 3)",
    "SELECT n FROM qr_canary WHERE EXISTS (SELECT 1 FROM qr_canary c WHERE c.n = qr_canary.n)",
    "SELECT (SELECT MAX(n) FROM qr_canary) AS m", "SELECT DISTINCT n FROM qr_canary",
    "SELECT n FROM qr_canary GROUP BY n HAVING COUNT(*) > 0", "SELECT COALESCE(NULL, 1) AS x",
    "SELECT CAST('2024-01-01' AS DATE) AS d", "SELECT current_date AS d", "SELECT NOW() AS t",
    "SELECT LENGTH('abc') AS l", "SELECT UPPER('x') AS u", "SELECT ABS(-1) AS a",
    "SELECT n FROM qr_canary LIMIT 1 OFFSET 1", "SELECT random() AS r",
    "SELECT STRING_AGG(CAST(n AS VARCHAR), ',') AS s FROM qr_canary",
    "SELECT * FROM range(3)", "SELECT * FROM generate_series(1, 3)",
]


def reads(scale: int = 1) -> list[str]:
    """At least 100 read-only queries: the list above plus variations of it."""
    out = list(READS)
    for q, trick in itertools.product(READS, ["/* c */ {}", "{};", "\n{}\n", "{} -- c"]):
        out.append(trick.format(q))
    return out


def test_the_corpora_are_large_enough() -> None:
    assert len(WRITES) >= 200 and len(reads()) >= 100


def _refuse(con: qr.Connection, stmt: str) -> type[Exception]:
    """Refused with ReadOnlyError, or (syntax this dialect's parser cannot read) SQLParseError."""
    with pytest.raises((ReadOnlyError, SQLParseError)) as info:
        con.sql(stmt)
    return info.type


def test_every_writing_statement_is_refused_before_reaching_duckdb(recorded) -> None:
    con, log = recorded
    kinds = [_refuse(con, stmt) for stmt in WRITES]
    assert kinds.count(ReadOnlyError) >= 200
    assert log == []


def test_every_writing_statement_is_refused_in_notebook_cells(recorded) -> None:
    con, log = recorded
    nb = qr.Notebook(con)
    for stmt in WRITES[::3]:
        with pytest.raises((ReadOnlyError, SQLParseError)):
            nb.cell("c", stmt)
    assert log == [] and nb.cells == []


def test_refused_on_server_engines_and_nothing_changes(canary: Target) -> None:
    kinds = [_refuse(canary.con, stmt) for stmt in WRITES]
    assert kinds.count(ReadOnlyError) >= 200
    q = canary.con.table("qr_canary")
    for stmt in _BASE:
        with pytest.raises(qr.errors.QueryRefError):  # read-only, parse or unknown-column
            q.filter(stmt)  # a statement where a predicate goes


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake", "mysql", "tsql"])
def test_refused_whatever_dialect_the_cell_is_written_in(recorded, dialect: str) -> None:
    con, log = recorded
    nb = qr.Notebook(con)
    for stmt in _BASE:
        with pytest.raises((ReadOnlyError, SQLParseError)):
            nb.cell("c", stmt, dialect=dialect)
    assert log == []


def test_legitimate_read_only_queries_are_all_accepted_and_run() -> None:
    con = qr.connect()
    con.execute("CREATE TABLE qr_canary AS SELECT * FROM range(1, 4) t(n)")
    refused = []
    for q in reads():
        try:
            con.sql(q).to_arrow()
        except ReadOnlyError as err:
            refused.append((q, str(err)))
    assert refused == []
