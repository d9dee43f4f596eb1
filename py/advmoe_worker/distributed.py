"""More than one process: the process group torchrun describes, and what the worker asks of it.

Under `torch.distributed.run` (torchrun) every rank runs the worker. Rank 0 serves the
socket; it sends each request it computes to the other ranks (`relay`), which run the same
handler, so every rank holds the same objects under the same handles. Training shards each
global batch by rank and averages gradients with DistributedDataParallel; evaluation shards
each batch and sums its counts; only rank 0 writes files. Decisions one rank makes alone
(a cancel, a pause) reach the others through `agreed`, so every rank leaves a loop at the
same step and no collective is left waiting.

Without a process group (the usual single process) every helper here is the identity.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

# A follower waits in a broadcast for as long as the client leaves the worker idle; the
# death of a rank is noticed by torchrun's agent, which then ends the whole group.
IDLE_TIMEOUT = datetime.timedelta(days=365)

_device = torch.device("cpu")


def active() -> bool:
    """Whether this process is one of several ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_writer() -> bool:
    """Only rank 0 writes checkpoints and model files."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str | None) -> torch.device:
    """Joins the group torchrun set up in the environment: NCCL on GPUs, gloo on the CPU.

    Returns this rank's device: `cuda:<LOCAL_RANK>` when CUDA is there and `device` does
    not ask for the CPU, else the CPU.
    """
    global _device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if cuda:
        torch.cuda.set_device(local_rank)
        _device = torch.device("cuda", local_rank)
    else:
        _device = torch.device("cpu")
    dist.init_process_group("nccl" if cuda else "gloo", timeout=IDLE_TIMEOUT)
    return _device


def backend() -> str | None:
    return dist.get_backend() if active() else None


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (pickled; tensors inside travel with it)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def agreed(decide: Callable[[], bool]) -> Callable[[], bool]:
    """`decide` as rank 0 answers it, on every rank; call it at the same point on all ranks."""
    if not active():
        return decide

    def ask() -> bool:
        flag = torch.tensor([int(bool(decide())) if rank() == 0 else 0], device=_device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    return ask


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of `t` (a new tensor on t's device; the collective runs on this rank's device)."""
    if not active():
        return t
    out = t.detach().to(_device).clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(t.device)


def barrier() -> None:
    if active():
        dist.barrier()


def shard(n: int) -> slice:
    """This rank's contiguous part of `n` items: sizes differ by at most one, lower ranks first."""
    w, r = world_size(), rank()
    base, extra = divmod(n, w)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))
