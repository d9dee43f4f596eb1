"""One registry of data set builders and the `create_dataset` factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..registry import Registry
from .cifar import build_cifar
from .dataset import DataSplits, ImageDataset, Subset
from .digits import build_digits
from .image_folder import build_image_folder
from .seeding import generator
from .spec import resolve_data_spec
from .synthetic import build_synthetic
from .tensors import build_tensors

# A builder returns (train, test or None, info) for a resolved spec.
Builder = Callable[..., tuple[ImageDataset, ImageDataset | None, dict[str, Any]]]

DATASETS: Registry[Builder] = Registry("data kind")
SPLIT_STREAM, LIMIT_STREAM = 31, 32


def register_dataset(kind: str, builder: Builder) -> None:
    DATASETS.register(kind, builder)


register_dataset("digits", build_digits)
register_dataset("synthetic", build_synthetic)
register_dataset("cifar10", build_cifar)
register_dataset("cifar100", build_cifar)
register_dataset("image_folder", build_image_folder)
register_dataset("tensors", build_tensors)


def create_dataset(
    spec: Mapping[str, Any],
    *,
    tensors: Mapping[str, torch.Tensor] | None = None,
    resolve_path: Callable[[str, str], Path] | None = None,
) -> DataSplits:
    """Builds the train/val/test splits a DataSpec describes.

    `tensors` holds the uploaded tensors a `tensors` spec names; `resolve_path(path, field)`
    maps a spec path to a file-system path (the server confines it to its workspace).
    """
    resolved = resolve_data_spec(spec)
    builder = DATASETS.get(resolved["kind"], "kind")
    train, test, info = builder(
        resolved, tensors=tensors, resolve_path=resolve_path, workers=resolved["workers"]
    )
    train = limit(train, resolved["max_train"], resolved["split_seed"], 0)
    if test is not None:
        test = limit(test, resolved["max_test"], resolved["split_seed"], 1)
    train, val = split_validation(train, resolved["val_fraction"], resolved["split_seed"])
    train = Subset(train, torch.arange(len(train)), augment=resolved["augment"])
    classes = getattr(train.base, "classes", [str(k) for k in range(train.num_classes)])
    return DataSplits(
        train=train,
        val=val,
        test=test,
        num_classes=train.num_classes,
        classes=classes,
        spec=resolved,
        workers=resolved["workers"],
        info=info,
    )


def split_validation(
    data: ImageDataset, fraction: float, seed: int
) -> tuple[ImageDataset, ImageDataset | None]:
    """A seeded split of `data` into (train, val); val holds round(fraction * N) samples."""
    n_val = round(fraction * len(data))
    if n_val == 0:
        return data, None
    order = torch.randperm(len(data), generator=generator(seed, SPLIT_STREAM))
    return Subset(data, order[n_val:].sort().values), Subset(data, order[:n_val].sort().values)


def limit(data: ImageDataset, max_items: int | None, seed: int, stream: int) -> ImageDataset:
    """A seeded random subset of at most `max_items` samples (the data itself when it fits)."""
    if max_items is None or len(data) <= max_items:
        return data
    order = torch.randperm(len(data), generator=generator(seed, LIMIT_STREAM, stream))
    return Subset(data, order[:max_items].sort().values)
