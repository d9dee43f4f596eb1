"""Seeded, resumable batches and batch-wise augmentation on tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advmoe_worker.data import BatchLoader, TensorDataset, augment_batch, eval_batches


def numbered(n=10, size=4):
    """Images whose every pixel holds the sample's index / 100, so batches can be read back."""
    x = (torch.arange(n, dtype=torch.float32) / 100).view(n, 1, 1, 1).expand(n, 1, size, size).contiguous()
    return TensorDataset(x, torch.arange(n) % 3)


def ids(x):
    return (x[:, 0, 0, 0] * 100).round().long().tolist()


def test_each_epoch_visits_every_sample_once_in_a_seeded_order():
    loader = BatchLoader(numbered(), 4, seed=1)
    assert loader.batches_per_epoch == 3
    epoch0 = sum((ids(x) for x, _ in loader), [])
    assert sorted(epoch0) == list(range(10))
    epoch1 = sum((ids(loader.next()[0]) for _ in range(3)), [])
    assert sorted(epoch1) == list(range(10)) and epoch1 != epoch0
    again = BatchLoader(numbered(), 4, seed=1)
    assert sum((ids(x) for x, _ in again), []) == epoch0
    other = BatchLoader(numbered(), 4, seed=2)
    assert sum((ids(x) for x, _ in other), []) != epoch0


def test_drop_last_skips_the_short_batch():
    loader = BatchLoader(numbered(), 4, drop_last=True)
    assert loader.batches_per_epoch == 2
    assert [len(x) for x, _ in loader] == [4, 4]


def test_a_restored_position_replays_the_same_batches_with_the_same_augmentation():
    data = numbered(12, 6)
    aug = {"crop_padding": 2, "flip": True}
    straight = BatchLoader(data, 5, seed=3, augment=aug)
    batches = [straight.next() for _ in range(7)]
    half = BatchLoader(data, 5, seed=3, augment=aug)
    for _ in range(4):
        half.next()
    resumed = BatchLoader(data, 5, seed=3, augment=aug)
    resumed.load_state_dict(half.state_dict())
    for (xa, ya, ea, ia), (xb, yb, eb, ib) in zip(
        batches[4:], [resumed.next() for _ in range(3)], strict=True
    ):
        assert (ea, ia) == (eb, ib)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batch_is_a_pure_function_of_epoch_and_index():
    loader = BatchLoader(numbered(), 3, seed=5, augment={"crop_padding": 1, "flip": True})
    a = loader.batch(2, 1)
    loader.next()
    b = loader.batch(2, 1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_the_dataset_decides_augmentation_unless_told_otherwise():
    data = numbered()
    data.augment = {"crop_padding": 1, "flip": False}
    assert BatchLoader(data, 2).augment == {"crop_padding": 1, "flip": False}
    assert BatchLoader(data, 2, augment=False).augment is None


def test_random_crop_takes_a_window_of_the_zero_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 5, 5)
    out = augment_batch(x, crop_padding=2, g=g)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(16):
        windows = [padded[i, :, r : r + 5, c : c + 5] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert not torch.equal(out, x)  # some sample moved


def test_flip_mirrors_about_half_the_samples_left_to_right():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 3, 3)
    out = augment_batch(x, flip=True, g=g)
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(200)]
    kept = [torch.equal(out[i], x[i]) for i in range(200)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140


def test_augmentation_draws_do_not_depend_on_the_global_rng():
    x = torch.rand(8, 3, 6, 6)
    torch.manual_seed(0)
    a = augment_batch(x, crop_padding=2, flip=True, g=torch.Generator().manual_seed(9))
    torch.manual_seed(1)
    b = augment_batch(x, crop_padding=2, flip=True, g=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_eval_batches_cover_every_sample_once_in_order_without_augmentation():
    data = numbered()
    data.augment = {"crop_padding": 2, "flip": True}
    seen = sum((ids(x) for x, _ in eval_batches(data, 4)), [])
    assert seen == list(range(10))


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        BatchLoader(numbered(), 0)


def test_prefetching_reads_ahead_without_changing_any_batch():
    data = numbered(11, 4)
    aug = {"crop_padding": 1, "flip": True}
    plain = BatchLoader(data, 3, seed=4, augment=aug)
    ahead = BatchLoader(data, 3, seed=4, augment=aug, prefetch=True)
    for _ in range(9):  # crosses two epoch boundaries
        a, b = plain.next(), ahead.next()
        assert a[2:] == b[2:] and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    ahead.load_state_dict({"epoch": 0, "index": 1})  # a jump discards the read-ahead batch
    assert torch.equal(ahead.next()[0], plain.batch(0, 1)[0])
