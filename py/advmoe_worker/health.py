"""`python -m advmoe_worker.health`: exit 0 when the worker answers a signed `info`.

The Docker image's healthcheck. A bare TCP connect would pass for a worker whose loop
has died or whose key is wrong; this sends a real request with the worker's own key
(and CURVE keys, when set) and checks the signed reply.
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import sys
import time

import zmq

from . import keys
from .protocol import PROTOCOL_VERSION, Signer, decode, encode


def check(endpoint: str, key: bytes, curve_secret: bytes | None, timeout_s: float) -> dict:
    """Sends one `info` and returns its result; raises RuntimeError on no or a bad answer."""
    signer = Signer(key)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        if curve_secret is not None:
            # The healthcheck runs beside the worker, so the server key derives from its secret.
            public, secret = zmq.curve_keypair()
            sock.setsockopt(zmq.CURVE_SERVERKEY, keys.curve_public(curve_secret))
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.connect(endpoint)
        session = f"health-{secrets.token_hex(4)}"
        seq = itertools.count(1)
        header = {
            "v": PROTOCOL_VERSION,
            "kind": "request",
            "id": 1,
            "method": "info",
            "params": {},
            "session": session,
            "seq": next(seq),
            "ts": time.time() * 1000.0,
        }
        frames = encode(header)
        sock.send_multipart([signer.sign(frames), *frames])
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                break
            signature, *rest = sock.recv_multipart()
            if not signer.verify(signature, rest):
                raise RuntimeError("the worker's reply is not signed with this key")
            message = decode(rest)
            if message.id != 1 or message.kind == "heartbeat":
                continue
            if message.kind != "reply":
                raise RuntimeError(f"info failed: {message.header.get('error')}")
            return message.header["result"]
        raise RuntimeError(f"no answer from {endpoint} within {timeout_s} s")
    finally:
        sock.close(linger=0)
        ctx.term()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m advmoe_worker.health", description=__doc__)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    p.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for the reply")
    p.add_argument("--key-file", help="file holding the hex signing key (default: $ADVMOE_KEY)")
    p.add_argument("--curve-secret-key-file", help="the worker's CURVE secret key file")
    args = p.parse_args(argv)
    try:
        key = keys.signing_key(args.key_file)
        curve_secret = keys.curve_server_secret(args.curve_secret_key_file)
        info = check(args.endpoint, key, curve_secret, args.timeout)
    except (keys.KeySetupError, RuntimeError) as exc:
        sys.exit(f"unhealthy: {exc}")
    print(f"healthy: pid {info['pid']}, torch {info['torch']}, device {info['default_device']}")


if __name__ == "__main__":
    main()
