"""Injection payloads, generated from families so the corpus is large, varied and repeatable.

Each payload is text meant to break out of a literal or an identifier: quotes, comments,
second statements, dollar quoting, unicode tricks, NUL, format markers, jinja markers...
``payloads(scale)`` gives at least ``1000 * scale`` distinct strings (NUL ones included;
``clean()`` drops those an engine cannot store).
"""

from __future__ import annotations

import itertools
import random

CANARY = "qr_canary"

# The fragments an attacker would use to leave a string or an identifier and add SQL.
_BREAKOUTS = [
    "'", "''", "'''", "\"", "\"\"", "\\'", "\\", "\\\\", "\\\"", "`", "``", "]", "[", "[]",
    "');", "\");", "`);", "' OR '1'='1", "\" OR \"1\"=\"1", "' OR 1=1 --", "1) OR (1=1",
    "$$", "$tag$", "$$'", "$a$'$a$", "E'\\''", "N'", "U&'\\0041'", "X'00'", "B'1'",
]
_TAILS = [
    f"; DROP TABLE {CANARY}; --",
    f"; DELETE FROM {CANARY}; --",
    f"'; INSERT INTO {CANARY} VALUES (666); --",
    f"\"; UPDATE {CANARY} SET n = 666; --",
    f"); TRUNCATE {CANARY}; /*",
    f"*/ DROP TABLE {CANARY} /*",
    f" UNION SELECT n FROM {CANARY} --",
    "; SELECT pg_sleep(5); --",
    "; COPY (SELECT 1) TO '/tmp/qr_pwned'; --",
    "; ATTACH ':memory:' AS pwned; --",
    "; SET search_path TO pwned; --",
    f"$$; DROP TABLE {CANARY}; $$",
    f"$x$; DELETE FROM {CANARY}; $x$",
    "-- comment",
    "/* comment */",
    "/* unterminated",
    "#mysql comment",
    "",
]
_UNICODE = [
    "\u202e", "\u200b", "\u200d", "\ufeff", "\u2028", "\u2029",  # RTL override, zero-width, BOM
    "\u02bc", "\u2019", "\uff07", "\u201c", "\uff02",  # homoglyphs of ' and "
    "\u0430dmin", "ｓｅｌｅｃｔ", "é", "e\u0301", "日本語", "🦆", "𝔘𝔫𝔦", "\u00a0", "ß",
]
_FORMAT = ["%s", "%(x)s", "%%", "{}", "{0}", "{x}", "{{ x }}", "{{x}}", "{% raw %}", "{#",
           "}}", "{{", "${x}", ":x", ":1", "?", "@x", "$1"]
_WHITESPACE = ["\n", "\r\n", "\t", "\r", "\x0b", "\x0c", " "]
_NUL = ["\x00", "a\x00b", "'\x00'", "\x00; DROP TABLE t"]


def _families() -> dict[str, list[str]]:
    fam: dict[str, list[str]] = {}
    fam["breakout+tail"] = [b + t for b, t in itertools.product(_BREAKOUTS, _TAILS)]
    fam["unicode"] = [u + b + u for u, b in itertools.product(_UNICODE, _BREAKOUTS[:12])]
    fam["format"] = [f + b for f, b in itertools.product(_FORMAT, ["", "'", "\"", "; --"])]
    fam["whitespace"] = [w.join(["x'", "--", f"DROP TABLE {CANARY}"]) for w in _WHITESPACE]
    fam["long"] = ["'" * 5000, "a" * 20_000, "\\" * 4097, "\"" * 3001, ("$$" * 1000) + "'",
                   ("' OR '" * 500), "🦆" * 3000]
    fam["nul"] = list(_NUL)
    # plain names but for a trailing newline or space: "$" in a regex lets "x\n" through
    fam["almost plain"] = [n + w for n, w in itertools.product(
        ["amount", "one", "select", "x", "AMOUNT", "Amount", "a" * 70], ["\n", " ", "\t"])]
    return fam


def payloads(scale: int = 1) -> list[str]:
    """Distinct payloads: every family, then random mixes of their pieces up to the size."""
    out: list[str] = []
    for values in _families().values():
        out.extend(values)
    pieces = _BREAKOUTS + _TAILS + _UNICODE + _FORMAT + _WHITESPACE
    rng = random.Random(7)
    target = 1000 * scale + 200
    while len(set(out)) < target:
        out.append("".join(rng.choice(pieces) for _ in range(rng.randint(2, 6))))
    seen: set[str] = set()
    return [p for p in out if p and not (p in seen or seen.add(p))]


def has_nul(value: str) -> bool:
    return "\x00" in value


def clean(values: list[str]) -> list[str]:
    """The payloads without NUL characters (those raise a typed error instead)."""
    return [v for v in values if not has_nul(v)]
