"""Redacting secrets: the one place that decides what in a text is a password.

The backends redact driver errors with it, the notebook and the CLI whatever they print.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import NoReturn
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)")
# ``password=...``, ``token: ...`` pairs (not MySQL's "(using password: YES)", which says
# whether one was given: no secret there)
_KV_PASSWORD = re.compile(
    r"(?i)(?P<head>\b(?:password|passwd|pwd|token|secret)\s*[=:]\s*)"
    r"(?P<pw>'[^']*'|(?!(?:YES|NO)\b)\S+)")
# A password written as a SQL literal: CREATE ROLE .. PASSWORD 'x', IDENTIFIED BY 'x',
# PASSWORD('x'), Snowflake's PASSWORD = 'x', DuckDB's CREATE SECRET (.. SECRET 'x', TOKEN 'x').
# Drivers quote the statement in their errors (ADBC: "Query was: ..."; SQLAlchemy: [SQL: ...]).
_SQL_SECRET = re.compile(
    r"(?i)(?P<head>\b(?:\w*password|passwd|pwd|\w*secret|\w*token|\w*passphrase|encryption_key"
    r"|identified\s+by(?:\s+password)?|identified\s+(?:with|via)\s+\w+\s+(?:by|as|using))"
    r"\s*(?:=\s*|\(\s*)?)(?P<pw>'(?:[^'\\\n]|''|\\.)*'|'(?:[^'\n]|'')*')")
# A URL's user:password@host echoed without its scheme ("expected host authority, got:
# bob:pw@localhost"): the user part holds only what a URL's user name can.
_AUTHORITY = re.compile(
    r"(?<![\w.+%-])(?P<head>[\w.+%-]+:)(?P<pw>[^\s@/:'\"]+)(?P<tail>@[\w.\[\]-])")
#: keys of URL query strings and connect() keywords whose values are secrets
SECRET_KEY = re.compile(r"(?i)password|passwd|pwd|passcode|passphrase|secret|token")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every password-looking part replaced by ``***``.

    Each secret is looked for as given and in the other spellings it could take on its way
    into a message: percent-encoded or decoded, ``repr``/JSON-escaped, SQL-escaped.

    >>> redact("postgresql://bob:hunter2@db:5432/x failed; password=hunter2")
    'postgresql://bob:***@db:5432/x failed; password=***'
    >>> redact("cannot open it: token=abc123 secret: 'x y'")
    'cannot open it: token=*** secret: ***'
    >>> redact("login failed for hunter2", ["hunter2"])
    'login failed for ***'
    >>> redact("login failed for p@ss'word", ["p%40ss%27word"])
    'login failed for ***'
    >>> redact("Query was: CREATE ROLE bob PASSWORD 'it''s'")
    "Query was: CREATE ROLE bob PASSWORD '***'"
    >>> redact("expected host authority, got: bob:hunter2@localhost")
    'expected host authority, got: bob:***@localhost'
    >>> redact("Access denied for user 'bob'@'h' (using password: YES)")
    "Access denied for user 'bob'@'h' (using password: YES)"
    """
    out = text
    # (the known secrets first, whole: a pattern below could hide only a part of one)
    for spelling in sorted(_spellings(secrets), key=len, reverse=True):
        out = out.replace(spelling, "***")
    out = _SQL_SECRET.sub(r"\g<head>'***'", out)
    out = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", out)
    out = _AUTHORITY.sub(r"\g<head>***\g<tail>", out)
    return _KV_PASSWORD.sub(r"\g<head>***", out)


def _spellings(secrets: Iterable[str | None]) -> set[str]:
    """Every spelling of each secret that a driver, a server or Python could print."""
    out: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        for s in {secret, unquote(secret)}:
            out |= {s, quote(s, safe=""), quote(s), quote_plus(s), repr(s)[1:-1],
                    ascii(s)[1:-1], json.dumps(s)[1:-1], s.encode("unicode_escape").decode(),
                    s.replace("'", "''"), s.replace("\\", "\\\\").replace("'", "\\'")}
    return {s for s in out if len(s) >= 3}


def url_password(url: str) -> str | None:
    """The password of a URL, if any (to be redacted wherever it could show): its user
    information's, else one given in its query string (``?password=...``)."""
    try:
        parts = urlsplit(url)
        found = parts.password
    except ValueError:
        return None
    if not found:
        found = next((v for k, v in parse_qsl(parts.query) if SECRET_KEY.search(k)), None)
    return found


def statement_secrets(sql: str) -> list[str]:
    """The passwords a SQL statement carries (literals after PASSWORD, IDENTIFIED BY,
    SECRET ...; URL and ``password=`` parts of connection strings), as written and unescaped,
    so an error that quotes the statement can be redacted.

    >>> statement_secrets("CREATE ROLE bob LOGIN PASSWORD 'it''s'")
    ["it''s", "it's"]
    """
    found: list[str] = []
    for m in _SQL_SECRET.finditer(sql):
        inner = m.group("pw")[1:-1]
        found += [inner, inner.replace("''", "'"), re.sub(r"\\(.)", r"\1", inner)]
    found += [m.group("pw") for m in _URL_PASSWORD.finditer(sql)]
    found += [m.group("pw").strip("'") for m in _KV_PASSWORD.finditer(sql)]
    return list(dict.fromkeys(s for s in found if len(s) >= 3))


def chain_holds(err: BaseException | None, secrets: list[str | None]) -> bool:
    """Whether an error or anything chained to it shows text that :func:`redact` would hide
    (its message, arguments, or attributes such as SQLAlchemy's ``statement``)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        texts = [str(err), repr(err.args)]
        texts += [v for v in getattr(err, "__dict__", {}).values() if isinstance(v, str)]
        if any(redact(t, secrets) != t for t in texts):
            return True
        if chain_holds(err.__cause__, secrets):
            return True
        err = err.__context__
    return False


def raise_clean(err: BaseException, secrets: Iterable[str | None], *,
                cut: bool = False) -> NoReturn:
    """Raise ``err`` (a queryref error) with ``secrets`` redacted from its message and text
    attributes; if anything chained to it shows one (or ``cut``), the chain is cut,
    ``__context__`` included (``raise ... from None`` only hides it from tracebacks)."""
    secrets = list(secrets)
    err.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in err.args)
    for key, value in list(vars(err).items()):
        if isinstance(value, str):
            setattr(err, key, redact(value, secrets))
    if not (cut or chain_holds(err.__cause__, secrets)
            or chain_holds(err.__context__, secrets)):
        raise err
    err.__cause__ = None
    err.__suppress_context__ = True
    try:
        raise err
    finally:
        err.__context__ = None
