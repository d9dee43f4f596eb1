"""The worker served from a thread of a host interpreter, for live inspection of its objects.

A bridge that owns the interpreter (pythonia, from Node) calls `start`: the ROUTER loop
then runs in a thread of that process, so the client speaks the usual signed protocol over
ZeroMQ while the bridge reaches the very objects behind the handles through `live`. Bulk
data still travels over ZeroMQ; the bridge is for looking and poking, not for tensors.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .server import Server, ServerConfig

_servers: dict[str, tuple[Server, threading.Thread]] = {}
_lock = threading.Lock()


def start(
    bind: str,
    key_hex: str,
    workspace: str,
    device: str | None = None,
    threads: int | None = None,
) -> str:
    """Binds a worker to `bind` and serves it from a daemon thread; returns the ready JSON."""
    import torch

    from . import __version__
    from .__main__ import _is_loopback, _load_methods
    from .server.builtin import _devices

    if not _is_loopback(bind):
        raise ValueError(f"{bind} is not a loopback address: an inline worker serves this machine only")
    key = bytes.fromhex(key_hex)
    if len(key) < 16:
        raise ValueError("the signing key must be at least 16 bytes")
    if threads:
        torch.set_num_threads(threads)
    _load_methods()
    server = Server(ServerConfig(bind=bind, key=key, workspace=Path(workspace).resolve(), device=device))
    server.devices = _devices()
    endpoint = server.bind()
    thread = threading.Thread(target=server.serve, name="advmoe-socket", daemon=True)
    thread.start()
    with _lock:
        _servers[endpoint] = (server, thread)
    return json.dumps(
        {
            "endpoint": endpoint,
            "pid": os.getpid(),
            "version": __version__,
            "device": str(server.device),
            "executable": sys.executable,
        }
    )


def _server(endpoint: str) -> Server:
    with _lock:
        entry = _servers.get(endpoint)
    if entry is None:
        raise KeyError(f"no inline worker serves {endpoint!r}")
    return entry[0]


def live(endpoint: str, handle: str) -> Any:
    """The live object behind `handle`: a model's nn.Module, a trainer's engine, a data set's splits."""
    held = _server(endpoint).objects.get(handle)
    for attribute in ("model", "trainer", "splits"):
        inner = getattr(held, attribute, None)
        if inner is not None and not isinstance(inner, str):
            return inner
    return held


def stop(endpoint: str, timeout: float = 10.0) -> bool:
    """Stops the worker at `endpoint` and waits for its thread; False when it was not running."""
    with _lock:
        entry = _servers.pop(endpoint, None)
    if entry is None:
        return False
    server, thread = entry
    server.stop()
    thread.join(timeout)
    return not thread.is_alive()
