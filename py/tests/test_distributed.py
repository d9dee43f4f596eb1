"""Sharding by rank, the launcher's arguments, lost peers, and BatchNorm over two gloo ranks."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from advmoe_worker import distributed
from advmoe_worker.data.loader import augment_batch
from advmoe_worker.data.seeding import generator
from advmoe_worker.launch import without_nproc
from advmoe_worker.server.ranks import lost_peer


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 5, 7, 16])
def test_the_shards_of_a_batch_are_contiguous_and_cover_it_once(monkeypatch, world, n):
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    parts = []
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        parts.append(distributed.shard(n))
    assert [i for p in parts for i in range(n)[p]] == list(range(n))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_a_shard_augmented_with_the_whole_batch_draws_is_its_rows_of_the_augmented_batch():
    x = torch.rand(7, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    spec = {"crop_padding": 2, "flip": True}
    whole = augment_batch(x, **spec, g=generator(5, 42, 0, 3))
    for part in (slice(0, 4), slice(4, 7)):
        shard = augment_batch(x[part], **spec, g=generator(5, 42, 0, 3), drawn_for=7, part=part)
        assert torch.equal(shard, whole[part])


def test_the_torchrun_children_get_every_argument_but_the_rank_count():
    argv = ["--bind", "ipc:///tmp/w", "--nproc-per-node", "2", "--threads", "1", "--nproc-per-node=3"]
    assert without_nproc(argv) == ["--bind", "ipc:///tmp/w", "--threads", "1"]


def test_a_lost_peer_is_told_from_other_failures():
    gloo = RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234")
    assert lost_peer(gloo)
    assert not lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not lost_peer(ValueError("Connection closed by peer"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _global_batchnorm_rank(rank: int, port: int, x: torch.Tensor, out: dict) -> None:
    from advmoe_worker.training.ranks import sync_batchnorm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        bn = nn.BatchNorm2d(3)
        sync_batchnorm(bn, torch.device("cpu"))
        part = slice(0, 3) if rank == 0 else slice(3, 5)
        xs = x[part].clone().requires_grad_(True)
        (bn(xs) * torch.arange(1.0, 4.0)[None, :, None, None]).sum().backward()
        out[rank] = (xs.grad, bn.weight.grad, bn.running_mean.clone(), bn.running_var.clone())
    finally:
        torch.distributed.destroy_process_group()


def test_batchnorm_over_two_gloo_ranks_is_batchnorm_over_the_whole_batch():
    x = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 3 + 1
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_global_batchnorm_rank, args=(_free_port(), x, out), nprocs=2)
        results = dict(out)

    bn = nn.BatchNorm2d(3)
    xr = x.clone().requires_grad_(True)
    (bn(xr) * torch.arange(1.0, 4.0)[None, :, None, None]).sum().backward()
    x_grad = torch.cat([results[0][0], results[1][0]])
    # float32 sums taken in another order: equal to ~1e-6 of values of order 1
    torch.testing.assert_close(x_grad, xr.grad, rtol=1e-5, atol=1e-5)
    for rank in (0, 1):
        _, _, mean, var = results[rank]
        torch.testing.assert_close(mean, bn.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var, bn.running_var, rtol=1e-5, atol=1e-6)
    # each rank's weight gradient is its shard's part; DDP sums them, here by hand
    torch.testing.assert_close(results[0][1] + results[1][1], bn.weight.grad, rtol=1e-5, atol=1e-5)
