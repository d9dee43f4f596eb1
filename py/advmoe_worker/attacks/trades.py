"""The TRADES inner maximization (Zhang et al., 2019): ascend the KL divergence to f(x)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SpecError
from .base import Attack, check_number


def kl_to_clean(clean_log_probs: Tensor, adv_logits: Tensor) -> Tensor:
    """(B, K) clean log-probabilities, (B, K) adversarial logits -> (B,) KL(p_clean ‖ p_adv).

    The same quantity as `nn.KLDivLoss(reduction='sum')(log_softmax(f(x')), softmax(f(x)))`
    of the TRADES code, per sample.
    """
    adv_log_probs = F.log_softmax(adv_logits, dim=1)
    return (clean_log_probs.exp() * (clean_log_probs - adv_log_probs)).sum(dim=1)


class TradesKL(Attack):
    r"""TRADES attack: start at x + σ·N(0, 1), signed ascent on KL(f(x) ‖ f(x')), L∞ only.

    Paper: "Theoretically Principled Trade-off between Robustness and Accuracy",
    https://arxiv.org/abs/1901.08573. This is the attack TRADES training uses (and the
    paper's code uses for all its training); the labels are not needed.

    Defaults: ε = 8/255, 10 steps of 2/255, σ = `init_std` = 0.001. `router_weight` > 0 adds
    `router_weight`·KL(R(x) ‖ R(x')) on the router's softmax (mean over routing layers):
    the router-aware variant the paper's code uses for its expert step (weight 1 there);
    it needs an MoE model. Restarts redraw the Gaussian start; the highest-KL one is kept.

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels (unused); returns x_adv like x.
    """

    name = "trades"
    norms = ("linf",)

    def __init__(
        self,
        model: nn.Module,
        *,
        norm: str = "linf",
        eps: float | None = None,
        steps: int = 10,
        step_size: float | None = None,
        restarts: int = 1,
        seed: int | None = None,
        init_std: float = 0.001,
        router_weight: float = 0.0,
    ):
        super().__init__(
            model,
            norm=norm,
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=False,
            restarts=restarts,
            seed=seed,
        )
        check_trades({"init_std": init_std, "router_weight": router_weight}, model, path="")
        self.init_std = float(init_std)
        self.router_weight = float(router_weight)

    @classmethod
    def check_spec(cls, params: dict[str, Any], model: nn.Module | None, path: str = "") -> None:
        super().check_spec(params, model, path)
        check_trades(params, model, path)

    def extra_settings(self) -> dict[str, Any]:
        return {"init_std": self.init_std, "router_weight": self.router_weight}

    def prepare(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        if self.router_weight:
            out = self.model.forward_routed(x)
            return {
                "log_probs": F.log_softmax(out.logits, dim=1),
                "router_log_probs": F.log_softmax(out.router_logits, dim=-1),  # (B, L, E)
            }
        return {"log_probs": F.log_softmax(self.model(x), dim=1)}

    def init(self, x: Tensor, generator: torch.Generator) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self.project(x + self.init_std * noise, x)

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        if not self.router_weight:
            return kl_to_clean(ctx["log_probs"], self.model(x_adv))
        out = self.model.forward_routed(x_adv)
        loss = kl_to_clean(ctx["log_probs"], out.logits)
        clean_router = ctx["router_log_probs"]  # (B, L, E)
        adv_router = F.log_softmax(out.router_logits, dim=-1)
        router_kl = (clean_router.exp() * (clean_router - adv_router)).sum(dim=-1).mean(dim=1)
        return loss + self.router_weight * router_kl

    def succeeded(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        # The attack ignores labels; between restarts only the KL decides.
        return torch.zeros(x_adv.shape[0], dtype=torch.bool, device=x_adv.device)


def check_trades(params: dict[str, Any], model: nn.Module | None, path: str) -> None:
    def at(field: str) -> str:
        return f"{path}.{field}" if path else field

    check_number(at("init_std"), params.get("init_std", 0.001), minimum=0)
    weight = params.get("router_weight", 0.0)
    check_number(at("router_weight"), weight, minimum=0)
    if weight and model is not None and not getattr(model, "is_moe", False):
        raise SpecError(
            at("router_weight"),
            "requires_moe",
            f"{at('router_weight')}: the router KL term needs an MoE model; this model is dense",
            {"received": weight},
        )
