"""Trainer checkpoints: atomic writes, `weights_only` loads, every RNG stream captured."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints.model_checkpoint import write_atomic
from ..errors import WorkerError

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
