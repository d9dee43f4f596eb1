"""ImageFolder trees: class folders, TinyImageNet's val layout, decoding, resizing, errors."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import BadDataError, SpecError


def write_ppm(path, array: np.ndarray) -> None:
    """Binary PPM (P6) for (H, W, 3) or PGM (P5) for (H, W) uint8 arrays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    magic = b"P6" if array.ndim == 3 else b"P5"
    h, w = array.shape[:2]
    path.write_bytes(magic + f"\n# made by a test\n{w} {h}\n255\n".encode() + array.tobytes())


def solid(value, h=12, w=16):
    return np.full((h, w, 3), value, dtype=np.uint8)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tiny"
    for k, cls in enumerate(["n01", "n02", "n03"]):
        for i in range(3):
            write_ppm(root / "train" / cls / "images" / f"{cls}_{i}.ppm", solid(40 * k + i))
    lines = []
    for k, cls in enumerate(["n01", "n02", "n03"]):
        name = f"val_{k}.ppm"
        write_ppm(root / "val" / "images" / name, solid(40 * k + 10))
        lines.append(f"{name}\t{cls}\t0\t0\t10\t10")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def test_class_folders_become_labels_and_images_are_resized(tree):
    splits = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8})
    assert splits.classes == ["n01", "n02", "n03"]
    assert (len(splits.train), len(splits.test)) == (9, 3)
    x, y = splits.train.get(torch.arange(9))
    assert x.shape == (9, 3, 8, 8) and y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert x[4, 0, 0, 0].item() == pytest.approx(41 / 255)  # a solid image stays solid


def test_tinyimagenet_val_layout_is_read_through_its_annotations(tree):
    splits = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8})
    x, y = splits.test.get(torch.arange(3))
    assert y.tolist() == [0, 1, 2]
    assert x[2, 0, 0, 0].item() == pytest.approx(90 / 255)


def test_the_shorter_side_is_resized_then_centre_cropped(tmp_path):
    root = tmp_path / "f"
    img = np.zeros((10, 20, 3), dtype=np.uint8)
    img[:, 5:15] = 255  # a white centre band
    write_ppm(root / "train" / "a" / "0.ppm", img)
    write_ppm(root / "train" / "b" / "0.ppm", img)
    splits = create_dataset({"kind": "image_folder", "root": str(root), "size": 10, "test_dir": None})
    x, _ = splits.train.get(torch.tensor([0]))
    assert x.shape == (1, 3, 10, 10) and x.min() == 1.0  # the crop keeps just the band


def test_grey_images_and_one_channel_output(tmp_path):
    root = tmp_path / "g"
    write_ppm(root / "train" / "a" / "0.pgm", np.full((8, 8), 200, dtype=np.uint8))
    write_ppm(root / "train" / "b" / "0.ppm", solid(100, 8, 8))
    splits = create_dataset(
        {"kind": "image_folder", "root": str(root), "size": 8, "channels": 1, "test_dir": None}
    )
    x, _ = splits.train.get(torch.arange(2))
    assert x.shape == (2, 1, 8, 8)
    assert x[0, 0, 0, 0].item() == pytest.approx(200 / 255)
    assert x[1, 0, 0, 0].item() == pytest.approx(100 / 255, abs=1 / 255)


def test_decoding_with_threads_matches_decoding_inline(tree):
    inline = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8})
    threaded = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8, "workers": 2})
    cached = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8, "cache": True})
    idx = torch.arange(9)
    assert torch.equal(inline.train.get(idx)[0], threaded.train.get(idx)[0])
    assert torch.equal(inline.train.get(idx)[0], cached.train.get(idx)[0])


def test_a_missing_root_or_split_folder_is_named(tree, tmp_path):
    with pytest.raises(SpecError) as err:
        create_dataset({"kind": "image_folder", "root": str(tmp_path / "none")})
    assert err.value.path == "root"
    with pytest.raises(SpecError) as err:
        create_dataset({"kind": "image_folder", "root": str(tree), "train_dir": "training"})
    assert err.value.path == "train_dir"
    with pytest.raises(SpecError) as err:
        create_dataset({"kind": "image_folder", "root": str(tree), "test_dir": "test"})
    assert err.value.path == "test_dir"


def test_a_corrupted_image_is_bad_data_naming_the_file(tree):
    bad = tree / "train" / "n02" / "images" / "n02_1.ppm"
    bad.write_bytes(b"P6\n16 12\n255\n" + b"\x00" * 10)
    splits = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8})
    with pytest.raises(BadDataError) as err:
        splits.train.get(torch.arange(9))
    assert err.value.details["file"] == str(bad)


def test_without_pillow_a_jpeg_gets_a_clear_error(tree, monkeypatch):
    (tree / "train" / "n01" / "images" / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    real_import = builtins.__import__

    def no_pillow(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pillow)
    splits = create_dataset({"kind": "image_folder", "root": str(tree), "size": 8})
    with pytest.raises(BadDataError, match="Pillow") as err:
        splits.train.get(torch.arange(len(splits.train)))
    assert err.value.details["needs"] == "pillow"


def test_png_files_decode_through_pillow(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    root = tmp_path / "p"
    for k, cls in enumerate(["a", "b"]):
        (root / "train" / cls).mkdir(parents=True)
        image_mod.fromarray(solid(60 * (k + 1), 8, 8)).save(root / "train" / cls / "0.png")
    splits = create_dataset({"kind": "image_folder", "root": str(root), "size": 8, "test_dir": None})
    x, y = splits.train.get(torch.arange(2))
    assert y.tolist() == [0, 1] and x[1, 0, 0, 0].item() == pytest.approx(120 / 255)
