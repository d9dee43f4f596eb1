"""A real worker process (`python -m advmoe_worker`) and a minimal client for it."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq

from advmoe_worker.protocol import Signer, decode, encode

REPO = Path(__file__).resolve().parents[3]


class WorkerProcess:
    """`python -m advmoe_worker` on a free loopback port; the ready line gives its endpoint."""

    def __init__(self, workspace: Path, *args: str, env: dict[str, str] | None = None):
        self.key = secrets.token_bytes(32)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "advmoe_worker", "--bind", "tcp://127.0.0.1:0", "--threads", "1"]
            + ["--workspace", str(workspace), *args],
            env={
                **os.environ,
                "ADVMOE_KEY": self.key.hex(),
                "PYTHONPATH": str(REPO / "py"),
                "ADVMOE_LOG_LEVEL": "CRITICAL",
                **(env or {}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = ""
        for line in self.proc.stdout:  # the ready line comes first, or the process ends
            if line.startswith("ADVMOE_READY "):
                break
        assert line.startswith("ADVMOE_READY "), f"worker did not start (exit {self.proc.poll()})"
        self.ready = json.loads(line.split(" ", 1)[1].rsplit(" ", 1)[0])
        self.endpoint = self.ready["endpoint"]

    def client(self, **sockopts: Any) -> Client:
        return Client(self.endpoint, self.key, **sockopts)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


class Client:
    """A DEALER that signs what it sends and checks the signature of what it receives."""

    def __init__(self, endpoint: str, key: bytes, **sockopts: Any):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        for name, value in sockopts.items():
            self.sock.setsockopt(getattr(zmq, name), value)
        self.sock.connect(endpoint)
        self.signer = Signer(key)
        self.session = f"test-{secrets.token_hex(4)}"
        self.seq = itertools.count(1)

    def header(self, kind: str = "request", id: Any = None, **fields: Any) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": kind,
            "id": id,
            "session": self.session,
            "seq": next(self.seq),
            "ts": time.time() * 1000,
            **fields,
        }

    def request(self, id: int, method: str, params: Any = None, tensors=None) -> None:
        frames = encode(self.header("request", id, method=method, params=params or {}), tensors)
        self.send_signed(frames)

    def send_signed(self, frames: list[Any]) -> None:
        self.sock.send_multipart([self.signer.sign(frames), *frames])

    def send_raw(self, frames: list[Any]) -> None:
        self.sock.send_multipart(frames)

    def packed(self, method: str, params: Any, id: int) -> bytes:
        return msgpack.packb(self.header("request", id, method=method, params=params), use_bin_type=True)

    def recv(self, timeout_s: float = 30.0):
        assert self.sock.poll(int(timeout_s * 1000)), f"no message from the worker within {timeout_s} s"
        signature, *frames = self.sock.recv_multipart()
        assert self.signer.verify(signature, frames), "a worker message failed its signature"
        return decode(frames)

    def answer(self, id: int, timeout_s: float = 30.0):
        """The reply or error for request `id`, skipping events, heartbeats and others."""
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.recv(max(0.0, deadline - time.monotonic()))
            if message.id == id and message.kind in ("reply", "error"):
                return message

    def call(self, method: str, params: Any = None, tensors=None, id: int | None = None, timeout_s=30.0):
        id = id if id is not None else 1_000_000 + next(self.seq)
        self.request(id, method, params, tensors)
        return self.answer(id, timeout_s)

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()
