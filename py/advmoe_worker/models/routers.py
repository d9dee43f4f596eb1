"""Routers: who picks each sample's expert, and the per-forward context that hands it out.

- `ImageRouter` (the paper's code): a CIFAR ResNet-20 on the normalized input image gives E
  logits; its one top-1 choice is applied to every MoE layer, so each sample runs one
  narrow sub-network. Routes have L = 1 column.
- `LayerRouter` (the paper's appendix figure): a light gate per MoE layer (global average pool
  of that layer's input, then Linear -> E). Routes have one column per MoE layer.

Both produce logits; `top1_route` (moe.py) adds training noise and temperature and makes the
straight-through decision. A router's `dispatch` returns the routing context the backbone
threads through its blocks for one forward pass; MoE layers call `ctx.route(i, x)`.

Departure from the paper's code: the image router reads the input average-pooled to at most
32x32 (`ROUTER_MAX_INPUT`). At 224 px a stride-1 ResNet-20 costs ~2 GMACs, more than the
whole ResNet-18 backbone; pooled, it costs the same 0.04 GMACs as on CIFAR and is still a
differentiable function of the pixels (attacks on the router keep working).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .moe import Route, top1_route
from .registry import scale_channels

ROUTER_MAX_INPUT = 32  # the image router never looks at more than 32x32 pixels


class RouterBlock(nn.Module):
    """CIFAR ResNet basic block with the parameter-free shortcut (subsample, zero-pad channels)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(out + shortcut)


class ImageRouter(nn.Module):
    """ResNet-20-style CNN on the image -> E logits; one decision for all MoE layers."""

    num_routes = 1

    def __init__(
        self,
        in_channels: int,
        num_experts: int,
        width: float = 1.0,
        temperature: float = 1.0,
        noise: float = 0.0,
    ):
        super().__init__()
        c1, c2, c3 = (scale_channels(c, width) for c in (16, 32, 64))
        self.num_experts = num_experts
        self.temperature = temperature  # softmax temperature of the scores
        self.noise = noise  # std of Gaussian noise on the logits, training mode only
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, 1, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU()
        )
        stages = [(c1, c1, 1), (c1, c2, 2), (c2, c3, 2)]
        self.blocks = nn.Sequential(
            *(
                RouterBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                for cin, cout, stride in stages
                for i in range(3)
            )
        )
        self.norm = FeatureNorm(c3)
        self.fc = nn.Linear(c3, num_experts)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) normalized image -> (B, E) logits."""
        H, W = x.shape[-2:]
        if H > ROUTER_MAX_INPUT or W > ROUTER_MAX_INPUT:
            x = F.adaptive_avg_pool2d(x, (min(H, ROUTER_MAX_INPUT), min(W, ROUTER_MAX_INPUT)))
        x = self.blocks(self.stem(x))  # (B, c3, H/4, W/4)
        return self.fc(self.norm(x.mean(dim=(2, 3))))  # (B, c3) -> (B, E)

    def dispatch(self, x: Tensor, forced: Tensor | None, execution: str) -> ImageRouting:
        """Routes the batch once; `forced` (B, 1) pins the experts."""
        route = top1_route(
            self(x),
            temperature=self.temperature,
            noise=self.noise,
            training=self.training,
            forced=None if forced is None else forced[:, 0],
        )
        return ImageRouting(route, execution)


class FeatureNorm(nn.BatchNorm1d):
    """Batch-normalizes the pooled features a router scores.

    Pooled post-ReLU features share a large common component across images; a plain
    Linear on them gives every image nearly the same logits, so top-1 routing sends the
    whole batch to one expert from the first step (the collapse reported against the
    paper's code). Centering the features makes the choice depend on what differs
    between images. A training batch of one uses the running statistics.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class LayerGate(nn.Module):
    """Per-layer gate: global average pool of the layer's input, normalized, then Linear -> E logits."""

    def __init__(self, in_channels: int, num_experts: int):
        super().__init__()
        self.norm = FeatureNorm(in_channels)
        self.fc = nn.Linear(in_channels, num_experts)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.norm(x.mean(dim=(2, 3))))  # (B, C_in) -> (B, E)


class LayerRouter(nn.Module):
    """One LayerGate per MoE layer; gate i routes the layer with `layer_index == i`."""

    def __init__(
        self,
        in_channels: list[int],
        num_experts: int,
        temperature: float = 1.0,
        noise: float = 0.0,
    ):
        super().__init__()
        self.num_experts = num_experts
        self.temperature = temperature
        self.noise = noise
        self.gates = nn.ModuleList(LayerGate(c, num_experts) for c in in_channels)

    @property
    def num_routes(self) -> int:
        return len(self.gates)

    def dispatch(self, x: Tensor, forced: Tensor | None, execution: str) -> LayerRouting:
        """Routing is decided lazily, layer by layer, as the backbone reaches each MoE layer."""
        return LayerRouting(self, forced, execution)


class ImageRouting:
    """Routing context of one forward pass under the image router: one Route for all layers."""

    def __init__(self, route: Route, execution: str):
        self.execution = execution
        self.shared_route = route

    def route(self, layer_index: int, x: Tensor) -> Route:
        return self.shared_route

    def outputs(self) -> tuple[Tensor, Tensor, Tensor]:
        """routes (B, 1), scores (B, 1, E), router logits (B, 1, E)."""
        r = self.shared_route
        return r.index[:, None], r.scores[:, None], r.logits[:, None]


class LayerRouting:
    """Routing context of one forward pass under per-layer gates; records every decision."""

    def __init__(self, router: LayerRouter, forced: Tensor | None, execution: str):
        self.execution = execution
        self._router = router
        self._forced = forced  # (B, L) or None
        self._routes: list[Route | None] = [None] * router.num_routes

    def route(self, layer_index: int, x: Tensor) -> Route:
        router = self._router
        route = top1_route(
            router.gates[layer_index](x),
            temperature=router.temperature,
            noise=router.noise,
            training=router.training,
            forced=None if self._forced is None else self._forced[:, layer_index],
        )
        self._routes[layer_index] = route
        return route

    def outputs(self) -> tuple[Tensor, Tensor, Tensor]:
        """routes (B, L), scores (B, L, E), router logits (B, L, E)."""
        missing = [i for i, r in enumerate(self._routes) if r is None]
        if missing:
            raise RuntimeError(f"MoE layers {missing} were not run in this forward pass")
        routes = [r for r in self._routes if r is not None]
        return (
            torch.stack([r.index for r in routes], dim=1),
            torch.stack([r.scores for r in routes], dim=1),
            torch.stack([r.logits for r in routes], dim=1),
        )
