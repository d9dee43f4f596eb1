"""Raw pyzmq Python-to-Python baseline for bench/transport.ts.

A ROUTER server process and a DEALER client, no signing and no msgpack: the floor
that the SDK's round trips and transfers are compared against. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time

import zmq


def serve(endpoint_queue, transport: str, size: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    if transport == "ipc":
        path = os.path.join(tempfile.mkdtemp(prefix="advmoe-bench-"), "s")
        sock.bind(f"ipc://{path}")
    else:
        sock.bind("tcp://127.0.0.1:0")
    endpoint_queue.put(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    payload = os.urandom(size)
    while True:
        ident, op, *rest = sock.recv_multipart(copy=False)
        op = op.bytes
        if op == b"echo":
            sock.send_multipart([ident, b"ok"], copy=False)
        elif op == b"sink":
            sock.send_multipart([ident, str(sum(len(f) for f in rest)).encode()], copy=False)
        elif op == b"source":
            sock.send_multipart([ident, b"ok", payload], copy=False)
        elif op == b"stop":
            sock.send_multipart([ident, b"bye"])
            break
    sock.close(linger=1000)
    ctx.term()


class _Print:
    """Stands in for the queue: the endpoint goes to stdout for a client in another language."""

    def put(self, endpoint: str) -> None:
        print(endpoint, flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    p.add_argument("--rounds", type=int, default=3000)
    p.add_argument("--bytes", type=int, default=64 << 20)
    p.add_argument("--transfers", type=int, default=8)
    p.add_argument("--samples", action="store_true", help="print every sample (µs) instead of summaries")
    p.add_argument(
        "--serve", action="store_true", help="only the server: print its endpoint, serve until `stop`"
    )
    args = p.parse_args()
    if args.serve:
        serve(_Print(), args.transport, args.bytes)
        return

    q = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=serve, args=(q, args.transport, args.bytes))
    proc.start()
    endpoint = q.get(timeout=30)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(endpoint)

    def rtt() -> float:
        t = time.perf_counter()
        sock.send(b"echo")
        sock.recv_multipart(copy=False)
        return time.perf_counter() - t

    for _ in range(200):
        rtt()
    samples = sorted(rtt() for _ in range(args.rounds))
    payload = os.urandom(args.bytes)

    def sink() -> float:
        t = time.perf_counter()
        sock.send_multipart([b"sink", payload], copy=False)
        sock.recv_multipart(copy=False)
        return time.perf_counter() - t

    def source() -> float:
        t = time.perf_counter()
        sock.send(b"source")
        sock.recv_multipart(copy=False)
        return time.perf_counter() - t

    sink(), source()
    ups, downs = [], []
    for _ in range(args.transfers):
        ups.append(sink())
        downs.append(source())
    up, down = statistics.median(ups), statistics.median(downs)
    sock.send(b"stop")
    sock.recv_multipart()
    proc.join(timeout=10)
    if args.samples:
        us = lambda xs: [x * 1e6 for x in xs]  # noqa: E731
        print(json.dumps({"rtt": us(samples), "up": us(ups), "down": us(downs)}))
        return
    print(
        json.dumps(
            {
                "p50_us": samples[len(samples) // 2] * 1e6,
                "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
                "upload_gbps": args.bytes / up / 1e9,
                "download_gbps": args.bytes / down / 1e9,
            }
        )
    )


if __name__ == "__main__":
    main()
