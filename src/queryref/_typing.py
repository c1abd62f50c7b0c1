"""The types named in queryref's signatures (one place, so every module spells them alike)."""

from __future__ import annotations

from typing import Literal, TypeAlias

SizeLike: TypeAlias = int | float | str | None
"""A number of bytes: ``200_000_000``, ``"200MB"``, ``"1.5GiB"``; ``None``: no limit."""

JoinHow: TypeAlias = Literal["inner", "left", "right", "outer", "semi", "anti", "cross"]
"""How [`QueryRef.join`][queryref.QueryRef.join] keeps rows without a match."""

Decimals: TypeAlias = Literal["float", "object", "arrow"]
"""What SQL decimals become in pandas: ``float64``, Python ``Decimal`` objects, or exact
Arrow decimals."""

DtypeBackend: TypeAlias = Literal["pyarrow"]
"""``"pyarrow"``: every pandas column a ``pd.ArrowDtype`` (``None``, the default: numpy-backed
numbers and Arrow-backed text)."""

Preflight: TypeAlias = Literal["estimate", "count"]
"""The guard's check before a query runs: the planner's estimate, or an exact pushed-down
``COUNT(*)`` (``None`` skips it)."""

Progress: TypeAlias = bool | Literal["auto"]
"""Show progress on long sinks: ``True``, ``False`` or ``"auto"`` (when a terminal waits)."""

PartitionsAs: TypeAlias = Literal["pandas", "arrow"]
"""What [`QueryRef.map_partitions`][queryref.QueryRef.map_partitions] hands ``fn`` and
returns: pandas DataFrames or Arrow Tables."""
