"""The method registry: one decorator, one table, looked up by the server loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..registry import Registry

Handler = Callable[..., Any]


@dataclass(frozen=True)
class MethodEntry:
    name: str
    handler: Handler
    inline: bool  # served on the socket thread: must be quick and must not touch compute state


METHODS: Registry[MethodEntry] = Registry("method")


def method(name: str, *, inline: bool = False) -> Callable[[Handler], Handler]:
    """Registers `handler(ctx, params, tensors) -> result | (result, tensors)`.

    `params` arrive validated against `schemas/methods/<name>.params.json` with defaults
    filled; `tensors` maps names to CPU tensors that share the received frames.
    """

    def register(handler: Handler) -> Handler:
        METHODS.register(name, MethodEntry(name, handler, inline))
        return handler

    return register
