"""``python -m queryref``: the command line (see :mod:`queryref._cli`)."""

from __future__ import annotations

from queryref._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
