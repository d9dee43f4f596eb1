"""Named objects (models, data sets, trainers, ...) held by the worker, by handle."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from ..errors import NotFoundError


class ObjectRegistry:
    """Handles are `<kind>:<n>`; thread-safe, since the socket thread lists and deletes."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[str, Any]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, kind: str, obj: Any) -> str:
        with self._lock:
            handle = f"{kind}:{next(self._counter)}"
            self._objects[handle] = (kind, obj)
        return handle

    def get(self, handle: str, kind: str | None = None, field: str = "handle") -> Any:
        with self._lock:
            entry = self._objects.get(handle)
            known = sorted(h for h, (k, _) in self._objects.items() if kind is None or k == kind)
        if entry is None or (kind is not None and entry[0] != kind):
            what = f"{kind} " if kind else ""
            raise NotFoundError(
                f"{field}: no {what}object with handle {handle!r}", {"path": field, "known": known}
            )
        return entry[1]

    def delete(self, handle: str) -> bool:
        with self._lock:
            return self._objects.pop(handle, None) is not None

    def items(self, kind: str | None = None) -> list[tuple[str, str, Any]]:
        with self._lock:
            return [(h, k, o) for h, (k, o) in self._objects.items() if kind is None or k == kind]


def summarize(obj: Any) -> dict[str, Any]:
    """An object's own `summary()` when it has one, else its type name."""
    summary = getattr(obj, "summary", None)
    if callable(summary):
        return summary()
    return {"type": type(obj).__name__}
