"""Secrets (issue 7): a canary password never shows, in any spelling, across failure scenarios.

Each scenario gets a password of its own (:func:`_secrets.canary`: two unique tokens around
``@ : / % # ? & + space ' " \\ ~`` and non-ASCII characters), makes something fail while that
password is in play, and checks every surface a user could read (see ``_secrets.Watch``): the
exception with its whole chain and formatted traceback, every logger at DEBUG (drivers'
included), warnings, the process's stdout/stderr, the reprs and ``_repr_*_`` of the objects
involved; for the command line its output and exit code (also through ``python -m queryref``
for real); for notebooks what IPython shows (a real ``InteractiveShell``, and one notebook
executed by nbclient in a fresh kernel); for ``map_partitions`` the child's error and traceback.

Engines are real: PostgreSQL (it trusts loopback here, so a wrong password is refused by
``_secrets.FakePostgres``, which speaks the protocol to a real libpq; every other PostgreSQL
failure comes from the real server), MariaDB (real users with real passwords), Snowflake
through the real connector (fakesnow's server, and unreachable accounts), DuckDB.

The count of scenarios and of texts checked is printed at the end of the module.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlglot import exp

import queryref as qr
from conformance.qr_conformance import MYSQL_URL, PG_URL, unavailable
from queryref.cli.main import main as cli_main
from queryref.errors import (
    BackendError,
    ParameterError,
    PartitionError,
    QueryCancelled,
    QueryRefError,
    QueryTimeout,
    ResultTooLarge,
    SQLParseError,
    UnknownColumnError,
)

from ._secret_fns import fail_on_big_keys, row_count
from ._secrets import Canary, FakePostgres, Watch, canary, watching

ROOT = Path(__file__).resolve().parents[2]


# -- the servers and accounts scenarios use -----------------------------------------------------
def _lit(value: str, dialect: str) -> str:
    return exp.Literal.string(value).sql(dialect=dialect)


def _name(value: str, dialect: str) -> str:
    return exp.to_identifier(value, quoted=True).sql(dialect=dialect)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level, logger.level = logger.level, logging.WARNING
    try:
        yield
    finally:
        logger.setLevel(level)


class Lab:
    """Servers, roles and users made on demand for the module, removed at its end."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self._pg: qr.Connection | None = None
        self._my: qr.Connection | None = None
        self._sf: dict[str, Any] | None = None
        self._shell = False
        self.roles: list[str] = []
        self.users: list[str] = []

    def close(self) -> None:
        self.stack.close()  # the scenarios' connections, servers and shell first
        if self._pg is not None:
            for role in self.roles:
                with contextlib.suppress(QueryRefError):
                    self._pg.execute(f"DROP ROLE IF EXISTS {_name(role, 'postgres')}")
            self._pg.close()
        if self._my is not None:
            for user in self.users:
                with contextlib.suppress(QueryRefError), _quiet("sqlalchemy.engine.Engine"):
                    self._my.execute(f"DROP USER IF EXISTS {_lit(user, 'mysql')}@'%'")
            self._my.close()

    def require(self, needs: tuple[str, ...]) -> None:
        for need in needs:
            {"postgres": lambda: self.pg, "mariadb": lambda: self.my,
             "snowflake": self.sf_kwargs}[need]()

    # -- PostgreSQL ------------------------------------------------------------------------
    @property
    def pg(self) -> qr.Connection:
        if self._pg is None:
            try:
                import adbc_driver_postgresql  # noqa: F401

                con = qr.connect(PG_URL)
                con.sql("SELECT 1 AS x").to_arrow()
            except (ImportError, QueryRefError) as err:
                unavailable(f"PostgreSQL is not reachable: {type(err).__name__}")
            self._pg = con
        return self._pg

    def pg_url(self, pw: Canary | str | None, *, user: str = "postgres", host: str | None = None,
               port: int | None = None, db: str | None = None, query: str = "",
               scheme: str = "postgresql") -> str:
        base = urlsplit(PG_URL)
        secret = pw.enc if isinstance(pw, Canary) else pw
        auth = f"{user}:{secret}@" if secret is not None else f"{user}@"
        where = f"{host or base.hostname}:{port or base.port or 5432}"
        path = f"/{db}" if db is not None else base.path
        return f"{scheme}://{auth}{where}{path}{'?' + query if query else ''}"

    def pg_role(self, pw: Canary | None = None, *, limit: int | None = None,
                login: bool = True) -> str:
        """A role (not a superuser, so connection limits hold) with the canary as password."""
        role = f"qr_secret_{uuid.uuid4().hex[:10]}"
        parts = [f"CREATE ROLE {_name(role, 'postgres')}", "LOGIN" if login else "NOLOGIN"]
        if pw is not None:
            parts.append(f"PASSWORD {_lit(pw.password, 'postgres')}")
        if limit is not None:
            parts.append(f"CONNECTION LIMIT {int(limit)}")
        self.pg.execute(" ".join(parts))
        self.roles.append(role)
        return role

    def fake_pg(self, *, echo: bool = False, silent: bool = False) -> FakePostgres:
        server = FakePostgres(echo=echo, silent=silent)
        self.stack.callback(server.close)
        return server

    # -- MariaDB ---------------------------------------------------------------------------
    @property
    def my(self) -> qr.Connection:
        if self._my is None:
            try:
                import pymysql  # noqa: F401

                con = qr.connect(MYSQL_URL)
                con.sql("SELECT 1 AS x").to_arrow()
            except (ImportError, QueryRefError) as err:
                unavailable(f"MariaDB is not reachable: {type(err).__name__}")
            self._my = con
        return self._my

    def my_user(self, pw: Canary, *, max_connections: int | None = None) -> str:
        """A MariaDB user whose password is the canary, allowed to read database ``test``."""
        user = f"qr_secret_{uuid.uuid4().hex[:10]}"
        limit = f" WITH MAX_USER_CONNECTIONS {int(max_connections)}" if max_connections else ""
        db = urlsplit(MYSQL_URL).path.strip("/") or "test"
        # the test's own setup: out of the scenario's logs (SQLAlchemy logs statements as run)
        with _quiet("sqlalchemy.engine.Engine"):
            self.my.execute(f"CREATE USER {_lit(user, 'mysql')}@'%' IDENTIFIED BY "
                            f"{_lit(pw.password, 'mysql')}{limit}")
            self.my.execute(f"GRANT SELECT ON {_name(db, 'mysql')}.* TO "
                            f"{_lit(user, 'mysql')}@'%'")
        self.users.append(user)
        return user

    def my_url(self, user: str, pw: Canary | str | None, *, db: str | None = None,
               port: int | None = None, host: str | None = None, query: str = "",
               driver: str = "mysql+pymysql") -> str:
        base = urlsplit(MYSQL_URL)
        secret = pw.enc if isinstance(pw, Canary) else pw
        auth = f"{user}:{secret}@" if secret is not None else f"{user}@"
        where = f"{host or base.hostname}:{port or base.port or 3306}"
        path = f"/{db}" if db is not None else base.path
        return f"{driver}://{auth}{where}{path}{'?' + query if query else ''}"

    # -- IPython ---------------------------------------------------------------------------
    def shell(self) -> Any:
        """The IPython shell with the extension loaded (unloaded, namespace reset at the end)."""
        from IPython.core.interactiveshell import InteractiveShell

        ip = InteractiveShell.instance()
        if not self._shell:
            ip.run_line_magic("load_ext", "queryref")
            self._shell = True

            def unload() -> None:
                ip.run_line_magic("unload_ext", "queryref")
                ip.reset(new_session=False)

            self.stack.callback(unload)
        return ip

    # -- Snowflake (fakesnow's server) -----------------------------------------------------
    def sf_kwargs(self) -> dict[str, Any]:
        if self._sf is None:
            try:
                import snowflake.connector  # noqa: F401

                # as the other suites import it (one module, so one shared fakesnow server)
                sys.path.insert(0, str(ROOT / "tests" / "conformance"))
                try:
                    import _snowflake
                finally:
                    sys.path.pop(0)
                self._sf = _snowflake.server_kwargs()
            except ImportError as err:
                pytest.skip(f"Snowflake not available here: {err}")
        return dict(self._sf)

    def sf_url(self, pw: Canary) -> tuple[str, dict[str, Any]]:
        kw = self.sf_kwargs()
        db = f"QR_{uuid.uuid4().hex[:8].upper()}"
        url = (f"snowflake://{kw['user']}:{pw.enc}@{kw['account']}/{db}/TESTS"
               f"?host={kw['host']}&port={kw['port']}&protocol={kw['protocol']}")
        return url, {"session_parameters": kw["session_parameters"],
                     "network_timeout": kw["network_timeout"]}


@dataclass
class Tally:
    scenarios: int = 0
    texts: int = 0
    surfaces: set[str] | None = None

    def add(self, w: Watch) -> None:
        self.scenarios += 1
        self.texts += w.surfaces()
        kinds = {where.split(" ")[0].split(".")[0] for where, _ in w.texts}
        kinds |= {"log"} if w.records.records else set()
        self.surfaces = (self.surfaces or set()) | kinds


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    t = Tally()
    yield t
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    line = (f"secrets: {t.scenarios} scenarios run (of {len(SCENARIOS)}), {t.texts:,} texts "
            f"checked for 17 spellings of each canary, surface kinds: "
            f"{', '.join(sorted(t.surfaces or ()))}")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


# -- the scenarios ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    name: str
    needs: tuple[str, ...]
    run: Callable[[Lab, Canary, Watch], None]
    middle: str | None = None
    #: loggers not checked, with the reason (see the scenarios that set it)
    exempt: tuple[str, ...] = ()


SCENARIOS: list[Scenario] = []
#: pymysql sends a password as latin-1 and MariaDB hashes what the client sent: a password a
#: MariaDB user can log in with is plain ASCII here (one scenario checks the others fail cleanly)
ASCII_MIDDLE = "@:/%#?&+ '\"\\~"
#: SQLAlchemy logs every statement it runs (echo=True, or INFO on sqlalchemy.engine, e.g. by
#: logging.basicConfig(level=DEBUG)): a password the user wrote into con.execute()'s statement
#: is in that log as written. That log is SQLAlchemy's record of the user's own SQL, like the
#: server's statement log; queryref does not rewrite another library's log records.
SQLALCHEMY_STATEMENT_LOG = ("sqlalchemy.engine.Engine",)


def scenario(*needs: str, middle: str | None = None, exempt: tuple[str, ...] = ()
             ) -> Callable[[Callable[[Lab, Canary, Watch], None]], Callable[..., None]]:
    if "mariadb" in needs and middle is None:
        middle = ASCII_MIDDLE
    def register(fn: Callable[[Lab, Canary, Watch], None]) -> Callable[..., None]:
        SCENARIOS.append(Scenario(fn.__name__.removeprefix("s_"), needs, fn, middle, exempt))
        return fn
    return register


#: a query that runs for minutes unless stopped
_PG_SLOW = "SELECT COUNT(*) AS n FROM generate_series(1, 2000000000) g"


def _query(con: qr.Connection, sql: str = "SELECT 1 AS x") -> Callable[[], Any]:
    return lambda: con.sql(sql).to_pandas()


# PostgreSQL: connecting fails ---------------------------------------------------------------
@scenario("postgres")
def s_pg_wrong_password(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg()
    w.expect(lambda: qr.connect(lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port)),
             BackendError, match="password authentication failed")
    assert server.received == [pw.password]  # the driver really sent it, decoded


@scenario("postgres")
def s_pg_wrong_password_echoed_by_the_server(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    w.expect(lambda: qr.connect(lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port)),
             BackendError, match="password authentication failed")
    assert server.received == [pw.password]


@scenario("postgres")
def s_pg_password_in_the_query_string_echoed(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    url = lab.pg_url(None, user="bob", host="127.0.0.1", port=server.port,
                     query=f"password={pw.enc}")
    w.expect(lambda: qr.connect(url), BackendError, match="password authentication failed")
    assert server.received == [pw.password]


@scenario("postgres")
def s_pg_connection_refused(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, host="127.0.0.1", port=1)), BackendError,
             match="refused")


@scenario("postgres")
def s_pg_unknown_host(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, host="no-such-host.invalid")), BackendError,
             match="no-such-host.invalid")


@scenario("postgres")
def s_pg_unknown_database(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, db="qr_no_such_db")), BackendError,
             match="does not exist")


@scenario("postgres")
def s_pg_unknown_role(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, user="qr_no_such_role")), BackendError,
             match="does not exist")


@scenario("postgres")
def s_pg_role_may_not_log_in(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw, login=False)
    w.expect(lambda: qr.connect(lab.pg_url(pw, user=role)), BackendError,
             match="not permitted to log in")


@scenario("postgres")
def s_pg_role_connection_limit(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw, limit=0)
    w.expect(lambda: qr.connect(lab.pg_url(pw, user=role)), BackendError,
             match="too many connections")


@scenario("postgres")
def s_pg_bad_sslmode(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, query="sslmode=bogus")), BackendError,
             match="sslmode")


@scenario("postgres")
def s_pg_ssl_required_but_not_offered(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, query="sslmode=require")), BackendError,
             match="SSL")


@scenario("postgres")
def s_pg_connect_timeout(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(silent=True)  # accepts, never answers
    url = lab.pg_url(pw, host="127.0.0.1", port=server.port, query="connect_timeout=1")
    w.expect(lambda: qr.connect(url), BackendError, match="timeout")


@scenario("postgres")
def s_pg_port_out_of_range(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw, port=99999)), BackendError, match="port")


@scenario("postgres")
def s_pg_unclosed_ipv6_bracket(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"postgresql://bob:{pw.enc}@[::1/db"), QueryRefError)


@scenario("postgres")
def s_pg_unknown_connect_keyword(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(lab.pg_url(pw), no_such_option=1), QueryRefError)


# URLs whose password was not percent-encoded: parsers disagree on where it ends ---------------
@scenario("postgres")
def s_pg_password_with_a_plain_at_sign(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"postgresql://bob:{pw.password}@127.0.0.1:1/db"),
             ParameterError, match="percent-encode")


@scenario("postgres", middle="§/é")
def s_pg_password_with_a_plain_slash(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"postgresql://bob:{pw.password}@127.0.0.1:1/db"),
             ParameterError, match="percent-encode")


@scenario("postgres", middle="§@é")
def s_pg_user_name_with_at_sign_and_password(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"postgresql://bob@corp.example:{pw.enc}@127.0.0.1:1/db"),
             ParameterError, match="percent-encode")


@scenario("postgres", middle="%zz§ é")
def s_pg_password_with_a_bad_percent_escape_and_space(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"postgresql://bob:{pw.password}@127.0.0.1:1/db"),
             QueryRefError)


# PostgreSQL: connected (the server trusts loopback and takes the password), then a failure ----
def _pg_con(lab: Lab, pw: Canary, **kw: Any) -> qr.Connection:
    role = lab.pg_role(pw, **kw)
    con = qr.connect(lab.pg_url(pw, user=role))
    lab.stack.callback(con.close)
    return con


@scenario("postgres")
def s_pg_server_error_after_connect(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    w.show("connection", con)
    w.expect(_query(con, "SELECT 1 / 0 AS x"), BackendError, match="division by zero")


@scenario("postgres")
def s_pg_syntax_error(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    w.expect(lambda: con.sql("SELECT FROM WHERE ,"), SQLParseError)
    w.expect(lambda: con.execute("CREATE TABLE ("), BackendError, match="syntax error")


@scenario("postgres")
def s_pg_unknown_column(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    w.expect(lambda: con.sql("SELECT 1 AS a").select("nope"), UnknownColumnError)
    w.expect(_query(con, "SELECT nope FROM (SELECT 1 AS a) t"), BackendError, match="nope")


@scenario("postgres")
def s_pg_result_too_large(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    q = con.sql("SELECT g, repeat('x', 200) AS s FROM generate_series(1, 20000) g")
    w.expect(lambda: q.to_pandas(max_bytes="100KB", preflight=None), ResultTooLarge)


@scenario("postgres")
def s_pg_query_timeout(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    w.expect(lambda: con.sql(_PG_SLOW).to_pandas(timeout=0.3), QueryTimeout)


@scenario("postgres")
def s_pg_query_cancelled_by_the_server(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw)
    con = qr.connect(lab.pg_url(pw, user=role))
    lab.stack.callback(con.close)
    admin = lab.pg
    active = ("SELECT pid FROM pg_stat_activity WHERE usename = {{ r }} AND state = 'active' "
              "AND query ILIKE '%generate_series%'")

    def cancel() -> None:
        for _ in range(200):
            pids = admin.sql(active, r=role).to_pandas()["pid"].tolist()
            if pids:
                admin.execute(f"SELECT pg_cancel_backend({int(pids[0])})")
                return
            time.sleep(0.02)

    t = threading.Thread(target=cancel)
    t.start()
    w.expect(lambda: con.sql(_PG_SLOW).to_pandas(timeout=60),
             (QueryCancelled, BackendError), match="cancel")
    t.join()


@scenario("postgres")
def s_pg_second_connection_refused(lab: Lab, pw: Canary, w: Watch) -> None:
    """A stream holds the one connection the role may have; the next query needs another."""
    con = _pg_con(lab, pw, limit=1)
    reader = con.sql("SELECT g FROM generate_series(1, 100000) g").to_arrow_batches(1000)
    next(iter(reader))
    try:
        w.expect(lambda: con.sql("SELECT 2 AS y").to_pandas(), BackendError,
                 match="too many connections")
    finally:
        reader.close()


@scenario("postgres")
def s_pg_explain_and_estimate_fail(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    q = con.sql("SELECT * FROM qr_no_such_table")
    w.expect(q.explain, BackendError, match="qr_no_such_table")
    w.expect(q.estimate, BackendError, match="qr_no_such_table")


@scenario("postgres")
def s_pg_create_table_fails(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)  # the role may not create tables in another role's schema
    w.expect(lambda: con.create_table("pg_catalog.qr_nope", {"a": [1, 2]}), BackendError)


@scenario("postgres")
def s_pg_used_after_close(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    q = con.sql("SELECT 1 AS x")
    con.close()
    w.show("query", q)
    w.expect(q.to_pandas, QueryRefError, match="closed")


@scenario("postgres")
def s_pg_preview_of_a_failing_query(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    q = con.sql("SELECT 1 / 0 AS x")
    w.show("query", q)
    assert "division by zero" in q._repr_html_()


@scenario("postgres")
def s_pg_create_role_statement_fails(lab: Lab, pw: Canary, w: Watch) -> None:
    """The one door for DDL: a CREATE ROLE with a password that fails (the role exists; a role
    that may not create roles)."""
    role = lab.pg_role()
    statement = (f"CREATE ROLE {_name(role, 'postgres')} LOGIN PASSWORD "
                 f"{_lit(pw.password, 'postgres')}")
    w.expect(lambda: lab.pg.execute(statement), BackendError, match="already exists")
    con = qr.connect(lab.pg_url("other-password", user=lab.pg_role()))
    w.expect(lambda: con.execute(statement), BackendError, match="permission denied")
    con.close()


@scenario("postgres")
def s_pg_alter_role_statement_syntax_error(lab: Lab, pw: Canary, w: Watch) -> None:
    statement = f"ALTER ROLE nobody_qr PASSWORD {_lit(pw.password, 'postgres')} BOGUS"
    w.expect(lambda: lab.pg.execute(statement), BackendError)


# PostgreSQL through other doors: a psycopg connection, a SQLAlchemy Engine ----------------------
@scenario("postgres")
def s_pg_from_psycopg_connection(lab: Lab, pw: Canary, w: Watch) -> None:
    psycopg = pytest.importorskip("psycopg")
    role = lab.pg_role(pw, limit=1)
    base = urlsplit(PG_URL)
    raw = psycopg.connect(host=base.hostname, port=base.port or 5432, user=role,
                          password=pw.password, dbname=base.path.strip("/") or "postgres")
    lab.stack.callback(raw.close)
    w.expect(lambda: qr.connect(raw), BackendError, match="too many connections")


@scenario("postgres")
def s_pg_sqlalchemy_engine_wrong_password(lab: Lab, pw: Canary, w: Watch) -> None:
    sa = pytest.importorskip("sqlalchemy")
    server = lab.fake_pg(echo=True)
    engine = sa.create_engine(lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port,
                                         scheme="postgresql+psycopg"))
    w.show("engine", engine)
    w.expect(lambda: qr.connect(engine), BackendError, match="password authentication")


# PostgreSQL: map_partitions in child processes that reconnect by URL ---------------------------
@scenario("postgres")
def s_pg_child_cannot_reconnect(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    # then the parent's pooled connection is the only one allowed (set after connecting: ADBC
    # opens and closes a connection of its own before the real one, and PostgreSQL may still
    # count that one, exiting, against a limit of 1: "too many connections" in the parent)
    lab.pg.execute(f"ALTER ROLE {_name(lab.roles[-1], 'postgres')} CONNECTION LIMIT 1")
    q = con.sql("SELECT g AS k FROM generate_series(1, 6) g")
    assert con.backend.reopen() is not None
    err = w.expect(lambda: q.map_partitions(row_count, by="k", n=2), PartitionError,
                   match="too many connections")
    w.add("child traceback", err.child_traceback)


@scenario("postgres")
def s_pg_child_function_raises(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    q = con.sql("SELECT g AS k FROM generate_series(1, 6) g")
    err = w.expect(lambda: q.map_partitions(fail_on_big_keys, by="k", n=2), PartitionError,
                   match="cannot handle")
    w.add("child traceback", err.child_traceback)
    err = w.expect(lambda: q.map_partitions(fail_on_big_keys, by="k", n=2, isolate=False),
                   PartitionError, match="cannot handle")
    w.add("traceback", err.child_traceback)


@scenario("postgres")
def s_pg_unpicklable_function_holding_the_url(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    fn = functools.partial(row_count, url=lab.pg_url(pw), lock=threading.Lock())
    q = con.sql("SELECT g AS k FROM generate_series(1, 6) g")
    w.expect(lambda: q.map_partitions(fn, by="k", n=2), ParameterError, match="pickle")


@scenario("postgres")
def s_pg_pickling_connection_and_query(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _pg_con(lab, pw)
    w.expect(lambda: pickle.dumps(con), (TypeError, pickle.PicklingError, QueryRefError))
    w.expect(lambda: pickle.dumps(con.sql("SELECT 1 AS x")),
             (TypeError, pickle.PicklingError, QueryRefError))


# MariaDB: real users, real passwords ---------------------------------------------------------
def _my_con(lab: Lab, pw: Canary, **kw: Any) -> qr.Connection:
    user = lab.my_user(pw, **kw)
    con = qr.connect(lab.my_url(user, pw))
    lab.stack.callback(con.close)
    return con


@scenario("mariadb")
def s_mariadb_wrong_password(lab: Lab, pw: Canary, w: Watch) -> None:
    user = lab.my_user(canary("right", ASCII_MIDDLE))
    con = qr.connect(lab.my_url(user, pw))
    w.show("connection", con)
    w.expect(_query(con), BackendError, match="Access denied")
    con.close()


@scenario("mariadb", middle="@:/%#?&+ é€😀")
def s_mariadb_password_pymysql_cannot_send(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect(lab.my_url("bob", pw))
    w.expect(_query(con), BackendError, match="latin-1")
    con.close()


@scenario("mariadb")
def s_mariadb_unknown_user(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect(lab.my_url("qr_no_such_user", pw))
    w.expect(_query(con), BackendError, match="Access denied")
    con.close()


@scenario("mariadb")
def s_mariadb_unknown_database(lab: Lab, pw: Canary, w: Watch) -> None:
    user = lab.my_user(pw)
    con = qr.connect(lab.my_url(user, pw, db="qr_no_such_db"))
    w.expect(_query(con), BackendError, match="qr_no_such_db")
    con.close()


@scenario("mariadb")
def s_mariadb_connection_refused(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect(lab.my_url("bob", pw, host="127.0.0.1", port=1))
    w.expect(_query(con), BackendError, match="Can't connect")
    con.close()


@scenario("mariadb")
def s_mariadb_unknown_host(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect(lab.my_url("bob", pw, host="no-such-host.invalid"))
    w.expect(_query(con), BackendError, match="no-such-host.invalid")
    con.close()


@scenario("mariadb")
def s_mariadb_password_as_connect_arg(lab: Lab, pw: Canary, w: Watch) -> None:
    user = lab.my_user(canary("right", ASCII_MIDDLE))
    con = qr.connect(lab.my_url(user, None), connect_args={"password": pw.password})
    w.expect(_query(con), BackendError, match="Access denied")
    con.close()


@scenario("mariadb")
def s_mariadb_engine_object_wrong_password(lab: Lab, pw: Canary, w: Watch) -> None:
    sa = pytest.importorskip("sqlalchemy")
    user = lab.my_user(canary("right", ASCII_MIDDLE))
    engine = sa.create_engine(lab.my_url(user, pw))
    con = qr.connect(engine)
    w.show("engine", engine)
    w.show("connection", con)
    w.expect(_query(con), BackendError, match="Access denied")
    engine.dispose()


@scenario("mariadb")
def s_mariadb_server_error_after_connect(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _my_con(lab, pw)
    w.show("connection", con)
    w.expect(_query(con, "SELECT * FROM qr_no_such_table"), BackendError, match="doesn't exist")


@scenario("mariadb")
def s_mariadb_result_too_large(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _my_con(lab, pw)
    q = con.sql("SELECT REPEAT('x', 5000) AS s FROM information_schema.columns")
    w.expect(lambda: q.to_pandas(max_bytes="20KB", preflight=None), ResultTooLarge)


@scenario("mariadb")
def s_mariadb_query_timeout(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _my_con(lab, pw)
    slow = ("SELECT COUNT(*) AS n FROM information_schema.columns a, "
            "information_schema.columns b, information_schema.columns c")
    w.expect(lambda: con.sql(slow).to_pandas(timeout=0.3), QueryTimeout)


@scenario("mariadb", exempt=SQLALCHEMY_STATEMENT_LOG)
def s_mariadb_create_user_statement_fails(lab: Lab, pw: Canary, w: Watch) -> None:
    statement = f"CREATE USER 'qr_nobody'@'%' IDENTIFIED BY {_lit(pw.password, 'mysql')} BOGUS"
    w.expect(lambda: lab.my.execute(statement), BackendError, match="syntax")


@scenario("mariadb", exempt=SQLALCHEMY_STATEMENT_LOG)
def s_mariadb_set_password_for_unknown_user(lab: Lab, pw: Canary, w: Watch) -> None:
    statement = (f"SET PASSWORD FOR 'qr_nobody'@'%' = PASSWORD("
                 f"{_lit(pw.password, 'mysql')})")
    w.expect(lambda: lab.my.execute(statement), BackendError)


@scenario("mariadb")
def s_mariadb_password_with_a_plain_at_sign(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"mysql+pymysql://bob:{pw.password}@127.0.0.1:1/test"),
             ParameterError, match="percent-encode")


@scenario("mariadb")
def s_mariadb_unknown_driver_option(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect(lab.my_url("bob", pw, query="no_such_option=1"))
    w.expect(_query(con), BackendError, match="no_such_option")
    con.close()


@scenario("mariadb")
def s_mariadb_child_cannot_reconnect(lab: Lab, pw: Canary, w: Watch) -> None:
    con = _my_con(lab, pw, max_connections=1)
    q = con.sql("SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4")
    assert q.to_pandas()["k"].tolist() == [1, 2, 3, 4]  # the pool keeps this connection
    err = w.expect(lambda: q.map_partitions(row_count, by="k", n=2), PartitionError,
                   match="max_user_connections")
    w.add("child traceback", err.child_traceback)


# Dialects and drivers that are not there, URLs that are not URLs -----------------------------
@scenario()
def s_sqlalchemy_driver_not_installed(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"mysql+nosuchdriver://bob:{pw.enc}@127.0.0.1/test"),
             ParameterError, match="no backend")


@scenario()
def s_dialect_not_installed(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"oracle+oracledb://bob:{pw.enc}@127.0.0.1/x"),
             ParameterError)
    w.expect(lambda: qr.connect(f"nosuchdb://bob:{pw.enc}@127.0.0.1/x"), ParameterError)


@scenario()
def s_not_a_url(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"postgresql//bob:{pw.enc}@127.0.0.1/x"), ParameterError)
    w.expect(lambda: qr.connect(f"host=127.0.0.1 password={pw.enc}"), ParameterError)


# Snowflake: the real connector, fakesnow's server or nothing at all ----------------------------
@scenario("snowflake")
def s_snowflake_query_error_after_connect(lab: Lab, pw: Canary, w: Watch) -> None:
    url, options = lab.sf_url(pw)
    con = qr.connect(url, **options)
    lab.stack.callback(con.close)
    w.show("connection", con)
    w.expect(_query(con, "SELECT * FROM qr_no_such_table"), BackendError)
    w.show("query", con.sql("SELECT * FROM qr_no_such_table"))


@scenario("snowflake")
def s_snowflake_result_too_large(lab: Lab, pw: Canary, w: Watch) -> None:
    url, options = lab.sf_url(pw)
    con = qr.connect(url, **options)
    lab.stack.callback(con.close)
    q = con.sql("SELECT REPEAT('x', 1000) AS s FROM TABLE(GENERATOR(ROWCOUNT => 500))")
    w.expect(lambda: q.to_pandas(max_bytes="50KB"), ResultTooLarge)


@scenario("snowflake")
def s_snowflake_unreachable_account(lab: Lab, pw: Canary, w: Watch) -> None:
    url = f"snowflake://bob:{pw.enc}@acct/db/sch?host=acct.invalid&login_timeout=2"
    w.expect(lambda: qr.connect(url, network_timeout=2), BackendError, match="Could not connect")


@scenario("snowflake")
def s_snowflake_password_keyword_refused_port(lab: Lab, pw: Canary, w: Watch) -> None:
    url = "snowflake://bob@acct/db/sch?host=127.0.0.1&port=1&protocol=http"
    w.expect(lambda: qr.connect(url, password=pw.password, login_timeout=2, network_timeout=2),
             BackendError, match="Could not connect")


@scenario("snowflake")
def s_snowflake_key_pair_file_missing(lab: Lab, pw: Canary, w: Watch) -> None:
    url, options = lab.sf_url(canary("url"))
    w.expect(lambda: qr.connect(url, **options, authenticator="SNOWFLAKE_JWT",
                                private_key_file="/nonexistent/qr_key.p8",
                                private_key_file_pwd=pw.password), BackendError)


@scenario("snowflake")
def s_snowflake_junk_login_timeout(lab: Lab, pw: Canary, w: Watch) -> None:
    url = f"snowflake://bob:{pw.enc}@acct/db/sch?host=127.0.0.1&port=1&login_timeout=soon"
    w.expect(lambda: qr.connect(url), QueryRefError)


@scenario("snowflake")
def s_snowflake_unclosed_ipv6_bracket(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"snowflake://bob:{pw.enc}@[::1/db"), ParameterError)


@scenario("snowflake")
def s_snowflake_no_account(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(f"snowflake://bob:{pw.enc}@/db/sch"), ParameterError)


@scenario("snowflake")
def s_snowflake_token_in_the_query_string(lab: Lab, pw: Canary, w: Watch) -> None:
    url = (f"snowflake://bob@acct/db/sch?host=127.0.0.1&port=1&protocol=http"
           f"&authenticator=oauth&token={pw.enc}&login_timeout=2")
    w.expect(lambda: qr.connect(url, network_timeout=2), BackendError)


# DuckDB ---------------------------------------------------------------------------------------
@scenario()
def s_duckdb_create_secret_statement_fails(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect()
    statement = f"CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET {_lit(pw.password, 'duckdb')}"
    w.expect(lambda: con.execute(statement), QueryRefError)


@scenario()
def s_duckdb_url_with_credentials_in_a_file_function(lab: Lab, pw: Canary, w: Watch) -> None:
    con = qr.connect()
    url = f"file://bob:{pw.enc}@localhost/nonexistent/qr.csv"
    w.expect(lambda: con.sql("SELECT * FROM read_csv({{ u }})", u=url).to_pandas(),
             BackendError)


@scenario()
def s_duckdb_secret_setting_at_connect(lab: Lab, pw: Canary, w: Watch) -> None:
    w.expect(lambda: qr.connect(":memory:", s3_secret_access_key=pw.password), QueryRefError)


# The command line, in this process (main) and as `python -m queryref` --------------------------
def _cli(argv: list[str], w: Watch, env: dict[str, str] | None = None) -> int:
    saved = os.environ.get("QUERYREF_URL")
    if env is not None:
        os.environ.update(env)
    try:
        code = cli_main(argv)
    finally:
        if saved is None:
            os.environ.pop("QUERYREF_URL", None)
        else:
            os.environ["QUERYREF_URL"] = saved
    return code


def _run_module(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k != "QUERYREF_URL"}
    full["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), full.get("PYTHONPATH", "")])
    full.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "queryref", *args], env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[str], w: Watch) -> int:
    out, err = proc.communicate(timeout=120)
    w.add("python -m queryref stdout", out)
    w.add("python -m queryref stderr", err)
    assert err.startswith("queryref: error:") or "Traceback" in err, err
    return proc.returncode


@scenario("postgres")
def s_cli_wrong_password_with_db_flag(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    url = lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port)
    assert _finish(_run_module(["query", "SELECT 1 AS x", "--db", url]), w) == 4
    assert server.received == [pw.password]


@scenario("postgres")
def s_cli_wrong_password_from_queryref_url(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    url = lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port)
    proc = _run_module(["query", "SELECT 1 AS x", "--debug"], env={"QUERYREF_URL": url})
    assert _finish(proc, w) == 4


@scenario("mariadb")
def s_cli_mariadb_wrong_password(lab: Lab, pw: Canary, w: Watch) -> None:
    user = lab.my_user(canary("right", ASCII_MIDDLE))
    assert _cli(["query", "SELECT 1 AS x", f"--db={lab.my_url(user, pw)}", "--debug"], w) == 4


@scenario("postgres")
def s_cli_debug_traceback_of_a_refused_password(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    url = lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port)
    assert _cli(["explain", "SELECT 1 AS x", "--db", url, "--debug"], w) == 4


@scenario("postgres")
def s_cli_query_error_after_connect(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw)
    assert _cli(["query", "SELECT 1 / 0 AS x", "--debug"], w,
                env={"QUERYREF_URL": lab.pg_url(pw, user=role)}) == 4


@scenario("postgres")
def s_cli_result_too_large(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw)
    sql = "SELECT g, repeat('x', 100) AS s FROM generate_series(1, 50000) g"
    assert _cli(["query", sql, "--db", lab.pg_url(pw, user=role), "--max-bytes", "100KB",
                 "--format", "csv"], w) == 3  # (every row: the terminal table shows a few)


@scenario()
def s_cli_usage_errors_next_to_the_url(lab: Lab, pw: Canary, w: Watch) -> None:
    url = f"postgresql://bob:{pw.enc}@127.0.0.1:1/db"
    assert _cli(["query", "SELECT 1 AS x", "--db", url, "--no-such-flag"], w) == 2
    assert _cli(["query", "SELECT 1 AS x", url], w) == 2  # a URL where none belongs
    assert _cli(["query", "SELECT 1 AS x", f"--db={url}", "--show", "0"], w) == 2


@scenario()
def s_cli_password_not_percent_encoded(lab: Lab, pw: Canary, w: Watch) -> None:
    url = f"postgresql://bob:{pw.password}@127.0.0.1:1/db"
    assert _cli(["query", "SELECT 1 AS x", "--db", url, "--debug"], w) == 2


@scenario("snowflake")
def s_cli_snowflake_query_error(lab: Lab, pw: Canary, w: Watch) -> None:
    url, options = lab.sf_url(pw)
    kw = lab.sf_kwargs()
    # the URL carries what the CLI can pass: no session parameters, so the server's defaults
    assert options["network_timeout"] == kw["network_timeout"]
    assert _cli(["query", "SELECT * FROM qr_no_such_table", "--db", url, "--debug"], w) == 4


# Notebooks: the IPython magics in a real shell, and one notebook in a real kernel --------------
def _ipython(lab: Lab, code: str, w: Watch) -> Any:
    """Run a cell in the shell; everything it showed goes to ``w``."""
    from IPython.utils.capture import capture_output

    ip = lab.shell()
    with capture_output() as cap:
        result = ip.run_cell(code, store_history=False)
    w.add("notebook output", cap.stdout + cap.stderr)
    for out in cap.outputs:
        for mime, data in out.data.items():
            w.add(f"notebook display {mime}", str(data))
    if result.result is not None:
        w.show("notebook result", result.result)
    error = result.error_in_exec or result.error_before_exec
    if error is not None:  # (its frames would show the cell's source: what the user typed)
        w.error(error, frames=False)
    return result


@scenario("postgres")
def s_notebook_connect_refused_password(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    url = lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port)
    r = _ipython(lab, f"%qref_connect {url}", w)
    assert not r.success and server.received == [pw.password]


@scenario("postgres")
def s_notebook_connect_through_a_variable(lab: Lab, pw: Canary, w: Watch) -> None:
    server = lab.fake_pg(echo=True)
    lab.shell().user_ns["qr_secret_url"] = lab.pg_url(
        pw, user="bob", host="127.0.0.1", port=server.port)
    r = _ipython(lab, "%qref_connect qr_secret_url", w)
    assert not r.success
    lab.shell().user_ns.pop("qr_secret_url")


@scenario("postgres")
def s_notebook_cell_fails_after_connect(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw)
    lab.shell().user_ns["qr_secret_url"] = lab.pg_url(pw, user=role)
    assert _ipython(lab, "%qref_connect qr_secret_url", w).success
    r = _ipython(lab, "%%qref broken\nSELECT 1 / 0 AS x", w)
    assert not r.success
    r = _ipython(lab, "%%qref fine --no-preview\nSELECT 1 AS x", w)
    assert r.success
    _ipython(lab, "fine", w)  # the QueryRef's repr and _repr_html_ through the display system
    _ipython(lab, "import queryref as qr; qr.Notebook(fine.connection)", w)
    _ipython(lab, "%qref_sql fine", w)
    assert _ipython(lab, "%qref_connect", w).success  # back to DuckDB; closes the connection
    lab.shell().user_ns.pop("qr_secret_url")


@scenario("postgres")
def s_notebook_repr_of_a_query_that_fails(lab: Lab, pw: Canary, w: Watch) -> None:
    role = lab.pg_role(pw)
    ns = lab.shell().user_ns
    ns["qr_secret_con"] = con = qr.connect(lab.pg_url(pw, user=role))
    r = _ipython(lab, "qr_secret_con.sql('SELECT * FROM qr_no_such_table')", w)
    assert r.success  # the repr shows the error instead of raising it
    r = _ipython(lab, "qr_secret_con.sql('SELECT * FROM qr_no_such_table').to_pandas()", w)
    assert isinstance(r.error_in_exec, BackendError)
    ns.pop("qr_secret_con")
    con.close()


@scenario("postgres")
def s_notebook_run_by_nbclient(lab: Lab, pw: Canary, w: Watch) -> None:
    """A notebook in a fresh kernel: a refused password, then a cell failing after connect.

    The URLs come from environment variables, as they should: a URL typed into a cell is in
    the notebook file itself, and any traceback through that cell quotes its source.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    server = lab.fake_pg(echo=True)
    env = {"QR_SECRET_BAD_URL": lab.pg_url(pw, user="bob", host="127.0.0.1", port=server.port),
           "QR_SECRET_URL": lab.pg_url(pw, user=lab.pg_role(pw))}
    cells = [
        "import os\nimport queryref as qr\n%load_ext queryref\n"
        "bad, good = os.environ['QR_SECRET_BAD_URL'], os.environ['QR_SECRET_URL']",
        "%qref_connect bad",
        "%qref_connect good",
        "%%qref broken\nSELECT 1 / 0 AS x",
        "%%qref fine --preview 2\nSELECT g FROM generate_series(1, 5) g",
        "fine",
        "qr.connect(bad)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(ROOT)}})
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them
    try:
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for cell in nb.cells:
        for out in cell.outputs:
            if out.output_type == "error":
                w.add("notebook error", f"{out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
            elif out.output_type == "stream":
                w.add(f"notebook {out.name}", out.text)
            else:
                for mime, data in out.get("data", {}).items():
                    w.add(f"notebook {mime}", str(data))
    shown = "\n".join(text for _, text in w.texts)
    assert "could not connect" in shown and "password authentication failed" in shown
    assert "division by zero" in shown and "first 2 rows" in shown
    assert server.received == [pw.password, pw.password]


# -- the test ---------------------------------------------------------------------------------
def test_there_are_at_least_50_distinct_scenarios() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(set(names)) == len(names) >= 50


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.name)
def test_the_password_never_shows(sc: Scenario, lab: Lab, tally: Tally,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    lab.require(sc.needs)
    pw = canary(sc.name, sc.middle)
    capfd.readouterr()
    with watching() as w:
        sc.run(lab, pw, w)
    out, err = capfd.readouterr()
    w.add("stdout", out)
    w.add("stderr", err)
    tally.add(w)
    leaks = w.leaks(pw, exempt=sc.exempt)
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks)


# -- found and fixed: one named test each (docs/reliability.md, "Found and fixed") -------------
def _pg_driver() -> None:
    pytest.importorskip("adbc_driver_postgresql")


def _everything(err: BaseException) -> str:
    from ._secrets import chain_texts

    return "\n".join(text for _, text in chain_texts(err))


def test_a_percent_encoded_password_echoed_decoded_is_hidden() -> None:
    """Redaction knew only the URL's (percent-encoded) spelling of the password: a server or
    driver message holding it decoded showed it, and the driver's error stayed chained."""
    _pg_driver()
    pw = canary("decoded")
    server = FakePostgres(echo=True)
    try:
        with pytest.raises(BackendError) as info:
            qr.connect(f"postgresql://bob:{pw.enc}@127.0.0.1:{server.port}/db")
    finally:
        server.close()
    assert server.received == [pw.password]
    assert "received" in str(info.value) and not pw.find(_everything(info.value))
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_a_password_in_the_query_string_is_a_secret_too() -> None:
    _pg_driver()
    pw = canary("query")
    server = FakePostgres(echo=True)
    try:
        with pytest.raises(BackendError) as info:
            qr.connect(f"postgresql://bob@127.0.0.1:{server.port}/db?password={pw.enc}")
    finally:
        server.close()
    assert server.received == [pw.password] and not pw.find(_everything(info.value))


def test_a_cut_chain_leaves_no_context_behind() -> None:
    """``raise wrapped from None`` hid the driver's error from tracebacks but kept it as
    ``__context__``: libpq's error quoting the whole URI was one attribute away."""
    _pg_driver()
    pw = canary("context")
    with pytest.raises(BackendError) as info:
        qr.connect(f"postgresql://bob:{pw.enc}@[::1/db")
    assert "IPv6" in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert not pw.find(_everything(info.value))


@pytest.mark.parametrize("url", [
    "postgresql://bob:{pw}@127.0.0.1:1/db",          # libpq read part of it as the port
    "postgresql://bob:Qh1/{pw}@127.0.0.1:1/db",
    "postgresql://bob@corp.example:{enc}@127.0.0.1:1/db",  # libpq ends the user at the 1st @
    "mysql+pymysql://bob:Qh1@{enc}@127.0.0.1:1/db",  # SQLAlchemy: the rest became the host
    "snowflake://bob:Qh1?{enc}@acct/db",
])
def test_a_password_with_plain_reserved_characters_is_refused(url: str) -> None:
    pw = canary("plain", "@:/é")
    text = url.format(pw=pw.password, enc=pw.enc)
    with pytest.raises(ParameterError, match="percent-encode") as info:
        qr.connect(text)
    assert not pw.find(_everything(info.value))


def test_a_password_in_an_executed_statement_is_hidden() -> None:
    """Drivers quote the failing statement (ADBC "Query was: ...", DuckDB's parser, the
    SQLAlchemy wrapper's [SQL: ...]); a CREATE SECRET / CREATE ROLE .. PASSWORD showed it."""
    from queryref.backends._common import redact

    pw = canary("statement", "@:/%#?&+ '\"\\~é")
    con = qr.connect()
    literal = _lit(pw.password, "duckdb")
    with pytest.raises(SQLParseError) as info:
        con.execute(f"CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET {literal}")
    assert "syntax error" in str(info.value) and not pw.find(_everything(info.value))
    adbc = (f"[libpq] Failed to execute query 'CREATE ROLE r LOGIN PASSWORD {literal}': "
            "ERROR:  role \"r\" already exists")
    assert not pw.find(redact(adbc)) and "already exists" in redact(adbc)


def test_map_partitions_names_an_unpicklable_function_without_its_arguments() -> None:
    pw = canary("partial")
    fn = functools.partial(row_count, url=f"postgresql://bob:{pw.enc}@db/x",
                           lock=threading.Lock())
    q = qr.connect().sql("SELECT range AS k FROM range(6)")
    with pytest.raises(ParameterError, match="'row_count' cannot be pickled") as info:
        q.map_partitions(fn, by="k", n=2)
    assert not pw.find(_everything(info.value))


def test_duckdb_errors_are_redacted_too() -> None:
    pw = canary("duckdb")
    con = qr.connect()
    with pytest.raises(BackendError) as info:
        con.sql("SELECT * FROM read_csv({{ u }})",
                u=f"file://bob:{pw.enc}@localhost/nonexistent/x.csv").to_pandas()
    assert "authority" in str(info.value) and not pw.find(_everything(info.value))


def test_an_engine_password_with_a_space_reaches_the_server() -> None:
    """qr.connect(engine) rendered the URL with SQLAlchemy's escaping (only ': @ /'): a space
    or '#' in the password broke the URL libpq read ("unexpected spaces found")."""
    _pg_driver()
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    pw = canary("engine", "@:/%#? é")
    server = FakePostgres()
    try:
        engine = sa.create_engine(sa.engine.URL.create(
            "postgresql+psycopg", username="bob", password=pw.password, host="127.0.0.1",
            port=server.port, database="db"))
        with pytest.raises(BackendError, match="password authentication failed") as info:
            qr.connect(engine)
    finally:
        server.close()
    assert server.received == [pw.password] and not pw.find(_everything(info.value))


@pytest.mark.parametrize("case", ["ipv6", "login_timeout", "key_file"])
def test_snowflake_junk_connect_arguments_raise_typed_errors(case: str) -> None:
    pytest.importorskip("snowflake.connector")
    pw = canary("snowflake")
    base = f"snowflake://bob:{pw.enc}@acct/db/sch?host=127.0.0.1&port=1&protocol=http"
    url, kw = {
        "ipv6": (f"snowflake://bob:{pw.enc}@[::1/db", {}),
        "login_timeout": (base + "&login_timeout=soon", {}),
        "key_file": (base, {"authenticator": "SNOWFLAKE_JWT", "private_key_file_pwd": "x-pwd",
                            "private_key_file": "/nonexistent/qr_key.p8"}),
    }[case]
    with pytest.raises(QueryRefError) as info:
        qr.connect(url, **kw)
    assert not pw.find(_everything(info.value))
