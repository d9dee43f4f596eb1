"""scikit-learn's handwritten digits (1,797 real 8x8 images, offline), resized for CNNs."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .dataset import TensorDataset
from .seeding import generator

DIGITS_SPLIT_STREAM = 11


def load_digits_tensors(size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits as (N, channels, size, size) float32 in [0, 1] and (N,) int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).div_(16).unsqueeze(1)  # (N, 1, 8, 8)
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp_(0, 1).expand(-1, channels, -1, -1).contiguous()  # (N, C, size, size)
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


def build_digits(spec: dict[str, Any], **_: Any) -> tuple[TensorDataset, TensorDataset, dict[str, Any]]:
    """Seeded train/test split of the digits; test share is `spec['test_fraction']`."""
    images, labels = load_digits_tensors(spec["size"], spec["channels"])
    order = torch.randperm(len(labels), generator=generator(spec["split_seed"], DIGITS_SPLIT_STREAM))
    n_test = max(1, round(spec["test_fraction"] * len(labels)))
    test_idx, train_idx = order[:n_test], order[n_test:]
    classes = [str(k) for k in range(10)]
    train = TensorDataset(images[train_idx], labels[train_idx], 10, classes=classes, name="digits.train")
    test = TensorDataset(images[test_idx], labels[test_idx], 10, classes=classes, name="digits.test")
    return train, test, {"source": "sklearn.datasets.load_digits"}
