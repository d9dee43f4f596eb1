"""Helpers for the training tests: tiny real models from the model factory, small data."""

from __future__ import annotations

import copy
import importlib
from typing import Any

import torch

MOE = {
    "experts": 2,
    "router": "image",
    "execution": "sparse",
    "noise": 0.0,
    "temperature": 1.0,
    "router_width": 0.5,
}
MODEL = {
    "arch": "resnet18",
    "num_classes": 4,
    "in_channels": 3,
    "input_size": 8,
    "width": 0.125,
    "ratio": 0.5,
    "normalize": None,
    "moe": None,
    "seed": 0,
}
DATA = {"kind": "synthetic", "num_classes": 4, "size": 8, "channels": 3, "train_size": 64, "test_size": 32}


def factory():
    try:
        module = importlib.import_module("advmoe_worker.models")
        return module.create_model
    except (ImportError, AttributeError):  # the package's re-exports may not be there yet
        for name in ("resnet", "wide_resnet", "vgg", "densenet"):
            importlib.import_module(f"advmoe_worker.models.{name}")
        return importlib.import_module("advmoe_worker.models.factory").create_model


def model_spec(moe: bool = True, **overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(MODEL)
    if moe:
        spec["moe"] = copy.deepcopy(MOE)
    for key, value in overrides.items():
        if key in MOE and moe:
            spec["moe"][key] = value
        else:
            spec[key] = value
    return spec


def make_model(moe: bool = True, **overrides: Any) -> torch.nn.Module:
    return factory()(model_spec(moe, **overrides))


def data_spec(**overrides: Any) -> dict[str, Any]:
    return {**DATA, **overrides}
