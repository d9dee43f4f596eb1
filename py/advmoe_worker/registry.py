"""The one registry pattern: named entries of one kind, and a `not_found` error that lists them.

Models, routers, attacks, training methods, data sets and server methods each keep one
`Registry`; entries are added with `register` (as a decorator or a call) and looked up
with `get`, whose error names the spec field and every known name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from .errors import NotFoundError

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> entry for one kind of thing (`kind` is how errors call it, e.g. 'attack')."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: Any = None) -> Any:
        """Adds `entry` under `name`; without `entry`, a decorator that adds what it decorates."""

        def add(item: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = item
            return item

        return add if entry is None else add(entry)

    def get(self, name: Any, path: str | None = None) -> T:
        """The entry for `name`; NotFoundError naming the field `path` (default: the kind) otherwise."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        field = self.kind if path is None else path
        known = self.names()
        raise NotFoundError(
            f"{field}: unknown {self.kind} {name!r}; known: {', '.join(known)}",
            {"path": field, "received": name, "known": known},
        )

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._entries[name]) for name in self.names()]
