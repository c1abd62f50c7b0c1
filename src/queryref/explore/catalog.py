"""Schema browsing for autocomplete and side panels: ``con.tables()`` and ``con.columns(t)``.

Catalog queries only (``information_schema``, which DuckDB, PostgreSQL, MySQL/MariaDB and
Snowflake all have), written as sqlglot trees: no table is scanned. Without ``schema``, the
tables of the connection's current schema (the database on MySQL/MariaDB).

>>> import queryref as qr
>>> con = qr.connect()
>>> _ = con.execute("CREATE TABLE t (id INTEGER NOT NULL, name VARCHAR)")
>>> tables(con)
  schema name   kind
0   main    t  table
>>> columns(con, "t")
   name     type  nullable
0    id  INTEGER     False
1  name  VARCHAR      True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from queryref.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

    from queryref._connection import Connection

#: what a catalog listing may take
CATALOG_BUDGET = 64 * 2**20


def _info(table: str) -> exp.Table:
    return exp.table_(table, db="information_schema")


def _current_schema(con: Connection) -> exp.Expr:
    return exp.CurrentSchema()


def tables(con: Connection, schema: str | None = None) -> pd.DataFrame:
    """The tables and views of ``schema`` (default: the current one): columns ``schema``,
    ``name``, ``kind`` (``"table"`` or ``"view"``), sorted by name."""
    if schema is not None and not isinstance(schema, str):
        raise ParameterError(f"schema must be a name, not {schema!r}")
    where: exp.Expr = exp.EQ(this=exp.column("table_schema"),
                             expression=exp.Literal.string(schema) if schema is not None
                             else _current_schema(con))
    if schema is not None and con.dialect == "snowflake":  # unquoted names are upper case
        where = exp.EQ(this=exp.Upper(this=exp.column("table_schema")),
                       expression=exp.Literal.string(schema.upper()))
    kind = exp.Case(ifs=[exp.If(this=exp.Like(this=exp.Upper(this=exp.column("table_type")),
                                              expression=exp.Literal.string("%VIEW%")),
                                true=exp.Literal.string("view"))],
                    default=exp.Literal.string("table"))
    tree = (exp.select(exp.alias_(exp.column("table_schema"), "schema"),
                       exp.alias_(exp.column("table_name"), "name"), exp.alias_(kind, "kind"))
            .from_(_info("tables")).where(where).order_by(exp.column("table_name")))
    return _run(con, tree, ["schema", "name", "kind"])


def columns(con: Connection, table: str) -> pd.DataFrame:
    """The columns of ``table`` (``"schema.table"`` works too): columns ``name``, ``type``
    (the engine's), ``nullable``, in the table's order."""
    if not isinstance(table, str) or not table.strip():
        raise ParameterError(f"table must be a name, not {table!r}")
    parts = table.split(".")
    name, schema = parts[-1], parts[-2] if len(parts) > 1 else None
    folded = con.dialect == "snowflake"

    def same(column: str, value: str) -> exp.Expr:
        left: exp.Expr = exp.column(column)
        if folded:
            left, value = exp.Upper(this=left), value.upper()
        return exp.EQ(this=left, expression=exp.Literal.string(value))

    where = exp.and_(same("table_name", name),
                     same("table_schema", schema) if schema is not None else exp.EQ(
                         this=exp.column("table_schema"), expression=_current_schema(con)))
    nullable = exp.EQ(this=exp.Upper(this=exp.column("is_nullable")),
                      expression=exp.Literal.string("YES"))
    tree = (exp.select(exp.alias_(exp.column("column_name"), "name"),
                       exp.alias_(exp.column("data_type"), "type"),
                       exp.alias_(nullable, "nullable"))
            .from_(_info("columns")).where(where).order_by(exp.column("ordinal_position")))
    out = _run(con, tree, ["name", "type", "nullable"])
    if out.empty:
        raise ParameterError(f"no table {table!r} in the catalog "
                                 f"(con.tables() lists them)")
    out["nullable"] = out["nullable"].astype(bool)
    return out


def _run(con: Connection, tree: exp.Select, names: list[str]) -> pd.DataFrame:
    frame = con.sql(tree.sql(dialect=con.dialect)).to_pandas(max_bytes=CATALOG_BUDGET,
                                                             preflight=None)
    frame.columns = names  # (Snowflake upper-cases the aliases)
    return frame
