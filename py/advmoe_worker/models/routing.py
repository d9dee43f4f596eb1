"""Routing health: how the batch spreads over experts, and warnings when it does not.

Reported failure of the paper's code: router scores turn NaN and every sample goes to
expert 0, silently leaving a small dense network. These helpers make that visible.
All results are plain Python numbers and lists, ready for the wire.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def routing_stats(routes: Tensor, num_experts: int) -> dict[str, Any]:
    """Per routing column of `routes` (B, L): expert histogram, shares, entropy, max share.

    entropy is in nats; entropy_normalized divides by log E (1 = perfectly balanced; 0 with
    a single expert or an empty batch).
    """
    if routes.dim() != 2:
        raise ValueError(f"routes must be (B, L), got shape {list(routes.shape)}")
    B, L = routes.shape
    routes = routes.detach().long().cpu()
    histogram = (
        torch.stack([torch.bincount(routes[:, i], minlength=num_experts) for i in range(L)])
        if L
        else torch.zeros(0, num_experts, dtype=torch.long)
    )  # (L, E)
    share = histogram.double() / max(B, 1)  # (L, E)
    entropy = -(share * torch.log(share.clamp_min(1e-300))).sum(dim=1)  # (L,)
    log_e = math.log(num_experts) if num_experts > 1 else 0.0
    normalized = entropy / log_e if log_e > 0 else torch.zeros_like(entropy)
    return {
        "num_samples": B,
        "num_experts": num_experts,
        "histogram": histogram.tolist(),
        "share": share.tolist(),
        "entropy": entropy.tolist(),
        "entropy_normalized": normalized.tolist(),
        "max_share": share.max(dim=1).values.tolist() if L and B else [0.0] * L,
    }


def routing_warnings(
    stats: dict[str, Any], scores: Tensor | None = None, max_share: float = 0.9
) -> list[dict[str, Any]]:
    """Warnings as data: `routing_collapse` when one expert takes more than `max_share` of a
    column's samples (E > 1), `non_finite_scores` when router scores hold NaN or inf."""
    warnings: list[dict[str, Any]] = []
    if stats["num_experts"] > 1 and stats["num_samples"] > 0:
        for layer, shares in enumerate(stats["share"]):
            top = max(shares)
            if top > max_share:
                expert = shares.index(top)
                warnings.append(
                    {
                        "code": "routing_collapse",
                        "layer": layer,
                        "expert": expert,
                        "share": top,
                        "threshold": max_share,
                        "message": f"routing column {layer} sends {top:.1%} of samples to "
                        f"expert {expert} (threshold {max_share:.0%})",
                    }
                )
    if scores is not None:
        bad = int((~torch.isfinite(scores.detach())).sum())
        if bad:
            warnings.append(
                {
                    "code": "non_finite_scores",
                    "count": bad,
                    "message": f"{bad} router scores are NaN or infinite",
                }
            )
    return warnings
