"""Method handlers by area; importing this package registers them all."""

from . import data, evaluation, models, training

__all__ = ["data", "evaluation", "models", "training"]
