"""Attacks aimed at the routing of an MoE model: the router alone, the frozen pathway, both.

They split an MoE model's robustness the way the paper dissects it: can an attacker move a
sample onto another pathway (router attack), and how robust is the pathway a sample is on
when it cannot (pathway attack)? `official` is the paper code's evaluation loss, kept as an
option for comparison with its numbers; its RA is not comparable with plain-CE PGD.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attack, check_number, cross_entropy


def router_cross_entropy(router_logits: Tensor, targets: Tensor) -> Tensor:
    """(B, L, E) router logits, (B, L) expert targets -> (B,) CE averaged over routing layers."""
    B, L, E = router_logits.shape
    ce = F.cross_entropy(router_logits.reshape(B * L, E), targets.reshape(B * L), reduction="none")
    return ce.view(B, L).mean(dim=1)


class _RoutedAttack(Attack):
    """Shared signature of the routing attacks: PGD's settings, MoE models only."""

    requires_moe = True

    def __init__(
        self,
        model: nn.Module,
        *,
        norm: str = "linf",
        eps: float | None = None,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        seed: int | None = None,
    ):
        super().__init__(
            model,
            norm=norm,
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=random_start,
            restarts=restarts,
            seed=seed,
        )

    def prepare(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"routes": self.model.forward_routed(x).routes}  # (B, L) clean expert choice


class RouterAttack(_RoutedAttack):
    r"""Router-targeted PGD: push every routing decision away from its clean choice.

    Maximizes CE(R(x'), r_clean), the router's cross-entropy against the experts it picks on
    the clean input (mean over routing layers), i.e. minimizes the router's probability of
    the clean route. The class logits do not enter the loss: the experts are not attacked.
    The robust accuracy on its examples (RA-router) measures what a routing change alone
    costs; its routing agreement, how easily the routing moves.

    Defaults as PGD: L∞, ε = 8/255, 10 steps of 2/255, random start (L2: ε 0.5, step 0.1).
    A sample counts as won when any routing layer changed expert.

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels (unused); returns x_adv like x.
    """

    name = "router"

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        return router_cross_entropy(self.model.forward_routed(x_adv).router_logits, ctx["routes"])

    def succeeded(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        return (self.model.forward_routed(x_adv).routes != ctx["routes"]).any(dim=1)


class PathwayAttack(_RoutedAttack):
    r"""Frozen-pathway PGD: routing pinned to the clean choice, CE maximized through it.

    Every sample keeps the experts the router picked on its clean input (`routes=`), so the
    attack sees one fixed narrow sub-network per sample and gradients reach the experts only.
    Its accuracy, measured with the same pinned routes, is the pathway (expert) robustness.

    Defaults as PGD: L∞, ε = 8/255, 10 steps of 2/255, random start (L2: ε 0.5, step 0.1).

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels; returns x_adv like x.
    """

    name = "pathway"

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        return cross_entropy(self.model.forward_routed(x_adv, routes=ctx["routes"]).logits, y)

    def succeeded(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        logits = self.model.forward_routed(x_adv, routes=ctx["routes"]).logits
        return logits.argmax(dim=1) != y


class OfficialAttack(_RoutedAttack):
    r"""The paper code's evaluation PGD: maximize CE(f(x'), y) + β·CE(R(x'), y mod E).

    The router term pushes the router away from the class -> expert map (y mod E) that the
    paper's code trains it on; β = 6 there. Kept to compare with numbers produced by that
    code. Its robust accuracy is not comparable with plain-CE PGD (`pgd`), which is the
    default everywhere else. With per-layer routers the router term is averaged over layers.

    Defaults as PGD: L∞, ε = 8/255, 10 steps of 2/255, random start; β = 6.

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels; returns x_adv like x.
    """

    name = "official"

    def __init__(
        self,
        model: nn.Module,
        *,
        norm: str = "linf",
        eps: float | None = None,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        seed: int | None = None,
        beta: float = 6.0,
    ):
        super().__init__(
            model,
            norm=norm,
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=random_start,
            restarts=restarts,
            seed=seed,
        )
        check_number("beta", beta, minimum=0)
        self.beta = float(beta)

    @classmethod
    def check_spec(cls, params: dict[str, Any], model: nn.Module | None, path: str = "") -> None:
        super().check_spec(params, model, path)
        check_number(f"{path}.beta" if path else "beta", params.get("beta", 6.0), minimum=0)

    def extra_settings(self) -> dict[str, Any]:
        return {"beta": self.beta}

    def prepare(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {}

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        out = self.model.forward_routed(x_adv)
        L = out.router_logits.shape[1]
        targets = torch.remainder(y, self.model.num_experts).view(-1, 1).expand(-1, L)
        return cross_entropy(out.logits, y) + self.beta * router_cross_entropy(out.router_logits, targets)
