"""Image data sets as the worker sees them: indexable batches of [0,1] images and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from ..errors import BadTensorError


@runtime_checkable
class ImageDataset(Protocol):
    """Anything that hands out batches by index: in-memory tensors or files on disk."""

    num_classes: int
    sample_shape: tuple[int, int, int]  # (C, H, W)
    augment: dict[str, Any] | None  # worker-side training augmentation, None for eval splits

    def __len__(self) -> int: ...

    def get(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) int64 indices -> images (B, C, H, W) float32 in [0, 1], labels (B,) int64."""
        ...


class TensorDataset:
    """Images and labels held in memory; uint8 images are kept as uint8 and scaled on `get`."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int | None = None,
        *,
        classes: list[str] | None = None,
        augment: dict[str, Any] | None = None,
        name: str = "images",
    ):
        check_images(images, labels, name)
        self.images = images.contiguous()  # (N, C, H, W) uint8 or float in [0, 1]
        self.labels = labels.to(torch.int64).contiguous()  # (N,)
        inferred = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.num_classes = num_classes if num_classes is not None else inferred
        if inferred > self.num_classes or (len(self.labels) and int(self.labels.min()) < 0):
            raise BadTensorError(
                f"{name}: labels must lie in [0, {self.num_classes}), got [{int(self.labels.min())}, {inferred - 1}]",
                {"path": name},
            )
        self.classes = classes or [str(k) for k in range(self.num_classes)]
        self.sample_shape = tuple(self.images.shape[1:])
        self.augment = augment

    def __len__(self) -> int:
        return self.images.shape[0]

    def get(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[indices]
        if x.dtype == torch.uint8:
            x = x.to(torch.float32).div_(255)
        else:
            x = x.to(torch.float32)
        return x, self.labels[indices]


class Subset:
    """A view of `base` restricted to `indices`; carries its own augmentation setting."""

    def __init__(self, base: ImageDataset, indices: torch.Tensor, *, augment: dict[str, Any] | None = None):
        self.base = base
        self.indices = indices.to(torch.int64)
        self.num_classes = base.num_classes
        self.classes = getattr(base, "classes", [str(k) for k in range(base.num_classes)])
        self.sample_shape = base.sample_shape
        self.augment = augment

    def __len__(self) -> int:
        return self.indices.numel()

    def get(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.get(self.indices[indices])


@dataclass
class DataSplits:
    """What `create_dataset` returns: the splits of one data set and its geometry."""

    train: ImageDataset
    val: ImageDataset | None
    test: ImageDataset | None
    num_classes: int
    classes: list[str]
    spec: dict[str, Any]  # the resolved DataSpec, defaults filled
    workers: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return self.train.sample_shape[0]

    @property
    def input_size(self) -> int:
        return self.train.sample_shape[1]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.spec["kind"],
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "input_size": self.input_size,
            "train": len(self.train),
            "val": len(self.val) if self.val is not None else 0,
            "test": len(self.test) if self.test is not None else 0,
            **self.info,
        }


def check_images(images: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    """Shape and dtype rules for image/label tensors, as BadTensorError naming `name`."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise BadTensorError(f"{name}: images must be a (N, C, H, W) tensor, got {shape}", {"path": name})
    if images.dtype not in (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise BadTensorError(f"{name}: images must be uint8 or float, got {images.dtype}", {"path": name})
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        shape = list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise BadTensorError(
            f"{name}: labels must be a ({images.shape[0]},) tensor to match the images, got {shape}",
            {"path": name},
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise BadTensorError(f"{name}: labels must be an integer tensor, got {labels.dtype}", {"path": name})
    if images.dtype.is_floating_point and images.numel():
        lo, hi = float(images.min()), float(images.max())
        if not (0.0 <= lo and hi <= 1.0):
            raise BadTensorError(
                f"{name}: float images must lie in [0, 1] (NaN not allowed), got [{lo}, {hi}]", {"path": name}
            )
