"""Tensors as raw little-endian frames, wrapped without copying on receive."""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import torch

from ..errors import BadTensorError
from .limits import MAX_DIMS, MAX_SHAPE_PRODUCT

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

assert sys.byteorder == "little", "the wire format is little-endian"


def tensor_to_frame(t: torch.Tensor) -> tuple[dict[str, Any], memoryview]:
    """Table entry (without `frame`) and a zero-copy view of a CPU tensor's bytes."""
    if t.dtype not in DTYPE_NAMES:
        raise BadTensorError(f"dtype {t.dtype} cannot travel on the wire", {"dtype": str(t.dtype)})
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    entry = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape)}
    if t.numel() == 0:
        return entry, memoryview(b"")
    # A uint8 view of the same storage exposes the bytes without a copy.
    raw = t.reshape(-1).view(torch.uint8)
    return entry, memoryview(raw.numpy())


def check_entry(name: str, entry: Any) -> tuple[torch.dtype, list[int], int]:
    """A table entry's dtype, shape and byte size; raises BadTensorError naming the rule."""
    if not isinstance(entry, dict):
        raise BadTensorError(f"tensor {name!r}: table entry must be a map", {"tensor": name})
    dtype_name = entry.get("dtype")
    shape = entry.get("shape")
    if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
        raise BadTensorError(
            f"tensor {name!r}: dtype {dtype_name!r} is not one of {sorted(DTYPES)}",
            {"tensor": name, "dtype": dtype_name, "known": sorted(DTYPES)},
        )
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadTensorError(
            f"tensor {name!r}: shape must be a list of integers >= 0, got {shape!r}",
            {"tensor": name, "shape": shape},
        )
    dtype = DTYPES[dtype_name]
    # Checked before torch sees the shape: a zero-sized tensor's strides are still the
    # products of the other dimensions, and [0, 2**62, 2**62] overflows them.
    if len(shape) > MAX_DIMS or math.prod(max(d, 1) for d in shape) > MAX_SHAPE_PRODUCT:
        raise BadTensorError(
            f"tensor {name!r}: a shape has at most {MAX_DIMS} dimensions whose non-zero sizes "
            f"multiply to at most 2**48, got {str(shape)[:100]}",
            {"tensor": name, "rule": "shape_bounds", "max_dims": MAX_DIMS},
        )
    return dtype, shape, dtype.itemsize * math.prod(shape)


def tensor_from_frame(name: str, entry: Any, buf: memoryview) -> torch.Tensor:
    """Wraps a received frame as a tensor; validates dtype, shape and byte size.

    The result shares the frame's memory and must be treated as read-only: methods that
    need to write clone first (moving to another device or dtype copies anyway).
    """
    dtype, shape, expected = check_entry(name, entry)
    if buf.nbytes != expected:
        raise BadTensorError(
            f"tensor {name!r}: frame has {buf.nbytes} bytes, {entry['dtype']} x {shape} needs {expected}",
            {"tensor": name, "bytes": buf.nbytes, "expected": expected},
        )
    if expected == 0:
        return torch.empty(shape, dtype=dtype)
    with warnings.catch_warnings():
        # Frames are read-only buffers; torch warns that it cannot enforce that.
        warnings.simplefilter("ignore", UserWarning)
        flat = torch.frombuffer(buf, dtype=torch.uint8)
    if flat.data_ptr() % dtype.itemsize:
        flat = flat.clone()
    return flat.view(dtype).view(shape)
