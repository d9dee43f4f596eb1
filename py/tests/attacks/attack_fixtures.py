"""Tiny real models and a procedural data set that a CPU trains to useful accuracy in seconds.

Shared by tests/attacks and tests/metrics (and bench/attacks_pgd.py's smoke use): the data
are oriented stripes, one orientation per class, with random phase, contrast and noise, so
a small CNN learns them fast yet stays easy to fool at eps = 8/255.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advmoe_worker.models import create_model

NUM_CLASSES = 4
SIZE = 12
MODEL_KINDS = ("dense", "moe", "moe_layer")


def stripes(
    n: int, *, seed: int, size: int = SIZE, num_classes: int = NUM_CLASSES
) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 3, size, size) in [0, 1] and labels (n,); class k = stripes at angle k*pi/K."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    angle = y.float() * math.pi / num_classes + 0.15 * torch.randn(n, generator=g)  # (n,)
    phase = 2 * math.pi * torch.rand(n, generator=g)
    contrast = 0.05 + 0.05 * torch.rand(n, generator=g)
    coords = torch.arange(size).float()
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (size, size)
    proj = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
    wave = torch.sin(2 * math.pi * proj / 4.0 + phase[:, None, None])  # (n, size, size)
    tint = 0.8 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)
    x = 0.5 + contrast[:, None, None, None] * wave[:, None] * tint
    x = x + 0.03 * torch.randn(n, 3, size, size, generator=g)
    return x.clamp(0, 1), y


def model_spec(
    kind: str, *, seed: int = 0, size: int = SIZE, num_classes: int = NUM_CLASSES
) -> dict[str, Any]:
    """A full model spec: 'dense', 'moe' (image router) or 'moe_layer' (per-layer routers)."""
    moe = None
    if kind != "dense":
        moe = {
            "experts": 2,
            "router": "layer" if kind == "moe_layer" else "image",
            "execution": "sparse",
            "noise": 0.0,
            "temperature": 1.0,
            "router_width": 0.25,
        }
    return {
        "arch": "resnet18",
        "num_classes": num_classes,
        "in_channels": 3,
        "input_size": size,
        "width": 0.125,
        "ratio": 0.5,
        "normalize": None,
        "moe": moe,
        "seed": seed,
    }


def train_quickly(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 60, seed: int = 0
) -> nn.Module:
    """A few Adam steps of plain cross-entropy; returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (64,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    model.eval()
    return model


def trained_model(kind: str, *, steps: int = 60, seed: int = 0) -> nn.Module:
    x, y = stripes(1024, seed=100 + seed)
    model = create_model(model_spec(kind, seed=seed))
    return train_quickly(model, x, y, steps=steps, seed=seed)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def batches_of(data: tuple[torch.Tensor, torch.Tensor], size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) cut into consecutive batches of `size`."""
    x, y = data
    return [(x[i : i + size], y[i : i + size]) for i in range(0, x.shape[0], size)]
