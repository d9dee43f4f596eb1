"""Data uploaded from the client as tensors (named frames of the request or stored objects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import SpecError
from .dataset import TensorDataset


def build_tensors(
    spec: dict[str, Any], *, tensors: Mapping[str, torch.Tensor] | None = None, **_: Any
) -> tuple[TensorDataset, TensorDataset | None, dict[str, Any]]:
    """Looks up the named image/label tensors; images are (N, C, H, W) uint8 or float in [0, 1]."""
    tensors = tensors or {}

    def lookup(field: str) -> torch.Tensor:
        name = spec[field]
        if name not in tensors:
            raise SpecError(
                field,
                "exists",
                f"{field}: no tensor named {name!r} was sent (sent: {sorted(tensors)})",
                {"received": name},
            )
        return tensors[name]

    train_x, train_y = lookup("train_images"), lookup("train_labels")
    k = spec["num_classes"]
    if k is None:
        k = int(train_y.max()) + 1 if train_y.numel() else 2
    train = TensorDataset(train_x, train_y, k, name="train_images")
    test = None
    if spec["test_images"] is not None:
        test = TensorDataset(lookup("test_images"), lookup("test_labels"), k, name="test_images")
        if test.sample_shape != train.sample_shape:
            raise SpecError(
                "test_images",
                "shape",
                f"test_images: sample shape {list(test.sample_shape)} differs from train_images {list(train.sample_shape)}",
            )
    return train, test, {"source": "tensors"}
