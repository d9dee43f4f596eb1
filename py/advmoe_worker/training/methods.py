"""Training methods as policies over one engine: phases, optimizers, training attack, losses.

A method names its phases (what one step updates), the optimizers those phases step, the
training attack and the per-phase loss. The engine owns everything else (batches,
freezing, schedules, checks, checkpoints) and never asks which method it runs. Losses
follow the papers, not the paper code's accidents: one train-mode forward per input the
loss needs, so BatchNorm statistics move once per input.

  standard  CE(f(x), y)
  pgd-at    CE(f(x_pgd), y)                                 (Madry et al. 2018)
  trades    CE(f(x), y) + beta * KL(f(x) || f(x_kl))        (Zhang et al. 2019, batchmean)
  at-moe    the robust loss (`robust_loss`: 'pgd' or 'trades') on router and experts at once
  advmoe    the same robust loss, alternating a router phase and an expert phase

What keeps a top-1 router from sending every sample to one expert (`router_supervision`):

  label_mod_e  phases that update the router add alpha * CE(R(.), y mod E) on the router
               logits of the input the task loss uses; the training attack becomes
               router-aware. The default of 'advmoe': without it the router collapses.
  paper        the paper code's router objective: a phase that updates only the router
               minimizes alpha * CE(R(x), y mod E) + beta * KL(R(x) || R(x_adv)) and no task
               loss (a phase that also updates experts adds it to the task loss).
  none         the robust loss alone.

and, on top of any of them, a load-balancing term (`balance`, weight `balance_weight`) in
the phases that update the router:

  switch   E * sum_e f_e * P_e (Fedus et al. 2021): f_e the share of routing decisions that
           chose e (no gradient), P_e the batch-mean router probability of e. 1 when
           balanced, up to E when collapsed.
  entropy  log E - H(mean_b P): 0 when the batch-mean routing is uniform.
Both are reported in every MoE step's metrics, whether or not they are in the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import Registry


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


def router_kl(clean_logits: Tensor, adv_logits: Tensor) -> Tensor:
    """trades_kl of (B, L, E) router logits, mean over routing layers."""
    e = clean_logits.shape[-1]
    return trades_kl(clean_logits.float().reshape(-1, e), adv_logits.float().reshape(-1, e))


def balance_terms(routed: Forward) -> dict[str, Tensor]:
    """Switch and mean-routing-entropy balance terms of one routed forward, mean over layers.

    scores (B, L, E) carry the gradient; routes (B, L) only count (no gradient).
    """
    scores, routes = routed.scores, routed.routes
    e = scores.shape[-1]
    mean_p = scores.float().mean(dim=0)  # (L, E)
    share = F.one_hot(routes, e).float().mean(dim=0)  # (L, E), f_e
    switch = e * (share * mean_p).sum(dim=-1).mean()
    entropy = -(mean_p * mean_p.clamp_min(1e-12).log()).sum(dim=-1).mean()
    return {"switch": switch, "entropy": math.log(e) - entropy}


class Method:
    """A training method: its phases, optimizers, training attack and per-phase loss."""

    name: ClassVar[str] = ""
    phases: ClassVar[tuple[str, ...]] = ("joint",)
    needs_moe: ClassVar[bool] = False
    # router supervision when the spec leaves it null
    default_router_supervision: ClassVar[str] = "none"
    # which phases update the router and which update everything else
    router_phases: ClassVar[frozenset[str]] = frozenset({"joint"})
    expert_phases: ClassVar[frozenset[str]] = frozenset({"joint"})
    # a router with its own optimizer, schedule and phase cycle
    separate_router: ClassVar[bool] = False

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    # ---- the policy the engine asks for -------------------------------------------------

    def cycle(self) -> list[str]:
        """The phase of each step of one cycle, in order."""
        return list(self.phases)

    def optimizer_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        """Optimizer name -> the parameters it steps."""
        return {"model": list(model.parameters())}

    def phase_optimizer(self, phase: str) -> str:
        return "model"

    def optimizer_spec(self, name: str) -> dict[str, Any]:
        return self.spec["optimizer"]

    def schedule_spec(self, name: str) -> dict[str, Any]:
        return self.spec["schedule"]

    @property
    def shares_batch(self) -> bool:
        """All steps of one cycle take the same minibatch."""
        return False

    @property
    def router_supervision(self) -> str:
        chosen = self.spec.get("router_supervision")
        return self.default_router_supervision if chosen is None else chosen

    def robust_loss(self) -> str | None:
        """'pgd', 'trades' or None (clean training)."""
        return None

    def attack_spec(self, model: nn.Module) -> dict[str, Any] | None:
        """The spec of the training attack for `create_attack`, or None."""
        kind = self.robust_loss()
        if kind is None:
            return None
        a = self.spec["attack"]
        common = {"norm": "linf", "eps": a["eps"], "steps": a["steps"], "step_size": a["step_size"]}
        supervised = self.router_supervision != "none" and getattr(model, "is_moe", False)
        if kind == "trades":
            # the paper code's attack also ascends KL(R(x) || R(x')) with weight 1
            return {"name": "trades", **common, "router_weight": 1.0 if supervised else 0.0}
        if supervised:
            return {
                "name": "official",
                **common,
                "random_start": a["random_start"],
                "beta": self.spec["alpha"],
            }
        return {"name": "pgd", **common, "random_start": a["random_start"]}

    # ---- losses -------------------------------------------------------------------------

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor | None, phase: str) -> LossOutput:
        trains_router = phase in self.router_phases
        if trains_router and phase not in self.expert_phases and self.router_supervision == "paper":
            out = self._router_objective(model, x, y, x_adv)
        else:
            out = self._task_loss(model, x, y, x_adv)
            if trains_router:
                self._add_router_terms(model, out, x, y, x_adv)
        if trains_router:
            self._add_balance(out)
        return out

    def _task_loss(self, model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor | None) -> LossOutput:
        kind = self.robust_loss()
        if kind is None:
            clean = forward(model, x)
            ce = F.cross_entropy(clean.logits.float(), y)
            return LossOutput(ce, {"ce": ce.detach()}, clean=clean)
        if kind == "pgd":
            adv = forward(model, x_adv)
            ce = F.cross_entropy(adv.logits.float(), y)
            return LossOutput(ce, {"adv_ce": ce.detach()}, adv=adv)
        clean, adv = forward(model, x), forward(model, x_adv)
        ce = F.cross_entropy(clean.logits.float(), y)
        kl = trades_kl(clean.logits.float(), adv.logits.float())
        return LossOutput(
            ce + self.spec["beta"] * kl, {"ce": ce.detach(), "kl": kl.detach()}, clean=clean, adv=adv
        )

    def _router_objective(self, model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor | None) -> LossOutput:
        """The paper code's router step: alpha * CE(R(x), y mod E) + beta * KL(R(x) || R(x_adv))."""
        clean = forward(model, x)
        rce = router_ce(clean.router_logits, y, model.num_experts)
        loss, terms = self.spec["alpha"] * rce, {"router_ce": rce.detach()}
        adv = None
        if x_adv is not None:
            adv = forward(model, x_adv)
            rkl = router_kl(clean.router_logits, adv.router_logits)
            loss = loss + self.spec["beta"] * rkl
            terms["router_kl"] = rkl.detach()
        return LossOutput(loss, terms, clean=clean, adv=adv)

    def _add_router_terms(
        self, model: nn.Module, out: LossOutput, x: Tensor, y: Tensor, x_adv: Tensor | None
    ) -> None:
        supervision = self.router_supervision
        if supervision == "none":
            return
        routed = out.clean if out.clean is not None else out.adv
        if routed is None or routed.router_logits is None:
            return
        rce = router_ce(routed.router_logits, y, model.num_experts)
        out.loss = out.loss + self.spec["alpha"] * rce
        out.terms["router_ce"] = rce.detach()
        if supervision == "paper" and out.clean is not None and out.adv is not None:
            rkl = router_kl(out.clean.router_logits, out.adv.router_logits)
            out.loss = out.loss + self.spec["beta"] * rkl
            out.terms["router_kl"] = rkl.detach()

    def _add_balance(self, out: LossOutput) -> None:
        kind = self.spec["balance"]
        if kind == "none":
            return
        routed = out.clean if out.clean is not None else out.adv
        if routed is None or routed.scores is None or not routed.scores.numel():
            return
        term = balance_terms(routed)[kind]
        out.loss = out.loss + self.spec["balance_weight"] * term
        out.terms[f"balance_{kind}"] = term.detach()


METHODS: Registry[type[Method]] = Registry("method")


@METHODS.register("standard")
class Standard(Method):
    name = "standard"


@METHODS.register("pgd-at")
class PGDAT(Method):
    name = "pgd-at"

    def robust_loss(self) -> str:
        return "pgd"


@METHODS.register("trades")
class Trades(Method):
    name = "trades"

    def robust_loss(self) -> str:
        return "trades"


@METHODS.register("at-moe")
class ATMoE(Method):
    """Plain adversarial training of an MoE model: router and experts in one optimizer."""

    name = "at-moe"
    needs_moe = True

    def robust_loss(self) -> str:
        return self.spec["robust_loss"]


@METHODS.register("advmoe")
class AdvMoE(Method):
    """Router-expert alternation: the router phase updates only the router, the expert phase the rest.

    Two optimizers, each with its own settings and schedule (`router_optimizer` and
    `router_schedule` default to the experts'); the cycle is `phases`.
    """

    name = "advmoe"
    phases = ("router", "expert")
    needs_moe = True
    default_router_supervision = "label_mod_e"
    router_phases = frozenset({"router"})
    expert_phases = frozenset({"expert"})
    separate_router = True

    def robust_loss(self) -> str:
        return self.spec["robust_loss"]

    def cycle(self) -> list[str]:
        return [p["phase"] for p in self.spec["phases"] for _ in range(p["steps"])]

    def optimizer_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {"router": list(model.router_parameters()), "expert": list(model.expert_parameters())}

    def phase_optimizer(self, phase: str) -> str:
        return phase

    def optimizer_spec(self, name: str) -> dict[str, Any]:
        if name == "router" and self.spec["router_optimizer"] is not None:
            return self.spec["router_optimizer"]
        return self.spec["optimizer"]

    def schedule_spec(self, name: str) -> dict[str, Any]:
        if name == "router" and self.spec["router_schedule"] is not None:
            return self.spec["router_schedule"]
        return self.spec["schedule"]

    @property
    def shares_batch(self) -> bool:
        return self.spec["share_batch"]


def create_method(spec: dict[str, Any]) -> Method:
    return METHODS.get(spec["method"], "method")(spec)
