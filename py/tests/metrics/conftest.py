"""Fixtures for the evaluation tests: the attack tests' tiny trained models and stripes data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "attacks"))

from attack_fixtures import stripes, trained_model  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def moe_model() -> torch.nn.Module:
    return trained_model("moe", steps=80)


@pytest.fixture(scope="session")
def dense_model() -> torch.nn.Module:
    return trained_model("dense", steps=80)


@pytest.fixture(scope="session")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    """48 held-out stripes images (48, 3, 12, 12) and labels."""
    return stripes(48, seed=7)
