"""The one attack registry and factory: a validated attack spec -> a ready `Attack`.

Specs arrive validated against `schemas/specs/attack.json` with defaults filled (null eps
and step size mean "the norm's default"); the factory adds what a JSON Schema cannot say
(a norm this attack does not support, a routing attack on a dense model) and still fills
any missing field with the class default, so Python callers may pass partial specs.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ..errors import NotFoundError, SpecError
from .autoattack import AutoAttack, check_autoattack
from .base import Attack
from .fgsm import FGSM
from .pgd import PGD
from .routing import OfficialAttack, PathwayAttack, RouterAttack
from .trades import TradesKL

_REGISTRY: dict[str, type[Attack]] = {}


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Registers an Attack subclass under its `name`."""
    if cls.name in _REGISTRY:
        raise ValueError(f"attack {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


for _cls in (FGSM, PGD, TradesKL, RouterAttack, PathwayAttack, OfficialAttack):
    register_attack(_cls)


def list_attacks() -> list[str]:
    """Registered attack names, sorted (AutoAttack is separate: see `create_autoattack`)."""
    return sorted(_REGISTRY)


def get_attack_class(name: Any, path: str = "") -> type[Attack]:
    """The class registered as `name`; NotFoundError listing the known names otherwise."""
    field = f"{path}.name" if path else "name"
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    known = list_attacks()
    raise NotFoundError(
        f"{field}: unknown attack {name!r}; known: {', '.join(known)}",
        {"path": field, "received": name, "known": known},
    )


def attack_fields(cls: type) -> list[str]:
    """The settings an attack class accepts: its constructor's keyword arguments."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _settings(cls: type, spec: Mapping[str, Any], path: str, ignore: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise SpecError(path, "type", f"{path or 'attack spec'} must be an object, got {type(spec).__name__}")
    fields = attack_fields(cls)
    unknown = sorted(k for k in spec if k not in fields and k not in ignore)
    if unknown:
        field = f"{path}.{unknown[0]}" if path else unknown[0]
        raise SpecError(
            field,
            "additionalProperties",
            f"{field}: unknown field {unknown[0]!r} for attack {getattr(cls, 'name', '')!r} (known: {fields})",
            {"received": unknown[0], "known": fields},
        )
    # null means "the default" (e.g. the norm's eps), so it is left to the constructor
    return {k: v for k, v in spec.items() if k in fields and v is not None}


def create_attack(
    spec: Mapping[str, Any], model: nn.Module, *, path: str = "", default_seed: int | None = None
) -> Attack:
    """Builds the attack `spec` names against `model`.

    `path` prefixes field names in errors (e.g. 'attacks.2'); a null or missing `seed`
    becomes `default_seed` (e.g. the evaluation's), else 0.
    """
    if not isinstance(spec, Mapping):
        raise SpecError(path, "type", f"{path or 'attack spec'} must be an object, got {type(spec).__name__}")
    cls = get_attack_class(spec.get("name"), path)
    settings = _settings(cls, spec, path, ignore=("name",))
    if "seed" not in settings and default_seed is not None:
        settings["seed"] = default_seed
    cls.check_spec(settings, model, path)
    return cls(model, **settings)


def create_autoattack(
    spec: Mapping[str, Any], model: nn.Module, *, path: str = "autoattack", default_seed: int | None = None
) -> AutoAttack:
    """Builds the AutoAttack an evaluation's `autoattack` spec describes."""
    settings = _settings(AutoAttack, spec, path, ignore=("max_samples",))
    if "seed" not in settings and default_seed is not None:
        settings["seed"] = default_seed
    check_autoattack(settings, path)
    return AutoAttack(model, **settings)


def create_any_attack(spec: Mapping[str, Any], model: nn.Module) -> Attack:
    """An attack spec, or with `name: 'autoattack'` an AutoAttack spec, built against `model`."""
    if isinstance(spec, Mapping) and spec.get("name") == "autoattack":
        return create_autoattack({k: v for k, v in spec.items() if k != "name"}, model, path="")
    return create_attack(spec, model)


def attack_batch(model: nn.Module, x: Tensor, y: Tensor, spec: Mapping[str, Any]) -> Tensor:
    """Adversarial examples for one batch: x (B, C, H, W) in [0, 1], y (B,) -> x_adv like x."""
    return create_any_attack(spec, model)(x, y)
