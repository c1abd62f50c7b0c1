"""Engines behind queryref: one small adapter each (see :class:`Backend`).

- ``open``: which backend a URL or a driver object opens (each declares its ``schemes``).
- ``_base``: the interface, capability flags, and driver errors translated from each
  backend's table (``Backend.fail`` / ``guard``); ``_common``: deadlines, Ctrl-C, wrapping.
- ``duckdb``, ``postgres``, ``snowflake``, ``sqlalchemy``: one module per engine, with its
  types and plans beside it (``_duckdb_types``, ``_pg_types``, ``_sf_types``, ``_mysql``).
- ``_quote`` (names and values as SQL), ``_rows`` (DB-API rows as Arrow), ``_pool``.

Backends import only each other and the foundation (``errors``, ``_redact``, ``_sizes`` ...).
"""

from queryref.backends._base import Backend, Stream

__all__ = ["Backend", "Stream"]
