"""Data sets (digits, synthetic, CIFAR, ImageFolder, uploaded tensors) and seeded loaders."""

from .cifar import ARCHIVES as CIFAR_ARCHIVES
from .cifar import download_cifar
from .dataset import DataSplits, ImageDataset, Subset, TensorDataset
from .loader import BatchLoader, augment_batch, eval_batches
from .registry import DATASETS, create_dataset, register_dataset
from .seeding import derive_seed
from .spec import resolve_data_spec

__all__ = [
    "CIFAR_ARCHIVES",
    "DATASETS",
    "BatchLoader",
    "DataSplits",
    "ImageDataset",
    "Subset",
    "TensorDataset",
    "augment_batch",
    "create_dataset",
    "derive_seed",
    "download_cifar",
    "eval_batches",
    "register_dataset",
    "resolve_data_spec",
]
