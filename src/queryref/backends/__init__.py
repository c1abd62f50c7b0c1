"""Engines behind queryref: one small adapter each (see :class:`Backend`)."""

from queryref.backends._base import Backend, Stream

__all__ = ["Backend", "Stream"]
