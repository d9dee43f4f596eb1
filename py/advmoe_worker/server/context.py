"""What a method handler can do besides computing: emit events, check for cancel."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import CancelledError, ForbiddenPathError, ShuttingDownError

if TYPE_CHECKING:
    from ..protocol.shm import ReplySegments
    from .loop import Server


class CallContext:
    """One request's view of the worker: its id, its event stream, its cancel flag."""

    def __init__(self, server: Server, identity: bytes, request_id: int | None, method: str):
        self.server = server
        self.identity = identity
        self.request_id = request_id
        self.method = method
        self._cancel: threading.Event | None = None  # made on first use: most calls never need it
        self.shm: ReplySegments | None = None  # how replies may use segments, when the request allows it

    @property
    def objects(self):
        return self.server.objects

    @property
    def device(self) -> torch.device:
        return self.server.device

    def cancel(self) -> None:
        if self._cancel is None:
            self._cancel = threading.Event()
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return (self._cancel is not None and self._cancel.is_set()) or self.server.stopping

    def check_cancelled(self) -> None:
        """Raises at a safe point when the client cancelled or the worker is stopping."""
        if self._cancel is not None and self._cancel.is_set():
            raise CancelledError(f"{self.method} was cancelled", {"id": self.request_id})
        if self.server.stopping:
            raise ShuttingDownError(f"{self.method} stopped: the worker is shutting down")

    def should_stop(self) -> bool:
        return self.cancelled

    def emit(self, event: str, data: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> None:
        """Streams an event to the caller before the reply."""
        self.server.send(
            self.identity,
            {"kind": "event", "id": self.request_id, "event": event, "data": data},
            tensors,
            self.shm,
        )

    def emitter(self) -> Callable[[str, dict[str, Any]], None]:
        return lambda event, data: self.emit(event, data)

    def resolve_path(self, path: str, field: str, must_exist: bool = False) -> Path:
        """Resolves `path` inside the workspace root; anything outside is refused."""
        root = self.server.config.workspace
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = Path(os.path.realpath(candidate))
        # Refused here as a spec error, not later as an OSError from whichever call opens it.
        if len(str(resolved)) >= os.pathconf("/", "PC_PATH_MAX") or any(
            len(part.encode()) > os.pathconf("/", "PC_NAME_MAX") for part in resolved.parts
        ):
            from ..errors import SpecError

            raise SpecError(field, "path_length", f"{field}: the path is longer than the file system allows")
        if resolved != root and root not in resolved.parents:
            raise ForbiddenPathError(
                f"{field}: {path!r} resolves to {str(resolved)!r}, outside the workspace root {str(root)!r}",
                {"path": field, "rule": "inside_workspace", "received": path, "workspace": str(root)},
            )
        if must_exist and not resolved.exists():
            from ..errors import SpecError

            raise SpecError(field, "exists", f"{field}: {path!r} does not exist on the worker")
        return resolved
