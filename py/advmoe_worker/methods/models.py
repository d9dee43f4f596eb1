"""Model methods: create, describe, configure, predict, save and load by handle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..attacks.base import unchanged
from ..checkpoints import load_model, save_model
from ..errors import BadTensorError, SpecError
from ..models import create_model
from ..models.costs import cost_summary, measure_costs
from ..models.routing import routing_stats, routing_warnings
from ..server import CallContext, method

KIND = "model"


@dataclass
class ModelObject:
    """A model held by the worker, with its measured costs (computed once)."""

    model: torch.nn.Module
    costs: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        spec = self.model.spec
        return {"arch": spec["arch"], "is_moe": self.model.is_moe, "device": str(_device_of(self.model))}


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _resolve_device(ctx: CallContext, device: str | None) -> torch.device:
    if device is None:
        return ctx.device
    try:
        resolved = torch.device(device)
        torch.empty(0, device=resolved)
    except (RuntimeError, AssertionError) as exc:
        raise SpecError(
            "device", "available", f"device: {device!r} is not available on this worker ({exc})"
        ) from None
    return resolved


def get_model(ctx: CallContext, handle: str, field_name: str = "handle") -> ModelObject:
    return ctx.objects.get(handle, KIND, field_name)


def describe(handle: str, obj: ModelObject) -> dict[str, Any]:
    model = obj.model
    if not obj.costs:
        obj.costs = measure_costs(model)
    c = obj.costs
    spec = model.spec
    moe = spec.get("moe")
    return {
        "handle": handle,
        "arch": spec["arch"],
        "is_moe": model.is_moe,
        "experts": model.num_experts if model.is_moe else 1,
        "ratio": spec["ratio"],
        "router": moe["router"] if moe else None,
        "execution": model.execution if model.is_moe else None,
        "moe_layers": model.num_moe_layers,
        "routing_layers": model.num_routing_layers,
        **cost_summary(c),
        "device": str(_device_of(model)),
        "training": model.training,
        "spec": spec,
    }


@method("model.create")
def model_create(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    device = _resolve_device(ctx, params.get("device"))
    try:
        model = create_model(params["spec"])
    except SpecError as exc:
        raise exc.under("spec") from None
    model = model.to(device).eval()
    obj = ModelObject(model)
    handle = ctx.objects.add(KIND, obj)
    return describe(handle, obj)


@method("model.describe")
def model_describe(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    return describe(params["handle"], get_model(ctx, params["handle"]))


@method("model.configure")
def model_configure(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_model(ctx, params["handle"])
    if "execution" in params:
        if not obj.model.is_moe:
            raise SpecError("execution", "moe_only", "execution: a dense model has no MoE execution path")
        obj.model.set_execution(params["execution"])
    if "device" in params:
        obj.model.to(_resolve_device(ctx, params["device"]))
    return describe(params["handle"], obj)


def check_images(model: torch.nn.Module, x: Any, name: str = "x") -> torch.Tensor:
    """Checks a batch of images against the model's spec: (B, C, H, W) float in [0, 1]."""
    spec = model.spec
    if x is None:
        raise BadTensorError(f"tensor {name!r} is required", {"tensor": name})
    want = (spec["in_channels"], spec["input_size"], spec["input_size"])
    if x.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise BadTensorError(
            f"tensor {name!r}: dtype must be floating point (float32 preferred), got {str(x.dtype).removeprefix('torch.')}",
            {"tensor": name, "rule": "dtype"},
        )
    if x.dim() != 4 or tuple(x.shape[1:]) != want:
        raise BadTensorError(
            f"tensor {name!r}: shape must be [B, {want[0]}, {want[1]}, {want[2]}] for this model, got {list(x.shape)}",
            {"tensor": name, "rule": "shape", "expected": [None, *want], "received": list(x.shape)},
        )
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
        raise BadTensorError(
            f"tensor {name!r}: pixel values must lie in [0, 1] (normalization happens inside the model)",
            {"tensor": name, "rule": "range"},
        )
    return x


@method("model.predict")
def model_predict(ctx: CallContext, params: dict, tensors: dict) -> tuple[dict[str, Any], dict]:
    obj = get_model(ctx, params["handle"])
    model = obj.model
    x = check_images(model, tensors.get("x"))
    device = _device_of(model)
    logits, routes, scores = [], [], []
    with unchanged(model), torch.inference_mode():
        for start in range(0, x.shape[0], params["batch_size"]):
            ctx.check_cancelled()
            batch = x[start : start + params["batch_size"]].to(device, torch.float32)
            out = model.forward_routed(batch)
            logits.append(out.logits.float().cpu())
            routes.append(out.routes.cpu())
            scores.append(out.scores.float().cpu())
    n_layers = model.num_routing_layers
    out_logits = torch.cat(logits) if logits else torch.empty(0, model.spec["num_classes"])
    out_routes = torch.cat(routes) if routes else torch.empty(0, n_layers, dtype=torch.int64)
    out_scores = torch.cat(scores) if scores else torch.empty(0, n_layers, max(model.num_experts, 1))
    result: dict[str, Any] = {"samples": int(x.shape[0]), "routing": None, "warnings": []}
    if model.is_moe:
        stats = routing_stats(out_routes, model.num_experts)
        warnings = routing_warnings(stats, out_scores, max_share=params["max_share"])
        result["routing"] = stats
        result["warnings"] = warnings
        for warning in warnings:
            ctx.emit("warning", warning)
    out = {"logits": out_logits}
    if params["routes"] and model.is_moe:
        out["routes"] = out_routes
        out["scores"] = out_scores
    return result, out


@method("model.save")
def model_save(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_model(ctx, params["handle"])
    path = ctx.resolve_path(params["path"], "path")
    save_model(obj.model, path)
    return {"path": str(path), "bytes": path.stat().st_size}


@method("model.load")
def model_load(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    path = ctx.resolve_path(params["path"], "path")
    if not path.is_file():
        raise SpecError("path", "exists", f"path: {params['path']!r} is not a file on the worker")
    device = _resolve_device(ctx, params.get("device"))
    model = load_model(path, map_location=device).eval()
    obj = ModelObject(model)
    return describe(ctx.objects.add(KIND, obj), obj)
