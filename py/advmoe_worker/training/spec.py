"""TrainerSpec rules JSON Schema cannot state; fields and defaults come from `schemas/specs/trainer.json`."""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..specs import validate
from .methods import METHODS


def resolve_trainer_spec(spec: Any) -> dict[str, Any]:
    """A copy of `spec` with defaults filled; SpecError naming the field otherwise."""
    resolved = validate("trainer", spec)
    for field in ("optimizer", "router_optimizer"):
        if resolved[field] is not None:
            check_nesterov(resolved[field], field)
    check_router_supervision(resolved)
    check_advmoe_fields(resolved)
    return resolved


def check_nesterov(optimizer: dict[str, Any], path: str) -> None:
    """Nesterov SGD looks ahead along the momentum, so it needs some."""
    if optimizer["name"] == "sgd" and optimizer["nesterov"] and optimizer["momentum"] == 0:
        raise SpecError(
            f"{path}.nesterov",
            "requires_momentum",
            f"{path}.nesterov: Nesterov SGD needs momentum > 0, got momentum 0",
            {"received": True},
        )


def check_router_supervision(spec: dict[str, Any]) -> None:
    """Router terms need a method that trains a router; null supervision becomes the method's default."""
    method = METHODS.get(spec["method"], "method")
    if method.needs_moe:
        if spec["router_supervision"] is None:
            spec["router_supervision"] = method.default_router_supervision
        return
    for field, off in (("router_supervision", None), ("balance", "none")):
        if spec[field] not in (off, "none"):
            moe = [name for name, m in METHODS.items() if m.needs_moe]
            raise SpecError(
                field,
                "requires_moe_method",
                f"{field}: {spec[field]!r} needs one of the methods {moe}, got {spec['method']!r}",
                {"received": spec[field]},
            )
    spec["router_supervision"] = "none"


def check_advmoe_fields(spec: dict[str, Any]) -> None:
    """The router's own optimizer and schedule and the phase cycle belong to methods with a separate router."""
    if METHODS.get(spec["method"], "method").separate_router:
        return
    owners = [name for name, m in METHODS.items() if m.separate_router]
    for field in ("router_optimizer", "router_schedule"):
        if spec[field] is not None:
            raise SpecError(
                field,
                "requires_advmoe",
                f"{field}: only {owners} have a separate router; got method {spec['method']!r}",
                {"received": spec[field]},
            )
    # A resolved spec carries the default cycle for every method, so only a changed one is refused.
    if spec["phases"] != validate("trainer", {"method": spec["method"]})["phases"]:
        raise SpecError(
            "phases",
            "requires_advmoe",
            f"phases: only {owners} alternate phases; got method {spec['method']!r}",
            {"received": spec["phases"]},
        )
