"""SQL the user built with another library, as text in the connection's dialect: a sqlglot
tree (its named placeholders become ``{{ name }}`` parameters) or a SQLAlchemy Core clause
(compiled with its bound values as quoted literals). ``Connection.sql`` then reads the text as
it reads any other (the read-only check, parameters).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.errors import UnsupportedError as SqlglotUnsupported

from queryref.backends import Backend
from queryref.backends.sqlalchemy import DIALECTS as SQLALCHEMY_TO_SQLGLOT
from queryref.errors import ParameterError, UnsupportedError
from queryref.sql.text import render as text_render


def sqlglot_text(tree: exp.Expr, dialect: str) -> str:
    """A sqlglot tree written in ``dialect``, its named placeholders (``:name``) turned into
    ``{{ name }}`` parameters, so that they are filled as text's are."""
    tree = tree.copy()
    for node in list(tree.find_all(exp.Placeholder)):
        name = node.name
        if not name or not name.isidentifier():
            msg = (
                f"the sqlglot expression has a placeholder {node.sql(dialect)!r} without a name: "
                "name it (:lo) and pass lo=... to con.sql()"
            )
            raise ParameterError(msg)
        node.replace(exp.Var(this=f"{{{{ {name} }}}}"))
    try:
        return text_render(tree, dialect, unsupported_level=ErrorLevel.RAISE)
    except SqlglotUnsupported as err:
        msg = f"{dialect} cannot run this sqlglot expression as written: {err}"
        raise UnsupportedError(msg) from None


#: this engine's sqlglot dialect -> the SQLAlchemy dialect that writes SQL it reads, and the
#: sqlglot dialect that reads that SQL back exactly (quotes, backslashes). Elsewhere (DuckDB,
#: Snowflake, Spark ...) PostgreSQL's, which writes standard SQL (duckdb_engine builds on it);
#: sqlglot then writes the engine's own spelling, as for any other tree.
_SQLALCHEMY_DIALECTS: dict[str, tuple[str, str]] = {"mysql": ("mysql", "mysql")}
_SQLALCHEMY_STANDARD = ("postgresql", "postgres")


def sqlalchemy_dialect(backend: Backend) -> tuple[Any, str]:
    """The SQLAlchemy dialect to compile in, and the sqlglot dialect that reads its SQL:
    the connection's own SQLAlchemy engine's when it has one, else one matching the engine.

    A fresh instance with named parameters: with ``format``/``pyformat`` ones (psycopg2,
    pymysql) SQLAlchemy doubles every ``%`` of the SQL it writes (``LIKE 'a%%'``).
    """
    from sqlalchemy.dialects import registry

    engine = backend.sqlalchemy_engine
    if engine is not None and engine.dialect.name in SQLALCHEMY_TO_SQLGLOT:
        return (type(engine.dialect)(paramstyle="named"),
                SQLALCHEMY_TO_SQLGLOT[engine.dialect.name])
    name, read = _SQLALCHEMY_DIALECTS.get(backend.dialect, _SQLALCHEMY_STANDARD)
    return registry.load(name)(paramstyle="named"), read


def sqlalchemy_text(clause: Any, dialect: Any, read: str) -> tuple[str, str]:
    """A SQLAlchemy clause compiled in ``dialect`` with its bound values as literals."""
    import sqlalchemy as sa

    try:
        # a bound parameter without a value would be written as NULL, with only a warning
        clause.compile(dialect=dialect).construct_params()
        compiled = clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    except (sa.exc.SQLAlchemyError, NotImplementedError) as err:
        msg = (
            f"could not write the SQLAlchemy {type(clause).__name__} as SQL with its values "
            f"inlined: {str(err).splitlines()[0]}. Give every bound parameter a value "
            "(sa.bindparam('lo', 5), stmt.params(lo=5)) of a type SQLAlchemy can write as a "
            "literal, or pass SQL text with {{ lo }} parameters"
        )
        raise ParameterError(msg) from None
    return str(compiled), read
