"""The MoE convolution: E experts as channel groups of one wide conv, top-1 routed per sample.

Expert e of a layer with C' = floor(r*C) output channels owns filters [e*C', (e+1)*C') of a
conv with E*C' filters; a sample routed to e gets exactly those C' channels, so the next
layer always sees C' channels whichever expert ran (the paper's code does the same).

Two execution paths give the same outputs and the same gradients:
- `masked` (reference, what the paper's code does): run all E*C' filters on every sample and
  keep the chosen group. Costs E times the active compute.
- `sparse`: group the batch by expert and run each group through its own weight slice only.

The router's straight-through gradient enters through `Route.gate`, a per-sample factor that
is exactly 1.0 in the forward pass and whose gradient reaches the chosen expert's score. Both
paths multiply their output by it, so the router sees the same gradient in both. Unlike a
"sum of all experts times a one-hot mask" (whose backward also scores experts that were not
chosen), this gradient only needs the expert that actually ran, which is what makes the
sparse path exact rather than an approximation.

The BatchNorm after an MoE conv has C' channels shared by all experts, as in the paper's
code. Per-expert BatchNorms would give each pathway its own statistics, but under per-layer
routing a BN would then have to be routed too, and in training each expert's statistics
would come from only its share of the batch; shared BNs keep one rule for both routers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import RoutedModule


class Route:
    """One top-1 routing decision for a batch; shared by every MoE layer it is handed to."""

    def __init__(self, logits: Tensor, scores: Tensor, index: Tensor, gate: Tensor):
        self.logits = logits  # (B, E) raw router output
        self.scores = scores  # (B, E) softmax probabilities (after noise and temperature)
        self.index = index  # (B,) long, chosen expert per sample
        self.gate = gate  # (B,) exactly 1.0; carries the straight-through gradient
        self._plan: ExpertPlan | None = None

    def plan(self, num_experts: int) -> ExpertPlan:
        # Computed once per decision: with the image router, every layer reuses one plan
        # and the batch is read back to the host only once per forward pass.
        if self._plan is None:
            self._plan = ExpertPlan.from_index(self.index, num_experts)
        return self._plan

    def take(self, rows: Tensor | slice, counts: list[int] | None = None) -> Route:
        """The decision for a subset or reordering of the batch; `counts` (samples per expert)
        marks the result as already grouped by expert, so it never syncs to find out."""
        taken = Route(self.logits[rows], self.scores[rows], self.index[rows], self.gate[rows])
        if counts is not None:
            taken._plan = ExpertPlan(counts, None, None)
        return taken


class ExpertPlan:
    """How the sparse path splits a batch: samples per expert and the order that groups them."""

    def __init__(self, counts: list[int], order: Tensor | None, inverse: Tensor | None):
        self.counts = counts  # samples routed to each expert, length E
        self.order = order  # (B,) stable sort of the batch by expert; None if already sorted
        self.inverse = inverse  # (B,) puts grouped rows back in batch order

    @classmethod
    def from_index(cls, index: Tensor, num_experts: int) -> ExpertPlan:
        counts = torch.bincount(index, minlength=num_experts)
        is_sorted = (index[1:] >= index[:-1]).all()
        host = torch.cat([counts, is_sorted.view(1).long()]).tolist()  # one device sync
        counts_list, already_sorted = host[:-1], bool(host[-1])
        if already_sorted:
            return cls(counts_list, None, None)
        order = torch.argsort(index, stable=True)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return cls(counts_list, order, inverse)


def top1_route(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    noise: float = 0.0,
    training: bool = False,
    forced: Tensor | None = None,
) -> Route:
    """Turns router logits (B, E) into a top-1 Route with a straight-through gradient.

    Noise (std `noise`, training only) is added before the temperature-scaled softmax.
    Ties go to the lower expert index (argmax returns the first maximum). With `forced`
    (B,) the experts are given and the gate is a constant: no gradient reaches the router.
    """
    if training and noise > 0:
        logits_used = logits + noise * torch.randn_like(logits)
    else:
        logits_used = logits
    scores = torch.softmax(logits_used / temperature, dim=-1)  # (B, E)
    if forced is not None:
        index = forced
        gate = scores.new_ones(index.shape)
    else:
        index = scores.argmax(dim=-1)
        chosen = scores.gather(1, index[:, None]).squeeze(1)  # (B,)
        # s - s.detach() is exactly 0 forward, so the gate is exactly 1.0 and outputs are
        # bit-identical to an unrouted expert; backward it is d/ds_chosen = 1 (the one-hot
        # mask's gradient copied onto the chosen score).
        gate = 1.0 + (chosen - chosen.detach())
    return Route(logits, scores, index, gate)


class MoEConv2d(RoutedModule):
    """A conv whose E experts are contiguous groups of `out_channels` filters; top-1 per sample.

    `out_channels` is the expert width C' (the channels the layer outputs); the weight holds
    E*C' filters, (E*C', C_in, k, k). The layer asks `ctx.route(self.layer_index, x)` for its
    Route, so the same layer works under the image router and under per-layer gates.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        *,
        num_experts: int,
        bias: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_experts = num_experts
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.weight = nn.Parameter(
            torch.empty(num_experts * out_channels, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(num_experts * out_channels)) if bias else None
        self.layer_index = -1  # position in the model's routes (B, L); set by the Classifier
        # Called with the MACs of every conv this layer really runs (see costs.py); a plain
        # attribute, not state: it never enters the state dict.
        self.mac_counter: Callable[[int], None] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming (fan_out, ReLU) per expert: each expert is a conv with C' filters, so the
        # fan-out is C'*k*k, not the E*C'*k*k torch would infer from the stacked weight.
        fan_out = self.out_channels * self.kernel_size * self.kernel_size
        with torch.no_grad():
            self.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor, ctx) -> Tensor:
        route = ctx.route(self.layer_index, x)
        if ctx.execution == "sparse":
            y = self.forward_sparse(x, route)
        else:
            y = self.forward_masked(x, route)
        if route.gate.requires_grad:  # skipped in inference, where it would multiply by 1.0
            y = y * route.gate.view(-1, 1, 1, 1)
        return y

    def forward_masked(self, x: Tensor, route: Route) -> Tensor:
        """Reference path: all E*C' filters on every sample, then keep the chosen group."""
        y = self._conv(x, self.weight, self.bias)  # (B, E*C', H, W)
        B, _, H, W = y.shape
        y = y.view(B, self.num_experts, self.out_channels, H, W)  # (B, E, C', H, W)
        return y[torch.arange(B, device=y.device), route.index]  # (B, C', H, W)

    def forward_sparse(self, x: Tensor, route: Route) -> Tensor:
        """Only active channels: each expert's samples run through that expert's filters."""
        if x.shape[0] == 0:
            return self.forward_masked(x, route)
        plan = route.plan(self.num_experts)
        grouped = x if plan.order is None else x.index_select(0, plan.order)  # (B, C_in, H, W)
        parts, start = [], 0
        for e, n in enumerate(plan.counts):
            if n == 0:
                continue
            rows = slice(e * self.out_channels, (e + 1) * self.out_channels)
            bias = None if self.bias is None else self.bias[rows]
            parts.append(self._conv(grouped[start : start + n], self.weight[rows], bias))
            start += n
        y = parts[0] if len(parts) == 1 else torch.cat(parts)  # (B, C', H, W), grouped order
        return y if plan.inverse is None else y.index_select(0, plan.inverse)

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        y = F.conv2d(x, weight, bias, self.stride, self.padding)
        if self.mac_counter is not None:
            self.mac_counter(y.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3])
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, num_experts={self.num_experts}"
        )
