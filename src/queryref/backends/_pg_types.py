"""PostgreSQL's types as Arrow, and its plans as an estimate (for :mod:`.postgres`).

NUMERIC arrives from ADBC as an opaque extension type over strings: it becomes
``decimal128(p, s)`` when the column has a declared precision, else ``float64`` (marked
``CAST_TO_DOUBLE`` in a QueryRef's schema); other opaque types (json, uuid, inet ...) become
their string storage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from queryref.backends._base import CAST_TO_DOUBLE, PlanEstimate

_NUMERIC_FALLBACK = pa.float64()
#: plan keys whose row counts rest on selectivity estimates (guesses without statistics)
_GUESSED = ("Filter", "Join Filter", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond")


def _numeric_type(field: pa.Field) -> pa.DataType:
    """The Arrow type for a NUMERIC column, from its typmod ((precision << 16 | scale) + 4)."""
    meta = field.metadata or {}
    try:
        typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
    except ValueError:
        typmod = -1
    if typmod < 4:
        return _NUMERIC_FALLBACK
    precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
    if precision <= 38:
        return pa.decimal128(precision, scale)
    return pa.decimal256(precision, scale) if precision <= 76 else _NUMERIC_FALLBACK


def _target(field: pa.Field, marks: bool) -> pa.Field:
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        if getattr(t, "type_name", "") == "numeric":
            target = _numeric_type(field)
            # reported as float64: the driver would send it as text, so mark it for the cast
            mark = {CAST_TO_DOUBLE: b"numeric"} if marks and target == _NUMERIC_FALLBACK \
                else None
            return pa.field(field.name, target, field.nullable, metadata=mark)
        return pa.field(field.name, t.storage_type, field.nullable)
    return pa.field(field.name, t, field.nullable)


def arrow_schema(raw: pa.Schema, *, marks: bool = False) -> pa.Schema:
    """The schema queryref hands out for a schema the driver reports (metadata dropped).

    With ``marks`` (the schema a QueryRef keeps, not its batches'), a NUMERIC reported as
    float64 (no declared precision, or more than 76 digits) carries ``CAST_TO_DOUBLE``: the
    driver formats NUMERIC as text (~0.8 us a value, 20x parsing it back), so sinks that want
    floats cast it to DOUBLE PRECISION in the query and the server sends float8.
    """
    return pa.schema([_target(f, marks) for f in raw])


def convert_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Opaque columns to their useful types; everything else is passed through untouched."""
    if all(a.type == f.type for a, f in zip(batch.columns, schema, strict=True)):
        return pa.RecordBatch.from_arrays(batch.columns, schema=schema)
    arrays = []
    for array, field in zip(batch.columns, schema, strict=True):
        if array.type != field.type:
            storage = array.storage if isinstance(array, pa.ExtensionArray) else array
            try:
                array = pc.cast(storage, field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # NaN, Infinity ...
                array = pc.cast(pc.cast(storage, pa.float64()), field.type, safe=False) \
                    if pa.types.is_floating(field.type) else pc.cast(storage, pa.float64())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A JSON plan node and every node under it."""
    yield node
    for child in node.get("Plans") or []:
        yield from _walk(child)


def plan_estimate(text: object) -> PlanEstimate:
    """``Plan Rows`` and ``Plan Width`` of the root of an ``EXPLAIN (FORMAT JSON)``; not firm
    when a node filters or joins rows (its selectivity may be a guess)."""
    plan = json.loads(text) if isinstance(text, str) else None
    root = plan[0].get("Plan", {}) if plan else {}
    if not isinstance(root.get("Plan Rows"), int | float):
        return PlanEstimate(None, None, "PostgreSQL's plan has no row estimate")
    width = root.get("Plan Width")
    firm = not any(key in node for node in _walk(root) for key in _GUESSED)
    detail = "PostgreSQL's planner (Plan Rows, Plan Width" + \
        ("" if firm else "; a guess: the plan filters or joins rows") + ")"
    return PlanEstimate(int(root["Plan Rows"]), int(width) if width else None, detail, firm)
