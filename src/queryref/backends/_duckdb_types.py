"""DuckDB's types as Arrow (BIGNUM), and its plans as an estimate (for :mod:`.duckdb`)."""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from queryref.backends._base import PlanEstimate
from queryref.errors import UnsupportedError

# DuckDB's BIGNUM (integers past 128 bits) reaches Arrow as an opaque binary: pandas got
# bytes. It crosses as decimal256(76, 0): exact to 76 digits, read like any decimal.
_BIGNUM = pa.decimal256(76, 0)


def is_bignum(t: pa.DataType) -> bool:
    return isinstance(t, pa.OpaqueType) and t.type_name == "bignum" and t.vendor_name == "DuckDB"


def _bignum_value(blob: bytes | None) -> decimal.Decimal | None:
    """DuckDB's BIGNUM bytes as an integer: a 3-byte header (sign bit, then the length), the
    magnitude big-endian; a negative number has every bit inverted."""
    if blob is None:
        return None
    positive = bool(blob[0] & 0x80)
    data = blob[3:] if positive else bytes(b ^ 0xFF for b in blob[3:])
    n = int.from_bytes(data, "big")
    if n >= 10 ** 76:
        msg = ("a BIGNUM value has more than 76 digits, past what Arrow's decimals hold: "
               "CAST it to VARCHAR in the SQL")
        raise UnsupportedError(msg)
    return decimal.Decimal(n if positive else -n)


def exact_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(_BIGNUM) if is_bignum(f.type) else f for f in schema],
                     metadata=schema.metadata)


def exact_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = []
    for column in batch.columns:
        if is_bignum(column.type):
            column = pa.array([_bignum_value(v) for v in column.storage.to_pylist()], _BIGNUM)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan."""
    for node in nodes:
        yield node
        yield from _walk(node.get("children") or [])


def _filters(node: dict[str, Any]) -> bool:
    """Whether a plan node filters rows (a TOP_N's optional dynamic filter does not count)."""
    found = node.get("extra_info", {}).get("Filters", [])
    found = [found] if isinstance(found, str) else found
    return node.get("name") == "FILTER" or any(
        not str(f).startswith("optional:") for f in found)


def plan_estimate(text: object) -> PlanEstimate:
    """The root's ``Estimated Cardinality`` from an ``EXPLAIN (FORMAT JSON)``.

    A LIMIT node reports none (or 0): the estimate is then its input's, and the caller caps
    it by the query's own LIMIT. DuckDB guesses a filter's selectivity (a fixed 20%), so a
    plan with a filter is not firm.
    """
    nodes = json.loads(text) if isinstance(text, str) else []
    firm = not any(_filters(n) for n in _walk(nodes))
    detail = "DuckDB's planner (estimated cardinality" + \
        ("" if firm else "; a guess: the plan filters rows") + ")"
    while nodes:
        node = nodes[0]
        card = str(node.get("extra_info", {}).get("Estimated Cardinality", ""))
        if card.isdigit() and (int(card) or "LIMIT" not in node.get("name", "")):
            return PlanEstimate(int(card), None, detail, firm)
        nodes = node.get("children") or []
    return PlanEstimate(None, None, "DuckDB's plan has no cardinality for this query")
