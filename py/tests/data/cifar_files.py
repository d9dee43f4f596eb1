"""Writes small CIFAR-10/100 folders in the exact on-disk python format of the official archives."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_pickle(path: Path, obj) -> None:
    # the official files are Python 2 pickles (protocol 2) whose keys load as bytes
    path.write_bytes(pickle.dumps(obj, protocol=2))


def batch(n: int, labels_key: bytes, num_classes: int, seed: int, extra: dict | None = None) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"testing batch",
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        labels_key: [int(v) for v in rng.integers(0, num_classes, size=n)],
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        **(extra or {}),
    }


def write_cifar10(root: Path, per_batch: int = 6) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        write_pickle(folder / f"data_batch_{i}", batch(per_batch, b"labels", 10, i))
    write_pickle(folder / "test_batch", batch(per_batch, b"labels", 10, 0))
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    write_pickle(
        folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    )
    return folder


def write_cifar100(root: Path, n: int = 10) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, seed in (("train", 1), ("test", 2)):
        b = batch(n, b"fine_labels", 100, seed)
        b[b"coarse_labels"] = [v % 20 for v in b[b"fine_labels"]]
        write_pickle(folder / name, b)
    fine = [f"fine_{i}".encode() for i in range(100)]
    coarse = [f"coarse_{i}".encode() for i in range(20)]
    write_pickle(folder / "meta", {b"fine_label_names": fine, b"coarse_label_names": coarse})
    return folder


def read_raw(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")
