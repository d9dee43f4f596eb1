"""Fixtures for the attack tests: quickly trained real models and a held-out stripes set."""

from __future__ import annotations

import pytest
import torch
from attack_fixtures import MODEL_KINDS, stripes, trained_model

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained() -> dict[str, torch.nn.Module]:
    """One quickly trained model per kind (dense, image-routed MoE, per-layer-routed MoE)."""
    # per-layer routers keep re-routing while they learn: they need more steps
    return {kind: trained_model(kind, steps=150 if kind == "moe_layer" else 80) for kind in MODEL_KINDS}


@pytest.fixture(scope="session")
def held_out() -> tuple[torch.Tensor, torch.Tensor]:
    """64 held-out stripes images (64, 3, 12, 12) and labels."""
    return stripes(64, seed=7)
