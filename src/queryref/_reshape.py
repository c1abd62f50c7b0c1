"""Reshaping verbs of ``QueryRef``: ``fill_null``, ``drop_nulls``, ``pivot``, ``unpivot``,
``unnest``. Mixed into ``QueryRef``; each returns a new ``QueryRef`` built by a SQL rewrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


class ReshapeVerbs:
    """Mixed into ``QueryRef``: verbs that reshape rows and columns."""

    __slots__ = ()
