"""Adversarial attacks on [0, 1]-pixel classifiers: one base class, one registry, one factory."""

from .autoattack import AUTOATTACK_VERSIONS, AutoAttack
from .base import DEFAULT_EPS, DEFAULT_STEP_SIZE, NORMS, Attack, GradientStats, eval_mode, unchanged
from .fgsm import FGSM
from .pgd import PGD
from .registry import (
    attack_batch,
    create_any_attack,
    create_attack,
    create_autoattack,
    get_attack_class,
    list_attacks,
    register_attack,
)
from .routing import OfficialAttack, PathwayAttack, RouterAttack
from .trades import TradesKL

__all__ = [
    "AUTOATTACK_VERSIONS",
    "DEFAULT_EPS",
    "DEFAULT_STEP_SIZE",
    "FGSM",
    "NORMS",
    "PGD",
    "Attack",
    "AutoAttack",
    "GradientStats",
    "OfficialAttack",
    "PathwayAttack",
    "RouterAttack",
    "TradesKL",
    "attack_batch",
    "create_any_attack",
    "create_attack",
    "create_autoattack",
    "eval_mode",
    "get_attack_class",
    "list_attacks",
    "register_attack",
    "unchanged",
]
