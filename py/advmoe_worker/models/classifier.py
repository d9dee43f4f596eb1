"""The model every other part of the worker codes against: normalize -> (router) -> backbone.

Inputs are pixels in [0, 1]; normalization lives inside the model so attacks measure eps in
pixel space. A dense model is the same class with no router (L = 0 routing columns).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..errors import BadTensorError, SpecError
from .moe import MoEConv2d, Route
from .routers import ImageRouter, ImageRouting, LayerRouter

EXECUTIONS = ("sparse", "masked")


class RoutedOutput(NamedTuple):
    """What `forward_routed` returns; L = routing columns, E = experts."""

    logits: Tensor  # (B, K) class logits
    routes: Tensor  # (B, L) long, expert chosen per sample and routing column
    scores: Tensor  # (B, L, E) router softmax probabilities (after noise and temperature)
    router_logits: Tensor  # (B, L, E) raw router outputs (before noise and temperature)


class Normalize(nn.Module):
    """(x - mean) / std per channel; the constants come from the spec, not the state dict."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def moe_layers(module: nn.Module) -> list[MoEConv2d]:
    """The MoE convs of `module` in registration order, which is their routing-column order."""
    return [m for m in module.modules() if isinstance(m, MoEConv2d)]


class Classifier(nn.Module):
    """A dense or MoE CNN classifier; build it with `create_model(spec)`."""

    def __init__(
        self,
        backbone: nn.Module,
        router: ImageRouter | LayerRouter | None,
        normalize: Normalize | None,
        spec: dict[str, Any],
    ):
        super().__init__()
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.backbone = backbone
        self.router = router
        self.spec = copy.deepcopy(spec)
        self.in_channels = spec["in_channels"]
        self.execution = spec["moe"]["execution"] if spec["moe"] is not None else "sparse"
        layers = moe_layers(backbone)
        for i, layer in enumerate(layers):
            layer.layer_index = i
        # A plain tuple, not a ModuleList: the layers are already registered in the backbone.
        self._moe_layers = tuple(layers)

    # ---- what callers read -------------------------------------------------------------

    @property
    def is_moe(self) -> bool:
        return self.router is not None

    @property
    def num_experts(self) -> int:
        """E; a dense model is one expert."""
        return self.router.num_experts if self.router is not None else 1

    @property
    def num_routing_layers(self) -> int:
        """L, the columns of `routes`: 1 (image router), #MoE layers (per-layer), 0 (dense)."""
        return self.router.num_routes if self.router is not None else 0

    @property
    def num_moe_layers(self) -> int:
        return len(self._moe_layers)

    def router_modules(self) -> list[nn.Module]:
        return [self.router] if self.router is not None else []

    def router_parameters(self) -> list[nn.Parameter]:
        """The router's parameters (image router CNN, or every per-layer gate)."""
        return list(self.router.parameters()) if self.router is not None else []

    def expert_parameters(self) -> list[nn.Parameter]:
        """Everything else: experts, stem, shared convs, BatchNorms, classifier."""
        router_ids = {id(p) for p in self.router_parameters()}
        return [p for p in self.parameters() if id(p) not in router_ids]

    def set_execution(self, execution: str) -> None:
        """'sparse' runs only the active experts; 'masked' runs all of them (reference)."""
        if execution not in EXECUTIONS:
            raise SpecError(
                "moe.execution",
                "enum",
                f"execution must be one of {list(EXECUTIONS)}, got {execution!r}",
                {"received": execution, "allowed": list(EXECUTIONS)},
            )
        self.execution = execution
        if self.spec["moe"] is not None:
            self.spec["moe"]["execution"] = execution

    # ---- forward -----------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) pixels in [0, 1] -> (B, K) logits."""
        return self.forward_routed(x).logits

    def forward_routed(self, x: Tensor, routes: Tensor | None = None) -> RoutedOutput:
        """Logits plus the routing behind them; `routes` (B, L) pins every expert choice.

        With pinned routes the router still runs (its scores are returned) but the gates are
        constants, so gradients reach the experts only: the frozen-pathway setting.
        """
        self._check_input(x)
        B = x.shape[0]
        forced = self._check_routes(routes, B, x.device)
        x = self.normalize(x)
        if self.router is None:
            logits = self.backbone(x, None)
            no_routes = torch.zeros(B, 0, dtype=torch.long, device=x.device)
            no_scores = logits.new_zeros(B, 0, 1)
            return RoutedOutput(logits, no_routes, no_scores, no_scores)
        ctx = self.router.dispatch(x, forced, self.execution)
        if isinstance(ctx, ImageRouting) and self.execution == "sparse" and B > 0:
            logits = self._forward_grouped(x, ctx.shared_route)
        else:
            logits = self.backbone(x, ctx)
        return RoutedOutput(logits, *ctx.outputs())

    def _forward_grouped(self, x: Tensor, route: Route) -> Tensor:
        """Sparse execution under the image router, scheduled once for the whole network.

        Every MoE layer uses a sample's one expert, so the batch is sorted by expert here,
        once, and each layer finds its groups already contiguous (no per-layer gather or
        scatter). In eval mode BatchNorm uses running statistics and samples are independent,
        so each expert's samples then run as a batch of their own, which also saves the
        per-layer concatenation. In training mode BatchNorm needs the whole batch together.
        """
        E = self.num_experts
        plan = route.plan(E)
        if plan.order is not None:
            x = x.index_select(0, plan.order)  # (B, C, H, W) grouped by expert
            route = route.take(plan.order)
        groups = [(e, n) for e, n in enumerate(plan.counts) if n]
        if self.training or len(groups) == 1:
            logits = self.backbone(x, ImageRouting(route.take(slice(None), plan.counts), "sparse"))
        else:
            parts, start = [], 0
            for e, n in groups:
                rows = slice(start, start + n)
                counts = [n if i == e else 0 for i in range(E)]
                ctx = ImageRouting(route.take(rows, counts), "sparse")
                parts.append(self.backbone(x[rows], ctx))
                start += n
            logits = torch.cat(parts)  # (B, K) grouped order
        return logits if plan.inverse is None else logits.index_select(0, plan.inverse)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise BadTensorError(
                f"model input must be (B, {self.in_channels}, H, W), got {shape}",
                {"expected": ["B", self.in_channels, "H", "W"], "received": shape},
            )
        if not x.is_floating_point():
            raise BadTensorError(
                f"model input must be floating point pixels in [0, 1], got {x.dtype}",
                {"received": str(x.dtype)},
            )

    def _check_routes(self, routes: Tensor | None, batch: int, device) -> Tensor | None:
        if routes is None:
            return None
        expected = (batch, self.num_routing_layers)
        if (
            not isinstance(routes, Tensor)
            or tuple(routes.shape) != expected
            or routes.is_floating_point()
            or routes.is_complex()
            or routes.dtype == torch.bool
        ):
            shape = list(routes.shape) if isinstance(routes, Tensor) else type(routes).__name__
            raise BadTensorError(
                f"routes must be an integer tensor of shape {list(expected)}, got {shape}",
                {"expected": list(expected), "received": shape},
            )
        routes = routes.to(device=device, dtype=torch.long)
        if routes.numel() and not bool(((routes >= 0) & (routes < self.num_experts)).all()):
            raise BadTensorError(
                f"routes must name experts in [0, {self.num_experts}), "
                f"got values from {int(routes.min())} to {int(routes.max())}",
                {"min": 0, "max": self.num_experts - 1},
            )
        return routes
