"""`python -m advmoe_worker --bind ENDPOINT`: serve the advmoe protocol.

The signing key comes from `ADVMOE_KEY` (hex), `ADVMOE_KEY_FILE` or `--key-file`; the
worker refuses to start without one. It binds to loopback unless told otherwise, and
`--allow-remote` requires a CURVE secret key (`ADVMOE_CURVE_SECRET_KEY`,
`ADVMOE_CURVE_SECRET_KEY_FILE` or `--curve-secret-key-file`): HMAC authenticates, CURVE
encrypts.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from . import keys
from .server import Server, ServerConfig
from .server.loop import DEFAULT_MAX_MESSAGE_BYTES, pack_ready


def _load_methods() -> None:
    # Importing a methods module registers its handlers.
    from . import methods  # noqa: F401
    from .server import builtin  # noqa: F401


def _read_keys(args: argparse.Namespace) -> tuple[bytes, bytes | None]:
    try:
        key = keys.signing_key(args.key_file)
        curve_secret = keys.curve_server_secret(args.curve_secret_key_file)
    except keys.KeySetupError as exc:
        sys.exit(f"advmoe_worker: {exc}")
    if args.allow_remote and curve_secret is None:
        sys.exit(
            "advmoe_worker: --allow-remote needs CURVE encryption: set "
            f"{keys.CURVE_SECRET_ENV}, {keys.CURVE_SECRET_FILE_ENV} or pass --curve-secret-key-file "
            "(make one with `python -m advmoe_worker.keys DIR`)"
        )
    return key, curve_secret


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m advmoe_worker", description=__doc__)
    p.add_argument(
        "--bind",
        default="tcp://127.0.0.1:0",
        help="ZeroMQ endpoint (default tcp://127.0.0.1:0: a free loopback port)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding to a non-loopback address (requires a CURVE secret key)",
    )
    p.add_argument("--key-file", help="file holding the hex signing key (default: $ADVMOE_KEY)")
    p.add_argument(
        "--curve-secret-key-file",
        help="file holding the worker's Z85 CURVE secret key (default: $ADVMOE_CURVE_SECRET_KEY)",
    )
    p.add_argument(
        "--workspace", default=os.getcwd(), help="root for checkpoint and data paths (default: cwd)"
    )
    p.add_argument(
        "--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES, help="largest accepted message"
    )
    p.add_argument(
        "--require-full-mac",
        action="store_true",
        help="accept only messages whose signature covers every byte",
    )
    p.add_argument("--full-mac", action="store_true", help="sign the bytes of outgoing tensors too")
    p.add_argument(
        "--replay-window", type=float, default=300.0, help="seconds a message timestamp may differ from now"
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--log-level", default=os.environ.get("ADVMOE_LOG_LEVEL", "INFO"))
    p.add_argument(
        "--nproc-per-node",
        type=int,
        default=None,
        help="run N ranks on this machine under torchrun (one per GPU; gloo on the CPU)",
    )
    p.add_argument(
        "--shm-dir",
        default=None,
        help="a private folder (mode 0700) shared with a local client: large tensors may travel "
        "as files there instead of frames; removed when the worker exits",
    )
    p.add_argument(
        "--watch-parent",
        action="store_true",
        help="exit when stdin reaches end of file (the launcher holds the pipe: the worker ends with it)",
    )
    return p.parse_args(argv)


def _is_loopback(endpoint: str) -> bool:
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.nproc_per_node is not None:
        if args.nproc_per_node < 1:
            sys.exit(f"advmoe_worker: --nproc-per-node must be >= 1, got {args.nproc_per_node}")
        from .launch import run_under_torchrun

        sys.exit(run_under_torchrun(args.nproc_per_node, sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    if not _is_loopback(args.bind) and not args.allow_remote:
        sys.exit(f"advmoe_worker: {args.bind} is not a loopback address; pass --allow-remote to bind it")
    key, curve_secret = _read_keys(args)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    _load_methods()
    from . import distributed
    from .server.builtin import _devices

    ranks = None
    if distributed.launched_by_torchrun():
        args.device = str(distributed.init_from_env(args.device))
        ranks = {
            "backend": distributed.backend(),
            "world_size": distributed.world_size(),
            "pids": distributed.gather_objects(os.getpid()),
        }
        if distributed.rank() != 0:
            from .server.ranks import Follower

            Follower(
                ServerConfig(bind="", key=key, workspace=Path(args.workspace), device=args.device)
            ).follow()
            return

    server = Server(
        ServerConfig(
            bind=args.bind,
            key=key,
            workspace=Path(args.workspace),
            max_message_bytes=args.max_message_bytes,
            require_full_mac=args.require_full_mac,
            full_mac=args.full_mac,
            replay_window_s=args.replay_window,
            device=args.device,
            curve_secret_key=curve_secret,
            **_shm_config(args),
        )
    )
    server.devices = _devices()
    if ranks is not None:
        from .server.ranks import relay_for

        server.relay = relay_for(server)
        server.ranks = ranks
    endpoint = server.bind()
    if args.watch_parent:
        from .server.parent import watch_parent

        watch_parent(server)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.stop())
    from . import __version__

    ready = {
        "version": __version__,
        "device": str(server.device),
        "max_message_bytes": server.config.max_message_bytes,
    }
    if curve_secret is not None:
        ready["curve_public_key"] = keys.curve_public(curve_secret).decode()
    if server.shm is not None:
        ready["shm"] = True
    print(pack_ready(server, ready), flush=True)
    logging.getLogger("advmoe_worker").info("serving on %s (device %s)", endpoint, server.device)
    try:
        server.serve()
    finally:
        if args.shm_dir:
            # Segments nobody collected (a client that died first) go with the folder.
            shutil.rmtree(args.shm_dir, ignore_errors=True)


def _shm_config(args: argparse.Namespace) -> dict:
    if not args.shm_dir:
        return {}
    from .protocol.shm import check_folder

    try:
        check_folder(Path(args.shm_dir))
    except (OSError, ValueError) as exc:
        sys.exit(f"advmoe_worker: --shm-dir: {exc}")
    return {"shm_dir": Path(args.shm_dir)}


if __name__ == "__main__":
    main()
