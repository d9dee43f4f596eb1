"""A procedural, seeded image set whose classes differ by smooth colour patterns.

Each class owns a prototype: a random low-resolution (C, 4, 4) field upsampled to the
image size. A sample is its class prototype, shifted by up to size/8 pixels, scaled in
contrast, plus Gaussian pixel noise, clipped to [0, 1]. A tiny CNN separates the classes
within a few dozen steps, which is what unit tests need.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .dataset import TensorDataset
from .seeding import generator

PROTOTYPE_STREAM, TRAIN_STREAM, TEST_STREAM = 21, 22, 23


def class_prototypes(num_classes: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """(K, C, size, size) smooth patterns in [0, 1], one per class."""
    g = generator(seed, PROTOTYPE_STREAM)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=g)  # (K, C, 4, 4)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def sample_images(
    prototypes: torch.Tensor, n: int, noise: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples (n, C, H, W) in [0, 1] drawn around the prototypes, with their labels (n,)."""
    k, _, size, _ = prototypes.shape
    labels = torch.randint(0, k, (n,), generator=g)
    max_shift = max(1, size // 8)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
    contrast = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
    images = prototypes[labels]  # (n, C, H, W)
    images = torch.stack(
        [
            torch.roll(img, (int(dy), int(dx)), dims=(1, 2))
            for img, (dy, dx) in zip(images, shifts, strict=True)
        ]
    )
    images = 0.5 + (images - 0.5) * contrast + noise * torch.randn(images.shape, generator=g)
    return images.clamp_(0, 1), labels


def build_synthetic(
    spec: dict[str, Any], **_: Any
) -> tuple[TensorDataset, TensorDataset | None, dict[str, Any]]:
    protos = class_prototypes(spec["num_classes"], spec["channels"], spec["size"], spec["seed"])
    k = spec["num_classes"]
    x, y = sample_images(protos, spec["train_size"], spec["noise"], generator(spec["seed"], TRAIN_STREAM))
    train = TensorDataset(x, y, k, name="synthetic.train")
    test = None
    if spec["test_size"]:
        x, y = sample_images(protos, spec["test_size"], spec["noise"], generator(spec["seed"], TEST_STREAM))
        test = TensorDataset(x, y, k, name="synthetic.test")
    return train, test, {"source": "procedural"}
