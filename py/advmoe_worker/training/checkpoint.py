"""Trainer state and checkpoints: atomic writes, `weights_only` loads, every RNG stream captured.

`trainer_state` / `load_trainer_state` are the whole state of a run (weights, buffers,
optimizer moments, data position, counters, RNG streams); `StepSnapshot` is the part a
refused step must put back.
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..checkpoints.model_checkpoint import write_atomic
from ..errors import SpecError, WorkerError

if TYPE_CHECKING:
    from .engine import Trainer

CHECKPOINT_FORMAT = "advmoe.trainer"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Writes `payload` atomically: a reader sees the old file or the new one, never a torn write."""
    path = Path(path)
    write_atomic(payload, path)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Reads a trainer checkpoint with `weights_only=True`; `bad_checkpoint` when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise WorkerError(
            f"checkpoint {str(path)!r} does not exist",
            {"path": "path", "file": str(path)},
            code="bad_checkpoint",
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, wrong format: all the same to the caller
        raise WorkerError(
            f"checkpoint {str(path)!r} is corrupted or not a torch checkpoint: {type(exc).__name__}: {exc}",
            {"path": "path", "file": str(path)},
            code="bad_checkpoint",
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WorkerError(
            f"checkpoint {str(path)!r} is not a trainer checkpoint (format {payload.get('format') if isinstance(payload, dict) else None!r})",
            {"path": "path", "file": str(path)},
            code="bad_checkpoint",
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise WorkerError(
            f"checkpoint {str(path)!r} has version {payload.get('version')!r}; this worker reads {CHECKPOINT_VERSION}",
            {"path": "path", "file": str(path)},
            code="bad_checkpoint",
        )
    return payload


def capture_rng() -> dict[str, Any]:
    """The global RNG streams (torch CPU and CUDA, numpy, python) as weights_only-safe data."""
    key, state, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": key,
            "state": torch.from_numpy(state.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
    }


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state(
        (n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = rng["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """Everything a resumed run needs; loadable with `torch.load(weights_only=True)`."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "specs": {
            "trainer": copy.deepcopy(trainer.spec),
            "model": copy.deepcopy(getattr(trainer.model, "spec", None)),
            "data": copy.deepcopy(trainer.data_spec),
        },
        "model": trainer.model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in trainer.optimizers.items()},
        "lr": {name: trainer.lr(name) for name in trainer.optimizers},
        "loader": trainer.loader.state_dict(),
        "counters": {
            "global_step": trainer.global_step,
            "cycle_pos": trainer.cycle_pos,
            "epochs_completed": trainer.epochs_completed,
            "phase_steps": dict(trainer.phase_steps),
            "batch_pos": list(trainer.batch_pos) if trainer.batch_pos is not None else None,
        },
        "epoch_stats": copy.deepcopy(trainer.epoch_stats),
        "rng": capture_rng(),
    }


def load_trainer_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """Puts a `trainer_state` back into a trainer built from the same specs."""
    trainer.model.load_state_dict(state["model"])
    if set(state["optimizers"]) != set(trainer.optimizers):
        raise SpecError(
            "method",
            "matches_checkpoint",
            f"checkpoint optimizers {sorted(state['optimizers'])} do not match this trainer's {sorted(trainer.optimizers)}",
        )
    for name, opt in trainer.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    trainer.loader.load_state_dict(state["loader"])
    c = state["counters"]
    trainer.global_step = int(c["global_step"])
    trainer.cycle_pos = int(c["cycle_pos"]) % len(trainer.cycle)
    trainer.epochs_completed = int(c["epochs_completed"])
    trainer.phase_steps = {p: int(c["phase_steps"].get(p, 0)) for p in trainer.method.phases}
    trainer.batch_pos = tuple(c["batch_pos"]) if c["batch_pos"] is not None else None
    trainer.batch = None  # refetched from batch_pos if a shared-batch cycle is under way
    trainer.epoch_stats = copy.deepcopy(state["epoch_stats"])
    restore_rng(state["rng"])


class StepSnapshot:
    """What a step may touch besides the weights, taken before it so a refused step undoes itself."""

    def __init__(self, trainer: Trainer):
        self.buffers = {n: b.detach().clone() for n, b in trainer.model.named_buffers()}
        self.loader = trainer.loader.state_dict()
        self.counters = (
            trainer.global_step,
            trainer.cycle_pos,
            trainer.epochs_completed,
            dict(trainer.phase_steps),
        )
        self.batch = (trainer.batch, trainer.batch_pos)
        self.rng = (
            torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        )

    def restore(self, trainer: Trainer) -> None:
        """Puts back everything a refused step may have touched (weights are untouched then)."""
        restore_buffers(trainer.model, self.buffers, list(self.buffers))
        for opt in trainer.optimizers.values():
            opt.zero_grad(set_to_none=True)
        trainer.loader.load_state_dict(self.loader)
        trainer.global_step, trainer.cycle_pos, trainer.epochs_completed, trainer.phase_steps = self.counters
        trainer.batch, trainer.batch_pos = self.batch
        torch.set_rng_state(self.rng[0])
        if self.rng[1]:
            torch.cuda.set_rng_state_all(self.rng[1])


def restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor], names: list[str]) -> None:
    if not names:
        return
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for n in names:
            buffers[n].copy_(saved[n])
