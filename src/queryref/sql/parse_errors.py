"""sqlglot's parse errors in the words of SQL (``expected a value after '*'``), not its class
names (``Required keyword: 'expression' missing for <class '...Mul'>``): used by
``SQLParseError``'s message, and by the command line under its marker."""

from __future__ import annotations

import re

_OPERATORS = {"Mul": "*", "Div": "/", "Add": "+", "Sub": "-", "Mod": "%", "IntDiv": "//",
              "EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=",
              "NullSafeEQ": "<=>", "And": "AND", "Or": "OR", "Xor": "XOR", "Like": "LIKE",
              "ILike": "ILIKE", "Is": "IS", "Not": "NOT", "DPipe": "||", "BitwiseAnd": "&",
              "BitwiseOr": "|", "BitwiseXor": "^", "Glob": "GLOB", "SimilarTo": "SIMILAR TO",
              "RegexpLike": "~", "Neg": "-", "Escape": "ESCAPE", "Distance": "<->"}
_CLAUSES = {"Where": "WHERE needs a condition", "Having": "HAVING needs a condition",
            "Qualify": "QUALIFY needs a condition", "Limit": "LIMIT needs a number of rows",
            "Offset": "OFFSET needs a number of rows", "Fetch": "FETCH needs a number of rows",
            "Between": "BETWEEN needs 'low AND high'", "In": "IN needs a list or a query",
            "Order": "ORDER BY needs what to sort by", "Group": "GROUP BY needs what to group "
            "by", "Cast": "CAST needs 'value AS type'", "Alias": "AS needs a name"}
_REQUIRED = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: \d+.*?>")

def readable(description: str, snippet: str = "", *, at_end: bool = False) -> str:
    """sqlglot's description of a parse error in the words of SQL: an operator or clause
    that misses its operand, a token by its text, not parser class names.

    >>> readable("Required keyword: 'expression' missing for "
    ...          "<class 'sqlglot.expressions.core.Mul'>", "FROM")
    "expected a value after '*', found 'FROM'"
    >>> readable("Required keyword: 'this' missing for <class 'sqlglot.expressions.Where'>",
    ...          at_end=True)
    'WHERE needs a condition, but the SQL ends there'
    """
    found = ", but the SQL ends there" if at_end else (f", found {snippet!r}" if snippet else "")
    m = _REQUIRED.search(description)
    if m:
        key, node = m.group(1), m.group(2)
        if node in _OPERATORS:
            return f"expected a value after '{_OPERATORS[node]}'{found}"
        if node in _CLAUSES:
            return f"{_CLAUSES[node]}{found}"
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", node).lower()
        return f"this {words} is incomplete (its {key} is missing){found}"
    if description.startswith("Invalid expression / Unexpected token"):
        return f"unexpected {snippet!r}" if snippet else "unexpected text"
    if description.startswith("Expecting )"):
        return f"expected ')' to close a '('{found}"
    text = _TOKEN.sub(lambda t: "the end of the SQL" if t.group(1) == "SENTINEL"
                      else repr(t.group(2)), description)
    return text[:1].lower() + text[1:] if text.startswith("Expect") else text
