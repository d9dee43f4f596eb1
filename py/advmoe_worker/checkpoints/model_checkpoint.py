"""Model checkpoints: a self-describing file that carries the spec that built the weights.

File layout (a `torch.save` dict, loadable with `weights_only=True`):
    {format: "advmoe.model", format_version: 1, spec: {...}, versions: {torch, advmoe_worker},
     state_dict: {name: tensor}}
Loading re-validates the spec against the current schema, rebuilds the model with the
factory and loads the weights strictly, so a file either gives back the exact model or a
`CheckpointError` (code `bad_checkpoint`); it never gives a half-loaded one. Writes go to a
temporary file in the same folder, are fsynced, then renamed over the target: a crash leaves
either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .. import __version__, distributed
from ..errors import NotFoundError, SpecError, WorkerError
from ..models import Classifier, create_model
from ..specs import validate

FORMAT = "advmoe.model"
FORMAT_VERSION = 1


class CheckpointError(WorkerError):
    """A checkpoint that is truncated, corrupted, of another format or inconsistent."""

    code = "bad_checkpoint"


def save_model(model: Classifier, path: str | os.PathLike[str]) -> None:
    """Writes `model` (spec + weights, on the CPU) to `path` atomically."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": model.spec,
        "versions": {"torch": str(torch.__version__), "advmoe_worker": __version__},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    write_atomic(payload, Path(path))


def load_model(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Classifier:
    """Rebuilds the model saved at `path` on `map_location`, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no checkpoint file at {str(path)!r}", {"path": str(path)})
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a torn or foreign file
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {exc}",
            {"path": str(path), "reason": "unreadable"},
        ) from exc
    spec = _check_payload(payload, path)
    try:
        spec = validate("model", spec)
        model = create_model(spec)
    except (SpecError, NotFoundError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a model spec this worker cannot build: {exc}",
            {"path": str(path), "reason": "bad_spec", "spec_error": exc.to_wire()},
        ) from exc
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} weights do not fit its spec: {exc}",
            {"path": str(path), "reason": "state_dict_mismatch"},
        ) from exc
    return model.to(map_location).eval()


def _check_payload(payload: Any, path: Path) -> dict[str, Any]:
    def fail(reason: str, message: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r} {message}", {"path": str(path), "reason": reason})

    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise fail("wrong_format", f"is not an {FORMAT} checkpoint (format: {found!r})")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise fail(
            "format_version",
            f"has format_version {version!r}; this worker reads version {FORMAT_VERSION}",
        )
    if not isinstance(payload.get("spec"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise fail("incomplete", "lacks its spec or state_dict")
    return payload["spec"]


def write_atomic(payload: Any, path: Path) -> None:
    """torch.save to a temp file next to `path`, fsync, rename over `path`, fsync the folder.

    Under torchrun only rank 0 writes; every rank calls this at the same point and waits
    for the file, so a rank that reads it next finds it whole.
    """
    if distributed.active():
        if distributed.is_writer():
            _write_atomic(payload, path)
        distributed.barrier()
        return
    _write_atomic(payload, path)


def _write_atomic(payload: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
