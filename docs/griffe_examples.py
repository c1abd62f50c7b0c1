"""A griffe extension for the API reference: doctest examples and option defaults read well.

- queryref's docstrings put their ``>>>`` examples straight after the prose or the parameters,
  without an ``Examples`` heading (they run as doctests either way). The numpy docstring parser
  would read them as prose (``[3, 3]`` looks like a Markdown link) or as more parameters, so
  this inserts the heading before the first ``>>>`` line when there is none, and the examples
  render as Python console code.
- A parameter whose default is a setting of ``qr.options`` is written ``DEFAULT.max_bytes`` in
  the source (a sentinel that reads ``qr.options.max_bytes`` in ``help()``); the signature in
  the reference shows ``qr.options.max_bytes`` too.

Docstrings and signatures are left untouched in the source.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^\s*Examples?\s*\n\s*-{3,}\s*$", re.MULTILINE)
_OPTION_DEFAULT = re.compile(r"^DEFAULT\.(\w+)$")


class DoctestExamples(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if isinstance(obj, griffe.Function):
            _option_defaults(obj)
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


def _option_defaults(func: griffe.Function) -> None:
    """``max_bytes: SizeLike = DEFAULT.max_bytes`` shows as ``= qr.options.max_bytes``."""
    for param in func.parameters:
        match = _OPTION_DEFAULT.match(str(param.default)) if param.default is not None else None
        if match:
            param.default = f"qr.options.{match.group(1)}"
