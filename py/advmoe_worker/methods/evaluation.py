"""Attack and evaluation methods: adversarial examples and robustness reports."""

from __future__ import annotations

from typing import Any

import torch

from .. import distributed
from ..attacks import create_any_attack
from ..attacks.base import per_sample_norm, unchanged
from ..data.loader import eval_batches
from ..errors import BadTensorError, SpecError
from ..metrics.evaluation import evaluate
from ..server import CallContext, method
from .data import get_data
from .models import check_images, get_model


def check_labels(model: torch.nn.Module, x: torch.Tensor, y: Any, name: str = "y") -> torch.Tensor:
    """Labels for `x`: int64 (B,), each in [0, num_classes)."""
    if y is None:
        raise BadTensorError(f"tensor {name!r} is required", {"tensor": name})
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or y.dim() != 1:
        raise BadTensorError(
            f"tensor {name!r}: labels must be a 1-D integer tensor, got {str(y.dtype).removeprefix('torch.')} {list(y.shape)}",
            {"tensor": name, "rule": "dtype"},
        )
    if y.shape[0] != x.shape[0]:
        raise BadTensorError(
            f"tensor {name!r}: {y.shape[0]} labels for {x.shape[0]} images", {"tensor": name, "rule": "shape"}
        )
    classes = model.spec["num_classes"]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise BadTensorError(
            f"tensor {name!r}: labels must lie in [0, {classes}), got [{int(y.min())}, {int(y.max())}]",
            {"tensor": name, "rule": "range", "num_classes": classes},
        )
    return y.to(torch.int64)


@method("attack")
def attack(ctx: CallContext, params: dict, tensors: dict) -> tuple[dict[str, Any], dict]:
    model = get_model(ctx, params["model"], "model").model
    x = check_images(model, tensors.get("x")).float()
    y = check_labels(model, x, tensors.get("y"))
    spec = params["attack"]
    device = next(model.parameters()).device
    with unchanged(model):
        made = create_any_attack(spec, model)
        x_adv = made(x, y).detach().cpu()
        with torch.no_grad():
            clean = model(x.to(device)).argmax(1).cpu() == y
            # robust: correct on the clean input and on its adversarial example
            adv = (model(x_adv.to(device)).argmax(1).cpu() == y) & clean
    norm = spec.get("norm", "linf")
    n = max(x.shape[0], 1)
    return (
        {
            "samples": int(x.shape[0]),
            "clean_accuracy": float(clean.sum()) / n,
            "adversarial_accuracy": float(adv.sum()) / n,
            "max_perturbation": float(per_sample_norm(x_adv - x, norm).max()) if x.shape[0] else 0.0,
            "settings": made.settings(),
        },
        {"x_adv": x_adv},
    )


@method("evaluate")
def evaluate_method(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    model = get_model(ctx, params["model"], "model").model
    spec = params["spec"]
    if "data" in params:
        if tensors:
            raise SpecError(
                "data", "exclusive", "data: pass either a data set handle or tensors x, y, not both"
            )
        split = get_data(ctx, params["data"]).split(params["split"])
        batches = eval_batches(split, spec["batch_size"])
    else:
        x = check_images(model, tensors.get("x")).float()
        y = check_labels(model, x, tensors.get("y"))
        size = spec["batch_size"]
        batches = ((x[i : i + size], y[i : i + size]) for i in range(0, x.shape[0], size))
    should_stop = distributed.agreed(ctx.should_stop)  # under torchrun every rank stops together
    return evaluate(model, batches, spec, emit=ctx.emitter(), should_stop=should_stop)
