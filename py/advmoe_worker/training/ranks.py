"""Training on several ranks: one global batch, sharded by rank, with DistributedDataParallel.

What makes a step on W ranks the step one process takes on the whole batch:
- the loader gives each rank a contiguous shard of the global batch, augmented with the
  draws of the whole batch (data/loader.py), so the union of the shards is the batch;
- BatchNorm normalizes with the statistics of the whole batch, not of the shard: torch's
  SyncBatchNorm on GPUs, and on the CPU (which SyncBatchNorm refuses) GlobalBatchNorm
  below, the same computation over gloo. Per-rank statistics would make the result
  depend on the number of ranks;
- the method's loss is one DDP forward (LossStep), so DDP's gradient averaging runs once
  per backward however many times the loss calls the model (clean and adversarial
  forwards, TRADES' two views). `find_unused_parameters`: a rank whose shard routes no
  sample to an expert, or a phase that freezes the router or the experts, leaves
  parameters without a gradient there; DDP then averages the other ranks' gradients
  with zeros, as one process would have summed none for those samples;
- DDP averages the ranks' gradients; each rank's loss is a mean over its shard, so
  unequal shards are weighted by their size (`loss_scale`) to give the mean over the batch.
The training attack runs on the bare model on each shard; its random start is drawn per
call for the shard's shape, so adversarial methods are deterministic for a given number of
ranks but not equal to one process's run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce
from torch.nn.parallel import DistributedDataParallel

from .. import distributed


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm whose training statistics span every rank's shard (SyncBatchNorm for gloo).

    Mixed into a model's own BatchNorm classes (BatchNorm2d, the routers' FeatureNorm), so
    evaluation and everything else keep their behaviour. Two passes, each one all-reduce:
    the mean, then the mean squared deviation from it, so the variance does not lose
    precision to E[x²] − E[x]². The reductions are autograd-aware, so gradients flow
    through the global statistics as they do through one whole batch.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and distributed.active()):
            return super().forward(x)
        c = x.shape[1]
        dims = [d for d in range(x.dim()) if d != 1]  # all but channels: (B, C) or (B, C, H, W)
        shape = [1, c] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // c], dtype=x.dtype, device=x.device)
        sums = differentiable_all_reduce(torch.cat([x.sum(dim=dims), count]))  # (C + 1,)
        n = sums[-1]
        mean = sums[:c] / n  # (C,)
        centred = x - mean.view(shape)
        var = differentiable_all_reduce(centred.pow(2).sum(dim=dims)) / n  # (C,) biased, as BN normalizes
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1)) if float(n) > 1 else var
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


_GLOBAL: dict[type, type] = {}


def sync_batchnorm(model: nn.Module, device: torch.device) -> None:
    """Turns every BatchNorm of `model` into its all-ranks form, in place, keeping its state."""
    for m in model.modules():
        cls = type(m)
        if not isinstance(m, nn.modules.batchnorm._BatchNorm) or issubclass(
            cls, GlobalBatchNorm | nn.SyncBatchNorm
        ):
            continue
        if device.type == "cuda":
            m.__class__ = nn.SyncBatchNorm
            m.process_group = None
        else:
            if cls not in _GLOBAL:
                _GLOBAL[cls] = type(f"Global{cls.__name__}", (GlobalBatchNorm, cls), {})
            m.__class__ = _GLOBAL[cls]


class LossStep(nn.Module):
    """The method's loss as one module call, for DDP; the full LossOutput is kept in `out`."""

    def __init__(self, model: nn.Module, method: Any):
        super().__init__()
        self.model = model
        self.method = method
        self.out: Any = None

    def forward(self, x: Tensor, y: Tensor, x_adv: Tensor | None, phase: str) -> Tensor:
        self.out = self.method.loss(self.model, x, y, x_adv, phase)
        return self.out.loss


def wrap(model: nn.Module, method: Any, device: torch.device) -> DistributedDataParallel | None:
    """The DDP wrapper of the method's loss on `model`; None on one process."""
    if not distributed.active():
        return None
    sync_batchnorm(model, device)
    return DistributedDataParallel(
        LossStep(model, method),
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,
        broadcast_buffers=False,  # BatchNorm statistics are global already, hence equal
    )


def loss_scale(local: int, total: int) -> float:
    """Factor on a rank's mean loss so DDP's average of gradients is the batch mean's gradient."""
    return local * distributed.world_size() / total


def global_count(local: int, device: torch.device) -> int:
    """Samples in the global batch, from each rank's count."""
    if not distributed.active():
        return local
    t = torch.tensor([local], dtype=torch.long, device=device)
    return int(distributed.all_reduce_sum(t).item())


def mean_over_ranks(values: Tensor, local: int, total: int) -> Tensor:
    """Sample-weighted mean over ranks of per-shard means (B,)-agnostic: values (K,)."""
    if not distributed.active():
        return values
    return distributed.all_reduce_sum(values * local) / total
