"""Tiny, CPU-friendly specs for every registered arch in its dense and MoE forms."""

from __future__ import annotations

from typing import Any

from advmoe_worker.models import list_models
from advmoe_worker.specs import validate

ARCHS = list_models()
VARIANTS = ("dense", "image", "layer")
CASES = [(arch, variant) for arch in ARCHS for variant in VARIANTS]

# Smallest width and input that still exercise every layer of the arch.
TINY: dict[str, dict[str, Any]] = {
    "resnet18_imagenet": {"input_size": 32, "width": 0.125},
    "resnet50_imagenet": {"input_size": 32, "width": 0.125},
    "densenet_cifar": {"input_size": 16, "width": 0.5},
    "wrn28_10": {"input_size": 16, "width": 0.125},
    "wrn34_10": {"input_size": 16, "width": 0.125},
}
DEFAULT_TINY = {"input_size": 16, "width": 0.25}


def model_spec(**partial: Any) -> dict[str, Any]:
    """A validated model spec with defaults filled, as the worker hands it to the factory."""
    return validate("model", partial)


def tiny_spec(arch: str, variant: str = "dense", **overrides: Any) -> dict[str, Any]:
    """`variant`: 'dense' (ratio 1), or 'image' / 'layer' router MoE (E=2, r=0.5)."""
    partial: dict[str, Any] = {"arch": arch, "seed": 0, **TINY.get(arch, DEFAULT_TINY)}
    if variant != "dense":
        partial["ratio"] = 0.5
        partial["moe"] = {"experts": 2, "router": variant}
    partial.update(overrides)
    return model_spec(**partial)
