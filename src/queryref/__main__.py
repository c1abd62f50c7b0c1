"""``python -m queryref``: the command line (see :mod:`queryref.cli.main`)."""

from __future__ import annotations

from queryref.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
