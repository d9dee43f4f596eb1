"""Optimizers (one registry) and learning-rate schedules as pure functions of progress.

A schedule is `lr_at(schedule, base_lr, progress, total_epochs)`: no state of its own, so
a resumed run gets the same learning rate from the same counters, and `set(lr=...)`
between steps rescales the rest of the run without replaying anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..registry import Registry

OptimizerBuilder = Callable[[list[nn.Parameter], dict[str, Any]], torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")


def register_optimizer(name: str, builder: OptimizerBuilder) -> None:
    OPTIMIZERS.register(name, builder)


register_optimizer(
    "sgd",
    lambda params, s: torch.optim.SGD(
        params, lr=s["lr"], momentum=s["momentum"], nesterov=s["nesterov"], weight_decay=s["weight_decay"]
    ),
)
register_optimizer(
    "adam",
    lambda params, s: torch.optim.Adam(
        params, lr=s["lr"], betas=tuple(s["betas"]), eps=s["eps"], weight_decay=s["weight_decay"]
    ),
)
register_optimizer(
    "adamw",
    lambda params, s: torch.optim.AdamW(
        params, lr=s["lr"], betas=tuple(s["betas"]), eps=s["eps"], weight_decay=s["weight_decay"]
    ),
)


def create_optimizer(params: Iterable[nn.Parameter], spec: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer an OptimizerSpec names, over `params` (one param group)."""
    return OPTIMIZERS.get(spec["name"], "optimizer.name")(list(params), spec)


def lr_at(
    schedule: dict[str, Any], base_lr: float, progress: float, total_epochs: int, tick: float = 1.0
) -> float:
    """Learning rate at `progress` epochs into a run of `total_epochs`.

    `progress` is the epoch index for per-epoch schedules and the fractional epoch
    (epoch + batch/batches) for per-step ones; `tick` is one interval in epochs (1, or
    1/batches). Warmup ramps linearly over `warmup_epochs`, reaching lr/warmup*tick on the
    first tick; the schedule proper then runs over the remaining epochs:
    cosine  min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2, t in [0, 1] (the paper code's
            per-epoch cosine when warmup is 0 and min_lr is 0),
    step    lr * gamma^(milestones passed), milestones as fractions of the run,
    constant lr.
    """
    warmup = float(schedule["warmup_epochs"])
    if warmup > 0 and progress < warmup:
        return base_lr * min(1.0, (progress + tick) / warmup)
    name = schedule["name"]
    if name == "constant":
        return base_lr
    span = max(total_epochs - warmup, 1e-12)
    t = min(max((progress - warmup) / span, 0.0), 1.0)
    if name == "cosine":
        floor = min(schedule["min_lr"], base_lr)
        return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    passed = sum(1 for m in schedule["milestones"] if progress >= m * total_epochs)
    return base_lr * schedule["gamma"] ** passed


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
