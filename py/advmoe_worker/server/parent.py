"""Ends a worker whose launcher has gone.

The launcher starts the worker with `--watch-parent` and keeps the write end of the
worker's stdin. The kernel closes that pipe when the launcher exits for any reason
(SIGKILL, `Deno.exit`, a crash), so end of file on stdin means nobody can talk to the
worker any more: it stops serving and, should a long job hold the compute thread,
exits hard after a grace period. Either way it removes its `ipc://` socket folder (the
launcher's private one) on the way out, since the launcher may not be there to.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from pathlib import Path
from typing import Protocol

log = logging.getLogger("advmoe_worker")

# Seconds between asking the server to stop and exiting without it.
GRACE_S = 5.0


class _Stoppable(Protocol):
    endpoint: str

    def stop(self) -> None: ...


def remove_ipc_folder(endpoint: str) -> None:
    """Removes an `ipc://` endpoint's socket file and its folder if that is then empty."""
    if not endpoint.startswith("ipc://"):
        return
    path = Path(endpoint[len("ipc://") :])
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # only an empty folder: the launcher's private one
    except OSError:
        pass


def _wait_for_eof(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except InterruptedError:
            continue
        except OSError:
            return


def watch_parent(server: _Stoppable, fd: int = 0, grace_s: float = GRACE_S) -> threading.Thread:
    """Starts a daemon thread that stops `server` when `fd` (stdin) reaches end of file."""
    atexit.register(remove_ipc_folder, server.endpoint)

    def run() -> None:
        _wait_for_eof(fd)
        log.warning("the launcher has gone (stdin closed): stopping")
        server.stop()
        time.sleep(grace_s)
        log.warning("still running %.0f s after the launcher left: exiting", grace_s)
        remove_ipc_folder(server.endpoint)
        logging.shutdown()
        os._exit(1)

    thread = threading.Thread(target=run, name="advmoe-parent", daemon=True)
    thread.start()
    return thread
