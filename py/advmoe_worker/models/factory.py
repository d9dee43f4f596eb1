"""The one model factory: a validated model spec -> a ready `Classifier`.

The spec arrives validated and with defaults filled (`advmoe_worker.specs.validate("model",
...)`); this adds the checks JSON Schema cannot express (arch known, input large enough for
the arch, normalization sized to the input channels), picks the block-conv type (dense or
MoE) and the router, and initializes the weights, from `seed` when one is given.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from .classifier import Classifier, Normalize, moe_layers
from .layers import DenseConv2d
from .moe import MoEConv2d
from .registry import BackboneConfig, ModelEntry, get_model_entry
from .routers import ImageRouter, LayerRouter

SPEC_FIELDS = (
    "arch",
    "num_classes",
    "in_channels",
    "input_size",
    "width",
    "ratio",
    "normalize",
    "moe",
    "seed",
)


def create_model(spec: dict[str, Any]) -> Classifier:
    """Builds the model a validated spec describes, on the CPU, in training mode."""
    missing = [field for field in SPEC_FIELDS if field not in spec]
    if missing:
        raise SpecError(
            missing[0],
            "required",
            f"model spec lacks {missing}; pass it through specs.validate('model', ...) first",
        )
    entry = get_model_entry(spec["arch"])
    check_spec(spec, entry)
    with seeded(spec["seed"]):
        model = build(spec, entry)
        init_weights(model)
    return model


def check_spec(spec: dict[str, Any], entry: ModelEntry) -> None:
    """Semantic rules a JSON Schema cannot state; SpecError names the field."""
    size = spec["input_size"]
    if size < entry.min_input_size:
        raise SpecError(
            "input_size",
            "min_for_arch",
            f"{entry.name} needs input_size >= {entry.min_input_size} "
            f"(its feature map would shrink below 1x1), got {size}",
            {"min": entry.min_input_size, "received": size},
        )
    normalize = spec["normalize"]
    if normalize is not None:
        for key in ("mean", "std"):
            values = normalize[key]
            if len(values) != spec["in_channels"]:
                raise SpecError(
                    f"normalize.{key}",
                    "length",
                    f"normalize.{key} has {len(values)} values but in_channels is "
                    f"{spec['in_channels']}: give one per input channel",
                    {"expected": spec["in_channels"], "received": len(values)},
                )


def build(spec: dict[str, Any], entry: ModelEntry) -> Classifier:
    moe = spec["moe"]
    if moe is None:
        conv = DenseConv2d
    else:
        conv = functools.partial(MoEConv2d, num_experts=moe["experts"])
    cfg = BackboneConfig(
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        width=float(spec["width"]),
        ratio=float(spec["ratio"]),
        conv=conv,
    )
    backbone = entry.builder(cfg)
    router: ImageRouter | LayerRouter | None = None
    if moe is not None and moe["router"] == "image":
        router = ImageRouter(
            spec["in_channels"],
            moe["experts"],
            # the router follows the backbone's width unless told otherwise
            width=float(spec["width"] if moe["router_width"] is None else moe["router_width"]),
            temperature=float(moe["temperature"]),
            noise=float(moe["noise"]),
        )
    elif moe is not None:
        router = LayerRouter(
            [layer.in_channels for layer in moe_layers(backbone)],
            moe["experts"],
            temperature=float(moe["temperature"]),
            noise=float(moe["noise"]),
        )
    normalize = None
    if spec["normalize"] is not None:
        normalize = Normalize(spec["normalize"]["mean"], spec["normalize"]["std"])
    return Classifier(backbone, router, normalize, spec)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, unit BatchNorms, torch's default Linear init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, MoEConv2d):
            m.reset_parameters()
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seeds the CPU RNG for the block and restores it after, so callers' RNG is untouched."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
