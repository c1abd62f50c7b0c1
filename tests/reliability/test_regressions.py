"""Bugs the reliability campaign found, one named test each (see docs/reliability.md)."""

from __future__ import annotations

import pandas as pd
import pytest

import queryref as qr
from queryref.errors import ParameterError, QueryRefError


@pytest.mark.parametrize("name", [
    "read_csv('/etc/hostname')",           # a table function reading a server-side file
    "query('SELECT 42 AS x')",             # DuckDB's query(): runs SQL given as text
    "range(3)",
    "t -- */ DROP TABLE t; /*",            # a comment: the name would silently mean "t"
])
def test_table_name_is_only_a_name_never_a_function_or_comment(name: str) -> None:
    con = qr.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS n")
    with pytest.raises(ParameterError, match="not a table name"):
        con.table(name)
    with pytest.raises(ParameterError, match="not a table name"):
        con.create_table(name, pd.DataFrame({"n": [2]}))
    assert con.table("t").to_pandas()["n"].tolist() == [1]


def test_names_ending_in_a_newline_are_quoted_not_taken_as_plain() -> None:
    """``re.match("...$")`` accepted "amount\\n" as a plain name: it came back as "amount"."""
    con = qr.connect()
    df = con.sql("SELECT 1 AS one").mutate(**{"amount\n": qr.lit(2)}).to_pandas()
    assert list(df.columns) == ["one", "amount\n"]
    nb = qr.Notebook(con)
    with pytest.raises(ParameterError):
        nb.cell("orders\n", "SELECT 1 AS x")


def test_nul_in_a_table_name_is_refused_before_the_engine() -> None:
    con = qr.connect()
    for name in ("\x00", "t\x00; DROP TABLE t"):
        with pytest.raises(ParameterError, match="NUL"):
            con.table(name)
        with pytest.raises(ParameterError, match="NUL"):
            con.create_table(name, pd.DataFrame({"n": [1]}))


def _server(name: str):  # an engine of the conformance suite, skipped when it is not there
    from conformance.qr_conformance import _OPENERS

    return _OPENERS[name]()


def test_postgres_name_over_63_bytes_is_refused_not_truncated() -> None:
    with _server("postgres") as con:
        long = "n" * 70
        with pytest.raises(QueryRefError):
            got = con.sql("SELECT 1 AS one").mutate(**{long: qr.lit(1)}).to_pandas()
            assert list(got.columns)[1] == long  # never a silently shortened name


def test_mariadb_alias_over_256_chars_is_refused_not_truncated() -> None:
    with _server("mariadb") as con:
        long = "n" * 300
        with pytest.raises(QueryRefError):
            got = con.sql("SELECT 1 AS one").mutate(**{long: qr.lit(1)}).to_pandas()
            assert list(got.columns)[1] == long


def test_mariadb_plan_estimate_of_a_quoted_literal_is_no_raw_json_error() -> None:
    with _server("mariadb") as con:
        t = con.create_table("qr_bs", pd.DataFrame({"v": ["it's", "c"]}), replace=True)
        got = t.filter(qr.col("v") == "it's").to_pandas()
        assert got.iloc[:, 0].tolist() == ["it's"]


def test_snowflake_mutate_after_a_lower_case_alias_keeps_the_definition() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "conformance"))
    try:
        import _snowflake
    finally:
        sys.path.pop(0)
    with _snowflake.snowflake_connection() as con:
        got = con.sql("SELECT 1 AS one").mutate(x=qr.lit(2)).to_pandas()
        assert got.iloc[0].tolist() == [1, 2]


def test_mariadb_wrong_password_message_keeps_its_sentence() -> None:
    """The redaction took "YES)" of "(using password: YES)" for a secret and cut the rest."""
    pytest.importorskip("pymysql")
    from conformance.qr_conformance import MYSQL_URL, unavailable

    base = MYSQL_URL.split("://", 1)[1].rsplit("@", 1)[1]
    try:
        qr.connect(MYSQL_URL).close()
    except QueryRefError as err:
        unavailable(f"MariaDB is not reachable: {err}")
    with pytest.raises(QueryRefError) as info:
        qr.connect(f"mysql+pymysql://root:Wr0ng-pw-7@{base}").sql("SELECT 1 AS x").to_pandas()
    text = str(info.value)
    assert "Wr0ng-pw-7" not in text
    assert text.endswith("(using password: YES)\")"), text


def test_mariadb_bigint_unsigned_beyond_int64_comes_as_uint64() -> None:
    """BIGINT UNSIGNED >= 2**63: the schema said int64 and every sink raised OverflowError."""
    pytest.importorskip("pymysql")
    import contextlib

    from conformance.qr_conformance import _OPENERS

    top = 2**64 - 1
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(_OPENERS["mariadb"]())
        con.execute("CREATE TABLE u (u BIGINT UNSIGNED NOT NULL, n BIGINT UNSIGNED)")
        con.execute(f"INSERT INTO u VALUES ({top}, NULL), ({2**63}, 1), (0, 2)")
        q = con.table("u").order_by("u")
        assert str(q.schema.field("u").type) == "uint64"
        assert q.to_arrow().column("u").to_pylist() == [0, 2**63, top]
        df = q.select("u").to_pandas()
        assert str(df["u"].dtype) == "uint64" and df["u"].tolist() == [0, 2**63, top]
        assert q.to_polars()["u"].to_list() == [0, 2**63, top]
        assert q.filter(qr.col("u") > 2**63).count() == 1
        assert q.to_arrow().column("n").to_pylist() == [2, 1, None]


def test_duckdb_url_query_string_is_settings_not_the_file_name(tmp_path) -> None:
    """``duckdb:///x.duckdb?motherduck_token=...`` named a file after the whole text and
    showed the token in errors."""
    path = tmp_path / "x.duckdb"
    with qr.connect(f"duckdb:///{path}?threads=2") as con:
        assert "?" not in con.describe()
        assert con.sql("SELECT current_setting('threads') AS t").to_pandas()["t"][0] == 2
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["x.duckdb"]
    with pytest.raises(QueryRefError) as info:
        qr.connect(f"duckdb:///{tmp_path}/missing/y.duckdb?motherduck_token=Tok3n-s3cret")
    assert "Tok3n-s3cret" not in str(info.value) and "?" not in str(info.value)
