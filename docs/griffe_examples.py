"""A griffe extension for the API reference: doctest examples become numpy "Examples" sections.

queryref's docstrings put their ``>>>`` examples straight after the prose or the parameters,
without an ``Examples`` heading (they run as doctests either way). The numpy docstring parser
would read them as prose (``[3, 3]`` looks like a Markdown link) or as more parameters, so
this inserts the heading before the first ``>>>`` line when there is none, and the examples
render as Python console code. Docstrings themselves are left untouched in the source.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^\s*Examples?\s*\n\s*-{3,}\s*$", re.MULTILINE)


class DoctestExamples(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        doc = obj.docstring
        if doc is None or ">>>" not in doc.value or _HEADING.search(doc.value):
            return
        lines = doc.value.split("\n")
        for i, line in enumerate(lines):
            if line.lstrip().startswith(">>>"):
                indent = line[: len(line) - len(line.lstrip())]
                head = [indent + "Examples", indent + "--------"]
                blank = [""] if i and lines[i - 1].strip() else []
                doc.value = "\n".join([*lines[:i], *blank, *head, *lines[i:]])
                return
