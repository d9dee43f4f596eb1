"""Seeded, resumable minibatches with worker-side augmentation.

Every random draw is a pure function of (seed, epoch, batch index): the order of epoch e
comes from a generator seeded with (seed, e) and the augmentation of batch i from
(seed, e, i). The loader's whole state is therefore its position `(epoch, index)`;
saving and restoring that position replays the exact same batches, and a batch can be
fetched again (e.g. after a refused step) bit for bit. With `prefetch`, a background
thread reads the next batch from the data set while the current one trains; what it
reads depends only on the position, so prefetching never changes a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
import torch.nn.functional as F

from .. import distributed
from .dataset import ImageDataset
from .seeding import generator

ORDER_STREAM, AUGMENT_STREAM = 41, 42


def augment_batch(
    x: torch.Tensor,
    *,
    crop_padding: int = 0,
    flip: bool = False,
    g: torch.Generator | None = None,
    drawn_for: int | None = None,
    part: slice | None = None,
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per sample, on x's device.

    x: (B, C, H, W). Draws come from the CPU generator `g`, so the result does not depend
    on the device the batch lives on. A rank's shard of a batch passes the batch's size as
    `drawn_for` and its rows as `part`: the draws are made for the whole batch and the
    shard takes its rows of them, so the shards together are the batch one process makes.
    """
    b, _, h, w = x.shape
    n = b if drawn_for is None else drawn_for
    rows_of = part if part is not None else slice(0, n)
    if crop_padding > 0:
        p = crop_padding
        offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=g)[rows_of].to(x.device)  # (B, 2) top, left
        padded = F.pad(x, (p, p, p, p))  # (B, C, H+2p, W+2p)
        rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (B, H)
        cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # (B, W)
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)
    if flip:
        mask = (torch.rand(n, generator=g)[rows_of] < 0.5).to(x.device)[:, None, None, None]
        x = torch.where(mask, x.flip(-1), x)
    return x


class BatchLoader:
    """Minibatches of `dataset` in a seeded order; resumable from `state_dict()`."""

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        augment: dict[str, Any] | None | bool = True,
        device: torch.device | str | None = None,
        prefetch: bool = False,
        sharded: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        # augment=True takes the dataset's own setting (train splits carry one), False/None none.
        self.augment = getattr(dataset, "augment", None) if augment is True else (augment or None)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        # sharded: `batch_size` is the global batch; this rank reads its contiguous shard of each
        self.sharded = sharded
        self.epoch = 0
        self.index = 0
        self._orders: dict[int, torch.Tensor] = {}
        self._lock = threading.Lock()
        # prefetch: one background thread reads the next batch while the current one trains
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="advmoe-prefetch") if prefetch else None
        self._pending: tuple[tuple[int, int], Future] | None = None

    def __len__(self) -> int:
        return self.batches_per_epoch

    @property
    def batches_per_epoch(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """(N,) sample indices of one epoch."""
        with self._lock:
            if epoch not in self._orders:
                n = len(self.dataset)
                perm = (
                    torch.randperm(n, generator=generator(self.seed, ORDER_STREAM, epoch))
                    if self.shuffle
                    else torch.arange(n)
                )
                self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
                self._orders[epoch] = perm
            return self._orders[epoch]

    def read(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch `index` of `epoch` as read from the data set: CPU tensors, no augmentation."""
        if not 0 <= index < self.batches_per_epoch:
            raise IndexError(f"batch {index} out of range [0, {self.batches_per_epoch})")
        indices = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        if self.sharded:
            indices = indices[distributed.shard(len(indices))]
        x, y = self.dataset.get(indices)
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def batch(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch `index` of `epoch`: images (B, C, H, W) in [0, 1] and labels (B,), on the device."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == (epoch, index):
            x, y = pending[1].result()
        else:
            x, y = self.read(epoch, index)
        non_blocking = self.device.type == "cuda"
        x, y = x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)
        if self.augment is not None:
            g = generator(self.seed, AUGMENT_STREAM, epoch, index)
            total, part = self.global_size(index), None
            if self.sharded:
                part = distributed.shard(total)
            x = augment_batch(
                x,
                crop_padding=self.augment["crop_padding"],
                flip=self.augment["flip"],
                g=g,
                drawn_for=total,
                part=part,
            )
        return x, y

    def global_size(self, index: int) -> int:
        """Samples in batch `index` of an epoch, over all ranks."""
        return min(self.batch_size, len(self.dataset) - index * self.batch_size)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """The batch at the current position, then the position moves on (across epochs)."""
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"no full batch of {self.batch_size} in a data set of {len(self.dataset)} samples"
            )
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        epoch, index = self.epoch, self.index
        x, y = self.batch(epoch, index)
        self.index += 1
        if self._pool is not None:
            following = (epoch, index + 1) if index + 1 < self.batches_per_epoch else (epoch + 1, 0)
            self._pending = (following, self._pool.submit(self.read, *following))
        return x, y, epoch, index

    @property
    def epoch_done(self) -> bool:
        return self.index >= self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The rest of the current epoch (consumes it)."""
        while not self.epoch_done:
            x, y, _, _ = self.next()
            yield x, y

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self.seed = int(state.get("seed", self.seed))


def eval_batches(
    dataset: ImageDataset, batch_size: int, device: torch.device | str | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every sample once, in order, without augmentation (for evaluation)."""
    loader = BatchLoader(dataset, batch_size, shuffle=False, augment=False, device=device)
    for i in range(loader.batches_per_epoch):
        yield loader.batch(0, i)
