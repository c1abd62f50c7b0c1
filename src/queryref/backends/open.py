"""Opening a backend from a URL or a driver object (drivers are imported only when needed).

``qr.connect()`` comes here: a URL picks the backend by its scheme (``duckdb://``, a ``.duckdb``
path, ``postgresql://``, ``snowflake://``, any other SQLAlchemy URL), a driver object by its
type (a duckdb connection, psycopg or ADBC, a SQLAlchemy Engine, a ``snowflake.connector``
connection or Snowpark Session). Which backend takes which URL is its own declaration
(``Backend.schemes``); SQLAlchemy takes any other scheme. The drivers load only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import duckdb

from queryref._redact import SECRET_KEY
from queryref.backends._base import Backend, Sweep
from queryref.backends._common import wrap_error
from queryref.backends.duckdb import DuckDBBackend
from queryref.backends.postgres import PostgresBackend
from queryref.backends.snowflake import SnowflakeBackend
from queryref.backends.sqlalchemy import SQLAlchemyBackend
from queryref.errors import ParameterError


def open_backend(target: Any, options: dict[str, Any], *, sweep: Sweep | None = None
                 ) -> Backend:
    """The backend for ``target`` (None: DuckDB in memory; a URL; a driver object).

    ``sweep``: what the caller runs to drop what dead processes of this host left behind
    (``offload.cache.sweep_orphans``): the server backends run it when they connect and
    close, on a connection they hold (see :class:`~queryref.backends._base.Backend`).
    """
    if target is None:
        return DuckDBBackend.open(":memory:", **options)
    if isinstance(target, str):
        return _backend_for_url(target, options, sweep)
    if isinstance(target, duckdb.DuckDBPyConnection):
        return DuckDBBackend(target, owned=False, label="(your connection)")
    root = type(target).__module__.split(".", 1)[0]
    if root == "psycopg":
        return _from_psycopg(target, sweep=sweep, **options)
    if root.startswith("adbc_driver"):
        return _from_adbc(target, **options)
    if root == "sqlalchemy" or _is_sqlalchemy_engine(target):
        return _backend_for_engine(target, options, sweep)
    if root.startswith(("snowflake", "snowpark")):
        return _snowflake(target, options)
    if root == "pyspark":
        return _spark().wrap(target)
    raise ParameterError(f"cannot connect to a {type(target).__name__}")


def _backend_for_url(url: str, options: dict[str, Any], sweep: Sweep | None) -> Backend:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    driver_free = scheme.split("+", 1)[0]
    if scheme in DuckDBBackend.schemes:
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        # a query string is DuckDB settings (?threads=4, ?motherduck_token=...), not part of
        # the file name: never shown in a label or an error as one
        path, _, query = path.partition("?")
        config = dict(parse_qsl(query, keep_blank_values=True))
        return DuckDBBackend.open(path or ":memory:", **{**config, **options})
    if scheme == "sc":  # Spark Connect (and Databricks behind it)
        return _spark().open(url, **options)
    if url == ":memory:" or (url.endswith((".duckdb", ".db", ".ddb")) and "://" not in url):
        return DuckDBBackend.open(url, **options)
    if scheme:
        _check_userinfo(url, libpq=driver_free in PostgresBackend.schemes)
    if driver_free in PostgresBackend.schemes:
        return PostgresBackend.open(url, sweep=sweep, **options)
    if driver_free in SnowflakeBackend.schemes:
        return _snowflake(url, options)
    if scheme:
        return SQLAlchemyBackend.open(url, sweep=sweep, **options)
    msg = (
        "expected a URL such as 'postgresql://user:pw@host/db', 'duckdb:///file.duckdb' or "
        "'mysql+pymysql://user:pw@host/db', or a path to a .duckdb file"
    )
    raise ParameterError(msg)


def _check_userinfo(url: str, *, libpq: bool) -> None:
    """Refuse a URL whose user or password holds ``@ / ? #`` as plain characters.

    Parsers disagree on where such a password ends (urllib takes the last ``@``, SQLAlchemy
    and libpq the first; a ``/`` ends the host part), so the driver would connect with part
    of it and show the rest as a host or a port in its error. The message never repeats the
    URL.

    >>> _check_userinfo("postgresql://bob:p%40ss@db/x", libpq=True)
    >>> _check_userinfo("postgresql://bob:p@ss@db/x", libpq=True)
    Traceback (most recent call last):
      ...
    queryref.errors.ParameterError: the user name or password in this URL holds '@', '/', ...
    """
    rest = url.split("://", 1)[1]
    end = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    authority, after = rest[:end], rest[end:]
    userinfo, _, hostport = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    # 'bob:pa/ss@host': the host part ended at the '/' (or '?', '#'), the '@' comes after
    _, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else ("", "", "")
    bad = ("@" in password or (libpq and "@" in user)  # libpq ends the user at its first @
           or ("@" in after and bool(colon) and not port.isdigit()))
    if bad:
        msg = (
            "the user name or password in this URL holds '@', '/', '?' or '#' as a plain "
            "character, so drivers would read the URL differently (and could show part of the "
            "password in an error): percent-encode them, e.g. "
            "urllib.parse.quote(password, safe='') writes '@' as %40"
        )
        raise ParameterError(msg)


def _url_text(url: Any, **changes: Any) -> str:
    """A SQLAlchemy URL as text with its password percent-encoded for any reader.

    SQLAlchemy's own rendering escapes only ``: @ /`` in a password; libpq and urllib would
    read a space, ``#`` or ``?`` in it as the end of the password.
    """
    url = url.set(**changes)
    text = str(url.render_as_string(hide_password=True))  # user:***@host
    if url.password is None:
        return text
    return text.replace(":***@", f":{quote(str(url.password), safe='')}@", 1)


def _is_sqlalchemy_engine(target: Any) -> bool:
    return all(hasattr(target, a) for a in ("dialect", "url", "connect", "dispose"))


def _backend_for_engine(engine: Any, options: dict[str, Any], sweep: Sweep | None
                        ) -> Backend:
    """A SQLAlchemy Engine: Postgres URLs go through ADBC, the rest through SQLAlchemy."""
    if not _is_sqlalchemy_engine(engine):
        raise ParameterError(f"cannot connect to a {type(engine).__name__}: pass an Engine")
    if engine.dialect.name in PostgresBackend.schemes:
        url = _url_text(engine.url, drivername="postgresql")
        return PostgresBackend.open(url, sweep=sweep, **options)
    if engine.dialect.name in SnowflakeBackend.schemes:
        return _snowflake(_url_text(engine.url), options)
    return SQLAlchemyBackend.for_engine(engine, owned=False, sweep=sweep)


def _snowflake_args(url: str, **kwargs: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``snowflake://user:pw@account/db/schema?warehouse=..&role=..`` as connect() arguments."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # 'Invalid IPv6 URL' (never repeat the URL: it holds the password)
        hostname = None
    if not hostname or parts.scheme != "snowflake":
        raise ParameterError("a Snowflake URL looks like snowflake://user:pw@account/db/schema")
    args: dict[str, Any] = {"account": unquote(hostname)}
    if parts.username:
        args["user"] = unquote(parts.username)
    if parts.password:
        args["password"] = unquote(parts.password)
    path = [unquote(p) for p in parts.path.split("/") if p]
    for key, value in zip(("database", "schema"), path, strict=False):
        args[key] = value
    for key, value in parse_qsl(parts.query):
        args[key] = int(value) if key == "port" and value.isdigit() else value
    args.update(kwargs)
    secrets = tuple(str(v) for k, v in args.items() if v and SECRET_KEY.search(k))
    return args, secrets


def _snowflake(target: Any, options: dict[str, Any]) -> Backend:
    """A Snowflake backend from a URL, a ``snowflake.connector`` connection or a Snowpark Session.

    URL query options (``warehouse``, ``role``, ``host``, ``port``, ...) and keyword arguments
    go to ``snowflake.connector.connect``; a connection or Session given stays the caller's.
    """
    try:  # the connector is an extra
        import snowflake.connector as connector
    except ImportError as err:
        msg = f"Snowflake needs its extra: pip install 'queryref[snowflake]' ({err})"
        raise ImportError(msg) from None
    if isinstance(target, str):
        args, secrets = _snowflake_args(target, **options)
        try:
            con = connector.connect(**args)
        except Exception as err:  # junk arguments raise TypeError, ValueError, OSError ...
            failed = wrap_error(err, SnowflakeBackend.label, secrets,
                                table=SnowflakeBackend.errors)
        else:
            return SnowflakeBackend(con, owned=True, secrets=secrets)
        raise failed  # (outside the except: no chain at all, it could show the arguments)
    if isinstance(target, connector.SnowflakeConnection):
        return SnowflakeBackend(target, owned=False)
    if type(target).__module__.startswith("snowflake.snowpark"):
        from snowflake.snowpark import Session

        if isinstance(target, Session):
            return SnowflakeBackend(target.connection, owned=False, session=target)
    raise ParameterError(f"cannot open Snowflake from a {type(target).__name__}")


def _from_psycopg(con: Any, *, sweep: Sweep | None = None, **options: Any) -> Backend:
    """A backend on the same database as a psycopg (3) connection (its own ADBC connection)."""
    info = con.info
    user = quote(info.user or "", safe="")
    password = getattr(info, "password", None) or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = info.host or "localhost"
    host = f"[{host}]" if ":" in host and not host.startswith("/") else host
    if host.startswith("/"):  # a Unix socket directory
        uri = f"postgresql://{auth}/{quote(info.dbname or '', safe='')}?host={quote(host)}" \
              f"&port={info.port}"
    else:
        uri = f"postgresql://{auth}{host}:{info.port}/{quote(info.dbname or '', safe='')}"
    return PostgresBackend.open(uri, sweep=sweep, **options)


def _from_adbc(con: Any, **options: Any) -> Backend:
    """A backend on an ADBC PostgreSQL connection you opened (queryref never closes it).

    queryref cannot open more connections to its database, so queries from several threads
    (or one started while a stream is open) wait for it, up to ``pool_timeout`` seconds.
    """
    try:
        vendor = con.adbc_get_info().get("vendor_name", "")
    except Exception as err:
        raise ParameterError(f"cannot use this ADBC connection: {err}") from None
    if "postgres" not in str(vendor).lower():
        raise ParameterError(f"only ADBC connections to PostgreSQL are supported, not {vendor}")
    return PostgresBackend(con, owned=False, **options)


def _spark() -> Any:
    """The Spark backend class (pyspark loads only when a Spark URL or session is given)."""
    try:
        spark = importlib.import_module("queryref.backends.spark")
    except ImportError as err:  # pragma: no cover - the module itself needs nothing extra
        raise ParameterError(f"Spark needs its extra: pip install 'queryref[spark]' ({err})"
                             ) from None
    return spark.SparkBackend
