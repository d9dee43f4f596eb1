"""ImageFolder trees (`<split>/<class>/**/<image>`), e.g. TinyImageNet or ImageNet.

Class indices follow the sorted class folder names of the training split. A split
folder in TinyImageNet's validation layout (`images/` plus `val_annotations.txt`) is
read through its annotation file. Images are decoded with Pillow (imported only when
needed; binary PGM/PPM files are read without it), resized so the shorter side is
`size` (bilinear, antialiased), centre-cropped to size x size and kept as uint8.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BadDataError, SpecError
from .dataset import TensorDataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm", ".webp", ".gif", ".tif", ".tiff"}


def list_classes(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def scan_split(split_dir: Path, class_index: dict[str, int]) -> tuple[list[Path], list[int]]:
    """Image files and their labels under one split folder."""
    annotations = split_dir / "val_annotations.txt"
    if annotations.is_file() and (split_dir / "images").is_dir():
        files, labels = [], []
        for line in annotations.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            if parts[1] not in class_index:
                raise BadDataError(
                    f"{str(annotations)!r} names class {parts[1]!r}, which has no training folder",
                    {"field": "root", "file": str(annotations)},
                )
            files.append(split_dir / "images" / parts[0])
            labels.append(class_index[parts[1]])
        return files, labels
    files, labels = [], []
    for name in sorted(class_index):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                files.append(path)
                labels.append(class_index[name])
    return files, labels


def decode_image(path: Path, channels: int) -> torch.Tensor:
    """(channels, H, W) uint8; BadDataError naming the file when it cannot be decoded."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head in (b"P5", b"P6"):
            array = read_netpbm(path)
        else:
            array = read_with_pillow(path)
    except BadDataError:
        raise
    except Exception as exc:
        raise BadDataError(
            f"cannot decode image {str(path)!r}: {type(exc).__name__}: {exc}",
            {"field": "root", "file": str(path)},
        ) from exc
    image = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy
    image = image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1)  # (C, H, W)
    if image.shape[0] == channels:
        return image
    if channels == 1:  # ITU-R 601 luma, as Pillow's "L" conversion
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (image[:3].float() * weights).sum(0, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    return image[:1].expand(3, -1, -1)


def read_with_pillow(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as exc:
        raise BadDataError(
            f"decoding {str(path)!r} needs Pillow, which is not installed in the worker's environment "
            "(pip install pillow)",
            {"field": "root", "file": str(path), "needs": "pillow"},
        ) from exc
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def read_netpbm(path: Path) -> np.ndarray:
    """Binary PGM (P5) or PPM (P6), 8-bit."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 2
    while len(fields) < 3:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    width, height, maxval = (int(v) for v in fields)
    if maxval > 255:
        raise ValueError("16-bit netpbm images are not supported")
    depth = 3 if data[:2] == b"P6" else 1
    pixels = np.frombuffer(data, dtype=np.uint8, count=width * height * depth, offset=pos + 1)
    return pixels.reshape(height, width, depth) if depth == 3 else pixels.reshape(height, width)


def resize_center(image: torch.Tensor, size: int) -> torch.Tensor:
    """Shorter side to `size` (bilinear, antialiased), then the centre size x size crop."""
    _, h, w = image.shape
    if (h, w) != (size, size):
        scale = size / min(h, w)
        new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(
            image[None].float(), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
        )
        top, left = (new_h - size) // 2, (new_w - size) // 2
        image = x[0, :, top : top + size, left : left + size].round_().clamp_(0, 255).to(torch.uint8)
    return image


class ImageFolderDataset:
    """Decodes files on demand; `workers` threads decode the images of a batch in parallel."""

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        classes: list[str],
        *,
        size: int,
        channels: int,
        workers: int = 0,
    ):
        self.files = files
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.classes = classes
        self.num_classes = len(classes)
        self.size, self.channels, self.workers = size, channels, workers
        self.sample_shape = (channels, size, size)
        self.augment: dict[str, Any] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> torch.Tensor:
        return resize_center(decode_image(self.files[i], self.channels), self.size)

    def map(self, indices: list[int]) -> list[torch.Tensor]:
        if self.workers <= 0 or len(indices) < 2:
            return [self.load(i) for i in indices]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="advmoe-decode")
        return list(self._pool.map(self.load, indices))

    def get(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack(self.map(indices.tolist()))  # (B, C, size, size) uint8
        return images.to(torch.float32).div_(255), self.labels[indices]

    def to_memory(self, name: str) -> TensorDataset:
        images = (
            torch.stack(self.map(list(range(len(self))))) if len(self) else torch.zeros(0, *self.sample_shape)
        )
        return TensorDataset(
            images.to(torch.uint8), self.labels, self.num_classes, classes=self.classes, name=name
        )


def build_image_folder(
    spec: dict[str, Any],
    *,
    resolve_path: Callable[[str, str], Path] | None = None,
    workers: int = 0,
    **_: Any,
) -> tuple[Any, Any, dict[str, Any]]:
    root = resolve_path(spec["root"], "root") if resolve_path else Path(spec["root"]).expanduser()
    if not root.is_dir():
        raise SpecError("root", "exists", f"root: {str(root)!r} is not a folder", {"received": spec["root"]})
    train_dir = root / spec["train_dir"]
    if not train_dir.is_dir():
        raise SpecError(
            "train_dir",
            "exists",
            f"train_dir: {str(train_dir)!r} is not a folder",
            {"received": spec["train_dir"]},
        )
    classes = list_classes(train_dir)
    if len(classes) < 2:
        raise BadDataError(
            f"{str(train_dir)!r} must hold one folder per class (found {len(classes)})",
            {"field": "train_dir"},
        )
    index = {name: k for k, name in enumerate(classes)}

    def make(split_dir: Path, split: str) -> Any:
        files, labels = scan_split(split_dir, index)
        if not files:
            raise BadDataError(f"no images found under {str(split_dir)!r}", {"field": f"{split}_dir"})
        ds = ImageFolderDataset(
            files, labels, classes, size=spec["size"], channels=spec["channels"], workers=workers
        )
        return ds.to_memory(f"image_folder.{split}") if spec["cache"] else ds

    train = make(train_dir, "train")
    test = None
    if spec["test_dir"] is not None:
        test_dir = root / spec["test_dir"]
        if not test_dir.is_dir():
            raise SpecError(
                "test_dir",
                "exists",
                f"test_dir: {str(test_dir)!r} is not a folder",
                {"received": spec["test_dir"]},
            )
        test = make(test_dir, "test")
    return train, test, {"source": str(root)}
