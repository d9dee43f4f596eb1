"""Checkpoint files: self-describing, atomically written, loaded with weights_only=True."""

from .model_checkpoint import FORMAT, FORMAT_VERSION, CheckpointError, load_model, save_model

__all__ = ["FORMAT", "FORMAT_VERSION", "CheckpointError", "load_model", "save_model"]
