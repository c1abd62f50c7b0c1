"""Options, sizes and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

import queryref as qr
from queryref._sizes import format_bytes, parse_bytes
from queryref.errors import ParameterError, ResultTooLarge, UnknownColumnError


def test_default_budget_is_on():
    assert isinstance(qr.options.max_bytes, int) and qr.options.max_bytes >= 64 * 2**20


def test_context_restores_and_validates():
    before = qr.options.max_bytes
    with qr.options.context(max_bytes="10MB", max_rows=5):
        assert qr.options.max_bytes == 10_000_000 and qr.options.max_rows == 5
    assert qr.options.max_bytes == before and qr.options.max_rows is None
    with pytest.raises(ParameterError):
        with qr.options.context(nope=1):
            pass
    with pytest.raises(ParameterError):
        qr.options.batch_rows = 0
    with pytest.raises(ParameterError):
        qr.options.preflight = "sometimes"


def test_options_apply_to_sinks(con):
    q = con.sql("SELECT range AS i FROM range(100)")
    with qr.options.context(max_rows=10):
        with pytest.raises(ResultTooLarge, match="more than 10 rows"):
            q.to_pandas()
    assert len(q.to_pandas()) == 100


@pytest.mark.parametrize("text,n", [("200MB", 200_000_000), ("1.5GiB", 1610612736),
                                    ("512", 512), (" 2 kb ", 2000), (10, 10), ("3G", 3 * 2**30)])
def test_parse_bytes(text, n):
    assert parse_bytes(text) == n


@pytest.mark.parametrize("bad", ["lots", "-1MB", -5, "1 parsec", True])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ParameterError):
        parse_bytes(bad)


def test_format_bytes():
    assert format_bytes(0) == "0 B" and format_bytes(2**20) == "1.0 MiB"


def test_messages_say_what_to_do():
    err = ResultTooLarge(stage="fetch", limit_bytes=10, seen_bytes=20, seen_rows=3)
    text = str(err)
    for way in ("to_arrow_batches", "to_parquet", "cache", "max_bytes", "filter"):
        assert way in text
    assert isinstance(err, MemoryError)
    unknown = UnknownColumnError(["amout"], ["amount", "id"])
    assert "did you mean 'amount'" in str(unknown) and isinstance(unknown, KeyError)


def test_defaults_read_as_their_setting():
    """``help()`` and the reference show where a default comes from, not ``<object at 0x..>``."""
    import inspect

    params = inspect.signature(qr.QueryRef.to_pandas).parameters
    assert repr(params["max_bytes"].default) == "qr.options.max_bytes"
    assert repr(params["preflight"].default) == "qr.options.preflight"
    assert repr(inspect.signature(qr.QueryRef.to_arrow_batches).parameters["max_batch_bytes"]
                .default) == "qr.options.max_batch_bytes"


def test_a_default_follows_the_setting_at_call_time(con):
    q = con.sql("SELECT range AS i FROM range(100)")
    with qr.options.context(max_rows=10), pytest.raises(ResultTooLarge):
        q.to_arrow()
    assert q.to_arrow().num_rows == 100


def test_options_refuse_unknown_names():
    with pytest.raises(AttributeError, match="max_byte"):
        qr.options.max_byte = 5  # type: ignore[attr-defined]
    assert "max_bytes=" in repr(qr.options)


SNIPPET = '''
import queryref as qr
qr.options.max_bytes = "2GB"
qr.options.max_batch_bytes = 16_000_000
qr.options.preflight = "count"
qr.options.progress = "auto"
budget: int | None = qr.options.max_bytes
qr.options.preflight = "sometimes"
q = qr.connect().sql("SELECT 1 AS x")
q.to_pandas(decimals="arrow", dtype_backend="pyarrow", preflight=None)
q.to_pandas(decimals="objects")
q.join(q, on="x", how="full")
'''


def test_options_types_accept_what_the_setter_accepts(tmp_path):
    """mypy: a setting takes what its check takes ("2GB") and reads as the checked type; the
    choice parameters are Literal types, so a misspelt choice is caught before it runs."""
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    root = Path(__file__).resolve().parents[1]
    out, err, _status = api.run(["--config-file", str(root / "pyproject.toml"),
                                "--cache-dir", str(root / ".mypy_cache"), str(snippet)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = [line.split(":")[1] for line in errors]
    assert lines == ["8", "11", "12"], out + err  # "sometimes", "objects", "full"
    assert "Literal['estimate', 'count'] | None" in errors[0]
