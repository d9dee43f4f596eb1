"""Parameter counts and MACs per sample, counted from the layers a forward pass really runs.

MACs come from forward hooks on every nn.Conv2d / nn.Linear (output elements x fan-in) plus
the MoE convs, which report the MACs of each conv they actually launch: in the sparse path
only the chosen expert's C' filters for the samples routed to it, in the masked path all
E*C' filters for every sample. Normalization, BatchNorm, activations and pooling are not
counted (the usual convention, and the one behind the paper's numbers).

ResNet-18, 32x32, width 1, 10 classes (GMACs per sample):

| model                      | ours  | paper's code |
|----------------------------|-------|--------------|
| dense                      | 0.555 | 0.555        |
| S-Dense r=0.5              | 0.152 | 0.139        |
| MoE r=0.5 E=2, active      | 0.152 | 0.152        |
| MoE r=0.5 E=2, router      | 0.041 | 0.041        |
| MoE r=0.5 E=2, masked      | 0.298 | 0.298 (what it really runs) |

The one difference is S-Dense: the paper's code also narrows the CIFAR stem (64 -> 32) of
its S-Dense model but not of its MoE model. Here the r-scaled layers are the same in both,
so S-Dense is exactly one pathway of the MoE model (12.4 MMACs more than the paper's: the
full-width stem, the 64 -> 32 input of the first block and its 1x1 projection).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from .classifier import Classifier, moe_layers
from .factory import create_model

PROBE_BATCH = 2


def count_parameters(model: Classifier) -> dict[str, int]:
    """params_total, params_router (router CNN or gates), params_backbone (everything else)."""
    total = sum(p.numel() for p in model.parameters())
    router = sum(p.numel() for p in model.router_parameters())
    return {"params_total": total, "params_router": router, "params_backbone": total - router}


def measure_costs(model: Classifier, input_size: int | None = None) -> dict[str, Any]:
    """Parameter counts and MACs per sample at `input_size` (default: the spec's).

    macs_dense: the same arch built dense at ratio 1 (on the meta device, no memory used);
    macs_active: the chosen pathway, backbone only (what sparse execution runs);
    macs_router: the router; macs_masked: backbone MACs of masked execution.
    """
    size = input_size or model.spec["input_size"]
    active, router = count_macs(model, size, "sparse")
    masked, _ = count_macs(model, size, "masked")
    dense_spec = {**copy.deepcopy(model.spec), "moe": None, "ratio": 1, "seed": None}
    with torch.device("meta"):
        dense = create_model(dense_spec)
    macs_dense, _ = count_macs(dense, size, "sparse")
    return {
        **count_parameters(model),
        "input_size": size,
        "macs_dense": macs_dense,
        "macs_active": active,
        "macs_router": router,
        "macs_masked": masked,
    }


def count_macs(model: Classifier, input_size: int, execution: str) -> tuple[int, int]:
    """(backbone MACs, router MACs) per sample of one eval-mode forward pass."""
    param = next(model.parameters())
    probe = torch.rand(
        PROBE_BATCH, model.in_channels, input_size, input_size, generator=torch.Generator().manual_seed(0)
    ).to(device=param.device, dtype=param.dtype)
    router_ids = {id(m) for r in model.router_modules() for m in r.modules()}
    totals = {"backbone": 0, "router": 0}

    def add(key: str):
        def count(macs: int) -> None:
            totals[key] += macs

        return count

    def hook(key: str):
        def on_forward(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                totals[key] += output.numel() * module.in_channels // module.groups * k
            else:
                totals[key] += output.numel() * module.in_features

        return on_forward

    handles = [
        m.register_forward_hook(hook("router" if id(m) in router_ids else "backbone"))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    layers = moe_layers(model)
    for layer in layers:
        layer.mac_counter = add("backbone")
    was_training, was_execution = model.training, model.execution
    try:
        model.eval()
        model.execution = execution
        with torch.no_grad():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
        for layer in layers:
            layer.mac_counter = None
        model.train(was_training)
        model.execution = was_execution
    return totals["backbone"] // PROBE_BATCH, totals["router"] // PROBE_BATCH


def cost_summary(costs: dict[str, Any]) -> dict[str, Any]:
    """`measure_costs` output grouped as the wire reports it: params and MACs per sample."""
    return {
        "params": {
            "total": costs["params_total"],
            "router": costs["params_router"],
            "backbone": costs["params_backbone"],
        },
        "macs": {
            "dense": costs["macs_dense"],
            "active": costs["macs_active"],
            "router": costs["macs_router"],
            "masked": costs["macs_masked"],
            "total_active": costs["macs_active"] + costs["macs_router"],
        },
    }
