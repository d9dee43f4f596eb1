"""Bounds a header must keep before anything is built from it (docs/protocol.md, Limits).

A signed client can still send a header that nests a thousand levels deep, holds an
integer no reply can carry, or names a tensor whose strides overflow; each would raise
somewhere deep in jsonschema, torch or msgpack. These checks run first, without
recursion, and name the rule that was broken.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadMessageError

MAX_DEPTH = 32  # maps and arrays inside the header; real specs use fewer than 10
MAX_ELEMENTS = 100_000  # scalars, maps and arrays in one header: bulk data travels as tensors
MAX_TENSORS = 256  # entries in one tensor table
MAX_DIMS = 16  # dimensions of one tensor
MAX_SHAPE_PRODUCT = 1 << 48  # of a shape's non-zero sizes: keeps torch's strides far from int64
MAX_STR_BYTES = 1 << 20
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # int64: what both sides and torch can hold


def unpack_limits(max_header_bytes: int) -> dict[str, int]:
    """msgpack's own caps, so a length prefix never makes it allocate past the frame."""
    return {
        "max_str_len": MAX_STR_BYTES,
        "max_bin_len": max_header_bytes,
        "max_array_len": MAX_ELEMENTS,
        "max_map_len": MAX_ELEMENTS,
        "max_ext_len": 0,  # no extension types in this protocol
    }


def check_structure(value: Any) -> None:
    """Raises BadMessageError when `value` nests too deep, holds too many elements, or
    holds an integer outside int64. Iterative, so depth cannot exhaust the stack."""
    count = 1
    _check_scalar(value)
    if not isinstance(value, (dict, list)):
        return
    # Only containers go on the stack: a header is mostly scalars, checked where found.
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise _too_deep()
        children = (*item, *item.values()) if isinstance(item, dict) else item
        count += len(children)
        if count > MAX_ELEMENTS:
            raise BadMessageError(
                f"header holds more than {MAX_ELEMENTS} elements",
                {"rule": "max_elements", "limit": MAX_ELEMENTS},
            )
        for child in children:
            kind = type(child)
            if kind is str or kind is float or child is None or kind is bool:
                continue
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            else:
                _check_scalar(child)


def _check_scalar(item: Any) -> None:
    if isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
        raise BadMessageError(
            "header holds an integer outside the int64 range",
            {"rule": "int64", "received": str(item)},
        )


def _too_deep() -> BadMessageError:
    return BadMessageError(
        f"header nests deeper than {MAX_DEPTH} levels", {"rule": "max_depth", "limit": MAX_DEPTH}
    )
