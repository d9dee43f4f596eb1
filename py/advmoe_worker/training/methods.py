"""Training methods as policies over one engine: which phases, which attack, which loss.

A method names its phases (what one step updates) and, per phase, the training attack
and the loss. The engine owns everything else (batches, freezing, optimizers, schedules,
checks, checkpoints). Losses follow the papers, not the paper code's accidents: one
train-mode forward per input the loss needs, so BatchNorm statistics move once per input.

  standard  CE(f(x), y)
  pgd-at    CE(f(x_pgd), y)                                 (Madry et al. 2018)
  trades    CE(f(x), y) + beta * KL(f(x) || f(x_kl))        (Zhang et al. 2019, batchmean)
  at-moe    the robust loss (`robust_loss`: 'pgd' or 'trades') on router and experts at once
  advmoe    the same robust loss, alternating a router phase and an expert phase

With `router_supervision: 'label_mod_e'` (the paper code's surrogate, off by default) the
phases that update the router add alpha * CE(R(.), y mod E) on the router logits of the
input the task loss uses, and the training attack becomes router-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Forward(NamedTuple):
    """One forward pass: logits (B, K) and, for MoE models, routes (B, L), scores/router_logits (B, L, E)."""

    logits: Tensor
    routes: Tensor | None
    scores: Tensor | None
    router_logits: Tensor | None


def forward(model: nn.Module, x: Tensor) -> Forward:
    if getattr(model, "is_moe", False):
        out = model.forward_routed(x)
        return Forward(out.logits, out.routes, out.scores, out.router_logits)
    return Forward(model(x), None, None, None)


@dataclass
class LossOutput:
    loss: Tensor  # scalar to minimize
    terms: dict[str, Tensor] = field(default_factory=dict)  # named scalar parts, for metrics
    clean: Forward | None = None  # train-mode forward on x, when the loss made one
    adv: Forward | None = None  # train-mode forward on x_adv, when the loss made one


def trades_kl(clean_logits: Tensor, adv_logits: Tensor) -> Tensor:
    """TRADES' KL(f(x) || f(x')) with batchmean reduction, gradient through both sides."""
    return F.kl_div(F.log_softmax(adv_logits, dim=1), F.softmax(clean_logits, dim=1), reduction="batchmean")


def router_ce(router_logits: Tensor, y: Tensor, num_experts: int) -> Tensor:
    """CE of (B, L, E) router logits against expert y mod E, mean over samples and layers."""
    b, layers, e = router_logits.shape
    target = torch.remainder(y, num_experts).view(b, 1).expand(b, layers)
    return F.cross_entropy(router_logits.float().reshape(b * layers, e), target.reshape(b * layers))


class Method:
    """A training method: its phases, its training attack and its per-phase loss."""

    name: ClassVar[str] = ""
    phases: ClassVar[tuple[str, ...]] = ("joint",)
    needs_moe: ClassVar[bool] = False

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    def robust_loss(self) -> str | None:
        """'pgd', 'trades' or None (clean training)."""
        return None

    def router_trained(self, phase: str) -> bool:
        return False

    def attack_spec(self, model: nn.Module) -> dict[str, Any] | None:
        """The spec of the training attack for `create_attack`, or None."""
        kind = self.robust_loss()
        if kind is None:
            return None
        a = self.spec["attack"]
        common = {"norm": "linf", "eps": a["eps"], "steps": a["steps"], "step_size": a["step_size"]}
        supervised = self.spec["router_supervision"] == "label_mod_e" and getattr(model, "is_moe", False)
        if kind == "trades":
            # the paper code's expert-step attack also ascends KL(R(x) || R(x')) with weight 1
            return {"name": "trades", **common, "router_weight": 1.0 if supervised else 0.0}
        if supervised:
            return {
                "name": "official",
                **common,
                "random_start": a["random_start"],
                "beta": self.spec["alpha"],
            }
        return {"name": "pgd", **common, "random_start": a["random_start"]}

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor | None, phase: str) -> LossOutput:
        kind = self.robust_loss()
        if kind is None:
            clean = forward(model, x)
            ce = F.cross_entropy(clean.logits.float(), y)
            out = LossOutput(ce, {"ce": ce.detach()}, clean=clean)
        elif kind == "pgd":
            adv = forward(model, x_adv)
            ce = F.cross_entropy(adv.logits.float(), y)
            out = LossOutput(ce, {"adv_ce": ce.detach()}, adv=adv)
        else:
            clean, adv = forward(model, x), forward(model, x_adv)
            ce = F.cross_entropy(clean.logits.float(), y)
            kl = trades_kl(clean.logits.float(), adv.logits.float())
            out = LossOutput(
                ce + self.spec["beta"] * kl, {"ce": ce.detach(), "kl": kl.detach()}, clean=clean, adv=adv
            )
        if self.spec["router_supervision"] == "label_mod_e" and self.router_trained(phase):
            routed = out.clean if out.clean is not None else out.adv
            if routed is not None and routed.router_logits is not None:
                rce = router_ce(routed.router_logits, y, model.num_experts)
                out.loss = out.loss + self.spec["alpha"] * rce
                out.terms["router_ce"] = rce.detach()
        return out


class Standard(Method):
    name = "standard"


class PGDAT(Method):
    name = "pgd-at"

    def robust_loss(self) -> str:
        return "pgd"


class Trades(Method):
    name = "trades"

    def robust_loss(self) -> str:
        return "trades"


class ATMoE(Method):
    """Plain adversarial training of an MoE model: router and experts in one optimizer."""

    name = "at-moe"
    needs_moe = True

    def robust_loss(self) -> str:
        return self.spec["robust_loss"]

    def router_trained(self, phase: str) -> bool:
        return True


class AdvMoE(Method):
    """Router-expert alternation: the router phase updates only the router, the expert phase the rest."""

    name = "advmoe"
    phases = ("router", "expert")
    needs_moe = True

    def robust_loss(self) -> str:
        return self.spec["robust_loss"]

    def router_trained(self, phase: str) -> bool:
        return phase == "router"


METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Standard, PGDAT, Trades, ATMoE, AdvMoE)}


def create_method(spec: dict[str, Any]) -> Method:
    return METHODS[spec["method"]](spec)
