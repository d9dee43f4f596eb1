"""CIFAR-10/100 from the on-disk python format: layout, labels, corruption, download."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile

import pytest
import torch
from cifar_files import read_raw, write_cifar10, write_cifar100, write_pickle

from advmoe_worker.data import create_dataset, download_cifar
from advmoe_worker.errors import BadDataError, SpecError


def test_cifar10_loads_every_batch_with_the_official_pixel_layout(tmp_path):
    folder = write_cifar10(tmp_path)
    splits = create_dataset({"kind": "cifar10", "root": str(tmp_path)})
    assert (len(splits.train), len(splits.test)) == (30, 6)
    assert splits.classes[0] == "airplane" and splits.num_classes == 10
    raw = read_raw(folder / "data_batch_1")
    x, y = splits.train.base.get(torch.arange(6))
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.float32
    # row = 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32
    n, c, r, col = 4, 2, 7, 30
    assert x[n, c, r, col].item() == pytest.approx(raw[b"data"][n, c * 1024 + r * 32 + col] / 255)
    assert y.tolist() == raw[b"labels"]


def test_root_may_be_the_batch_folder_itself(tmp_path):
    folder = write_cifar10(tmp_path)
    assert len(create_dataset({"kind": "cifar10", "root": str(folder)}).test) == 6


def test_cifar_trains_with_crop_and_flip_by_default(tmp_path):
    write_cifar10(tmp_path)
    splits = create_dataset({"kind": "cifar10", "root": str(tmp_path), "val_fraction": 0.2})
    assert splits.train.augment == {"crop_padding": 4, "flip": True}
    assert splits.val.augment is None and len(splits.val) == 6


@pytest.mark.parametrize(
    ("labels", "k", "key"), [("fine", 100, b"fine_labels"), ("coarse", 20, b"coarse_labels")]
)
def test_cifar100_reads_fine_or_coarse_labels(tmp_path, labels, k, key):
    folder = write_cifar100(tmp_path)
    splits = create_dataset({"kind": "cifar100", "root": str(tmp_path), "labels": labels})
    assert splits.num_classes == k and splits.classes[1].endswith("_1")
    _, y = splits.test.get(torch.arange(10))
    assert y.tolist() == read_raw(folder / "test")[key]


def test_a_missing_root_is_a_spec_error_naming_root(tmp_path):
    with pytest.raises(SpecError) as err:
        create_dataset({"kind": "cifar10", "root": str(tmp_path / "nowhere")})
    assert err.value.path == "root"


def test_a_missing_root_field_is_named(tmp_path):
    with pytest.raises(SpecError) as err:
        create_dataset({"kind": "cifar100"})
    assert err.value.path == "root" and err.value.rule == "required"


def corrupt_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def corrupt_garbage(path):
    path.write_bytes(os.urandom(500))


def corrupt_wrong_shape(path):
    raw = read_raw(path)
    raw[b"data"] = raw[b"data"][:, :100]
    write_pickle(path, raw)


def corrupt_bad_labels(path):
    raw = read_raw(path)
    raw[b"labels"] = [42] * len(raw[b"labels"])
    write_pickle(path, raw)


def corrupt_no_labels(path):
    raw = read_raw(path)
    del raw[b"labels"]
    write_pickle(path, raw)


def corrupt_not_a_dict(path):
    write_pickle(path, [1, 2, 3])


def corrupt_missing(path):
    path.unlink()


@pytest.mark.parametrize(
    "corrupt",
    [
        corrupt_truncate,
        corrupt_garbage,
        corrupt_wrong_shape,
        corrupt_bad_labels,
        corrupt_no_labels,
        corrupt_not_a_dict,
        corrupt_missing,
    ],
)
def test_a_corrupted_batch_file_is_bad_data_naming_the_file(tmp_path, corrupt):
    folder = write_cifar10(tmp_path)
    target = folder / "data_batch_3"
    corrupt(target)
    with pytest.raises(BadDataError) as err:
        create_dataset({"kind": "cifar10", "root": str(tmp_path)})
    assert err.value.code == "bad_data"
    assert err.value.details["file"] == str(target)
    assert str(target) in err.value.message


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(BadDataError, match="not allowed"):
        create_dataset({"kind": "cifar10", "root": str(tmp_path)})
    assert not marker.exists()


def make_archive(tmp_path, *, evil: bool = False):
    src = tmp_path / "src"
    write_cifar10(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        if evil:
            info = tarfile.TarInfo("../escape.txt")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_checks_the_md5_and_extracts_the_archive(tmp_path):
    archive, md5 = make_archive(tmp_path)
    root = tmp_path / "data"
    folder = download_cifar("cifar10", root, url=archive.as_uri(), md5=md5)
    assert (folder / "data_batch_5").is_file()
    assert [p.name for p in root.iterdir()] == ["cifar-10-batches-py"]  # no partial download left
    assert len(create_dataset({"kind": "cifar10", "root": str(root)}).train) == 30


def test_a_download_with_the_wrong_md5_is_refused_and_removed(tmp_path):
    archive, _ = make_archive(tmp_path)
    root = tmp_path / "data"
    with pytest.raises(BadDataError, match="MD5"):
        download_cifar("cifar10", root, url=archive.as_uri(), md5="0" * 32)
    assert list(root.iterdir()) == []


def test_an_archive_entry_outside_the_root_is_refused(tmp_path):
    archive, md5 = make_archive(tmp_path, evil=True)
    with pytest.raises(BadDataError, match="unsafe"):
        download_cifar("cifar10", tmp_path / "data", url=archive.as_uri(), md5=md5)
    assert not (tmp_path / "escape.txt").exists()
