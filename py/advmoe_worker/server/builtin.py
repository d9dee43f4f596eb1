"""The worker's own methods: info, echo, sleep, objects and shutdown."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

import numpy
import torch

from .. import __version__
from ..errors import TooLargeError
from ..protocol import PROTOCOL_VERSION
from .context import CallContext
from .methods import method
from .objects import summarize


def _devices() -> list[dict[str, Any]]:
    devices = [
        {
            "name": "cpu",
            "kind": "cpu",
            "description": platform.processor() or platform.machine(),
            "memory_bytes": None,
        }
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {
                    "name": f"cuda:{i}",
                    "kind": "cuda",
                    "description": props.name,
                    "memory_bytes": props.total_memory,
                }
            )
    return devices


@method("info", inline=True)
def info(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    server = ctx.server
    return {
        "worker_version": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "pid": os.getpid(),
        "executable": sys.executable,
        "cuda_available": torch.cuda.is_available(),
        "devices": server.devices,
        "default_device": str(server.device),
        "cpu_threads": torch.get_num_threads(),
        "workspace": str(server.config.workspace),
        "max_message_bytes": server.config.max_message_bytes,
        "stats": dict(vars(server.stats)),
        "distributed": getattr(server, "ranks", None),
    }


@method("echo", inline=True)
def echo(ctx: CallContext, params: dict, tensors: dict) -> tuple[dict[str, Any], dict]:
    # The received frames go straight back out: no copy on either side.
    return {"note": params.get("note")}, tensors


@method("sleep")
def sleep(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    seconds, tick = params["seconds"], params["tick"]
    start = time.monotonic()
    ticks = 0
    while (elapsed := time.monotonic() - start) < seconds:
        ctx.check_cancelled()
        time.sleep(min(tick, seconds - elapsed))
        ticks += 1
        ctx.emit(
            "progress",
            {"done": min(1.0, (time.monotonic() - start) / seconds) if seconds else 1.0, "tick": ticks},
        )
    return {"slept": time.monotonic() - start, "ticks": ticks}


@method("shutdown", inline=True)
def shutdown(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    ctx.server.stop()
    return {"ok": True}


@method("object.list", inline=True)
def object_list(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    items = ctx.objects.items(params.get("kind"))
    return {"objects": [{"handle": h, "kind": k, "summary": summarize(o)} for h, k, o in items]}


@method("object.describe", inline=True)
def object_describe(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    handle = params["handle"]
    obj = ctx.objects.get(handle)
    kind = handle.split(":", 1)[0]
    return {"handle": handle, "kind": kind, "summary": summarize(obj)}


@method("object.delete", inline=True)
def object_delete(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    return {"deleted": ctx.objects.delete(params["handle"])}


_source_cache: dict[int, torch.Tensor] = {}


@method("transfer.sink", inline=True)
def transfer_sink(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    """Receives tensors and answers with their size: one-way upload measurements."""
    return {"bytes": sum(t.numel() * t.element_size() for t in tensors.values())}


# On the compute thread: making gigabytes on the socket thread would stall heartbeats.
@method("transfer.source")
def transfer_source(ctx: CallContext, params: dict, tensors: dict) -> tuple[dict[str, Any], dict]:
    """Answers with a uint8 tensor of `bytes` bytes: one-way download measurements."""
    size = params["bytes"]
    limit = ctx.server.config.max_message_bytes
    if size > limit:
        raise TooLargeError(
            f"bytes: {size} is over the worker's message limit of {limit} bytes",
            {"path": "bytes", "rule": "max_message_bytes", "bytes": size, "limit": limit},
        )
    if size not in _source_cache:
        _source_cache.clear()
        _source_cache[size] = torch.randint(0, 256, (size,), dtype=torch.uint8)
    return {"bytes": size}, {"data": _source_cache[size]}
