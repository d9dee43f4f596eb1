"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size ε."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack, cross_entropy


class FGSM(Attack):
    r"""Fast gradient sign method: x' = clip(x + ε·sign(∇ₓ CE(f(x), y))).

    Paper: "Explaining and Harnessing Adversarial Examples", https://arxiv.org/abs/1412.6572.

    L∞ (default, ε = 8/255) or L2 (the fast gradient method: one step of ε along the unit-L2
    gradient; ε default 0.5). No random start, one step, one restart: those are fixed.

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels; returns x_adv like x.
    """

    name = "fgsm"

    def __init__(
        self, model: nn.Module, *, norm: str = "linf", eps: float | None = None, seed: int | None = None
    ):
        super().__init__(model, norm=norm, eps=eps, steps=1, random_start=False, restarts=1, seed=seed)
        self.step_size = self.eps

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        return cross_entropy(self.model(x_adv), y)
