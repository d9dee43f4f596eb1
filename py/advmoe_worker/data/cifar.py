"""CIFAR-10 and CIFAR-100 from the standard on-disk python (pickle) format.

Layout (as extracted from the official archives):
  CIFAR-10:  cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
  CIFAR-100: cifar-100-python/{train, test, meta}
`root` may be that folder or its parent. Each batch is a pickled dict with `data`
(N, 3072) uint8 rows (1024 red, 1024 green, 1024 blue, row-major 32x32) and `labels`
(CIFAR-10) or `fine_labels`/`coarse_labels` (CIFAR-100). Pickles are read with an
unpickler that only builds numpy arrays and plain containers, never arbitrary objects.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BadDataError, SpecError
from .dataset import TensorDataset

# Official archives and their MD5 sums (as published on the CIFAR page).
ARCHIVES = {
    "cifar10": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
    },
    "cifar100": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
    },
}

# Everything a CIFAR pickle may reference: numpy array reconstruction, and the bytes
# constructor Python 3 writes into protocol-2 pickles; nothing that runs other code.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """What Python 3 protocol-2 pickles call to rebuild bytes; only the latin-1 codec."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed in a CIFAR file")
    return codecs.encode(text, "latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")


def read_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict with str keys; BadDataError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadDataError(
            f"cannot read CIFAR file {str(path)!r}: {exc}", {"field": "root", "file": str(path)}
        ) from exc
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # a corrupted pickle can raise almost anything
        raise BadDataError(
            f"CIFAR file {str(path)!r} is corrupted or not a CIFAR pickle: {type(exc).__name__}: {exc}",
            {"field": "root", "file": str(path)},
        ) from exc
    if not isinstance(obj, dict):
        raise BadDataError(
            f"CIFAR file {str(path)!r} holds a {type(obj).__name__}, expected a dict",
            {"field": "root", "file": str(path)},
        )
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def read_batch(path: Path, label_key: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 32, 32) uint8 images and (N,) int64 labels from one batch file."""
    batch = read_pickle(path)

    def bad(why: str) -> BadDataError:
        return BadDataError(f"CIFAR file {str(path)!r}: {why}", {"field": "root", "file": str(path)})

    if "data" not in batch or label_key not in batch:
        raise bad(f"expected keys 'data' and {label_key!r}, found {sorted(batch)}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise bad(f"'data' must be a (N, 3072) uint8 array, got {type(data).__name__} {shape}")
    try:
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise bad(f"{label_key!r} is not a list of integers") from exc
    if labels.shape != (data.shape[0],):
        raise bad(f"{label_key!r} has shape {labels.shape}, expected ({data.shape[0]},)")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise bad(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())  # (N, 3, 32, 32)
    return images, torch.from_numpy(labels)


def find_folder(root: Path, kind: str) -> Path | None:
    """The folder that holds the batch files: `root` itself or `root/<official folder>`."""
    info = ARCHIVES[kind]
    for folder in (root, root / info["folder"]):
        if (folder / info["test"][0]).exists() or (folder / info["train"][0]).exists():
            return folder
    return None


def build_cifar(
    spec: dict[str, Any], *, resolve_path: Callable[[str, str], Path] | None = None, **_: Any
) -> tuple[TensorDataset, TensorDataset, dict[str, Any]]:
    kind = spec["kind"]
    info = ARCHIVES[kind]
    root = resolve_path(spec["root"], "root") if resolve_path else Path(spec["root"]).expanduser()
    folder = find_folder(root, kind)
    if folder is None and spec["download"]:
        download_cifar(kind, root)
        folder = find_folder(root, kind)
    if folder is None:
        raise SpecError(
            "root",
            "exists",
            f"root: no {kind} files under {str(root)!r} (expected {info['folder']}/{info['test'][0]} "
            "or the batch files themselves; set download: true to fetch the official archive)",
            {"received": spec["root"]},
        )
    if kind == "cifar10":
        num_classes, label_key, names_key = 10, "labels", "label_names"
    else:
        coarse = spec["labels"] == "coarse"
        num_classes = 20 if coarse else 100
        label_key = "coarse_labels" if coarse else "fine_labels"
        names_key = "coarse_label_names" if coarse else "fine_label_names"
    classes = read_class_names(folder / info["meta"], names_key, num_classes)

    def load(files: list[str], split: str) -> TensorDataset:
        parts = []
        for name in files:
            path = folder / name
            if not path.exists():
                raise BadDataError(
                    f"{kind} file {str(path)!r} is missing", {"field": "root", "file": str(path)}
                )
            parts.append(read_batch(path, label_key, num_classes))
        images = torch.cat([p[0] for p in parts])
        labels = torch.cat([p[1] for p in parts])
        return TensorDataset(images, labels, num_classes, classes=classes, name=f"{kind}.{split}")

    return load(info["train"], "train"), load(info["test"], "test"), {"source": str(folder)}


def read_class_names(path: Path, key: str, num_classes: int) -> list[str]:
    """Class names from the meta file; plain indices when the file is absent."""
    if not path.exists():
        return [str(k) for k in range(num_classes)]
    meta = read_pickle(path)
    names = meta.get(key)
    if not isinstance(names, list) or len(names) != num_classes:
        raise BadDataError(
            f"CIFAR meta file {str(path)!r}: {key!r} must list {num_classes} names",
            {"field": "root", "file": str(path)},
        )
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]


def download_cifar(kind: str, root: Path, *, url: str | None = None, md5: str | None = None) -> Path:
    """Fetches the official archive into `root`, checks its MD5, extracts it safely."""
    info = ARCHIVES[kind]
    url, md5 = url or info["url"], md5 or info["md5"]
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, suffix=".tar.gz", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https url)
                shutil.copyfileobj(response, tmp)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            raise BadDataError(f"download of {url} failed: {exc}", {"field": "download", "url": url}) from exc
    try:
        digest = file_md5(tmp_path)
        if digest != md5:
            raise BadDataError(
                f"download of {url} has MD5 {digest}, expected {md5}",
                {"field": "download", "url": url, "md5": digest, "expected": md5},
            )
        extract_tar(tmp_path, root)
    finally:
        tmp_path.unlink(missing_ok=True)
    return root / info["folder"]


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_tar(archive: Path, dest: Path) -> None:
    """Extracts regular files and folders only, all of them inside `dest`."""
    dest = dest.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = []
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not (member.isfile() or member.isdir()) or (target != dest and dest not in target.parents):
                raise BadDataError(
                    f"archive {str(archive)!r} holds an unsafe entry {member.name!r}", {"field": "download"}
                )
            members.append(member)
        for member in members:
            target = dest / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
