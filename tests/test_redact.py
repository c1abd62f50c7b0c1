"""One redaction (queryref._redact) for the backends, the notebook and the CLI."""

from __future__ import annotations

from queryref import _display as display
from queryref import _redact
from queryref.cli.main import scrub


def test_the_notebook_and_the_cli_use_the_one_redaction() -> None:
    assert display.redact is _redact.redact
    text = "cannot reach postgresql://bob:hunter2@db/x; token=abc123"
    assert scrub(text, None) == _redact.redact(text) == \
        "cannot reach postgresql://bob:***@db/x; token=***"


def test_the_keywords_are_the_union_of_both_lists() -> None:
    for key in ("password", "passwd", "pwd", "token", "secret", "PASSWORD", "Token"):
        assert _redact.redact(f"failed: {key}=s3cr3t") == f"failed: {key}=***", key
        assert _redact.redact(f"failed: {key}: s3cr3t") == f"failed: {key}: ***", key
    assert _redact.redact("(using password: YES)") == "(using password: YES)"


def test_a_known_secret_is_hidden_whole_even_after_a_keyword() -> None:
    secret = "two words"
    out = _redact.redact(f"invalid percent-encoded token: {secret}!", [secret])
    assert "two" not in out and "words" not in out
    assert scrub(f"password={secret}", secret) == "password=***"


def test_the_cli_scrubs_a_password_given_in_the_query_string() -> None:
    from queryref.cli.main import secret_of

    secret = secret_of("mysql+pymysql://bob@db/x?password=hunter%2042")
    assert secret == "hunter 42"
    assert scrub("login failed for 'hunter 42'", secret) == "login failed for '***'"
