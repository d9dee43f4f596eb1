"""Ranks other than 0 under torchrun: no socket, the same handlers on the requests rank 0 relays."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

from .. import distributed
from .context import CallContext
from .loop import Server
from .methods import METHODS, Handler

log = logging.getLogger("advmoe_worker")

STOP = None  # what rank 0 relays when it stops serving
EXIT_LOST_PEER = 75  # EX_TEMPFAIL: the group lost a rank; a restart may succeed
# Methods that touch no object and no collective run on rank 0 alone: a cancelled `sleep`
# would otherwise keep the other ranks, which never see the cancel, sleeping on.
RANK_0_ONLY = frozenset({"sleep"})


def relay_for(server: Server) -> Callable[..., Handler | None]:
    """Rank 0's relay: on its compute thread, hands each request about to run to every other rank.

    With the request goes the list of rank 0's live handles: `object.delete` is answered on
    the socket thread, which must not run collectives, so the other ranks learn of deletions
    this way and drop the same objects. The relay returns the handler to run on rank 0,
    guarded (see `guarded`); relaying `None` tells the other ranks to stop.
    """

    def relay(
        method: str | None,
        params: Any = None,
        tensors: dict[str, torch.Tensor] | None = None,
        handler: Handler | None = None,
    ) -> Handler | None:
        if method is None:
            distributed.broadcast_object(STOP)
            return None
        if method in RANK_0_ONLY:
            return handler
        live = [h for h, _, _ in server.objects.items()]
        distributed.broadcast_object(
            {"method": method, "params": params, "tensors": tensors or {}, "live": live}
        )
        return guarded(handler) if handler is not None else None

    return relay


# What gloo and NCCL raise when a peer is gone; gloo raises a bare RuntimeError naming its transport.
_LOST_PEER = ("gloo/transport", "Connection closed by peer", "Connection reset by peer", "NCCL error")


def lost_peer(exc: BaseException) -> bool:
    """Whether `exc` says that another rank of the group is gone."""
    if isinstance(exc, torch.distributed.DistError):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in _LOST_PEER)


def guarded(handler: Handler) -> Handler:
    """`handler`, ending this process when a collective finds another rank gone.

    The group cannot go on without that rank, and answering the request as an ordinary
    failure would leave the client talking to a worker that can compute nothing. Exiting
    makes torchrun end the whole group, so the client sees the worker die (WorkerDiedError).
    """

    def run(ctx: CallContext, params: Any, tensors: dict[str, torch.Tensor]) -> Any:
        try:
            return handler(ctx, params, tensors)
        except Exception as exc:
            if lost_peer(exc):
                log.critical("rank %d lost a peer during %s: %s", distributed.rank(), ctx.method, exc)
                logging.shutdown()
                os._exit(EXIT_LOST_PEER)
            raise

    return run


class Follower(Server):
    """A rank that mirrors rank 0: replies and events have nowhere to go, so they are dropped."""

    def send(
        self,
        identity: bytes,
        header: dict[str, Any],
        tensors: dict[str, torch.Tensor] | None = None,
        shm: Any = None,
    ) -> None:
        if header.get("kind") == "error":
            log.debug("rank %d: %s", distributed.rank(), header.get("error"))

    def follow(self) -> None:
        """Runs what rank 0 relays, in its order, until rank 0 stops."""
        # OpenMP keeps its thread count per OS thread, as on rank 0's compute thread.
        torch.set_num_threads(torch.get_num_threads())
        while True:
            command = distributed.broadcast_object(None)
            if command is STOP:
                return
            live = set(command["live"])
            for handle, _, _ in self.objects.items():
                if handle not in live:
                    self.objects.delete(handle)
            method = command["method"]
            ctx = CallContext(self, b"", None, method)
            self._run(ctx, guarded(METHODS.get(method).handler), command["params"], command["tensors"])
