"""PGD (Madry et al., 2018): projected gradient ascent on the cross-entropy."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack, cross_entropy


class PGD(Attack):
    r"""Projected gradient descent on CE(f(x'), y), L∞ or L2, with random start and restarts.

    Paper: "Towards Deep Learning Models Resistant to Adversarial Attacks",
    https://arxiv.org/abs/1706.06083.

    Defaults are the paper-code evaluation attack: L∞, ε = 8/255, 10 steps of 2/255, one
    uniform random start. For L2: ε = 0.5, step 0.1. With `restarts` > 1, each sample keeps
    the first restart that fools the model, else the one with the highest loss.

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels; returns x_adv like x.
    """

    name = "pgd"

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

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        return cross_entropy(self.model(x_adv), y)
