"""Hyperparameters a running trainer can change between steps (`Trainer.set`).

Every change is written into a copy of the trainer's spec and the whole copy is checked
against the schema before any of it applies, so a refused `set` changes nothing.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .spec import resolve_trainer_spec

if TYPE_CHECKING:
    from .engine import Trainer

# field -> (spec section, key); router fields exist only for methods with a router optimizer
SETTABLE: dict[str, tuple[str | None, str]] = {
    "lr": ("optimizer", "lr"),
    "momentum": ("optimizer", "momentum"),
    "weight_decay": ("optimizer", "weight_decay"),
    "router_lr": ("router_optimizer", "lr"),
    "router_momentum": ("router_optimizer", "momentum"),
    "router_weight_decay": ("router_optimizer", "weight_decay"),
    "beta": (None, "beta"),
    "alpha": (None, "alpha"),
    "balance_weight": (None, "balance_weight"),
    "eps": ("attack", "eps"),
    "steps": ("attack", "steps"),
    "step_size": ("attack", "step_size"),
    "random_start": ("attack", "random_start"),
    "grad_clip": (None, "grad_clip"),
    "epochs": (None, "epochs"),
}

# changes after which the training attack is rebuilt
REBUILD_ATTACK = {"eps", "steps", "step_size", "random_start", "alpha"}


def apply_changes(spec: dict[str, Any], hparams: dict[str, Any]) -> None:
    """Writes settable `hparams` into a trainer spec; a first router field copies `optimizer`."""
    for field, value in hparams.items():
        section, key = SETTABLE[field]
        if section == "router_optimizer" and spec["router_optimizer"] is None:
            spec["router_optimizer"] = copy.deepcopy(spec["optimizer"])
        target = spec if section is None else spec[section]
        target[key] = value


def settable_value(spec: dict[str, Any], field: str) -> Any:
    section, key = SETTABLE[field]
    return (spec if section is None else spec[section])[key]


def name_settable_field(err: SpecError, hparams: dict[str, Any]) -> SpecError:
    """`err` about `optimizer.lr` renamed to the `lr` the caller passed to set()."""
    paths = {".".join(p for p in SETTABLE[field] if p is not None): field for field in hparams}
    field = paths.get(err.path)
    if field is None:
        return err
    message = err.message.removeprefix(f"{err.path}: ")
    details = {k: v for k, v in err.details.items() if k not in ("path", "rule")}
    return SpecError(field, err.rule, f"{field}: {message}", details)


def check_settable(trainer: Trainer, hparams: dict[str, Any]) -> None:
    """SpecError naming the first field `set` cannot change on this trainer."""
    method = trainer.method
    for field in hparams:
        if field not in SETTABLE:
            raise SpecError(
                field, "settable", f"{field}: not a settable hyperparameter (settable: {sorted(SETTABLE)})"
            )
        section, key = SETTABLE[field]
        if section == "router_optimizer" and "router" not in trainer.optimizers:
            raise SpecError(
                field,
                "requires_advmoe",
                f"{field}: method {method.name!r} has no separate router optimizer (only 'advmoe' does)",
            )
        owner = "router" if field.startswith("router_") else "expert"
        if key == "momentum" and method.optimizer_spec(owner)["name"] != "sgd":
            raise SpecError(field, "requires_sgd", f"{field}: momentum applies to SGD only")


def change_hparams(trainer: Trainer, hparams: dict[str, Any]) -> dict[str, Any]:
    """Checks every change, then applies them all in place; returns the new values."""
    check_settable(trainer, hparams)
    updated = copy.deepcopy(trainer.spec)
    apply_changes(updated, hparams)
    try:
        updated = resolve_trainer_spec(updated)
    except SpecError as err:
        raise name_settable_field(err, hparams) from err
    # In place: the method and the optimizers read these very dicts.
    apply_changes(trainer.spec, {field: settable_value(updated, field) for field in hparams})
    for name, opt in trainer.optimizers.items():
        s = trainer.method.optimizer_spec(name)
        for group in opt.param_groups:
            group["weight_decay"] = s["weight_decay"]
            if "momentum" in group:
                group["momentum"] = s["momentum"]
    if REBUILD_ATTACK & set(hparams):
        trainer.build_attack()
    return {field: settable_value(trainer.spec, field) for field in hparams}
