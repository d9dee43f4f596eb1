"""Training: one engine (`Trainer`), methods as policies, optimizers, schedules, checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .engine import Trainer
from .hparams import SETTABLE
from .methods import METHODS, Method, create_method
from .optim import OPTIMIZERS, create_optimizer, lr_at, register_optimizer
from .spec import resolve_trainer_spec

__all__ = [
    "METHODS",
    "OPTIMIZERS",
    "SETTABLE",
    "Method",
    "Trainer",
    "create_method",
    "create_optimizer",
    "load_checkpoint",
    "lr_at",
    "register_optimizer",
    "resolve_trainer_spec",
    "save_checkpoint",
]
