"""Digits (real, offline), the synthetic set and uploaded tensors: shapes, ranges, seeded splits."""

from __future__ import annotations

import pytest
import torch

from advmoe_worker.data import create_dataset, resolve_data_spec
from advmoe_worker.errors import BadTensorError, SpecError


def all_of(ds):
    return ds.get(torch.arange(len(ds)))


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (16, 3), (32, 1)])
def test_digits_are_resized_pixels_in_unit_range(size, channels):
    splits = create_dataset({"kind": "digits", "size": size, "channels": channels})
    x, y = all_of(splits.train)
    assert x.shape[1:] == (channels, size, size)
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    assert set(y.tolist()) == set(range(10))
    assert len(splits.train) + len(splits.test) == 1797
    assert len(splits.test) == round(0.2 * 1797)


def test_digits_at_8px_are_the_original_images_scaled_to_unit_range():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    splits = create_dataset({"kind": "digits", "size": 8, "channels": 1, "test_fraction": 0.5})
    x, y = all_of(splits.test)
    originals = torch.as_tensor(bunch.images, dtype=torch.float32) / 16
    first = x[0, 0]
    matches = [(i, int(bunch.target[i])) for i in range(len(originals)) if torch.equal(originals[i], first)]
    assert matches and y[0].item() in [t for _, t in matches]


def test_splits_are_seeded_and_disjoint():
    a = create_dataset({"kind": "digits", "size": 8, "val_fraction": 0.1})
    b = create_dataset({"kind": "digits", "size": 8, "val_fraction": 0.1})
    c = create_dataset({"kind": "digits", "size": 8, "val_fraction": 0.1, "split_seed": 7})
    assert torch.equal(all_of(a.val)[0], all_of(b.val)[0])
    assert not torch.equal(all_of(a.val)[0], all_of(c.val)[0])
    assert set(a.train.base.indices.tolist()).isdisjoint(a.val.indices.tolist())
    assert len(a.train) + len(a.val) == len(a.train.base.base)


def test_the_synthetic_set_is_seeded_class_dependent_and_in_range():
    spec = {"kind": "synthetic", "num_classes": 3, "size": 8, "channels": 2, "train_size": 30, "test_size": 9}
    a, b = create_dataset(spec), create_dataset(spec)
    c = create_dataset({**spec, "seed": 1})
    xa, ya = all_of(a.train)
    assert torch.equal(xa, all_of(b.train)[0]) and not torch.equal(xa, all_of(c.train)[0])
    assert xa.shape == (30, 2, 8, 8) and 0 <= xa.min() and xa.max() <= 1
    assert len(a.test) == 9 and a.num_classes == 3
    means = torch.stack([xa[ya == k].mean(0) for k in range(3)])
    assert (means[0] - means[1]).abs().mean() > 0.05  # classes differ in their pattern


def test_max_train_and_max_test_take_seeded_subsets():
    splits = create_dataset({"kind": "digits", "size": 8, "max_train": 50, "max_test": 20})
    assert (len(splits.train), len(splits.test)) == (50, 20)


def test_uploaded_tensors_become_splits():
    x = torch.randint(0, 256, (20, 1, 6, 6), dtype=torch.uint8)
    y = torch.arange(20) % 4
    tensors = {"xs": x, "ys": y.to(torch.int32), "tx": torch.rand(5, 1, 6, 6), "ty": torch.arange(5) % 4}
    spec = {
        "kind": "tensors",
        "train_images": "xs",
        "train_labels": "ys",
        "test_images": "tx",
        "test_labels": "ty",
        "val_fraction": 0.25,
    }
    splits = create_dataset(spec, tensors=tensors)
    assert (len(splits.train), len(splits.val), len(splits.test), splits.num_classes) == (15, 5, 5, 4)
    got, labels = splits.train.base.base.get(torch.tensor([3]))
    assert got.dtype == torch.float32 and torch.allclose(got, x[3:4].float() / 255)
    assert labels.dtype == torch.int64


def test_a_tensor_name_that_was_not_sent_is_named():
    with pytest.raises(SpecError) as err:
        create_dataset({"kind": "tensors"}, tensors={"train_images": torch.zeros(2, 1, 4, 4)})
    assert err.value.path == "train_labels"


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.zeros(4, 4, 4), torch.zeros(4, dtype=torch.long), "N, C, H, W"),
        (torch.zeros(4, 1, 4, 4), torch.zeros(3, dtype=torch.long), "labels"),
        (torch.zeros(4, 1, 4, 4), torch.zeros(4), "integer"),
        (torch.full((4, 1, 4, 4), 2.0), torch.zeros(4, dtype=torch.long), r"\[0, 1\]"),
        (torch.full((4, 1, 4, 4), float("nan")), torch.zeros(4, dtype=torch.long), r"\[0, 1\]"),
        (torch.zeros(4, 1, 4, 4), -torch.ones(4, dtype=torch.long), "labels"),
    ],
)
def test_malformed_tensors_are_bad_tensor_errors(images, labels, match):
    with pytest.raises(BadTensorError, match=match):
        create_dataset({"kind": "tensors"}, tensors={"train_images": images, "train_labels": labels})


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({}, "kind"),
        ({"kind": "mnist"}, "kind"),
        ({"kind": "digits", "size": 2}, "size"),
        ({"kind": "digits", "channels": 2}, "channels"),
        ({"kind": "digits", "val_fraction": 0.95}, "val_fraction"),
        ({"kind": "digits", "augment": {"crop_padding": -1}}, "augment.crop_padding"),
        ({"kind": "digits", "augment": {"jitter": 1}}, "augment.jitter"),
        ({"kind": "synthetic", "root": "/x"}, "root"),
        ({"kind": "image_folder"}, "root"),
        ({"kind": "tensors", "test_images": "tx"}, "test_labels"),
        ({"kind": "tensors", "test_labels": "ty"}, "test_images"),
        ({"kind": "image_folder", "root": "r", "channels": 2}, "channels"),
        ({"kind": "cifar100", "root": "r", "labels": "medium"}, "labels"),
    ],
)
def test_a_bad_data_spec_is_refused_naming_the_field(spec, path):
    with pytest.raises(SpecError) as err:
        resolve_data_spec(spec)
    assert err.value.path == path


def test_cifar_trains_with_crop_and_flip_unless_told_otherwise():
    assert resolve_data_spec({"kind": "cifar10", "root": "c"})["augment"] == {"crop_padding": 4, "flip": True}
    assert resolve_data_spec({"kind": "cifar10", "root": "c", "augment": None})["augment"] is None
    assert resolve_data_spec({"kind": "digits"})["augment"] is None
